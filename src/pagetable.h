/* SPDX-License-Identifier: MIT */
/*
 * pagetable.h - page number -> frame map with lock-free lookups.
 *
 * Open addressing with linear probing over one array of 16-byte slots
 * (page number, frame number, sequence count).  Readers take no lock: a
 * slot's sequence count is a per-slot seqlock, so a reader that finds the
 * page returns the frame the slot held for it, never the frame of a later
 * occupant of the same slot.  A reader may miss an entry that a writer is
 * changing or a rebuild is moving (a false negative): the miss path, which
 * must be exact, looks up again under the miss lock.  The frame returned
 * is a candidate: by the time the caller pins it, it may hold another page,
 * so the caller confirms the frame's own page tag after pinning.
 *
 * Writers (insert, remove) must hold the pool's miss lock: "caller must
 * hold the miss lock" is the rule for every function below except
 * bp__pt_lookup.
 */
#ifndef BPOOL_PAGETABLE_H
#define BPOOL_PAGETABLE_H

#include <stdatomic.h>
#include <stdint.h>

#define BP__PT_EMPTY UINT64_MAX       /* slot never used since rebuild */
#define BP__PT_TOMB (UINT64_MAX - 1)  /* slot whose entry was removed */
#define BP__PT_NOTFOUND UINT32_MAX

/* One slot: 16 bytes, four to a cache line.  `seq` is odd while a writer
 * changes page/frame (see pagetable.c). */
struct bp__pt_slot {
    _Atomic uint64_t page;       /* page number, or EMPTY / TOMB */
    _Atomic uint32_t frame;      /* frame of that page */
    _Atomic uint32_t seq;        /* bumped before and after every change */
};

struct bp__pagetable {
    uint64_t mask;               /* capacity - 1; capacity a power of two */
    struct bp__pt_slot *slots;
    uint64_t live;               /* entries (miss lock) */
    uint64_t tombs;              /* tombstones (miss lock) */
    uint64_t *scratch_pages;     /* room for a rebuild, preallocated */
    uint32_t *scratch_frames;    /* (in the same mapping) */
    size_t scratch_len;          /* bytes of that mapping */
};

/* Size for `max_entries` live entries.  Returns 0 or -ENOMEM. */
int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries);
void bp__pt_destroy(struct bp__pagetable *pt);

static inline uint64_t bp__pt_hash(uint64_t page)
{
    /* Fibonacci hashing: consecutive page numbers spread over the table. */
    return (page * UINT64_C(0x9E3779B97F4A7C15)) >> 17;
}

/* Read slot s for `page`: 1 and *frame if it held page with no change in
 * between, 0 if it holds another page, -1 if a writer got in the way. */
static inline int bp__pt_slot_read(const struct bp__pt_slot *s, uint64_t page,
                                   uint32_t *frame)
{
    uint32_t q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    uint64_t p = atomic_load_explicit(&s->page, memory_order_acquire);
    uint32_t f = atomic_load_explicit(&s->frame, memory_order_acquire);
    uint32_t q2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if ((q1 & 1) || q1 != q2)
        return -1;
    if (p != page)
        return 0;
    *frame = f;
    return 1;
}

/* Frame that held `page` at some moment during the call, or
 * BP__PT_NOTFOUND.  Lock-free (inline: it is most of a hit); may return a
 * false BP__PT_NOTFOUND while a writer changes the page's slot or a
 * rebuild runs (look again under the miss lock before trusting it). */
static inline uint32_t bp__pt_lookup(const struct bp__pagetable *pt, uint64_t page)
{
    uint64_t i = bp__pt_hash(page) & pt->mask;
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        const struct bp__pt_slot *s = &pt->slots[i];
        uint64_t p = atomic_load_explicit(&s->page, memory_order_relaxed);
        if (p == page) {
            /* Confirm under the seqlock; a few tries if a writer is busy
             * with this very slot, then let the miss path decide. */
            uint32_t f;
            for (int tries = 0; tries < 4; tries++) {
                int r = bp__pt_slot_read(s, page, &f);
                if (r == 1)
                    return f;
                if (r == 0)
                    break;
            }
            return BP__PT_NOTFOUND;
        }
        if (p == BP__PT_EMPTY)
            break;
    }
    return BP__PT_NOTFOUND;
}


/* Map page -> frame.  page must not be present.  Caller holds miss lock. */
void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame);

/* Remove page.  Returns 0, or -1 if it was not present.  Miss lock. */
int bp__pt_remove(struct bp__pagetable *pt, uint64_t page);

#endif /* BPOOL_PAGETABLE_H */
