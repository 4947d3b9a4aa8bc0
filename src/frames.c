/* SPDX-License-Identifier: MIT */
/* frames.c - the frame arena and the frame descriptors.
 *
 * The arena is one anonymous mapping holding every frame's bytes back to
 * back, so frame f's data is at arena + f * page_size.  Its start is
 * aligned to max(4096, the file system's O_DIRECT memory alignment), and
 * to 2 MiB when the arena is at least that large, so that the kernel can
 * back it with transparent huge pages (fewer TLB misses on a large pool);
 * every frame is then aligned to the page size's low bits as well, because
 * page sizes are powers of two >= 4096.  Descriptors live in their own
 * array so the small, hot state words are packed densely and never share
 * a cache line with page bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bpool_internal.h"

#define HUGE_ALIGN (2u << 20)

int bp__frames_create(bp_pool *pool)
{
    size_t bytes = (size_t)pool->nframes * pool->page_size;
    size_t align = 4096;
    if (pool->file.dio_mem_align > align)
        align = pool->file.dio_mem_align;
    if (bytes >= HUGE_ALIGN && align < HUGE_ALIGN)
        align = HUGE_ALIGN;

    /* Over-map by one alignment unit, then trim both ends. */
    size_t len = bytes + align;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return bp__fail(-ENOMEM, "cannot map a frame arena of %zu bytes "
                        "(%u frames of %u bytes): %s; choose a smaller pool",
                        bytes, pool->nframes, pool->page_size, strerror(errno));
    size_t head = (align - (uintptr_t)m % align) % align;
    char *start = m + head;
    if (head)
        munmap(m, head);
    size_t tail = len - head - bytes;
    if (tail)
        munmap(start + bytes, tail);
    pool->arena = start;
    pool->arena_len = bytes;
    pool->frame_align = (uint32_t)(align < pool->page_size ? align : pool->page_size);
    if (pool->frame_align < 4096)
        pool->frame_align = 4096;
    pool->huge_pages = 0;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_ALIGN && madvise(pool->arena, bytes, MADV_HUGEPAGE) == 0)
        pool->huge_pages = 1;
#endif

    void *d = NULL;
    if (posix_memalign(&d, 64, (size_t)pool->nframes * sizeof(struct bp__frame))) {
        munmap(pool->arena, bytes);
        pool->arena = NULL;
        return bp__fail(-ENOMEM, "cannot allocate %u frame descriptors",
                        pool->nframes);
    }
    pool->frames = d;
    for (uint32_t f = 0; f < pool->nframes; f++) {
        struct bp__frame *fr = &pool->frames[f];
        atomic_init(&fr->state, 0);
        atomic_init(&fr->page, BP__NOPAGE);
        pthread_rwlock_init(&fr->latch, NULL);
        pthread_mutex_init(&fr->wait_mu, NULL);
        pthread_cond_init(&fr->wait_cv, NULL);
    }
    return 0;
}

void bp__frames_destroy(bp_pool *pool)
{
    if (pool->frames) {
        for (uint32_t f = 0; f < pool->nframes; f++) {
            pthread_rwlock_destroy(&pool->frames[f].latch);
            pthread_mutex_destroy(&pool->frames[f].wait_mu);
            pthread_cond_destroy(&pool->frames[f].wait_cv);
        }
        free(pool->frames);
        pool->frames = NULL;
    }
    if (pool->arena)
        munmap(pool->arena, pool->arena_len);
    pool->arena = NULL;
}
