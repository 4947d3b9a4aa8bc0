/* SPDX-License-Identifier: MIT */
/*
 * frame_state.h - the per-frame state word: layout and the few
 * transitions that must be atomic.
 *
 * Everything the hit path and the replacement policy need to agree on
 * about a frame lives in one 64-bit atomic word, so a pin is a single
 * compare-and-swap and needs no lock:
 *
 *    63      27   26     25      24  23      22      21     20    19        0
 *   +----------+-------+-------+---+-------+-------+-----+-----+-----------+
 *   | (unused) |PREFTCH|CLAIMED|REF|WRITING|READING|DIRTY|VALID| pin count |
 *   +----------+-------+-------+---+-------+-------+-----+-----+-----------+
 *
 *   pin count  threads holding the frame; a pinned frame is never evicted.
 *   VALID      the frame holds the current bytes of its page; only a
 *              VALID frame can be pinned by a hit.
 *   DIRTY      the bytes differ from the file's.
 *   READING    the page is being read into the frame; the reader holds
 *              the only pin; others wait on the frame's condition variable.
 *   WRITING    the page is being written back (writer holds a pin and the
 *              shared latch, so the bytes cannot change meanwhile).
 *   REF        CLOCK-Pro's reference bit: set by hits, read and cleared by
 *              the policy's hands.
 *   CLAIMED    chosen for eviction: VALID is gone, so no pin can succeed,
 *              while the miss path (holding the miss lock) retags it.
 *   PREFETCHED read by bp_prefetch or read-ahead and not pinned since: the
 *              first pin clears it in its CAS (a read-ahead hit) instead
 *              of setting REF, as a demand miss leaves REF clear; an
 *              eviction that finds it set counts a wasted read.
 *
 * Rule: change the word only with atomic read-modify-write operations
 * (CAS, fetch_or, fetch_and), never with a plain store after a load,
 * because hits and the policy's hands update it concurrently.  The
 * exception is a frame nobody else can pin: the miss path, holding the
 * miss lock, initialising a frame it has just claimed or taken free, or
 * freeing the frame of a failed read (see doc/locking.md, rule 5).
 */
#ifndef BPOOL_FRAME_STATE_H
#define BPOOL_FRAME_STATE_H

#include <stdint.h>

#define BP__PIN_BITS 20
#define BP__PIN_MASK ((UINT64_C(1) << BP__PIN_BITS) - 1)
#define BP__PIN_MAX BP__PIN_MASK

#define BP__F_VALID   (UINT64_C(1) << 20)
#define BP__F_DIRTY   (UINT64_C(1) << 21)
#define BP__F_READING (UINT64_C(1) << 22)
#define BP__F_WRITING (UINT64_C(1) << 23)
#define BP__F_REF     (UINT64_C(1) << 24)
#define BP__F_CLAIMED (UINT64_C(1) << 25)
#define BP__F_PREFETCHED (UINT64_C(1) << 26)

_Static_assert(BP__PIN_MASK < BP__F_VALID, "pin count overlaps the flags");
_Static_assert(BP__F_PREFETCHED < (UINT64_C(1) << 63), "flags overflow the word");

#define BP__F_IO (BP__F_READING | BP__F_WRITING)

static inline uint32_t bp__pins(uint64_t s) { return (uint32_t)(s & BP__PIN_MASK); }

#endif /* BPOOL_FRAME_STATE_H */
