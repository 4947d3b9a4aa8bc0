/* SPDX-License-Identifier: MIT */
/* aio_wrap.c - libaio's own functions for the interposing test programs
 * (see aio_wrap.h). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aio_wrap.h"

static struct aio_real real;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* Store the next definition of name after this program's into the
 * function pointer at fn (size bytes), or abort.  (Through memcpy: ISO C
 * has no conversion from a data pointer to a function pointer.) */
static void real_sym(const char *name, void *fn, size_t size)
{
    void *sym = dlsym(RTLD_NEXT, name);
    if (!sym) {
        fprintf(stderr, "%s: dlsym(%s): %s\n", program_invocation_short_name,
                name, dlerror());
        abort();
    }
    memcpy(fn, &sym, size);
}

static void look_up(void)
{
    real_sym("io_setup", &real.io_setup, sizeof(real.io_setup));
    real_sym("io_submit", &real.io_submit, sizeof(real.io_submit));
    real_sym("io_getevents", &real.io_getevents, sizeof(real.io_getevents));
    real_sym("io_destroy", &real.io_destroy, sizeof(real.io_destroy));
}

const struct aio_real *aio_real(void)
{
    pthread_once(&real_once, look_up);
    return &real;
}
