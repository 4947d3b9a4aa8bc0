/* SPDX-License-Identifier: MIT */
/* aio_wrap.h - libaio's own io_setup, io_submit, io_getevents and
 * io_destroy, for the test programs that define some of those functions
 * themselves.
 *
 * A program that defines io_submit (say) gets the library's calls
 * (src/aio.c, linked in statically from libbpool_core) first, and goes on
 * to libaio's function through aio_real()->io_submit.  Only the programs
 * that interpose link tests/aio_wrap.c; the interposers themselves stay in
 * those programs, each with its own behaviour. */
#ifndef BPOOL_AIO_WRAP_H
#define BPOOL_AIO_WRAP_H

#include <libaio.h>

/* libaio's functions, as found behind this program's definitions. */
struct aio_real {
    int (*io_setup)(int, io_context_t *);
    int (*io_submit)(io_context_t, long, struct iocb **);
    int (*io_getevents)(io_context_t, long, long, struct io_event *,
                        struct timespec *);
    int (*io_destroy)(io_context_t);
};

/* libaio's own functions: the next definitions after this program's
 * (dlsym(RTLD_NEXT)), looked up on the first call; aborts with a message
 * on stderr if one is missing.  Thread-safe. */
const struct aio_real *aio_real(void);

#endif
