/* SPDX-License-Identifier: MIT */
/* testtrace.c - the traces of tests/data for the tests (see testtrace.h). */
#include <check.h>
#include <stdio.h>

#include "testtrace.h"
#include "testutil.h"

void tu_load_trace(const char *name, struct trace *t)
{
    char path[4096], err[4096 + 256];
    int rc;

    snprintf(path, sizeof path, "%s/tests/data/%s.trc.gz", tu_srcdir(), name);
    rc = trace_load(path, t, err, sizeof err);
    ck_assert_msg(rc == 0, "%s (set srcdir)", err);
    ck_assert_msg(t->n > 0, "%s: empty trace", path);
}
