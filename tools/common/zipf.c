/* SPDX-License-Identifier: MIT */
/* zipf.c - the zipf generator and the rank scatter (see zipf.h). */
#include <math.h>

#include "zipf.h"

void zipf_init(struct zipf *z, uint64_t n, double theta)
{
    double zeta2 = 1.0 + pow(0.5, theta);
    double zetan = 0.0;
    for (uint64_t i = 1; i <= n; i++)
        zetan += 1.0 / pow((double)i, theta);
    z->n = n;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    z->zetan = zetan;
    z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / zetan);
    z->half_pow_theta = 1.0 + pow(0.5, theta);
}

uint64_t zipf_next(const struct zipf *z, struct rng *r)
{
    double u = rng_double(r);
    double uz = u * z->zetan;
    if (uz < 1.0 || z->n < 2)
        return 0;
    if (uz < z->half_pow_theta)
        return 1;
    uint64_t v = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return v < z->n ? v : z->n - 1;   /* u near 1 can round up to n */
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

uint64_t scatter_mult(uint64_t n, double frac)
{
    if (n < 3)
        return 1;
    /* Odd, so for even n the search only steps over odd candidates. */
    uint64_t m = (uint64_t)((double)n * frac) | 1;
    while (gcd(m, n) != 1)
        m += 2;
    return m % n;
}
