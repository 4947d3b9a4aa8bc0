/* SPDX-License-Identifier: MIT */
/* bench.h - the parts of bpool-bench (tools/bench/) and how they connect.
 *
 *   main.c       command line, defaults, dispatch to a workload
 *   datafile.c   creating and filling the data file; page-cache residency
 *                (mincore) and eviction (fadvise); process RSS; opening a
 *                pool with the benchmark's options
 *   gen.c        the page distributions (uniform, zipf) of the workloads
 *   runner.c     threads, the warm-up / measure / stop phases, progress
 *   report.c     one result line: key=value text or one JSON object
 *   wl_hit.c     hit: bpool pins of resident pages (BP_READ, and BP_PIN
 *                without a latch) against buffered pread, mmap and a bare
 *                hash-lookup + atomic floor
 *   wl_io.c      randread, seqscan, randwrite, mixed: pins that miss
 *                (randread and seqscan also through read streams);
 *                seqwrite: write-back of pages dirtied in order, with and
 *                without coalescing; checkpoint: readers of resident pages
 *                with and without bp_checkpoint running
 *   wl_trace.c   trace: replay a page-reference trace through real pins
 *   wl_warmup.c  warmup: how soon a restarted pool has its hit ratio back,
 *                warm (bp_warm from a dump) against cold
 *   wl_resize.c  resize: how long bp_resize takes up and down by half
 *                while threads pin, and their pin latency meanwhile
 *   (datafile.c also has the prepare workload: make the file, report it)
 *
 * Random numbers, zipf, latency histograms and the parsing of option
 * values are shared with the other tools: tools/common (rng.h, zipf.h,
 * hist.h, parse.h); traces are read as bpool-sim reads them (tools/trace.h).
 *
 * bpool-bench uses the public API (bpool.h) only: it links libbpool.la.
 * Features that only some versions of the library have are used when
 * bpool.h defines their macro: background flushers (BP_NOFLUSH; coalesced
 * writes, bp_options.coalesce_bytes and bp_checkpoint came with them),
 * automatic read-ahead (BP_NOREADAHEAD), bp_prefetch (BP_SCAN, which came
 * with it), pins without a latch (BP_PIN) and write pins that skip the read
 * of a miss (BP_OVERWRITE).
 */

#ifndef BPOOL_BENCH_H
#define BPOOL_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpool.h"
#include "../common/hist.h"
#include "../common/poolopt.h"
#include "../common/printable.h"
#include "../common/rng.h"
#include "../common/zipf.h"

#define PROG "bpool-bench"
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130      /* 128 + SIGINT, as a shell reports it */

#define DEFAULT_FILE "bpool-bench.data"
#define DEFAULT_FILE_SIZE (1ull << 30)      /* 1 GiB */
#define DEFAULT_POOL (64ull << 20)          /* 64 MiB */
#define MAX_THREAD_COUNTS 16
#define MAX_PREFETCH 1024      /* --prefetch: pages a thread draws at once */

enum dist { DIST_UNIFORM, DIST_ZIPF };

/* Variants of the hit workload (bit mask). */
#define HIT_BPOOL 0x1u
#define HIT_PREAD 0x2u
#define HIT_MMAP  0x4u
#define HIT_FLOOR 0x8u
#define HIT_PIN   0x10u         /* bp_pin(BP_PIN): no latch */
#define HIT_OPT   0x20u         /* bp_read_optimistic + bp_validate */
#define HIT_WRITE 0x40u         /* bp_pin(BP_WRITE): the exclusive latch */
#define HIT_ALL   0x7fu

/* Everything the command line can set.  0 / -1 mean "workload default". */
struct bench_opts {
    const char *workload;
    const char *path;          /* data file */
    uint64_t file_size;        /* bytes of pages (the file also has a
                                  header page); 0: existing or default */
    uint64_t data_start;       /* byte of page 0: the header page, and the
                                  doublewrite area if the file has one
                                  (set by df_prepare) */
    struct poolopt pool;       /* -p, --frames, --flushers...; pool_bytes
                                  0: the workload's default */
    uint32_t page_size;        /* -P, or the default */
    uint32_t threads[MAX_THREAD_COUNTS];
    unsigned nthreads;         /* 0: workload default (hit: thread_counts) */
    double duration;           /* seconds measured; < 0: default */
    double warmup;             /* seconds; < 0: default */
    bool dist_set;
    enum dist dist;
    double theta;              /* zipf skew */
    bool theta_set;            /* -D zipf:THETA, the last -D */
    int write_pct;             /* mixed: % of pins that write; -1 default */
    uint64_t pages;            /* pages the workload touches; 0: default */
    unsigned prefetch;         /* randread, mixed: pages a thread draws and
                                  hands to bp_prefetch before pinning them;
                                  0: plain pins */
    bool stream;               /* randread, seqscan: pages through a read
                                  stream (bp_stream_*) instead of bp_pin */
    unsigned stream_depth;     /* its max_depth; 0: the workload's default */
    unsigned variants;         /* hit: HIT_* mask */
    const char *variant_arg;   /* --variant as given, or NULL */
    bool dependent;            /* hit: each page number depends on the
                                  word loaded from the page before */
    bool overwrite;            /* randwrite, mixed: write pins with
                                  BP_OVERWRITE */
    int64_t dirty_rate;        /* checkpoint: pages/s the writer dirties;
                                  -1: default, 0: as fast as it can */
    uint64_t rate;             /* randread, randwrite, mixed: pins a second
                                  by all threads together, each thread
                                  paced to its share; 0: as fast as they
                                  can */
    uint64_t checkpoint_every; /* checkpoint: pages dirtied between two
                                  checkpoints; 0: back to back */
    uint64_t seed;
    bool json;
    bool timeline;             /* randread, randwrite, mixed, checkpoint:
                                  per-second latency lines */
    bool verify;               /* check page contents (see datafile.c) */
    bool progress;             /* stderr is a terminal and not --quiet */
    const char *trace;         /* trace FILE */
    unsigned rounds;           /* warmup: cold/warm pairs; 0: default */
    unsigned given;            /* GIVEN_*: set on the command line, not
                                  left to the tool's default, for the
                                  settings whose every value may be given
                                  (the JSON's options are null for the
                                  others; report.c) */
};

enum {
    GIVEN_FILE = 1u << 0,
    GIVEN_FILE_SIZE = 1u << 1,
    GIVEN_SEED = 1u << 2,
    GIVEN_CHECKPOINT_EVERY = 1u << 3,
};

struct pool_mem;

/* ---- datafile.c ---- */

/* Make sure the data file exists with the right size, creating and
 * filling it (page n starts with the 64-bit value n) if it is missing,
 * with the format options of o->pool (checksums, no header, doublewrite).
 * min_bytes: the workload needs at least this much.  An existing file
 * with fewer bytes of pages, or fewer than BP_MIN_FRAMES pages (none: an
 * empty file, a header page alone), is a usage error before any pool
 * opens it.  Sets o->file_size to the file's size.  Exits with a message
 * on failure. */
void df_prepare(struct bench_opts *o, uint64_t min_bytes);
/* Pages in the data file (after its header page), and where page pgno
 * starts (for the pread and mmap baselines). */
uint64_t df_pages(const struct bench_opts *o);
off_t df_page_offset(const struct bench_opts *o, uint64_t pgno);
/* Bytes of the data file resident in the page cache (mincore), or -1. */
int64_t df_cached_bytes(const char *path);
/* Drop the data file's clean pages from the page cache. */
void df_drop_cache(const char *path);
/* Bytes of the mapping holding addr that transparent huge pages back
 * (AnonHugePages in /proc/self/smaps), or -1. */
int64_t thp_bytes_at(const void *addr);
/* Resident set size of this process in bytes (VmRSS), or 0. */
uint64_t proc_rss(void);
/* bp_open with the benchmark's options and the given frame count; exits
 * with bp_errdetail() on failure, removing the data file first if this
 * run made it and no pool has opened it yet. */
bp_pool *bench_open_pool(const struct bench_opts *o, uint32_t frames);
/* Close; exits on failure.  If mem is not NULL, fills it: RSS just before
 * and after closing, and the data file's page-cache residency after. */
void bench_close_pool(bp_pool *pool, const char *path, struct pool_mem *mem);
/* Frames for a pool: --frames, else --pool (else dflt_bytes) divided by
 * the page size, at least BP_MIN_FRAMES, at most 2^31 - 1 (poolopt_frames:
 * a usage error above). */
uint32_t bench_frames(const struct bench_opts *o, uint64_t dflt_bytes);
/* A pool of `frames` too small for `threads` threads that need `per`
 * frames each: a usage error (exit 2) naming the --frames to give, after
 * removing a data file this run made.  Returns when the pool is large
 * enough. */
void bench_frames_enough(const struct bench_opts *o, const char *workload,
                         uint32_t frames, unsigned threads, unsigned per,
                         const char *why);
/* Stamp / check the first 16 bytes of a page: page number and a
 * version the writers bump. */
void page_stamp(void *data, uint64_t pgno);
bool page_check(const void *data, uint64_t pgno);
/* A whole page rewritten, as after a BP_OVERWRITE pin: the fill pattern
 * of a new data file after the first 16 bytes, then page_stamp (the
 * version goes on from what the frame held: 0 for a zeroed miss). */
void page_rewrite(void *data, uint64_t pgno, uint32_t page_size);
/* page_check, or the zeros of a BP_OVERWRITE miss (stamp and version 0). */
bool page_check_or_zero(const void *data, uint64_t pgno);

/* ---- gen.c ---- */

/* Draw the next page of a distribution over `pages` pages. */
struct picker {
    enum dist dist;
    uint64_t pages;
    uint64_t mult;             /* scatters zipf's ranks over the pages */
    struct zipf z;
};
void picker_init(struct picker *p, enum dist d, uint64_t pages, double theta);
static inline uint64_t picker_next(const struct picker *p, struct rng *r)
{
    if (p->dist == DIST_UNIFORM)
        return rng_below(r, p->pages);
    return scatter(zipf_next(&p->z, r), p->pages, p->mult);
}
const char *dist_name(enum dist d);

/* ---- runner.c ---- */

enum phase { PH_WARM, PH_MEASURE, PH_STOP };

struct worker;
typedef void (*worker_fn)(struct worker *w);

/* One thread of a run.  The thread owns every field but `progress` (read
 * by the main thread for the progress line) until it is joined. */
struct worker {
    struct run *run;
    unsigned id;
    struct rng rng;
    uint64_t ops;              /* operations in the measure phase */
    uint64_t wops;             /* of which writes */
    uint64_t sink;             /* values read, so loads are not elided */
    struct hist *rhist;        /* read-op latency, or NULL */
    struct hist *whist;        /* write-op latency, or NULL */
    /* --timeline: this thread's pins of the current second (tl_sec), read
     * and write, until the first pin that ends at tl_next_ns or later
     * hands them in to the run's timeline (timeline_turn).  NULL without
     * --timeline. */
    struct hist *tl_r, *tl_w;
    unsigned tl_sec;
    uint64_t tl_next_ns;
    _Atomic uint64_t progress; /* operations so far, any phase */
    int err;                   /* first error (negative), 0 if none */
    char errmsg[512];
} __attribute__((aligned(64)));

/* --timeline: the measured phase second by second.  Slot i holds the
 * pins that ended in second i (from i to i + 1 s after measuring began);
 * the last slot also holds those that ended after the duration, while the
 * threads were being stopped. */
struct timeline {
    unsigned seconds;          /* slots: the duration rounded up */
    struct hist *r, *w;        /* read and write pins, [seconds] each */
};

struct run {
    const char *label;         /* for the progress line */
    unsigned nthreads;
    worker_fn fn;
    void *arg;
    double warmup, duration;   /* seconds; duration <= 0: until workers end */
    bool progress;
    bool latency;              /* allocate histograms */
    bool timeline;             /* and per-second ones (needs duration > 0) */
    void (*at_measure)(void *arg);  /* called just before measuring, or NULL */
    void (*at_stop)(void *arg);     /* called right after, or NULL */
    /* Called about every 2 ms while measuring, or NULL; returning true
     * ends the measure phase early (warmup: the hit ratio is back). */
    bool (*poll)(void *arg);
    /* Filled by run_threads: */
    _Atomic int phase;
    _Atomic unsigned running;
    struct worker *w;
    double elapsed;            /* seconds measured */
    double cpu;                /* process CPU seconds in that time */
    uint64_t ops, wops, sink;
    struct hist rhist, whist;  /* merged */
    _Atomic uint64_t t0;       /* now_ns() when measuring began */
    struct timeline tl;        /* with .timeline; free with timeline_free */
};

/* The seed (-s) of the threads of every run from now on: thread i of a
 * run draws from the same sequence in every run with this seed. */
void run_seed(uint64_t seed);
/* Start nthreads threads running fn, warm up, measure, stop, join, and
 * sum their results into r.  Returns 0, or the first worker's error after
 * printing it. */
int run_threads(struct run *r);
static inline int run_phase(struct worker *w)
{
    return atomic_load_explicit(&w->run->phase, memory_order_relaxed);
}
/* The worker's pins of its current second into the run's timeline, and
 * the second that `end_ns` falls in made current (runner.c). */
void timeline_turn(struct worker *w, uint64_t end_ns);
void timeline_free(struct timeline *tl);
/* Count a measured pin that took from t0 to t1 (ns): in the thread's
 * histogram of its kind and, with --timeline, in the second it ended in.
 * The hot path: two hist_adds and a compare; once a second the thread
 * hands its second in (atomic adds, no lock). */
static inline void worker_pin(struct worker *w, bool write, uint64_t t0, uint64_t t1)
{
    hist_add(write ? w->whist : w->rhist, t1 - t0);
    if (w->tl_r) {
        if (t1 >= w->tl_next_ns)
            timeline_turn(w, t1);
        hist_add(write ? w->tl_w : w->tl_r, t1 - t0);
    }
}
/* Record a failed bpool call in w and stop the run. */
void worker_fail(struct worker *w, int err, const char *what, uint64_t pgno);
/* The same for a resize (what: "bp_resize") to a count of frames. */
void worker_fail_resize(struct worker *w, int err, const char *what,
                        uint32_t frames);
/* Record that page pgno holds the stamp of another page, and stop. */
void worker_fail_data(struct worker *w, uint64_t pgno, uint64_t stamp);
/* Whether Ctrl-C stopped a run: its result is partial, and the process
 * exits with EXIT_INTERRUPTED once it is printed. */
bool interrupted(void);
/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);
/* Whether progress lines are wanted (stderr is a terminal). */
void progress_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void progress_done(void);

/* ---- report.c ---- */

/* Before the workload runs: the options of the command line, kept as
 * they are for the JSON's "options" (df_prepare then sets o->file_size to
 * the file's, and a file's header decides its checksums). */
void report_init(const struct bench_opts *o);
void report_begin(const char *workload);
void report_str(const char *key, const char *val);
void report_u64(const char *key, uint64_t val);
void report_dbl(const char *key, double val, int decimals);
void report_end(void);
/* The usual latency fields (microseconds) of a histogram, with prefix:
 * p50, p99, p99.9 and max, with one decimal, or `decimals`; null ("-")
 * for an empty histogram. */
void report_latency(const char *prefix, const struct hist *h);
void report_latency_prec(const char *prefix, const struct hist *h, int decimals);
/* Pool fields shared by the I/O workloads: frames, stats, the pool's
 * RSS and the data file's page-cache residency. */
struct pool_mem {
    uint64_t rss_open;     /* process RSS with the pool open, after the run */
    uint64_t rss_closed;   /* right after bp_close */
    int64_t cached;        /* data file bytes in the page cache after it */
};
/* With --timeline: one line per second of r's measured phase (r->tl), in
 * order; `phase` (checkpoint's) may be NULL.  Latencies with `decimals`
 * decimals; a second without pins of a kind has null ("-") ones. */
void report_timeline(const char *workload, const char *phase,
                     const struct run *r, int decimals);
void report_pool(const struct bp_info *info, const struct bp_stats *st,
                 const struct pool_mem *mem);
/* The miss path's phases per miss (phase_*_us) and how often a miss wrote
 * victims, napped for a frame or waited for another thread's read. */
void report_phases(const struct bp_stats *st);

/* ---- workloads ---- */

int wl_prepare(struct bench_opts *o);
int wl_hit(struct bench_opts *o);
int wl_randread(struct bench_opts *o);
int wl_seqscan(struct bench_opts *o);
int wl_randwrite(struct bench_opts *o);
int wl_mixed(struct bench_opts *o);
int wl_seqwrite(struct bench_opts *o);
int wl_checkpoint(struct bench_opts *o);
int wl_trace(struct bench_opts *o);
int wl_warmup(struct bench_opts *o);
int wl_resize(struct bench_opts *o);

#endif /* BPOOL_BENCH_H */
