/* SPDX-License-Identifier: MIT */
/* gen.c - the page distributions of bpool-bench's workloads: uniform, or
 * zipf with its popular ranks scattered over the pages (tools/common's
 * zipf.h).
 */
#include "bench.h"

void picker_init(struct picker *p, enum dist d, uint64_t pages, double theta)
{
    p->dist = d;
    p->pages = pages;
    p->mult = scatter_mult(pages, SCATTER_GOLDEN);
    if (d == DIST_ZIPF)
        zipf_init(&p->z, pages, theta);
}

const char *dist_name(enum dist d)
{
    return d == DIST_ZIPF ? "zipf" : "uniform";
}
