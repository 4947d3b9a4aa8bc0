/* SPDX-License-Identifier: MIT */
/* pagetable.c - page number -> frame map; lock-free lookups, writers under
 * the miss lock.
 *
 * Why open addressing with linear probing: a lookup is a short run of
 * loads over one array of 8-byte slots (eight to a cache line, so usually
 * one line).  A removal closes its hole at once, moving back each entry
 * of the run after it that would otherwise no longer be reachable from
 * its home slot (Knuth's algorithm R for linear probing), so the table
 * never holds tombstones and never needs rebuilding.  (It did: a rebuild
 * re-hashed every entry under the miss lock, 1.4 to 2.2 ms with 30,000
 * frames, about twice a second in a pool missing 60,000 times a second,
 * and every miss waited behind it - doc/performance.md.)  A lock-free
 * reader can miss an entry that a removal is moving back; that costs the
 * reader a trip through the miss path, which looks again under the lock
 * (pagetable.h).
 *
 * Capacity is at least twice the largest number of live entries (frames),
 * so probe runs stay short, and so do the moves of a removal.
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
 * read after the slot and compared with the page looked for.  The
 * fingerprint is the page's hash, whose low bits are its home slot, so a
 * removal finds the home of each entry after its hole in the slot itself.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "pagetable.h"

static uint64_t slot_word(uint64_t page, uint32_t frame)
{
    return (uint64_t)bp__pt_hash(page) << 32 | frame;
}

int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries,
                const _Atomic uint64_t *tags, size_t tag_stride)
{
    uint64_t cap = 16;
    while (cap < 2 * max_entries)
        cap <<= 1;
    pt->mask = cap - 1;
    pt->live = 0;
    pt->tags = (const char *)(const void *)tags;
    pt->tag_stride = tag_stride;
    pt->slots = malloc(cap * sizeof(*pt->slots));
    if (!pt->slots)
        return -ENOMEM;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&pt->slots[i], BP__PT_EMPTY);
    return 0;
}

void bp__pt_destroy(struct bp__pagetable *pt)
{
    free(pt->slots);
    pt->slots = NULL;
}

/* Store an entry in the first empty slot of its probe run.  Release
 * order: a reader that sees the slot sees the frame's tag (stored before)
 * too. */
void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame)
{
    assert(frame < BP__PT_EMPTY_FRAME && bp__pt_tag(pt, frame) == page);
    assert(pt->live <= pt->mask / 2);   /* sized for twice the entries */
    uint64_t i = bp__pt_hash(page) & pt->mask;
    while ((uint32_t)atomic_load_explicit(&pt->slots[i], memory_order_relaxed) !=
           BP__PT_EMPTY_FRAME)
        i = (i + 1) & pt->mask;
    atomic_store_explicit(&pt->slots[i], slot_word(page, frame), memory_order_release);
    pt->live++;
}

int bp__pt_remove(struct bp__pagetable *pt, uint64_t page)
{
    uint32_t fp = bp__pt_hash(page);
    uint64_t i = fp & pt->mask;
    for (uint64_t n = 0;; n++, i = (i + 1) & pt->mask) {
        uint64_t w = atomic_load_explicit(&pt->slots[i], memory_order_relaxed);
        if ((uint32_t)w == BP__PT_EMPTY_FRAME || n > pt->mask)
            return -1;
        if (bp__pt_names(pt, w, fp, page))
            break;
    }
    /* Slot i is the hole.  Each entry after it, up to the run's end, stays
     * if its home lies (cyclically) after the hole and at or before it -
     * a probe from its home still reaches it - else it moves into the hole,
     * which moves to where it was. */
    for (uint64_t j = i;;) {
        j = (j + 1) & pt->mask;
        uint64_t w = atomic_load_explicit(&pt->slots[j], memory_order_relaxed);
        if ((uint32_t)w == BP__PT_EMPTY_FRAME)
            break;
        uint64_t home = (uint32_t)(w >> 32) & pt->mask;   /* its fingerprint's */
        bool reachable = i <= j ? i < home && home <= j : i < home || home <= j;
        if (reachable)
            continue;
        atomic_store_explicit(&pt->slots[i], w, memory_order_release);
        i = j;
    }
    atomic_store_explicit(&pt->slots[i], BP__PT_EMPTY, memory_order_release);
    pt->live--;
    return 0;
}
