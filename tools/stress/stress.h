/* SPDX-License-Identifier: MIT */
/* stress.h - the parts of bpool-stress (tools/stress/) and how they connect.
 *
 * bpool-stress runs threads of random operations on a pool and checks,
 * on every read and again after reopening the file, that no page was
 * lost, torn or mixed up.  One job per file:
 *
 *   main.c    command line, defaults; the normal run: make or reuse the
 *             data file, fill it, run the workload, close, verify
 *   page.c    the page format: a header (magic, page number, version,
 *             checksum) and a payload that is a function of the page
 *             number and the version; stamping and checking a page
 *   gen.c     the access distributions
 *   worker.c  the worker threads and their operations; the watchdog
 *   check.c   reopen the data file with a fresh pool and check every page
 *   crash.c   --crash: a child runs the workload and is killed with
 *             SIGKILL; the side log of durable versions; checks after
 *             each kill
 *   report.c  the progress line, the final report, --json
 *
 * What is checked (the oracle): run->ver[p] is the version last written
 * to page p.  A writer changes it only while it holds p for write (the
 * exclusive latch), after bp_mark_dirty and the new bytes, so a thread
 * holding p's latch, shared or exclusive, sees a value that must equal
 * the version in the page's header.  Version 0 is a page of zeros (a new
 * page never written).
 *
 * Random numbers, zipf, latency histograms and the parsing of option
 * values are shared with the other tools: tools/common (rng.h, zipf.h,
 * hist.h, parse.h).
 *
 * bpool-stress uses the public API (bpool.h) only: it links libbpool.la.
 */
#ifndef BPOOL_STRESS_H
#define BPOOL_STRESS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpool.h"
#include "../common/poolopt.h"
#include "../common/printable.h"
#include "../common/hist.h"
#include "../common/rng.h"
#include "../common/zipf.h"

#define PROG "bpool-stress"
#define DEFAULT_FILE "bpool-stress.data"
#define DLOG_SUFFIX ".dlog"
#define CUT_SUFFIX ".cut"    /* --power-cut: the image a cut left */

/* Exit statuses. */
#define EXIT_OK 0
#define EXIT_FAIL 1      /* a check failed or the library returned an error */
#define EXIT_USAGE 2     /* bad command line */
#define EXIT_SETUP 3     /* could not run: file, O_DIRECT, memory */
#define EXIT_CUT 42      /* --power-cut child: the image is written */
#define EXIT_SIGNAL(sig) (128 + (sig))   /* stopped by SIGINT or SIGTERM,
                                            as a shell reports a death by it */

#define MAX_THREADS 256
#define MAX_FILES 64      /* --files */

/* ---- operations ---- */

enum op {
    OP_READ,        /* pin BP_READ, verify, unpin */
    OP_WRITE,       /* pin BP_WRITE, verify, mark dirty, new version, unpin */
    OP_ALLOC,       /* bp_alloc_page, check zeros, write version 1 */
    OP_PREFETCH,    /* bp_prefetch a range, then read-verify it */
    OP_FLUSH,       /* bp_flush_page */
    OP_FLUSHALL,    /* bp_flush_all */
    OP_CHECKPOINT,  /* bp_checkpoint (+ side log in crash mode) */
    OP_SYNC,        /* bp_sync (+ side log in crash mode) */
    OP_HOLD,        /* eviction pressure: pin several pages at once */
    OP_STREAM,      /* a read stream over a set or range, each page verified */
    OP_RESIZE,      /* bp_resize to a random size in [frames_min, frames_max] */
    OP_COUNT
};
extern const char *const op_names[OP_COUNT];

/* Latency classes. */
enum lat {
    LAT_PIN,        /* every successful bp_pin: split into hits and misses
                       by the pool's hit ratio (report.c) */
    LAT_WRITE,      /* a write operation, pin to unpin */
    LAT_ALLOC,      /* bp_alloc_page */
    LAT_FLUSH,      /* bp_flush_page, bp_flush_all */
    LAT_CKPT,       /* bp_checkpoint, bp_sync */
    LAT_COUNT
};

/* ---- distributions (gen.c) ---- */

enum dist { D_UNIFORM, D_ZIPF, D_HOTSET, D_SEQ, D_LOOP, D_MIX, D_COUNT };
extern const char *const dist_names[D_COUNT];

struct dist_spec {
    enum dist kind;
    double theta;        /* zipf skew, default 0.99 */
    double hot_frac;     /* hotset: share of the pages that are hot (0.1) */
    double hot_prob;     /* hotset: share of the accesses to them (0.9) */
    uint64_t loop_pages; /* loop: pages in the loop; 0: 1.5 x frames */
};

/* ---- options (main.c) ---- */

struct stress_opts {
    const char *path;          /* data file */
    char *dlog_path;           /* path + DLOG_SUFFIX */
    char *cut_path;            /* path + CUT_SUFFIX */
    unsigned threads;
    double duration;           /* seconds, when ops == 0 */
    uint64_t ops;              /* total operations; 0: run for duration */
    uint64_t pages;            /* pages of a new data file */
    uint64_t max_pages;        /* pages the file may grow to (allocations) */
    uint32_t frames;
    uint32_t frames_min, frames_max;  /* the range of OP_RESIZE */
    uint32_t page_size;
    struct dist_spec dist;
    double mix[OP_COUNT];      /* relative weights */
    unsigned hold_pages;       /* pages a hold operation pins at once */
    struct poolopt pool;       /* the pool settings in force: the command
                                  line's, with the checksums an existing
                                  file's header or --power-cut decides and
                                  the reserve a resize needs (frames and
                                  page_size above are the ones in force) */
    struct poolopt pool_given; /* the pool settings as the command line
                                  gave them (the JSON's options) */
    uint64_t seed;
    bool json, quiet, keep, reuse, verify_only, fill;
    bool progress;             /* stderr is a terminal and not --quiet */
    double hang_timeout;       /* seconds one operation may take */
    bool crash;
    bool power_cut;            /* --power-cut: crash cycles end in a
                                  simulated power cut (powercut.h) */
    unsigned power_cuts;       /* --power-cut N as given (the JSON's) */
    unsigned cycles;
    unsigned files;            /* --files: data files in the one pool */
    char **file_paths;         /* [files]: path, then path.1, path.2, ... */
    unsigned given;            /* GIVEN_*: set on the command line, not
                                  left to the tool's default (the JSON's
                                  options are null for the others) */
    uint64_t given_pages, given_max_pages;  /* as given: pages and
                                  max_pages above become the values used */
    const char *given_mix;     /* --mix as given, or NULL */
};

enum {
    GIVEN_THREADS = 1u << 0,
    GIVEN_DURATION = 1u << 1,
    GIVEN_OPS = 1u << 2,
    GIVEN_DIST = 1u << 3,
    GIVEN_SEED = 1u << 4,
    GIVEN_PAGES = 1u << 5,
    GIVEN_MAX_PAGES = 1u << 6,
    GIVEN_CYCLES = 1u << 7,
    GIVEN_FILE = 1u << 8,
    GIVEN_FILES = 1u << 9,
    GIVEN_CRASH = 1u << 10,     /* --crash itself: --power-cut sets crash */
    GIVEN_HOLD_PAGES = 1u << 11,
    GIVEN_HANG_TIMEOUT = 1u << 12,
};

/* ---- many files (main.c) ----
 * With --files N the tool's page k is page k / N of file k % N: the pages
 * are striped over the files, so every distribution, range and stream
 * reaches all of them, and the tool's own bookkeeping (versions, the
 * side log, page stamps) keeps numbering pages 0, 1, 2, ...  These turn
 * the tool's numbers into the library's page ids and back. */
static inline uint64_t stress_id(const struct stress_opts *o, uint64_t k)
{
    return o->files > 1 ? BP_PAGE_ID(k % o->files, k / o->files) : k;
}
static inline uint64_t stress_k(const struct stress_opts *o, uint64_t id)
{
    return o->files > 1 ? BP_PAGE_NO(id) * o->files + BP_PAGE_FILE(id) : id;
}
/* The tool's pages now: the sum of the files' page counts. */
uint64_t stress_page_count(const struct stress_opts *o, bp_pool *pool);
/* Pages of file i of a tool's file of `pages` pages, striped. */
static inline uint64_t stress_file_pages(const struct stress_opts *o,
                                         unsigned i, uint64_t pages)
{
    return o->files > 1 ? (pages + o->files - 1 - i) / o->files : pages;
}

/* ---- page.c ---- */

/* Every page starts with this header; the payload after it is a pure
 * function of (pgno, version).  sum covers header (sum taken as 0) and
 * payload: every byte the tool owns. */
struct page_hdr {
    uint64_t magic;
    uint64_t pgno;
    uint64_t version;
    uint32_t page_size;
    uint32_t writer;           /* (crash cycle << 16) | (thread + 1) */
    uint64_t sum;
};
#define PAGE_MAGIC 0x7373657274737062ull    /* "bpstress", little endian */

enum page_status {
    PG_OK,          /* header and payload right for (pgno, version) */
    PG_ZERO,        /* all zeros: version 0, a page never written */
    PG_MAGIC,       /* neither a stress page nor zeros */
    PG_SIZE,        /* written with another page size */
    PG_PGNO,        /* the header names another page (misdirected) */
    PG_SUM,         /* checksum mismatch: torn or corrupt */
    PG_PAYLOAD,     /* checksum fine but payload not f(pgno, version) */
};

struct page_found {
    enum page_status status;
    uint64_t version;          /* from the header (0 for PG_ZERO) */
    uint64_t pgno;             /* from the header */
    uint32_t writer;
    uint32_t offset;           /* PG_PAYLOAD, PG_MAGIC: first bad byte */
};

/* Write version `version` of page pgno into data (len bytes are the
 * tool's: the page size, less the library's checksum trailer if any). */
void page_stamp(void *data, uint32_t len, uint32_t page_size, uint64_t pgno,
                uint64_t version, uint32_t writer);
/* Check data as page pgno; fills *f.  Returns f->status. */
enum page_status page_check(const void *data, uint32_t len, uint32_t page_size,
                            uint64_t pgno, struct page_found *f);
/* "page 12: ..." sentence for a page that is not version `want` (want
 * UINT64_MAX: any consistent version) into buf. */
void page_describe(char *buf, size_t n, uint64_t pgno, const struct page_found *f);
const char *page_status_name(enum page_status s);

/* ---- gen.c ---- */

/* zipf's ranks over the pages at open, scattered over them. */
struct zipf_pages {
    struct zipf z;
    uint64_t mult;
};
void zipf_pages_init(struct zipf_pages *zp, uint64_t n, double theta);

/* One thread's position in the distribution. */
struct picker {
    enum dist cur;             /* D_MIX switches this every burst */
    uint64_t burst_left;
    uint64_t seq_next, loop_next;
};
void picker_init(struct picker *p, const struct dist_spec *d, unsigned id,
                 unsigned nthreads, uint64_t npages);
/* The next page, below npages (the file's page count now).  zipf and
 * hotset draw from the first `base` pages (the count at open); *scan is
 * set for sequential scans (BP_SCAN pins). */
uint64_t picker_next(struct picker *p, const struct dist_spec *d,
                     const struct zipf_pages *z, struct rng *r, uint64_t base,
                     uint64_t npages, uint64_t loop_pages, bool *scan);
/* Parse "uniform", "zipf[:THETA]", "hotset[:FRAC[:PROB]]", "seq",
 * "loop[:PAGES]", "mix".  Returns 0 or -1. */
int dist_parse(const char *s, struct dist_spec *d);
/* "zipf:0.99" etc. into buf. */
void dist_format(char *buf, size_t n, const struct dist_spec *d);

/* ---- main.c ---- */

/* The SIGINT or SIGTERM that asked the run to stop (its number), else 0.
 * The threads of a phase, the check of a file and the crash cycles stop
 * at it; main then closes the pool, removes or keeps the data file as
 * the manual says, and exits with EXIT_SIGNAL(it).  An atomic, not a
 * volatile sig_atomic_t: the handler may run on any thread (one of the
 * pool's too), and the threads that read it need a race-free load;
 * a lock-free atomic is also safe to store in a signal handler. */
extern _Atomic int stress_signal;
/* SIGINT and SIGTERM as the program found them (a crash cycle's child:
 * the parent, which caught the signal too, kills it). */
void signals_restore(void);

/* bp_options for the tool's options (flags left to the caller). */
void stress_bp_options(const struct stress_opts *o, struct bp_options *bo);
/* bp_open with the tool's options; on failure prints why and returns
 * NULL with *status EXIT_SETUP (no O_DIRECT, no file, ...) or EXIT_FAIL. */
bp_pool *stress_open(const struct stress_opts *o, uint32_t flags, int *status);
/* Bytes of a page the tool may use (page size less a checksum trailer). */
uint32_t stress_payload(const struct stress_opts *o);

/* ---- worker.c ---- */

/* One thread's counters.  Lives in memory shared with a crash-mode
 * parent, which reads it after the child is killed.  The counters are
 * written by their thread only (relaxed) and read by the progress line;
 * the histograms are read only after the thread is gone. */
struct tstats {
    _Atomic uint64_t ops[OP_COUNT];
    _Atomic uint64_t nofree;        /* -BP_ENOFRAME met and retried */
    _Atomic uint64_t eagain;        /* bp_prefetch -EAGAIN (hint dropped) */
    _Atomic uint64_t verified;      /* page images checked */
    _Atomic uint64_t alloc_full;    /* alloc ops turned into writes: full */
    _Atomic uint64_t errors;
    _Atomic uint64_t stream_pages;  /* pages handed out by streams */
    _Atomic uint64_t stream_early;  /* streams closed before their end */
    /* What the thread is doing, for the watchdog. */
    _Atomic int cur_op;             /* -1: between operations */
    _Atomic uint64_t cur_page;
    _Atomic uint64_t cur_start_ns;
    struct hist lat[LAT_COUNT];
} __attribute__((aligned(64)));

struct dlog;

/* Everything the threads of one phase share. */
struct run {
    const struct stress_opts *o;
    bp_pool *pool;
    uint32_t payload;               /* bytes of a page the tool uses */
    _Atomic uint64_t *ver;          /* [cap] last version written; shared */
    uint64_t cap;                   /* o->max_pages */
    uint64_t base_pages;            /* page count at open */
    _Atomic uint64_t alloc_left;    /* allocations still allowed */
    pthread_mutex_t alloc_mu;       /* --files > 1: one allocation at a
                                       time, so page k lands in file k % N
                                       as page k / N */
    struct zipf_pages zipf;         /* over base_pages */
    uint64_t loop_pages;
    double op_cum[OP_COUNT];        /* cumulative weights */
    struct tstats *ts;              /* [threads]; shared */
    struct bp_stats *bs;            /* the pool's, every second; shared */
    _Atomic int stop;
    _Atomic int failed;
    _Atomic uint64_t fail_msgs;
    struct dlog *dlog;              /* crash child: the side log, else NULL */
    unsigned cycle;
    uint64_t seed;
};

enum phase { PH_FILL, PH_WORK };

/* Run nthreads threads over run->pool for the phase: PH_FILL writes
 * version ver+1 of every page once; PH_WORK runs the op mix for the
 * duration or op count, printing progress if asked.  Returns 0, or
 * EXIT_FAIL when a check failed (reported already). */
int run_threads(struct run *run, enum phase ph);
/* Report a failure: the first few are printed; the run stops. */
void stress_fail(struct run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t now_ns(void);

/* ---- check.c ---- */

enum check_mode {
    CHECK_EXACT,    /* every page must be exactly ver[p] */
    CHECK_FLOOR,    /* floor[p] <= version <= ver[p]; then ver[p] = version */
    CHECK_LEARN,    /* any consistent version; ver[p] = version */
    CHECK_CUT,      /* as CHECK_FLOOR, and a torn page (one written after
                       its floor) is allowed if detected - by bpool's
                       checksum when the pool has them - and is put back
                       at its floor version, as a repair would */
};
struct check_result {
    uint64_t pages;        /* pages in the file */
    uint64_t checked;      /* pages read and checked */
    uint64_t bad;          /* pages that failed */
    uint64_t zero;         /* pages at version 0 */
    uint64_t at_floor;     /* CHECK_FLOOR: pages exactly at their floor */
    uint64_t above_floor;  /* CHECK_FLOOR: pages above a nonzero floor */
    uint64_t below_last;   /* CHECK_FLOOR: pages older than last written */
    uint64_t torn;         /* CHECK_CUT: torn pages detected and put back */
    double seconds;
};
/* Open the data file with a fresh pool and check every page.  floor may
 * be NULL.  expect_pages: the page count the file must have (0: any).
 * read_only: a BP_RDONLY pool, which writes nothing (so repairs no torn
 * page from a doublewrite area) and shares the file with other readers;
 * not with CHECK_CUT, which puts torn pages back.  Returns EXIT_OK,
 * EXIT_FAIL (bad pages, reported), EXIT_SETUP or, stopped by a signal,
 * EXIT_SIGNAL. */
int check_file(const struct stress_opts *o, _Atomic uint64_t *ver,
               uint64_t cap, const uint64_t *floor, enum check_mode mode,
               uint64_t expect_pages, bool read_only, struct check_result *res);

/* ---- crash.c ---- */

/* The side log: records of (page, version) pairs made durable by a
 * completed bp_checkpoint or bp_sync, each appended and fsync'd. */
struct dlog *dlog_open(const char *path, const uint64_t *floor, uint64_t cap);
/* Log the versions in snap[0..n) (read before the checkpoint started) that
 * are above what was logged already.  Returns 0 or a negative errno. */
int dlog_append(struct dlog *d, const uint64_t *snap, uint64_t n);
uint64_t dlog_records(const struct dlog *d);
void dlog_close(struct dlog *d);
/* Read every whole record of the log at path into floor[] (maximum per
 * page, pages >= cap are an error); *valid: bytes of whole records.
 * A missing log is empty.  Returns the number of records, or -1. */
long dlog_read(const char *path, uint64_t *floor, uint64_t cap, uint64_t *valid);

/* After a successful bp_close: every version in ver[] is durable; log
 * them.  Returns an exit status. */
int crash_log_all(struct run *run, struct dlog *d);
struct totals;
struct summary;
/* Run --crash: cycles of child, kill, check; adds to *tot and *s.
 * floor[] holds the durable versions so far.  Returns an exit status. */
int crash_run(struct stress_opts *o, struct run *run, uint64_t *floor,
              struct totals *tot, struct summary *s);

/* ---- report.c ---- */

struct totals {
    uint64_t ops[OP_COUNT];
    uint64_t nofree, eagain, verified, alloc_full, errors;
    uint64_t stream_pages, stream_early;
    struct hist lat[LAT_COUNT];
};
void totals_add(struct totals *t, const struct tstats *s);
uint64_t totals_ops(const struct totals *t);
/* Sum the live counters of nthreads threads (relaxed reads). */
void totals_peek(struct totals *t, const struct tstats *ts, unsigned n);

/* What the final report shows besides the totals. */
struct summary {
    const char *mode;          /* "run", "crash", "power-cut" or "verify" */
    double seconds;            /* workload time */
    struct bp_stats bs;        /* pool counters of the workload */
    uint64_t start_pages, end_pages;
    uint64_t pages_verified;   /* by the checks after reopening */
    uint64_t cycles;           /* kills + clean_exits + cuts */
    uint64_t kills, clean_exits, durable_records;
    uint64_t floor_pages;      /* pages with a nonzero durable version */
    uint64_t above_floor;
    uint64_t cuts;             /* --power-cut: cycles ended by a cut */
    uint64_t cut_pending;      /* writes not durable at the cuts */
    uint64_t cut_dropped;      /* of those, left out of the images */
    uint64_t cut_torn;         /* written in part */
    uint64_t torn_detected;    /* torn pages found (and put back) */
    const char *result;        /* "ok" or "FAIL" */
};
/* "bpool-stress: FAIL: " and the message, one line on stderr: how every
 * failed check is told, so a script can grep for it. */
void print_fail(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
void progress_line(const struct run *run, double elapsed, uint64_t ops,
                   bool final);
/* --verify-only's result as a JSON object (--json). */
void report_verify_json(const struct stress_opts *o, const char *result,
                        const struct check_result *res);
void report_final(const struct stress_opts *o, const struct totals *t,
                  const struct summary *s);

#endif /* BPOOL_STRESS_H */
