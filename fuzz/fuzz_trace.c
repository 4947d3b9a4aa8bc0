/* SPDX-License-Identifier: MIT */
/*
 * fuzz_trace.c - libFuzzer target for the page-reference trace reader
 * (tools/trace.c: trace_load), which bpool-sim and the tests use on files
 * they did not make.  The input is the file's bytes, plain or gzip.
 *
 * Checked for every input: no crash, leak or undefined behaviour (the
 * sanitizers), and the documented contract - success gives page numbers
 * below UINT64_MAX - 1; failure gives -EINVAL or -ENOMEM, an empty trace
 * and a message naming the file.
 *
 * Build and run: fuzz/run.sh (doc/analysis.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        /* One in-memory file, rewritten for each input. */
        fd = memfd_create("trace", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 ||
        (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();

    struct trace t;
    char err[256];
    memset(&t, 0, sizeof(t));
    err[0] = '\0';
    int r = trace_load(path, &t, err, sizeof(err));
    if (r == 0) {
        if (t.n > t.cap || (t.n && !t.ref))
            abort();
        for (size_t i = 0; i < t.n; i++)
            if (t.ref[i] >= UINT64_MAX - 1)
                abort();
        uint64_t max = trace_max_page(&t);
        for (size_t i = 0; i < t.n; i++)
            if (t.ref[i] > max)
                abort();
    } else {
        if ((r != -EINVAL && r != -ENOMEM) || t.ref || t.n || !err[0] ||
            !strstr(err, path))
            abort();
    }
    trace_free(&t);
    return 0;
}
