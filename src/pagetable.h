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
    uint32_t *scratch_frames;
};

/* Size for `max_entries` live entries.  Returns 0 or -ENOMEM. */
int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries);
void bp__pt_destroy(struct bp__pagetable *pt);

/* Frame that held `page` at some moment during the call, or
 * BP__PT_NOTFOUND.  Lock-free; may return a false BP__PT_NOTFOUND while
 * a writer changes the page's slot or a rebuild runs (look again under
 * the miss lock before trusting it). */
uint32_t bp__pt_lookup(const struct bp__pagetable *pt, uint64_t page);

/* Map page -> frame.  page must not be present.  Caller holds miss lock. */
void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame);

/* Remove page.  Returns 0, or -1 if it was not present.  Miss lock. */
int bp__pt_remove(struct bp__pagetable *pt, uint64_t page);

#endif /* BPOOL_PAGETABLE_H */
