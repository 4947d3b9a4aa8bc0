/* SPDX-License-Identifier: MIT */
/* forkgen.c - the process generation (forkgen.h). */
#include "forkgen.h"

#include "frame_state.h"

#include <pthread.h>

_Atomic unsigned bp__fork_gen_now;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static void in_child(void)
{
    atomic_fetch_add_explicit(&bp__fork_gen_now, 1, memory_order_relaxed);
    bp__park_after_fork();
}

static void watch(void)
{
    (void)pthread_atfork(NULL, NULL, in_child);
}

unsigned bp__fork_gen(void)
{
    (void)pthread_once(&watch_once, watch);
    return atomic_load_explicit(&bp__fork_gen_now, memory_order_relaxed);
}
