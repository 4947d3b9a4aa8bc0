/* SPDX-License-Identifier: MIT */
/*
 * policy_sim.h - replay page-reference traces through replacement policies
 * (part of libbpool_sim, a convenience library for tools/bpool-sim and the
 * tests; not installed).
 *
 * clockpro is src/clockpro.c itself, driven through clockpro.h exactly as
 * the pool drives it: the simulator plays the pool's part - a page table,
 * one reference bit per frame set by a hit without calling the policy, a
 * try_evict that claims any unpinned frame - so a replay measures the code
 * the pool runs.  lru and clock are small baselines.
 *
 * Rules of a replay (those of the authors' simulator, and of
 * tests/data/expected.tsv and authors.tsv): a cold start, every reference
 * counted, and a reference to the page referenced just before is a hit
 * that changes no state - no policy call, no reference bit set, for every
 * policy (a pool re-pinning the page would set its reference bit again,
 * so tests/check_replay.c does not pin it); non-resident cap = frames.
 */
#ifndef BPOOL_POLICY_SIM_H
#define BPOOL_POLICY_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clockpro.h"
#include "trace.h"

/* ---- Whole replays ---------------------------------------------------- */

enum psim_policy { PSIM_CLOCKPRO = 0, PSIM_LRU = 1, PSIM_CLOCK = 2 };

struct psim_policy_info {
    const char *name;  /* "clockpro", "lru", "clock" */
    const char *help;  /* one line for a usage message */
};
/* Indexed by enum psim_policy. */
extern const struct psim_policy_info psim_policies[];
#define PSIM_NPOLICIES 3

/* The policy called name, or -1. */
int psim_policy_by_name(const char *name);

/* psim_run flags */
#define PSIM_CHECK 0x1u /* clockpro: after every admit run bp__cp_check and
                           check the simulator's page table against the
                           policy (O(frames) a step: for tests) */

struct psim_result {
    uint64_t refs;       /* references in the trace */
    uint64_t hits;       /* refs - misses, repeats included */
    uint64_t misses;     /* references that needed a frame (a pool: a read) */
    uint64_t repeats;    /* references to the page referenced just before */
    uint64_t evictions;  /* misses whose frame held another page */
    struct bp__cp_counts end; /* clockpro: the policy's counts at the end */
    char msg[256];       /* when psim_run fails: why */
};

/*
 * Replay trace t through policy pol with `frames` frames (>= 4) from a cold
 * start, and fill *res.  Returns 0; -EINVAL (unknown policy, too few or too
 * many frames); -ENOMEM; -EPROTO (the policy misbehaved, e.g. found no
 * frame, or a PSIM_CHECK check failed: res->msg says what).
 */
int psim_run(enum psim_policy pol, const struct trace *t, uint32_t frames,
             unsigned flags, struct psim_result *res);

/* psim_run with clockpro following cfg (NULL: the pool's default; see
 * bp__cp_create_with); the other policies ignore it. */
int psim_run_with(enum psim_policy pol, const struct trace *t, uint32_t frames,
                  unsigned flags, const struct bp__cp_config *cfg,
                  struct psim_result *res);

/* CLOCK-Pro split `parts` ways by a hash of the page number: `parts`
 * independent instances, each with frames / parts frames (the first
 * frames % parts one more) and as many non-resident entries - what one
 * miss lock per part would make of the pool's single clock.  parts 1 is
 * psim_run_with's clockpro.  Returns as psim_run_with; -EINVAL also when a
 * part would get fewer than BP_MIN_FRAMES frames. */
int psim_run_partitioned(const struct trace *t, uint32_t frames, uint32_t parts,
                         const struct bp__cp_config *cfg, struct psim_result *res);

/* The number of distinct pages t references, into *count.  Returns 0, or
 * -ENOMEM.  Its memory follows the distinct pages, not the references. */
int psim_distinct_pages(const struct trace *t, uint64_t *count);

/* ---- Step by step: CLOCK-Pro and a simulated pool ---------------------- */

/* page -> frame: open addressing with linear probing, and backward-shift
 * deletion, so no tombstones (single-threaded: entries may move). */
struct psim_map {
    uint64_t *key;  /* page, or UINT64_MAX: empty */
    uint32_t *val;  /* frame */
    uint64_t mask;  /* slots - 1 (a power of two, at least 2 per entry) */
    unsigned shift; /* 64 - log2(slots) */
};

/*
 * What a pool keeps for the policy, in its simplest form; the fields are
 * for callers to read, and ref[] and pin[] also to set (a test may pin
 * frames, or set reference bits by hand).
 */
struct psim_cp {
    struct bp__clockpro *cp;
    uint32_t frames;       /* frames the arrays hold (cfg->frames_max
                              when larger than the policy's start) */
    uint8_t *ref;          /* reference bit per frame: set by a hit */
    uint8_t *pin;          /* per frame: nonzero = pinned, try_evict skips it */
    uint64_t *page;        /* frame -> page, BP__CP_NOPAGE while free */
    uint64_t evict_calls;  /* try_evict calls so far (a caller may reset it) */
    uint32_t last_frame;   /* the last admit's frame */
    uint64_t last_evicted; /* the page it evicted, or BP__CP_NOPAGE */
    struct psim_map map;   /* the page table: page -> frame */
    char msg[256];         /* after -EPROTO: what was wrong */
};

/* The frame callbacks the policy of a psim_cp is created with; ctx is the
 * struct psim_cp. */
extern const struct bp__cp_frame_ops psim_cp_ops;

/* Create a policy for `frames` frames with nonres_cap non-resident
 * entries at most, and an empty page table.  Returns 0, or
 * bp__cp_create's error (-EINVAL, -ENOMEM) leaving nothing allocated. */
int psim_cp_init(struct psim_cp *s, uint32_t frames, uint32_t nonres_cap);
/* The same with the policy following cfg (NULL: the default). */
int psim_cp_init_with(struct psim_cp *s, uint32_t frames, uint32_t nonres_cap,
                      const struct bp__cp_config *cfg);
void psim_cp_fini(struct psim_cp *s);

/* The frame holding page, or BP__CP_NOFRAME. */
uint32_t psim_cp_frame_of(const struct psim_cp *s, uint64_t page);

/*
 * One reference to page, as a pool pins it: a resident page is a hit (its
 * reference bit is set, the policy is not called); any other is a miss,
 * and bp__cp_admit(admit_flags) finds it a frame (last_frame, last_evicted
 * tell which).  Returns 1 for a hit, 0 for a miss, or the admit's error
 * (-BP_ENOFRAME: nothing admitted, nothing changed in the page table).
 * check: also run bp__cp_check after the admit and check the admit's
 * result against the page table (frame in range, evicted page was in that
 * frame and not pinned, a frame reported free held nothing, the policy
 * says the frame holds page now, an error is -BP_ENOFRAME); a failure
 * returns -EPROTO with msg set.
 */
int psim_cp_ref(struct psim_cp *s, uint64_t page, uint32_t admit_flags,
                bool check);

/* What the pool does when a read fails: bp__cp_forget(frame), and the page
 * in it leaves the page table.  Returns that page, or BP__CP_NOPAGE if the
 * frame was free (or out of range). */
uint64_t psim_cp_forget(struct psim_cp *s, uint32_t frame);

#endif /* BPOOL_POLICY_SIM_H */
