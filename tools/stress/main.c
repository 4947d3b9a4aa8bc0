/* SPDX-License-Identifier: MIT */
/* main.c - bpool-stress: concurrent stress of a bpool pool with end-to-end
 * verification and crash testing.  Command line, defaults and the normal
 * run; the parts are listed in stress.h.
 *
 *     bpool-stress [OPTIONS]
 *
 * A normal run: make the data file (P pages of zeros, preallocated) or
 * check an existing one (--reuse), fill every page with version 1 through
 * the pool, run T threads of the op mix for --duration or --ops, close the
 * pool, reopen the file with a fresh pool and check that every page holds
 * exactly the version last written.  --crash runs cycles of a child killed
 * with SIGKILL instead (crash.c).  Exit status 0: every check passed; 1: a
 * check failed or the library returned an error; 2: bad usage; 3: could
 * not run (file, O_DIRECT, memory); 130, 143: stopped by SIGINT, SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"
#include "../common/filehdr.h"
#include "../common/parse.h"

/* A bad option value exits from parse.c: with the status the manual gives. */
_Static_assert(OPT_EXIT_USAGE == EXIT_USAGE, "one status for every usage error");

static const double default_mix[OP_COUNT] = {
    [OP_READ] = 60, [OP_WRITE] = 30, [OP_ALLOC] = 0.5, [OP_PREFETCH] = 2,
    [OP_FLUSH] = 1, [OP_FLUSHALL] = 0.05, [OP_CHECKPOINT] = 0.02,
    [OP_SYNC] = 0.01, [OP_HOLD] = 0, [OP_STREAM] = 2, [OP_RESIZE] = 0,
};

static void usage(FILE *to)
{
    fprintf(to,
        "usage: " PROG " [OPTIONS]\n"
        "\n"
        "Run threads of random operations on a bpool pool and check every page\n"
        "read: each page carries its number, a version and a checksum, and its\n"
        "payload is a function of both.  At the end, close, reopen with a fresh\n"
        "pool and check every page holds the version last written.  With\n"
        "--crash, kill the workload with SIGKILL at random moments and check\n"
        "what a completed checkpoint made durable survived.\n"
        "\n"
        "workload:\n"
        "  -t, --threads N        worker threads (default 4)\n"
        "  -d, --duration SECS    run time (default 10; --crash: per cycle, 2)\n"
        "  -n, --ops N            total operations instead of a duration\n"
        "  -D, --dist SPEC        page distribution (default mix):\n"
        "                           uniform, zipf[:THETA] (0.99),\n"
        "                           hotset[:FRAC[:PROB]] (0.1:0.9: PROB of the\n"
        "                           accesses go to the first FRAC of the pages),\n"
        "                           seq (scans, BP_SCAN), loop[:PAGES] (1.5 x\n"
        "                           frames), mix (bursts of each)\n"
        "  -m, --mix LIST         operation weights, e.g. read=70,write=30; ops\n"
        "                         not listed get 0.  Operations: read, write,\n"
        "                         alloc, prefetch, flush, flushall, checkpoint,\n"
        "                         sync, hold (eviction pressure: pin\n"
        "                         --hold-pages pages at once), stream (a read\n"
        "                         stream over up to 48 pages, each checked, a\n"
        "                         quarter closed early), resize (bp_resize\n"
        "                         to a random size from half the pool, at\n"
        "                         least threads + 2 frames, to --pool-max,\n"
        "                         by default twice the pool).  Default:\n"
        "                         read=60,write=30,alloc=0.5,prefetch=2,flush=1,\n"
        "                         flushall=0.05,checkpoint=0.02,sync=0.01,\n"
        "                         stream=2\n"
        "      --hold-pages K     pages a hold pins at once (default 4, at most\n"
        "                         half the frames)\n"
        "  -s, --seed N           random seed (default: from the clock; printed)\n"
        "\n"
        "data file and pool (the same letters mean the same in every bpool\n"
        "tool):\n"
        "  -f, --file PATH        data file (default ./" DEFAULT_FILE "); must be\n"
        "                         on a file system with O_DIRECT (not tmpfs).\n"
        "                         Made by the run and removed after a pass\n"
        "      --pages N          pages of the new data file (default 16384)\n"
        "      --max-pages N      pages the file may grow to by alloc (default\n"
        "                         pages + pages/8)\n"
        "  -p, --pool SIZE        pool size in bytes (default: pages/16 frames,\n"
        "                         at least 4); --pool-size is a deprecated alias\n"
        "  -P, --page-size SIZE   page size (default 4K; with --reuse or\n"
        "                         --verify-only, the file's)\n");
    poolopt_usage(to);
    fprintf(to,
        "      --no-fill          leave a new file's pages at version 0 (zeros)\n"
        "                         instead of writing version 1 to each first\n"
        "      --reuse            run on an existing data file: check every page\n"
        "                         first (and against FILE.dlog if present)\n"
        "      --keep             keep a data file this run made\n"
        "      --files N          N data files in one pool (1 to 64): FILE,\n"
        "                         FILE.1, ...; the tool's page k is page k / N\n"
        "                         of file k %% N, so every operation reaches\n"
        "                         all of them; new files only (not with\n"
        "                         --reuse, --verify-only, --power-cut)\n"
        "      --verify-only      only check an existing data file (and its\n"
        "                         side log) and exit\n"
        "\n"
        "crash testing:\n"
        "      --crash            cycles of: a child runs the workload, is killed\n"
        "                         with SIGKILL at a random moment within\n"
        "                         --duration; the file is reopened and checked\n"
        "                         against the side log FILE.dlog of versions made\n"
        "                         durable by completed checkpoints and syncs\n"
        "      --cycles N         crash cycles (default 5)\n"
        "      --power-cut N      N cycles that end in a simulated power cut\n"
        "                         instead of a kill: the writes not yet made\n"
        "                         durable by an fdatasync are left out, kept or\n"
        "                         torn at random in the image the next cycle\n"
        "                         opens (FILE.cut, moved over FILE); a torn page\n"
        "                         must fail its checksum (implies --checksums\n"
        "                         unless --no-checksums) and is put back at its\n"
        "                         durable version\n"
        "\n"
        "output:\n"
        "  -j, --json             the final report as one JSON object\n"
        "  -q, --quiet            no progress line, no per-cycle lines\n"
        "      --hang-timeout SECS  an operation running longer is a hang: print\n"
        "                         every thread's operation, exit 1 (default 60)\n"
        "  -h, --help             this help\n"
        "  -V, --version          print the version\n"
        "\n"
        "SIZE: " SIZE_GRAMMAR ",\n"
        "such as 8192, 0x2000, 64M, 1T.  A progress line goes to stderr when it\n"
        "is a terminal.  -BP_ENOFRAME\n"
        "(every frame pinned: expected with a small pool) is counted and retried.\n"
        "SIGINT (Ctrl-C) or SIGTERM stops the run and closes the pool; a data\n"
        "file the run made is removed unless --keep.\n"
        "exit status: 0 all checks passed, 1 a check failed or the library\n"
        "returned an error (the data file is kept), 2 bad usage, 3 could not run,\n"
        "130 stopped by SIGINT, 143 by SIGTERM\n");
}

static void parse_mix(const char *s, double mix[OP_COUNT])
{
    char buf[512];
    if (strlen(s) >= sizeof buf)
        opt_bad("--mix", s, "too long");
    strcpy(buf, s);
    for (int i = 0; i < OP_COUNT; i++)
        mix[i] = 0;
    double total = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            opt_bad("--mix", s, "want NAME=WEIGHT,...");
        *eq = '\0';
        int k = -1;
        for (int i = 0; i < OP_COUNT; i++)
            if (strcmp(tok, op_names[i]) == 0)
                k = i;
        if (k < 0) {
            /* The choices are op_names, the table the workers use. */
            char want[256];
            size_t n = (size_t)snprintf(want, sizeof want,
                                        "unknown operation: choose one of");
            for (int i = 0; i < OP_COUNT && n < sizeof want; i++)
                n += (size_t)snprintf(want + n, sizeof want - n, "%s %s",
                                      i ? "," : "", op_names[i]);
            opt_bad("--mix", tok, want);
        }
        char *end;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || !(v >= 0) || v > 1e9)
            opt_bad("--mix", eq + 1, "want a weight >= 0");
        mix[k] = v;
        total += v;
    }
    if (!(total > 0))
        opt_bad("--mix", s, "every weight is 0");
}

void stress_bp_options(const struct stress_opts *o, struct bp_options *bo)
{
    bp_options_init(bo);
    bo->page_size = o->page_size;
    bo->pool_frames = o->frames;
    poolopt_apply(&o->pool, bo);
}

uint32_t stress_payload(const struct stress_opts *o)
{
    if (o->pool.checksums == 1)
        return o->page_size - BP_CHECKSUM_TRAILER;
    return o->page_size;
}

/* path, then path.1, path.2, ... for --files. */
/* The paths main() made: the side log's, the cut log's, the files'. */
static void free_paths(struct stress_opts *o)
{
    free(o->dlog_path);
    free(o->cut_path);
    for (unsigned i = 1; o->file_paths && i < o->files; i++)
        free(o->file_paths[i]);
    free(o->file_paths);
}

static int make_file_paths(struct stress_opts *o)
{
    o->file_paths = calloc(o->files, sizeof *o->file_paths);
    if (!o->file_paths)
        return -1;
    o->file_paths[0] = (char *)o->path;
    for (unsigned i = 1; i < o->files; i++)
        if (asprintf(&o->file_paths[i], "%s.%u", o->path, i) < 0)
            return -1;
    return 0;
}

static void unlink_files(const struct stress_opts *o)
{
    for (unsigned i = 0; i < o->files; i++)
        unlink(o->file_paths[i]);
}

uint64_t stress_page_count(const struct stress_opts *o, bp_pool *pool)
{
    if (o->files == 1)
        return bp_page_count(pool);
    /* Page k is page k / N of file k % N: the first one missing is the
     * first missing of some file i, number count_i * N + i. */
    uint64_t n = UINT64_MAX;
    for (unsigned i = 0; i < o->files; i++) {
        uint64_t first_missing = bp_file_page_count(pool, i) * o->files + i;
        if (first_missing < n)
            n = first_missing;
    }
    return n;
}

/* Open the tool's file, or its files into one pool (file i as number i):
 * 0, or the failing call's error with *what the file it named. */
static int open_files(const struct stress_opts *o, struct bp_options *bo,
                      bp_pool **out, const char **what)
{
    bp_pool *pool = NULL;
    *what = o->path;
    *out = NULL;
    if (o->files == 1)
        return bp_open(o->path, bo, out);
    if (!bo->page_size)
        bo->page_size = o->page_size;
    int r = bp_pool_create(bo, &pool);
    for (unsigned i = 0; r == 0 && i < o->files; i++) {
        uint32_t n;
        *what = o->file_paths[i];
        r = bp_attach(pool, *what, &n);
        if (r == 0 && n != i)
            r = -EINVAL;
    }
    if (r < 0 && pool)
        bp_close(pool);
    else
        *out = pool;
    return r;
}

bp_pool *stress_open(const struct stress_opts *o, uint32_t flags, int *status)
{
    struct bp_options bo;
    stress_bp_options(o, &bo);
    bo.flags |= flags;
    bp_pool *pool = NULL;
    const char *what = o->path;
    int r;
    /* A killed child's io_uring rings are torn down by the kernel after
     * the child is gone, and hold its files - and their locks - until
     * then (tens of milliseconds, longer with writes in flight): a reopen
     * right after the kill waits that out, 10 s at most of the monotonic
     * clock (a count of tries of 10 ms each also counted the tries' own
     * time: 12 to 24 s). */
    const uint64_t s = 1000000000ull;
    uint64_t start = now_ns();
    bool said = false;
    for (;;) {
        r = open_files(o, &bo, &pool, &what);
        uint64_t waited = now_ns() - start;
        if (r != -BP_ELOCKED || waited >= 10 * s)
            break;
        if (!said && waited >= s && !o->quiet) {  /* not a killed child's */
            said = true;
            fprintf(stderr, PROG ": %s is locked by another pool; waiting up "
                    "to 9 s more for it to go\n", printable(what));
        }
        uint64_t nap = 10 * s - waited < s / 100 ? 10 * s - waited : s / 100;
        nanosleep(&(struct timespec){ 0, (long)nap }, NULL);
    }
    if (r == 0)
        return pool;
    fprintf(stderr, PROG ": %s(%s): %s: %s\n", o->files > 1 ? "bp_attach" :
            "bp_open", printable(what), bp_err_name(r), printable(bp_errdetail()));
    switch (r) {
    case -BP_ENODIRECT: case -BP_EAIO: case -BP_EPAGESIZE: case -BP_EPOOLSIZE:
    case -BP_EFORMAT: case -BP_ELOCKED:
    case -ENOENT: case -EACCES: case -EPERM: case -ENOMEM: case -EINVAL:
    case -EROFS: case -EISDIR:
        *status = EXIT_SETUP;
        break;
    default:
        *status = EXIT_FAIL;
    }
    return NULL;
}

/* The pages of an existing data file, as a pool sees them: its size does
 * not tell (a header page or none, a doublewrite area).  A read-only pool
 * of the fewest frames, with the run's settings, counts them before the
 * run sizes its tables by them.  EXIT_OK, or why not (said). */
static int existing_pages(const struct stress_opts *o, uint64_t *pages)
{
    struct stress_opts probe = *o;
    probe.frames = BP_MIN_FRAMES;
    probe.pool.pool_bytes_max = 0;   /* no resize reserve to map */
    int status = EXIT_SETUP;
    bp_pool *pool = stress_open(&probe, BP_RDONLY, &status);
    if (!pool)
        return EXIT_SETUP;   /* the file it was given: not one it broke */
    *pages = stress_page_count(o, pool);
    int r = bp_close(pool);
    if (r < 0) {
        fprintf(stderr, PROG ": FAIL: bp_close(%s): %s: %s\n", printable(o->path),
                bp_err_name(r), printable(bp_errdetail()));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* Make the data file: bpool writes its header page (and, with
 * --doublewrite, the doublewrite area), then the pages are zeros, blocks
 * preallocated. */
static int create_file(const struct stress_opts *o)
{
    int status = EXIT_SETUP;
    bp_pool *pool = stress_open(o, BP_CREATE | BP_EXCL | BP_NOFLUSH, &status);
    if (!pool)
        return EXIT_SETUP;   /* whatever refused it: it could not be made */
    int r = bp_close(pool);
    for (unsigned i = 0; i < o->files; i++) {
        const char *path = o->file_paths[i];
        uint64_t pages = stress_file_pages(o, i, o->pages);
        int fd = r < 0 ? -1 : open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            fprintf(stderr, PROG ": cannot create %s: %s\n", printable(path),
                    r < 0 ? printable(bp_errdetail()) : strerror(errno));
            unlink_files(o);
            return EXIT_SETUP;
        }
        struct stat st;   /* what bp_open wrote before page 0 */
        off_t len = fstat(fd, &st) < 0 ? -1 : st.st_size + (off_t)(pages * o->page_size);
        r = len < 0 ? errno : posix_fallocate(fd, 0, len);
        if (r == EOPNOTSUPP || r == EINVAL)
            r = ftruncate(fd, len) < 0 ? errno : 0;
        if (r == 0 && fsync(fd) < 0)
            r = errno;
        close(fd);
        if (r) {
            fprintf(stderr, PROG ": cannot size %s to %" PRIu64 " pages: %s\n",
                    path, pages, strerror(r));
            unlink_files(o);
            return EXIT_SETUP;
        }
    }
    if (unlink(o->dlog_path) < 0 && errno != ENOENT) {
        fprintf(stderr, PROG ": cannot remove the old side log %s: %s\n",
                o->dlog_path, strerror(errno));
        unlink_files(o);
        return EXIT_SETUP;
    }
    return EXIT_OK;
}

/* Memory shared with crash-mode children: thread stats, pool stats,
 * versions. */
static int map_shared(struct run *run, unsigned threads, uint64_t cap)
{
    size_t ts_len = threads * sizeof(struct tstats);
    size_t bs_off = (ts_len + 63) & ~(size_t)63;
    size_t ver_off = (bs_off + sizeof(struct bp_stats) + 63) & ~(size_t)63;
    size_t len = ver_off + cap * sizeof(uint64_t);
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, PROG ": mmap of %zu bytes: %s\n", len, strerror(errno));
        return -1;
    }
    run->ts = m;
    run->bs = (struct bp_stats *)((char *)m + bs_off);
    run->ver = (_Atomic uint64_t *)((char *)m + ver_off);
    run->cap = cap;
    return 0;
}

static void unmap_shared(struct run *run, unsigned threads)
{
    size_t ts_len = threads * sizeof(struct tstats);
    size_t bs_off = (ts_len + 63) & ~(size_t)63;
    size_t ver_off = (bs_off + sizeof(struct bp_stats) + 63) & ~(size_t)63;
    munmap(run->ts, ver_off + run->cap * sizeof(uint64_t));
}

static void set_op_cum(struct run *run, const struct stress_opts *o)
{
    double c = 0;
    for (int i = 0; i < OP_COUNT; i++) {
        c += o->mix[i];
        run->op_cum[i] = c;
    }
}

/* Fill: every page gets version ver + 1 through the pool, then close. */
static int fill(struct run *run, bp_pool *pool)
{
    run->pool = pool;
    int st = run_threads(run, PH_FILL);
    memset(run->ts, 0, run->o->threads * sizeof *run->ts);
    return st;
}

_Atomic int stress_signal;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
               "the signal handler stores stress_signal: it must be lock-free");

static const int stop_signals[2] = { SIGINT, SIGTERM };
static struct sigaction stop_signals_old[2];

/* The first SIGINT or SIGTERM stops the run, and puts both back as they
 * were, so a second one ends the program at once, as it would have
 * uncaught (sigaction is async-signal-safe). */
static void on_stop_signal(int sig)
{
    atomic_store_explicit(&stress_signal, sig, memory_order_relaxed);
    signals_restore();
}

void signals_restore(void)
{
    for (int i = 0; i < 2; i++)
        sigaction(stop_signals[i], &stop_signals_old[i], NULL);
}

static void signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);       /* one handler at a time */
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 2; i++) {
        sigaction(stop_signals[i], NULL, &stop_signals_old[i]);
        /* One the program was started ignoring (a job in the background
         * of a script) stays ignored. */
        if (stop_signals_old[i].sa_handler != SIG_IGN)
            sigaction(stop_signals[i], &sa, NULL);
    }
}

static void print_check(const struct stress_opts *o, const char *what,
                        const struct check_result *res, int st)
{
    if (o->json || o->quiet)
        return;
    printf("%s: %" PRIu64 " pages checked in %.2f s (%" PRIu64 " at version 0): %s\n",
           what, res->checked, res->seconds, res->zero, st == EXIT_OK ? "ok" : "FAIL");
}

int main(int argc, char **argv)
{
    struct stress_opts o = {
        .path = DEFAULT_FILE, .threads = 4, .duration = -1, .pages = 16384,
        .page_size = 4096, .hold_pages = 4, .fill = true,
        .hang_timeout = 60, .cycles = 5, .files = 1,
        .dist = { .kind = D_MIX, .theta = 0.99, .hot_frac = 0.1, .hot_prob = 0.9 },
    };
    memcpy(o.mix, default_mix, sizeof o.mix);
    bool seed_set = false, pages_set = false;

    /* The options only bpool-stress has (long only). */
    enum { O_MAXPAGES = POOLOPT_TOOL_FIRST, O_PAGES, O_HOLD, O_NOFILL, O_REUSE,
           O_KEEP, O_VERIFY, O_CRASH, O_CYCLES, O_POWER_CUT, O_HANG, O_FILES };
    static const struct option longopts[] = {
        POOLOPT_LONGOPTS,
        { "threads", required_argument, NULL, 't' },
        { "duration", required_argument, NULL, 'd' },
        { "ops", required_argument, NULL, 'n' },
        { "dist", required_argument, NULL, 'D' },
        { "mix", required_argument, NULL, 'm' },
        { "hold-pages", required_argument, NULL, O_HOLD },
        { "seed", required_argument, NULL, 's' },
        { "file", required_argument, NULL, 'f' },
        { "pages", required_argument, NULL, O_PAGES },
        { "max-pages", required_argument, NULL, O_MAXPAGES },
        { "no-fill", no_argument, NULL, O_NOFILL },
        { "reuse", no_argument, NULL, O_REUSE },
        { "keep", no_argument, NULL, O_KEEP },
        { "verify-only", no_argument, NULL, O_VERIFY },
        { "crash", no_argument, NULL, O_CRASH },
        { "cycles", required_argument, NULL, O_CYCLES },
        { "power-cut", required_argument, NULL, O_POWER_CUT },
        { "files", required_argument, NULL, O_FILES },
        { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { "hang-timeout", required_argument, NULL, O_HANG },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    poolopt_init(&o.pool);
    opt_prog(PROG);
    int c;
    opterr = 0;     /* opt_unknown says what is wrong, in one line */
    while ((c = getopt_long(argc, argv, POOLOPT_SHORT "t:d:n:D:m:s:f:jqhV",
                            longopts, NULL)) != -1) {
        if (poolopt_take(&o.pool, c, optarg))
            continue;
        switch (c) {
        case 't': o.threads = (unsigned)opt_u64("--threads", optarg, 1, MAX_THREADS); o.given |= GIVEN_THREADS; break;
        case 'd': o.duration = opt_secs("--duration", optarg, false, 1e7); o.given |= GIVEN_DURATION; break;
        case 'n': o.ops = opt_u64("--ops", optarg, 1, UINT64_MAX / 2); o.given |= GIVEN_OPS; break;
        case 'D':
            if (dist_parse(optarg, &o.dist) < 0)
                opt_bad("--dist", optarg, "want uniform, zipf[:THETA], "
                        "hotset[:FRAC[:PROB]], seq, loop[:PAGES] or mix, THETA and "
                        "FRAC in (0, 1)");
            o.given |= GIVEN_DIST;
            break;
        case 'm': parse_mix(optarg, o.mix); o.given_mix = optarg; break;
        case O_HOLD: o.hold_pages = (unsigned)opt_u64("--hold-pages", optarg, 1, 1024); o.given |= GIVEN_HOLD_PAGES; break;
        case 's': o.seed = opt_u64("--seed", optarg, 0, UINT64_MAX); seed_set = true; o.given |= GIVEN_SEED; break;
        case 'f':
            if (!*optarg)
                opt_usage("-f needs a file name (it was empty)");
            o.path = optarg;
            o.given |= GIVEN_FILE;
            break;
        case O_PAGES: o.pages = opt_u64("--pages", optarg, 1, 1ull << 32); pages_set = true; o.given |= GIVEN_PAGES; o.given_pages = o.pages; break;
        case O_MAXPAGES: o.max_pages = opt_u64("--max-pages", optarg, 1, 1ull << 33); o.given |= GIVEN_MAX_PAGES; o.given_max_pages = o.max_pages; break;
        case O_NOFILL: o.fill = false; break;
        case O_REUSE: o.reuse = true; break;
        case O_KEEP: o.keep = true; break;
        case O_VERIFY: o.verify_only = true; break;
        case O_CRASH: o.crash = true; o.given |= GIVEN_CRASH; break;
        case O_CYCLES: o.cycles = (unsigned)opt_u64("--cycles", optarg, 1, 1000000); o.given |= GIVEN_CYCLES; break;
        case O_POWER_CUT:
            o.power_cut = o.crash = true;
            o.cycles = (unsigned)opt_u64("--power-cut", optarg, 1, 1000000);
            o.power_cuts = o.cycles;    /* --cycles was not given */
            break;
        case O_FILES: o.files = (unsigned)opt_u64("--files", optarg, 1, MAX_FILES); o.given |= GIVEN_FILES; break;
        case O_HANG: o.hang_timeout = opt_secs("--hang-timeout", optarg, false, 1e7); o.given |= GIVEN_HANG_TIMEOUT; break;
        case 'j': o.json = true; break;
        case 'q': o.quiet = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': opt_version(); return EXIT_OK;
        default: opt_unknown(argv, optind, optopt);
        }
    }
    poolopt_check(&o.pool);
    o.pool_given = o.pool;
    if (o.pool.page_size)
        o.page_size = o.pool.page_size;
    o.frames = o.pool.frames;
    if (optind < argc)
        opt_usage("unexpected argument '%s'", argv[optind]);
    if (o.crash && o.ops)
        opt_usage("--crash runs for a --duration, not --ops");
    if (o.crash && o.verify_only)
        opt_usage("--crash and --verify-only do not go together");
    if (o.files > 1 && (o.reuse || o.verify_only || o.power_cut))
        opt_usage("--files %u runs on new files: not with --reuse, "
                  "--verify-only or --power-cut", o.files);
    /* A new file's --pages above --max-pages: the command line contradicts
     * itself (with --reuse or --verify-only the file's pages count, and
     * --pages is ignored). */
    if (o.max_pages && o.max_pages < o.pages && !o.reuse && !o.verify_only)
        opt_usage("--max-pages %" PRIu64 " is below --pages %" PRIu64 "%s: "
                  "give --max-pages %" PRIu64 " or more", o.max_pages, o.pages,
                  pages_set ? "" : " (the default)", o.pages);
    if (o.duration < 0)
        o.duration = o.crash ? 2 : 10;
    if (!seed_set)
        o.seed = mix64(now_ns() ^ ((uint64_t)getpid() << 32)) >> 34;
    o.progress = !o.quiet && isatty(STDERR_FILENO);

    size_t plen = strlen(o.path);
    o.dlog_path = malloc(plen + sizeof DLOG_SUFFIX);
    if (!o.dlog_path)
        return EXIT_SETUP;
    memcpy(o.dlog_path, o.path, plen);
    memcpy(o.dlog_path + plen, DLOG_SUFFIX, sizeof DLOG_SUFFIX);
    o.cut_path = malloc(plen + sizeof CUT_SUFFIX);
    if (!o.cut_path)
        return EXIT_SETUP;
    memcpy(o.cut_path, o.path, plen);
    memcpy(o.cut_path + plen, CUT_SUFFIX, sizeof CUT_SUFFIX);
    if (make_file_paths(&o) < 0) {
        free_paths(&o);
        return EXIT_SETUP;
    }
    for (unsigned i = 1; i < o.files; i++)
        if (access(o.file_paths[i], F_OK) == 0)
            opt_usage("%s exists: remove it (--files %u makes new files)",
                      o.file_paths[i], o.files);

    /* The file: new, or existing with --reuse / --verify-only. */
    struct stat sb;
    bool exists = stat(o.path, &sb) == 0;
    /* A directory or a device is no data file, with --reuse or without:
     * say so, rather than how to run on it or to remove it. */
    if (exists && !S_ISREG(sb.st_mode)) {
        fprintf(stderr, PROG ": %s is not a regular file: give --file the path "
                "of a data file (a new one is made)\n", printable(o.path));
        free_paths(&o);
        return EXIT_SETUP;
    }
    if (exists && !o.reuse && !o.verify_only) {
        opt_usage("%s exists: give --reuse to check it and run on it, or remove "
                  "it (and %s)", printable(o.path), printable(o.dlog_path));
    }
    if (!exists && (o.reuse || o.verify_only)) {
        fprintf(stderr, PROG ": %s: %s\n", printable(o.path), strerror(errno));
        free_paths(&o);
        return EXIT_SETUP;
    }
    if (exists && sb.st_size == 0 && (o.reuse || o.verify_only)) {
        /* Not a stress file: a writable open would write a header into it
         * and the check would pass on its no pages. */
        fprintf(stderr, PROG ": %s is empty: not a data file of a stress "
                "run; remove it, and a run without --reuse/--verify-only "
                "makes a new one\n", printable(o.path));
        free_paths(&o);
        return EXIT_SETUP;
    }
    /* An existing file's header decides the page size when -P is not
     * given; another -P, or a file with no header and no --no-header,
     * is the command line contradicting the file: a usage error
     * (doc/tools.md), said in its words rather than the library's. */
    struct filehdr hdr;
    if (exists && o.pool.no_header && filehdr_read(o.path, &hdr) == 0 &&
        hdr.bpool) {
        free_paths(&o);
        opt_usage("%s has a bpool header, and --no-header says it has none: "
                  "drop --no-header, or remove the file", printable(o.path));
    }
    if (exists && !o.pool.no_header && filehdr_read(o.path, &hdr) == 0) {
        if (!hdr.bpool) {
            free_paths(&o);
            opt_usage("%s has no bpool header: give --no-header if it is a "
                      "file of pages without one, or remove it", printable(o.path));
        }
        if (filehdr_page_size_differs(&hdr, o.pool.page_size)) {
            free_paths(&o);
            filehdr_page_size_usage(o.path, &hdr, o.pool.page_size,
                                    "--page-size", "leave --page-size out "
                                    "to take the file's");
        }
        if (hdr.page_size)   /* else a damaged header: the open says so */
            o.page_size = hdr.page_size;
        filehdr_take_checksums(o.path, &hdr, &o.pool.checksums,
                               "remove the file");
    }
    /* A new file, or one without a header, under --power-cut: checksums
     * unless --no-checksums, so that bpool must find torn pages (an
     * existing file's header has decided above). */
    if (o.power_cut && o.pool.checksums < 0)
        o.pool.checksums = 1;
    uint64_t start_pages = o.pages;
    if (exists) {
        int st = existing_pages(&o, &start_pages);
        if (st != EXIT_OK) {
            free_paths(&o);
            return st;
        }
    }
    if (exists && start_pages == 0) {
        /* A header page alone: no stress run made it (a run's file has
         * --pages pages at least), the threads' first pin would fail, and
         * a check would pass on its no pages. */
        fprintf(stderr, PROG ": %s has no pages: not a data file of a stress "
                "run; remove it, and a run without --reuse/--verify-only "
                "makes a new one\n", printable(o.path));
        free_paths(&o);
        return EXIT_SETUP;
    }
    if (exists && pages_set && start_pages != o.pages)
        fprintf(stderr, PROG ": note: %s has %" PRIu64 " pages; --pages ignored\n",
                printable(o.path), start_pages);
    o.pages = start_pages;
    if (o.max_pages == 0)
        o.max_pages = o.pages + o.pages / 8;
    if (o.max_pages < o.pages)
        o.max_pages = o.pages;
    if (o.frames == 0 && o.pool.pool_bytes)
        o.frames = poolopt_frames(&o.pool, o.page_size, 0);
    if (o.frames == 0)
        o.frames = o.pages / 16 > BP_MIN_FRAMES ? (uint32_t)(o.pages / 16) : BP_MIN_FRAMES;
    o.frames_min = o.frames_max = o.frames;
    /* A --pool-max below the pool contradicts it: a usage error now, as
     * in bpool-bench, not bp_open's refusal after (exit 3). */
    if (!poolopt_max_fits(&o.pool, o.frames, o.page_size)) {
        free_paths(&o);
        poolopt_max_usage(&o.pool, o.frames, o.page_size);
    }
    if (o.mix[OP_RESIZE] > 0) {
        /* Room to grow to --pool-max, by default twice the pool; down to
         * half of it, but never so few frames that the threads' own pins
         * could take them all. */
        uint64_t max = o.pool.pool_bytes_max ? o.pool.pool_bytes_max / o.page_size
                                             : 2 * (uint64_t)o.frames;
        if (max < o.frames || max > UINT32_MAX / 2) {
            free_paths(&o);
            opt_usage("--pool-max: at least the pool's %u frames of %u bytes",
                      o.frames, o.page_size);
        }
        o.frames_max = (uint32_t)max;
        o.pool.pool_bytes_max = max * o.page_size;
        uint32_t min = o.frames / 2;
        uint32_t floor = o.threads * (o.mix[OP_HOLD] > 0 ? o.hold_pages : 1) + 2;
        if (min < floor)
            min = floor;
        if (min < BP_MIN_FRAMES)
            min = BP_MIN_FRAMES;
        o.frames_min = min < o.frames ? min : o.frames;
    }
    if (o.mix[OP_HOLD] > 0 && o.hold_pages > o.frames / 2) {
        free_paths(&o);
        opt_usage("--hold-pages %u: at most half the %u frames", o.hold_pages,
                  o.frames);
    }

    /* From here on a data file may be made or written: SIGINT and SIGTERM
     * stop the run, which then closes the pool and removes or keeps the
     * file. */
    signals_catch();
    struct run run = { .o = &o, .seed = o.seed, .payload = stress_payload(&o) };
    pthread_mutex_init(&run.alloc_mu, NULL);
    if (map_shared(&run, o.threads, o.max_pages) < 0) {
        free_paths(&o);
        return EXIT_SETUP;
    }
    set_op_cum(&run, &o);
    uint64_t *floor = calloc(o.max_pages, sizeof *floor);
    if (!floor) {
        fprintf(stderr, PROG ": out of memory\n");
        unmap_shared(&run, o.threads);
        free_paths(&o);
        return EXIT_SETUP;
    }

    struct totals *tot = calloc(1, sizeof *tot);
    struct summary sum = { .mode = o.power_cut ? "power-cut" : o.crash ? "crash"
                                   : o.verify_only ? "verify" : "run",
                           .start_pages = o.pages, .end_pages = o.pages,
                           .result = "FAIL" };
    struct check_result res;
    int status = EXIT_OK;
    bool created = false;
    if (!tot) {
        status = EXIT_SETUP;
        goto out;
    }

    if (exists) {
        /* Learn the versions; check against the side log's durable ones. */
        if (dlog_read(o.dlog_path, floor, run.cap, &(uint64_t){ 0 }) < 0) {
            status = EXIT_FAIL;
            goto out;
        }
        for (uint64_t p = 0; p < run.cap; p++)
            atomic_store_explicit(&run.ver[p], UINT64_MAX, memory_order_relaxed);
        /* It only reads: a read-only pool, which other readers of the
         * file do not keep out, nor a file the user may not write.  But
         * --reuse of a file with a doublewrite area opens it writable,
         * as the run will, so that the pages a power cut tore are
         * repaired from the area before they are checked. */
        struct filehdr h;
        bool repair = !o.verify_only && filehdr_read(o.path, &h) == 0 &&
                      (h.flags & FILEHDR_DOUBLEWRITE);
        status = check_file(&o, run.ver, run.cap, floor, CHECK_FLOOR, 0, !repair,
                            &res);
        sum.pages_verified += res.checked;
        sum.end_pages = res.pages;
        if (status == EXIT_OK || status == EXIT_FAIL)   /* a whole check */
            print_check(&o, o.verify_only ? "verify" : "reuse: check before the run",
                        &res, status);
        if (o.verify_only || status != EXIT_OK) {
            if (status == EXIT_OK)
                sum.result = "ok";
            if (o.json)
                report_verify_json(&o, sum.result, &res);
            goto out;
        }
    } else {
        status = create_file(&o);
        if (status != EXIT_OK)
            goto out;
        created = true;
    }

    run.base_pages = o.pages;
    zipf_pages_init(&run.zipf, o.pages, o.dist.theta);
    run.loop_pages = o.dist.loop_pages ? o.dist.loop_pages : o.frames + o.frames / 2;

    bp_pool *pool = stress_open(&o, 0, &status);
    if (!pool)
        goto out;
    if (created && o.fill) {
        status = fill(&run, pool);
        if (status != EXIT_OK) {
            bp_close(pool);
            goto out;
        }
    }
    if (stress_signal) {        /* while the file was made or filled */
        bp_close(pool);
        status = EXIT_SIGNAL(stress_signal);
        goto out;
    }

    if (o.crash) {
        /* The children open the pool themselves; the parent forks with no
         * threads, so close it (the fill becomes durable). */
        int r = bp_close(pool);
        if (r < 0) {
            fprintf(stderr, PROG ": FAIL: bp_close: %s: %s\n", bp_err_name(r),
                    printable(bp_errdetail()));
            status = EXIT_FAIL;
            goto out;
        }
        if (created) {
            struct dlog *d = dlog_open(o.dlog_path, NULL, run.cap);
            status = d ? crash_log_all(&run, d) : EXIT_SETUP;
            dlog_close(d);
            if (status != EXIT_OK)
                goto out;
        }
        o.progress = false;
        status = crash_run(&o, &run, floor, tot, &sum);
        if (status == EXIT_OK)
            sum.result = "ok";
        else if (stress_signal)
            sum.result = "interrupted";
        report_final(&o, tot, &sum);
        goto out;
    }

    /* The normal run. */
    run.pool = pool;
    bp_stats_reset(pool);
    atomic_store(&run.alloc_left, run.cap - stress_page_count(&o, pool));
    uint64_t t0 = now_ns();
    status = run_threads(&run, PH_WORK);
    sum.seconds = (double)(now_ns() - t0) / 1e9;
    bp_stats(pool, &sum.bs);
    uint64_t end_pages = stress_page_count(&o, pool);
    sum.end_pages = end_pages;
    for (unsigned i = 0; i < o.threads; i++)
        totals_add(tot, &run.ts[i]);
    int r = bp_close(pool);
    if (r < 0) {
        fprintf(stderr, PROG ": FAIL: bp_close: %s: %s\n", bp_err_name(r), printable(bp_errdetail()));
        if (status == EXIT_OK)
            status = EXIT_FAIL;
    }
    if (status == EXIT_OK && end_pages != o.pages + tot->ops[OP_ALLOC]) {
        fprintf(stderr, PROG ": FAIL: the pool has %" PRIu64 " pages; it had %" PRIu64
                " and bp_alloc_page returned %" PRIu64 " new ones\n", end_pages,
                o.pages, tot->ops[OP_ALLOC]);
        status = EXIT_FAIL;
    }
    if (status == EXIT_OK && stress_signal) {     /* no check: stop */
        status = EXIT_SIGNAL(stress_signal);
        sum.result = "interrupted";
    }
    if (status == EXIT_OK) {
        status = check_file(&o, run.ver, run.cap, NULL, CHECK_EXACT, end_pages,
                            false, &res);
        sum.pages_verified = res.checked;
        if (status == EXIT_OK)
            sum.result = "ok";
    }
    report_final(&o, tot, &sum);

out:;
    /* Stopped by a signal (a failure found first is reported as one): not
     * a failure, so the file this run made goes with it (unless --keep),
     * and a power cut's image half made goes. */
    bool stopped = stress_signal && status == EXIT_SIGNAL(stress_signal);
    if (stopped) {
        fprintf(stderr, PROG ": stopped by %s\n",
                stress_signal == SIGINT ? "SIGINT" : "SIGTERM");
        if (o.power_cut)
            unlink(o.cut_path);
        if (created && !o.keep) {
            unlink_files(&o);
            unlink(o.dlog_path);
            fprintf(stderr, PROG ": removed %s%s, made by this run\n", printable(o.path),
                    o.files > 1 ? " and .1, ..." : "");
        }
    }
    bool kept = status == EXIT_FAIL ||
                (stopped && (o.keep || (exists && !o.verify_only)));
    if (status == EXIT_OK && created && !o.keep) {
        unlink_files(&o);
        unlink(o.dlog_path);
    } else if (kept && (created || exists)) {
        fprintf(stderr, PROG ": data file%s kept: %s%s%s%s (seed %" PRIu64 ")\n",
                o.files > 1 ? "s" : "", printable(o.path), o.files > 1 ? " and .1, ..." : "",
                access(o.dlog_path, F_OK) == 0 ? ", side log " : "",
                access(o.dlog_path, F_OK) == 0 ? o.dlog_path : "", o.seed);
    } else if (status == EXIT_SETUP && created) {
        unlink_files(&o);
        unlink(o.dlog_path);
    }
    free(tot);
    free(floor);
    unmap_shared(&run, o.threads);
    free_paths(&o);
    return status;
}
