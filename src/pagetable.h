/* SPDX-License-Identifier: MIT */
/*
 * pagetable.h - page number -> frame map with lock-free lookups.
 *
 * Open addressing with linear probing over one array of 8-byte slots.  A
 * slot holds a frame number and a 32-bit fingerprint of the page, in one
 * atomic word; the page number itself is not stored twice: it is the
 * frame's own tag (the frame descriptor's `page`), which the table reads
 * through `tags` when a fingerprint matches.  Readers take no lock, and a
 * lookup returns a frame only after it has read that frame's tag equal to
 * the page, so it returns a frame that held the page at some moment of
 * the call, never the frame of a later occupant of the same slot.  By the
 * time the caller pins it, it may hold another page, so the caller
 * confirms the tag again after pinning.  A reader may miss an entry that
 * a writer is changing or a removal is moving back (a false negative): the
 * miss path, and every other caller to whom "not found" means something,
 * looks up again under the miss lock.
 *
 * Writers (insert, remove) must hold the pool's miss lock: "caller must
 * hold the miss lock" is the rule for every function below except
 * bp__pt_lookup.  They keep one invariant with the tag writers: a slot
 * names frame f for page p only while f's tag is p (the tag is stored
 * before the insert and changed only after the remove).
 */
#ifndef BPOOL_PAGETABLE_H
#define BPOOL_PAGETABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BP__PT_NOTFOUND UINT32_MAX
/* A slot's frame field: a frame number, or this. */
#define BP__PT_EMPTY_FRAME UINT32_MAX        /* the slot is empty */
#define BP__PT_EMPTY UINT64_MAX              /* an empty slot's word */

struct bp__pagetable {
    uint64_t mask;               /* capacity - 1; capacity a power of two */
    _Atomic uint64_t *slots;     /* fingerprint << 32 | frame */
    /* Frame f's tag: the _Atomic uint64_t at tags + f * tag_stride. */
    const char *tags;
    size_t tag_stride;
    uint64_t live;               /* entries (miss lock) */
};

/* Size for `max_entries` live entries, whose frames are below max_entries
 * and have their tags at `tags` (frame 0's) every `tag_stride` bytes.
 * Returns 0 or -ENOMEM. */
int bp__pt_init(struct bp__pagetable *pt, uint64_t max_entries,
                const _Atomic uint64_t *tags, size_t tag_stride);
void bp__pt_destroy(struct bp__pagetable *pt);

/* Fibonacci hashing: the upper half of the page number's product with
 * 2^64 / phi, in which every bit of the page number counts - consecutive
 * pages spread over the table, and so do page k of different files (the
 * file's number is in the high bits).  It is the slot's fingerprint, and
 * its low bits (hash & mask) are the page's home slot, so a slot's word
 * tells where its entry's probe run starts without the page: a removal
 * moves entries back without reading their tags.  Pages of one home slot
 * share the fingerprint's low bits and differ in the rest (16 bits at
 * 65,536 slots); two of them alike cost a lookup one tag read more. */
static inline uint32_t bp__pt_hash(uint64_t page)
{
    return (uint32_t)((page * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

static inline uint64_t bp__pt_tag(const struct bp__pagetable *pt, uint32_t frame)
{
    const _Atomic uint64_t *t =
        (const _Atomic uint64_t *)(const void *)(pt->tags + (size_t)frame * pt->tag_stride);
    return atomic_load_explicit(t, memory_order_acquire);
}

/* Does slot word w, not empty, name `page` (fingerprint fp)?  A slot of
 * the same fingerprint whose frame's tag is the page. */
static inline bool bp__pt_names(const struct bp__pagetable *pt, uint64_t w,
                                uint32_t fp, uint64_t page)
{
    return (uint32_t)(w >> 32) == fp && bp__pt_tag(pt, (uint32_t)w) == page;
}

/* Frame that held `page` at some moment during the call, or
 * BP__PT_NOTFOUND.  Lock-free (inline: it is most of a hit); may return a
 * false BP__PT_NOTFOUND while a writer changes the page's slot or a
 * removal moves the page's entry back (look again under the miss lock
 * before trusting it). */
static inline uint32_t bp__pt_lookup(const struct bp__pagetable *pt, uint64_t page)
{
    uint32_t fp = bp__pt_hash(page);
    uint64_t i = fp & pt->mask;
    for (uint64_t n = 0; n <= pt->mask; n++, i = (i + 1) & pt->mask) {
        uint64_t w = atomic_load_explicit(&pt->slots[i], memory_order_acquire);
        if ((uint32_t)w == BP__PT_EMPTY_FRAME)
            break;
        if (bp__pt_names(pt, w, fp, page))
            return (uint32_t)w;
    }
    return BP__PT_NOTFOUND;
}

/* The hit paths' lookup: the first frame whose slot has `page`'s
 * fingerprint, or BP__PT_NOTFOUND - without reading the frame's tag, which
 * the caller reads anyway, in the frame's descriptor, to confirm the page
 * under its own ordering (a pin's CAS, an optimistic read's version).  The
 * answer is a frame to confirm, not the page's: a page of the same
 * fingerprint earlier in the run, or a removal under way, gives a frame
 * that holds another page, and the caller takes its general path, which
 * uses bp__pt_lookup. */
static inline uint32_t bp__pt_candidate(const struct bp__pagetable *pt, uint64_t page)
{
    uint32_t fp = bp__pt_hash(page);
    uint64_t mask = pt->mask;
    const _Atomic uint64_t *slots = pt->slots;
    uint64_t i = fp & mask;
    for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
        uint64_t w = atomic_load_explicit(&slots[i], memory_order_acquire);
        if ((uint32_t)w == BP__PT_EMPTY_FRAME)
            break;
        if ((uint32_t)(w >> 32) == fp)
            return (uint32_t)w;
    }
    return BP__PT_NOTFOUND;
}

/* Map page -> frame.  page must not be present, and frame's tag must be
 * page already.  Caller holds miss lock. */
void bp__pt_insert(struct bp__pagetable *pt, uint64_t page, uint32_t frame);

/* Remove page, while its frame's tag is still page.  Returns 0, or -1 if
 * it was not present (the pool asserts it was).  Miss lock. */
int bp__pt_remove(struct bp__pagetable *pt, uint64_t page);

#endif /* BPOOL_PAGETABLE_H */
