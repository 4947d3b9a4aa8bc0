/* SPDX-License-Identifier: MIT */
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
 *
 * Why a sequence count per slot: a slot is reused.  Without it, a reader
 * could match the page number, be overtaken by a writer that removes the
 * page and places another in the same slot, and then read the newcomer's
 * frame.  Every change of a slot is bracketed by two increments of its
 * `seq` (odd in between); a reader reads seq, the slot, seq again, and
 * trusts the slot only if both counts are equal and even.  A 32-bit count
 * would need four billion changes of one slot during one lookup to fool it.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pagetable.h"

int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries)
{
    uint64_t cap = 16;
    while (cap < 2 * max_entries)
        cap <<= 1;
    pt->mask = cap - 1;
    pt->live = pt->tombs = 0;
    pt->slots = malloc(cap * sizeof(*pt->slots));
    /* The rebuild's scratch space is a mapping of its own, so that its
     * pages can be given back after each rebuild (pt_rebuild): reserved
     * at open, so a rebuild cannot fail, but resident only during one. */
    pt->scratch_len = (max_entries + 1) * (sizeof(uint64_t) + sizeof(uint32_t));
    void *m = mmap(NULL, pt->scratch_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pt->scratch_pages = m == MAP_FAILED ? NULL : m;
    pt->scratch_frames = m == MAP_FAILED ? NULL
                         : (uint32_t *)(pt->scratch_pages + max_entries + 1);
    if (!pt->slots || !pt->scratch_pages) {
        bp__pt_destroy(pt);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < cap; i++) {
        atomic_init(&pt->slots[i].page, BP__PT_EMPTY);
        atomic_init(&pt->slots[i].frame, BP__PT_NOTFOUND);
        atomic_init(&pt->slots[i].seq, 0);
    }
    return 0;
}

void bp__pt_destroy(struct bp__pagetable *pt)
{
    free(pt->slots);
    if (pt->scratch_pages)
        munmap(pt->scratch_pages, pt->scratch_len);
    pt->slots = NULL;
    pt->scratch_pages = NULL;
    pt->scratch_frames = NULL;
}

/* Change a slot (writers only, under the miss lock).  The contents are
 * stored with release order after the odd count, and read with acquire
 * order before the reader's second look at the count: a reader that sees
 * any new content therefore also sees the count move.  (The fence-based
 * seqlock of Boehm, "Can seqlocks get along with programming language
 * memory models?", 2012, written with release stores and acquire loads
 * instead: the same plain moves on x86, and ThreadSanitizer understands
 * them, which it does not atomic_thread_fence.) */
static void slot_write(struct bp__pt_slot *s, uint64_t page, uint32_t frame)
{
    uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
    atomic_store_explicit(&s->frame, frame, memory_order_release);
    atomic_store_explicit(&s->page, page, memory_order_release);
    atomic_store_explicit(&s->seq, q + 2, memory_order_release);
}

/* Store an entry in the first free or tombstone slot of its probe run. */
static void pt_place(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    uint64_t i = bp__pt_hash(page) & pt->mask;
    for (;;) {
        struct bp__pt_slot *s = &pt->slots[i];
        uint64_t p = atomic_load_explicit(&s->page, memory_order_relaxed);
        if (p == BP__PT_EMPTY || p == BP__PT_TOMB) {
            if (p == BP__PT_TOMB)
                pt->tombs--;
            slot_write(s, page, frame);
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
        struct bp__pt_slot *s = &pt->slots[i];
        uint64_t p = atomic_load_explicit(&s->page, memory_order_relaxed);
        if (p == BP__PT_EMPTY)
            continue;
        if (p != BP__PT_TOMB) {
            pt->scratch_pages[n] = p;
            pt->scratch_frames[n] = atomic_load_explicit(&s->frame,
                                                         memory_order_relaxed);
            n++;
        }
        slot_write(s, BP__PT_EMPTY, BP__PT_NOTFOUND);
    }
    pt->live = pt->tombs = 0;
    for (uint64_t k = 0; k < n; k++)
        pt_place(pt, pt->scratch_pages[k], pt->scratch_frames[k]);
    /* Zero pages again until the next rebuild: 12 bytes a frame less RSS
     * (the mapping stays, so the next rebuild cannot fail). */
    madvise(pt->scratch_pages, pt->scratch_len, MADV_DONTNEED);
}

void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    if ((pt->live + pt->tombs + 1) * 4 > (pt->mask + 1) * 3)
        pt_rebuild(pt);
    pt_place(pt, page, frame);
}

int bp__pt_remove(struct bp__pagetable *pt, uint64_t page)
{
    uint64_t i = bp__pt_hash(page) & pt->mask;
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        struct bp__pt_slot *s = &pt->slots[i];
        uint64_t p = atomic_load_explicit(&s->page, memory_order_relaxed);
        if (p == page) {
            slot_write(s, BP__PT_TOMB, BP__PT_NOTFOUND);
            pt->live--;
            pt->tombs++;
            return 0;
        }
        if (p == BP__PT_EMPTY)
            break;
    }
    return -1;
}
