/* SPDX-License-Identifier: MIT */
/* forkgen.h - which process generation this is: a number that every
 * child of fork(2) moves on (forkgen.c).  Something made in one process -
 * a pool, an io_uring ring - records the generation then, and a child
 * that finds another knows it is not its own: the parent's threads, I/O
 * contexts and lock holders are not in the child. */
#ifndef BP_FORKGEN_H
#define BP_FORKGEN_H

#include <stdatomic.h>

extern _Atomic unsigned bp__fork_gen_now;

/* The generation of this process, watching for forks from the first call
 * on (a pthread_atfork child handler, registered once). */
unsigned bp__fork_gen(void);

/* False in a child of fork for something made at generation gen. */
static inline int bp__fork_gen_is(unsigned gen)
{
    return gen == atomic_load_explicit(&bp__fork_gen_now, memory_order_relaxed);
}

#endif
