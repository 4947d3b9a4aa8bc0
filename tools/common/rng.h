/* SPDX-License-Identifier: MIT */
/* rng.h - the tools' pseudo-random numbers (bpool-bench, bpool-stress,
 * bpool-shell's load).
 *
 * xoshiro256** (Blackman and Vigna) for the hot loops: a hit costs tens of
 * nanoseconds, so a draw must cost a few, and each thread keeps a state of
 * its own.  splitmix64 seeds it, and serves alone where one 64-bit word of
 * state is enough.  Every sequence is a pure function of its seed: the
 * tools promise that a --seed (seed=) repeats a run, so none of these may
 * change what it returns.
 */
#ifndef BPOOL_TOOLS_RNG_H
#define BPOOL_TOOLS_RNG_H

#include <stdint.h>

/* splitmix64's output function: a bijection of 64-bit words that mixes
 * every input bit into every output bit.  Also a hash (stress's page
 * payloads and checksums are built from it). */
uint64_t mix64(uint64_t x);

/* splitmix64: advance *state by the golden-ratio increment, return the mix
 * of the new state. */
uint64_t splitmix64(uint64_t *state);

/* A uniform double in [0, 1) from the top 53 bits of x (a double has no
 * room for more, and the top bits are the best ones of both generators). */
static inline double unit_double(uint64_t x)
{
    return (double)(x >> 11) * 0x1.0p-53;
}

/* xoshiro256**; a zero state would stay zero, which rng_seed cannot give. */
struct rng { uint64_t s[4]; };
/* The four words are the first four outputs of splitmix64 from seed. */
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);

/* Uniform in [0, n), n > 0: the high word of a 64 x 64-bit product
 * (Lemire), with no division; the bias is below n / 2^64. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Uniform in [0, 1). */
static inline double rng_double(struct rng *r)
{
    return unit_double(rng_next(r));
}

#endif /* BPOOL_TOOLS_RNG_H */
