/* SPDX-License-Identifier: MIT */
/* pagetable.c - page number -> frame map; lock-free lookups, writers under
 * the miss lock.
 *
 * Why open addressing with tombstones: a lookup is a short run of loads
 * over one array of 8-byte slots (eight to a cache line, so usually one
 * line), and deletion by tombstone never moves an entry, so a concurrent
 * reader can never skip over a live entry.  Inserts reuse the first
 * tombstone on their probe path; when tombstones and entries together pass
 * 3/4 of the capacity the table is rebuilt in place.  A rebuild can make a
 * concurrent lock-free reader miss an entry; that costs the reader a trip
 * through the miss path, which looks again under the lock (see
 * pagetable.h).
 *
 * Capacity is at least twice the largest number of live entries (frames),
 * so probe runs stay short.
 *
 * Why the page number is not in the slot: the frame's descriptor holds it
 * already (its tag), and a hit reads that descriptor anyway, so a slot of
 * frame number and fingerprint is half the size of one with the page
 * number, at the cost of one load from a line the hit needs next.  The
 * fingerprint keeps a probe from reading the descriptors of other pages'
 * frames: two pages of one probe run share it with odds of about 1 in
 * 2^32.
 * And it makes a slot one atomic word, so a reader needs no sequence
 * count to read it whole; what a reused slot could still fool - a frame
 * that moved on to another page - the tag check catches, since the tag is
 * read after the slot and compared with the page looked for.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pagetable.h"

static uint64_t slot_word(uint64_t page, uint32_t frame)
{
    return (uint64_t)bp__pt_fingerprint(page) << 32 | frame;
}

int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries,
                const _Atomic uint64_t *tags, size_t tag_stride)
{
    uint64_t cap = 16;
    while (cap < 2 * max_entries)
        cap <<= 1;
    pt->mask = cap - 1;
    pt->live = pt->tombs = 0;
    pt->tags = (const char *)(const void *)tags;
    pt->tag_stride = tag_stride;
    pt->slots = malloc(cap * sizeof(*pt->slots));
    /* The rebuild's scratch space is a mapping of its own, so that its
     * pages can be given back after each rebuild (pt_rebuild): reserved
     * at open, so a rebuild cannot fail, but resident only during one. */
    pt->scratch_len = (max_entries + 1) * sizeof(uint32_t);
    void *m = mmap(NULL, pt->scratch_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pt->scratch = m == MAP_FAILED ? NULL : m;
    if (!pt->slots || !pt->scratch) {
        bp__pt_destroy(pt);
        return -ENOMEM;
    }
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&pt->slots[i], BP__PT_EMPTY);
    return 0;
}

void bp__pt_destroy(struct bp__pagetable *pt)
{
    free(pt->slots);
    if (pt->scratch)
        munmap(pt->scratch, pt->scratch_len);
    pt->slots = NULL;
    pt->scratch = NULL;
}

/* Store an entry in the first free or tombstone slot of its probe run.
 * Release order: a reader that sees the slot sees the frame's tag (stored
 * before) too. */
static void pt_place(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    uint64_t i = bp__pt_hash(page) & pt->mask;
    for (;;) {
        _Atomic uint64_t *s = &pt->slots[i];
        uint32_t f = (uint32_t)atomic_load_explicit(s, memory_order_relaxed);
        if (f == BP__PT_EMPTY_FRAME || f == BP__PT_TOMB_FRAME) {
            if (f == BP__PT_TOMB_FRAME)
                pt->tombs--;
            atomic_store_explicit(s, slot_word(page, frame), memory_order_release);
            pt->live++;
            return;
        }
        i = (i + 1) & pt->mask;
    }
}

/* Rebuild in place without tombstones.  The frames are gathered into the
 * preallocated scratch array first, so this cannot fail; each one's page
 * is its tag (the writers' invariant, pagetable.h). */
static void pt_rebuild(struct bp__pagetable *pt)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i <= pt->mask; i++) {
        _Atomic uint64_t *s = &pt->slots[i];
        uint32_t f = (uint32_t)atomic_load_explicit(s, memory_order_relaxed);
        if (f == BP__PT_EMPTY_FRAME)
            continue;
        if (f != BP__PT_TOMB_FRAME) {
            /* A slot names its frame's tag (the writers' invariant). */
            assert((uint32_t)(atomic_load_explicit(s, memory_order_relaxed) >> 32) ==
                   bp__pt_fingerprint(bp__pt_tag(pt, f)));
            pt->scratch[n++] = f;
        }
        atomic_store_explicit(s, BP__PT_EMPTY, memory_order_relaxed);
    }
    pt->live = pt->tombs = 0;
    for (uint64_t k = 0; k < n; k++)
        pt_place(pt, bp__pt_tag(pt, pt->scratch[k]), pt->scratch[k]);
    /* Zero pages again until the next rebuild: 4 bytes a frame less RSS
     * (the mapping stays, so the next rebuild cannot fail). */
    madvise(pt->scratch, pt->scratch_len, MADV_DONTNEED);
}

void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    assert(frame < BP__PT_TOMB_FRAME && bp__pt_tag(pt, frame) == page);
    if ((pt->live + pt->tombs + 1) * 4 > (pt->mask + 1) * 3)
        pt_rebuild(pt);
    pt_place(pt, page, frame);
}

int bp__pt_remove(struct bp__pagetable *pt, uint64_t page)
{
    uint64_t i = bp__pt_hash(page) & pt->mask;
    uint32_t fp = bp__pt_fingerprint(page);
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        _Atomic uint64_t *s = &pt->slots[i];
        uint64_t w = atomic_load_explicit(s, memory_order_relaxed);
        if ((uint32_t)w == BP__PT_EMPTY_FRAME)
            break;
        if (bp__pt_names(pt, w, fp, page)) {
            atomic_store_explicit(s, BP__PT_TOMB, memory_order_relaxed);
            pt->live--;
            pt->tombs++;
            return 0;
        }
    }
    return -1;
}
