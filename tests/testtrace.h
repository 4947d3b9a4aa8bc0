/* SPDX-License-Identifier: MIT */
/* testtrace.h - the page-reference traces of tests/data, for the test
 * programs that link libbpool_sim (tools/trace.c): check_clockpro and
 * check_replay.  Kept out of testutil so the other programs need not link
 * it. */
#ifndef BPOOL_TESTTRACE_H
#define BPOOL_TESTTRACE_H

#include "../tools/trace.h"

/* Load tests/data/<name>.trc.gz (under tu_srcdir()) into *t, which must be
 * zeroed or freed; fails the test if it cannot be read or is empty. */
void tu_load_trace(const char *name, struct trace *t);

#endif
