/* SPDX-License-Identifier: MIT */
/* engine_libaio.c - the Linux native AIO engine (io_engine.h): libaio's
 * io_setup, io_destroy, io_submit and io_getevents, whose conventions are
 * the interface's own.  A context is an io_context_t. */
#include "io_engine.h"

static int la_setup(unsigned depth, bp__io_ctx *ctx)
{
    io_context_t c = 0;
    int r = io_setup((int)depth, &c);
    *ctx = r == 0 ? (bp__io_ctx)c : 0;
    return r;
}

static void la_destroy(bp__io_ctx ctx)
{
    io_destroy((io_context_t)ctx);
}

static int la_submit(bp__io_ctx ctx, long n, struct iocb **cbs)
{
    return io_submit((io_context_t)ctx, n, cbs);
}

static int la_getevents(bp__io_ctx ctx, long min, long max, struct io_event *ev)
{
    return io_getevents((io_context_t)ctx, min, max, ev, NULL);
}

const struct bp__io_engine bp__engine_libaio = {
    .name = "libaio",
    .setup = la_setup,
    .destroy = la_destroy,
    .reusable = 1,
    .submit = la_submit,
    .getevents = la_getevents,
};
