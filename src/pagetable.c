/* pagetable.c - page number -> frame map; lock-free lookups, writers under
 * the miss lock.
 *
 * Why open addressing with tombstones: a lookup is a short run of loads
 * over one array of page numbers (8 bytes a slot, usually one cache line),
 * and deletion by tombstone never moves an entry, so a concurrent reader
 * can never skip over a live entry.  Inserts reuse the first tombstone on
 * their probe path; when tombstones and entries together pass 3/4 of the
 * capacity the table is rebuilt in place.  A rebuild can make a concurrent
 * lock-free reader miss an entry; that costs the reader a trip through the
 * miss path, which looks again under the lock (see pagetable.h).
 *
 * Capacity is at least twice the largest number of live entries (frames),
 * so probe runs stay short.
 */
#include <errno.h>
#include <stdlib.h>

#include "pagetable.h"

static inline uint64_t pt_hash(uint64_t page)
{
    /* Fibonacci hashing: consecutive page numbers spread over the table. */
    return (page * UINT64_C(0x9E3779B97F4A7C15)) >> 17;
}

int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries)
{
    uint64_t cap = 16;
    while (cap < 2 * max_entries)
        cap <<= 1;
    pt->mask = cap - 1;
    pt->live = pt->tombs = 0;
    pt->pages = malloc(cap * sizeof(*pt->pages));
    pt->frames = malloc(cap * sizeof(*pt->frames));
    pt->scratch_pages = malloc((max_entries + 1) * sizeof(uint64_t));
    pt->scratch_frames = malloc((max_entries + 1) * sizeof(uint32_t));
    if (!pt->pages || !pt->frames || !pt->scratch_pages || !pt->scratch_frames) {
        bp__pt_destroy(pt);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < cap; i++) {
        atomic_init(&pt->pages[i], BP__PT_EMPTY);
        atomic_init(&pt->frames[i], BP__PT_NOTFOUND);
    }
    return 0;
}

void bp__pt_destroy(struct bp__pagetable *pt)
{
    free(pt->pages);
    free(pt->frames);
    free(pt->scratch_pages);
    free(pt->scratch_frames);
    pt->pages = NULL;
    pt->frames = NULL;
    pt->scratch_pages = NULL;
    pt->scratch_frames = NULL;
}

uint32_t bp__pt_lookup(const struct bp__pagetable *pt, uint64_t page)
{
    uint64_t i = pt_hash(page) & pt->mask;
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        uint64_t p = atomic_load_explicit(&pt->pages[i], memory_order_acquire);
        if (p == page)
            return atomic_load_explicit(&pt->frames[i], memory_order_relaxed);
        if (p == BP__PT_EMPTY)
            break;
    }
    return BP__PT_NOTFOUND;
}

/* Store an entry in the first free or tombstone slot of its probe run.
 * The frame is published before the page number, so a reader that sees
 * the page number (acquire) sees this frame or a later one. */
static void pt_place(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    uint64_t i = pt_hash(page) & pt->mask;
    for (;;) {
        uint64_t p = atomic_load_explicit(&pt->pages[i], memory_order_relaxed);
        if (p == BP__PT_EMPTY || p == BP__PT_TOMB) {
            if (p == BP__PT_TOMB)
                pt->tombs--;
            atomic_store_explicit(&pt->frames[i], frame, memory_order_relaxed);
            atomic_store_explicit(&pt->pages[i], page, memory_order_release);
            pt->live++;
            return;
        }
        i = (i + 1) & pt->mask;
    }
}

/* Rebuild in place without tombstones.  Entries are gathered into the
 * preallocated scratch arrays first, so this cannot fail. */
static void pt_rebuild(struct bp__pagetable *pt)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i <= pt->mask; i++) {
        uint64_t p = atomic_load_explicit(&pt->pages[i], memory_order_relaxed);
        if (p != BP__PT_EMPTY && p != BP__PT_TOMB) {
            pt->scratch_pages[n] = p;
            pt->scratch_frames[n] = atomic_load_explicit(&pt->frames[i],
                                                         memory_order_relaxed);
            n++;
        }
        atomic_store_explicit(&pt->pages[i], BP__PT_EMPTY, memory_order_release);
    }
    pt->live = pt->tombs = 0;
    for (uint64_t k = 0; k < n; k++)
        pt_place(pt, pt->scratch_pages[k], pt->scratch_frames[k]);
}

void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    if ((pt->live + pt->tombs + 1) * 4 > (pt->mask + 1) * 3)
        pt_rebuild(pt);
    pt_place(pt, page, frame);
}

int bp__pt_remove(struct bp__pagetable *pt, uint64_t page)
{
    uint64_t i = pt_hash(page) & pt->mask;
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        uint64_t p = atomic_load_explicit(&pt->pages[i], memory_order_relaxed);
        if (p == page) {
            atomic_store_explicit(&pt->pages[i], BP__PT_TOMB, memory_order_release);
            pt->live--;
            pt->tombs++;
            return 0;
        }
        if (p == BP__PT_EMPTY)
            break;
    }
    return -1;
}
