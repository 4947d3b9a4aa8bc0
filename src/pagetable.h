/*
 * pagetable.h - page number -> frame map with lock-free lookups.
 *
 * Open addressing with linear probing over two parallel arrays (page
 * numbers and frame numbers).  Readers take no lock: they may miss an
 * entry that is being moved by a concurrent rebuild (a false negative),
 * never find one that is not there, because the caller confirms every
 * candidate against the frame's own page tag after pinning it.  The miss
 * path, which must be exact, looks up again under the miss lock.
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

struct bp__pagetable {
    uint64_t mask;               /* capacity - 1; capacity a power of two */
    _Atomic uint64_t *pages;     /* page number, or EMPTY / TOMB */
    _Atomic uint32_t *frames;    /* frame of the page in the same slot */
    uint64_t live;               /* entries (miss lock) */
    uint64_t tombs;              /* tombstones (miss lock) */
    uint64_t *scratch_pages;     /* room for a rebuild, preallocated */
    uint32_t *scratch_frames;
};

/* Size for `max_entries` live entries.  Returns 0 or -ENOMEM. */
int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries);
void bp__pt_destroy(struct bp__pagetable *pt);

/* Frame that held `page` at some moment during the call, or
 * BP__PT_NOTFOUND.  Lock-free; may return a stale frame (verify the
 * frame's page tag) or a false BP__PT_NOTFOUND (look again under the
 * miss lock before trusting it). */
uint32_t bp__pt_lookup(const struct bp__pagetable *pt, uint64_t page);

/* Map page -> frame.  page must not be present.  Caller holds miss lock. */
void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame);

/* Remove page.  Returns 0, or -1 if it was not present.  Miss lock. */
int bp__pt_remove(struct bp__pagetable *pt, uint64_t page);

#endif /* BPOOL_PAGETABLE_H */
