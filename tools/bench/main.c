/* SPDX-License-Identifier: MIT */
/* main.c - bpool-bench: measure a bpool pool against the device, the page
 * cache and mmap.  Command line, defaults and dispatch; the workloads are
 * in wl_*.c, the rest of the parts are listed in bench.h.
 *
 *     bpool-bench [OPTIONS] WORKLOAD [TRACE]
 *
 * Each workload prints one result line per measurement on stdout (key=value
 * pairs, or one JSON object with --json), and with --timeline one line per
 * measured second before it; progress goes to stderr, and only when stderr
 * is a terminal.  bench/compare.sh runs the workloads next to
 * fio and turns the lines into a table; doc/bpool-bench.1 is the manual.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "../common/parse.h"
#include "../common/poolopt.h"

/* A bad option value exits from parse.c: with the status the manual gives. */
_Static_assert(OPT_EXIT_USAGE == EXIT_USAGE, "one status for every usage error");

static const struct workload {
    const char *name;
    int (*run)(struct bench_opts *);
    const char *help;
} workloads[] = {
    { "hit", wl_hit, "pin+unpin of resident pages (uniform and zipf, 1..T threads),\n"
      "              BP_READ and BP_PIN, next to buffered pread, mmap and a\n"
      "              hash-lookup + atomic floor" },
    { "randread", wl_randread, "uniform random pins of a file much larger than the\n"
      "              pool (32 threads = 32 reads in flight; or --stream): IOPS,\n"
      "              MiB/s, latency, CPU per read" },
    { "seqscan", wl_seqscan, "one pass over the file in page order (or through a\n"
      "              read stream: --stream): MiB/s" },
    { "randwrite", wl_randwrite, "uniform random write pins; write-back by eviction\n"
      "              (and flushers, if any), then a timed bp_flush_all" },
    { "mixed", wl_mixed, "zipf pins, 20% for write, pool 1/8 of the file: throughput,\n"
      "              hit ratio, tail latency" },
    { "seqwrite", wl_seqwrite, "BP_WRITE|BP_OVERWRITE pins in page order, written\n"
      "              back by the flushers and a final bp_flush_all; twice, with\n"
      "              the default write coalescing and without: pages/s, MiB/s,\n"
      "              write requests" },
    { "checkpoint", wl_checkpoint, "readers pin resident pages while a writer dirties\n"
      "              them, without and then with bp_checkpoint back to back:\n"
      "              reader pin latency and throughput of each phase" },
    { "prepare", wl_prepare, "make the data file if it is missing; print its size and\n"
      "              how much of it the page cache holds" },
    { "warmup", wl_warmup, "time to 90% of the steady hit ratio after a restart,\n"
      "              zipf pins, pool 1/8 of the file: warm (bp_warm from a dump)\n"
      "              against cold, alternated --rounds times: warm_speedup" },
    { "resize", wl_resize, "zipf pins (10% for write) by 8 threads while one more\n"
      "              resizes the pool up by half, back, down by half, back:\n"
      "              resize times, pin latency during resizes and between" },
    { "trace", wl_trace, "replay the page-reference trace FILE (one page number a\n"
      "              line, # comments, .gz read directly): hit ratio and elapsed" },
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static void usage(FILE *to)
{
    fprintf(to,
        "usage: " PROG " [OPTIONS] WORKLOAD\n"
        "       " PROG " [OPTIONS] trace FILE\n"
        "\n"
        "Measure a bpool buffer pool over a data file (O_DIRECT + libaio).\n"
        "Each measurement prints one result line: key=value pairs, or a JSON\n"
        "object with --json.  Progress goes to stderr when it is a terminal.\n"
        "\n"
        "workloads:\n");
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(to, "  %-11s %s\n", workloads[i].name, workloads[i].help);
    fprintf(to,
        "\n"
        "options (the same letters mean the same in every bpool tool):\n"
        "  -f, --file PATH        data file (default ./" DEFAULT_FILE "); made and\n"
        "                         filled if missing; must not be on tmpfs\n"
        "      --file-size SIZE   size of a new data file (default 1G); an existing\n"
        "                         file of another size is refused\n"
        "  -p, --pool SIZE        pool size in bytes (default 64M; mixed, warmup:\n"
        "                         1/8 of the file); --pool-size is a deprecated\n"
        "                         alias\n"
        "  -P, --page-size SIZE   page size (default 8K)\n"
        "  -t, --threads N[,N...] threads (default: hit 1,2,4..ncpu; randread,\n"
        "                         randwrite, mixed 32; checkpoint 4 readers (and\n"
        "                         a writer); warmup 8; seqscan, seqwrite, trace\n"
        "                         and randread --stream 1)\n"
        "  -d, --duration SECS    measured time of each result (default: hit 2,\n"
        "                         randread/randwrite/mixed 10, checkpoint 5 per\n"
        "                         phase, seqscan/seqwrite/trace: one pass, at\n"
        "                         most SECS when given, 0: the whole pass;\n"
        "                         warmup: the longest a cold or warm run waits\n"
        "                         for the target, 30)\n"
        "  -w, --warmup SECS      unmeasured time first (default: hit min(0.5, d/4),\n"
        "                         randread/randwrite/mixed min(2, d/5), checkpoint\n"
        "                         min(1, d/5) per phase, warmup 15: the priming\n"
        "                         run whose last 2 s set the target; seqscan,\n"
        "                         seqwrite, trace and prepare: 0 only)\n"
        "  -D, --dist DIST        uniform, zipf or zipf:THETA (default: hit both,\n"
        "                         mixed, warmup zipf:0.99, others uniform)\n"
        "  -W, --write-pct N      mixed, resize: percent of pins that write\n"
        "                         (default: mixed 20, resize 10)\n"
        "      --pages N          pages touched (hit: default the frame count;\n"
        "                         checkpoint: half the frame count, more makes\n"
        "                         the readers miss; others: the whole file)\n"
        "  -s, --seed N           random seed of every workload's page draws\n"
        "                         (default 1): the same seed, the same pages\n"
        "      --prefetch N       randread, randwrite, mixed: each thread draws\n"
        "                         N pages (at most 1024), bp_prefetch()es them,\n"
        "                         then pins them in turn (reads in flight:\n"
        "                         threads x N)\n"
        "      --stream [N]       randread: each thread reads its random pages\n"
        "                         through a read stream of depth N (default 32);\n"
        "                         seqscan: the pass is a stream over the file's\n"
        "                         range (BP_SCAN, automatic read-ahead off) of\n"
        "                         depth N (default 128); also --stream=N\n"
        "      --overwrite        randwrite, mixed: write pins with BP_OVERWRITE\n"
        "                         (a miss is not read; the page is rewritten)\n"
        "      --rate N           randread, randwrite, mixed: N pins a second in\n"
        "                         all, each thread paced to its share (as fio's\n"
        "                         rate_iops), to compare latencies at one load;\n"
        "                         a thread late by over 10 of its pins does not\n"
        "                         catch up\n"
        "                         (default: as fast as the threads can)\n"
        "      --dirty-rate N     checkpoint: pages per second the writer dirties\n"
        "                         (default 5000; 0: as fast as it can)\n"
        "      --checkpoint-every N  checkpoint: a checkpoint after every N pages\n"
        "                         dirtied (default 0: back to back)\n"
        "      --variant LIST     hit: some of bpool,pin,write,optimistic,pread,\n"
        "                         mmap,floor\n"
        "                         (default all)\n"
        "      --dependent        hit: each page number depends on the word read\n"
        "                         from the page before, as in a tree descent (no\n"
        "                         two pins' cache misses overlap)\n"
        "      --rounds N         warmup: cold/warm pairs of runs (default 2)\n"
        "      --verify           check that every page read holds its own stamp\n"
        "      --timeline         randread, randwrite, mixed, checkpoint: before\n"
        "                         each result, one line per measured second:\n"
        "                         'timeline workload=W t=N ops=N r_ops=N w_ops=N'\n"
        "                         and p50/p99/p99.9/max of that second's read\n"
        "                         pins (r_p50_us...) and write pins (w_...);\n"
        "                         printed when the run ends\n"
        "  -j, --json             one JSON object per result line\n"
        "  -q, --quiet            no progress, even on a terminal\n"
        "  -h, --help             this help\n"
        "  -V, --version          print the version\n"
        "\n"
        "pool settings (the same in bpool-shell, bpool-stress and kvdb):\n");
    poolopt_usage(to);
    fprintf(to,
        "      (seqwrite: --coalesce SIZE makes one pass with SIZE instead of\n"
        "      the default and off)\n"
        "\n"
        "SIZE: " SIZE_GRAMMAR ",\n"
        "such as 8192, 0x2000, 64M, 1T.  Ctrl-C prints the result of the run\n"
        "in progress (interrupted=1) and exits with 130.\n"
        "exit status: 0 success, 2 bad usage, 1 other failure, 130 interrupted\n");
}

/* zipf's theta when -D gives none */
#define DEFAULT_THETA 0.99

static void parse_dist(struct bench_opts *o, const char *s)
{
    o->theta_set = false;   /* a later -D replaces an earlier one whole */
    o->theta = DEFAULT_THETA;
    if (strcmp(s, "uniform") == 0) {
        o->dist = DIST_UNIFORM;
    } else if (strncmp(s, "zipf", 4) == 0 && (s[4] == '\0' || s[4] == ':')) {
        o->dist = DIST_ZIPF;
        if (s[4] == ':') {
            char *end;
            errno = 0;
            double t = strtod(s + 5, &end);
            if (*end || errno || !(t > 0 && t < 1) || end == s + 5)
                opt_bad("--dist", s, "zipf's THETA must be above 0 and below 1");
            o->theta = t;
            o->theta_set = true;
        }
    } else {
        opt_bad("--dist", s, "want uniform, zipf or zipf:THETA");
    }
    o->dist_set = true;
}

static void parse_threads(struct bench_opts *o, const char *s)
{
    size_t n;
    uint64_t *v = opt_u64_list("--threads", s, 1, 1024, &n);
    if (n > MAX_THREAD_COUNTS) {
        free(v);
        opt_bad("--threads", s, "at most 16 thread counts");
    }
    for (size_t i = 0; i < n; i++)
        o->threads[i] = (uint32_t)v[i];
    o->nthreads = (unsigned)n;
    free(v);
}

#define VARIANT_WANT "want a list of bpool, pin, write, optimistic, pread, mmap, floor"

static unsigned parse_variants(const char *s)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "bpool", HIT_BPOOL }, { "pread", HIT_PREAD }, { "mmap", HIT_MMAP },
        { "floor", HIT_FLOOR },
        { "pin", HIT_PIN },
        { "write", HIT_WRITE },
        { "optimistic", HIT_OPT },
    };
    const unsigned n = sizeof names / sizeof names[0];
    unsigned mask = 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned i = 0;
        while (i < n && strcmp(t, names[i].name) != 0)
            i++;
        if (i == n) {
            free(copy);
            opt_bad("--variant", s, VARIANT_WANT);
        }
        mask |= names[i].bit;
    }
    free(copy);
    if (!mask)
        opt_bad("--variant", s, VARIANT_WANT);
    return mask;
}


/* The options only bpool-bench has (long only). */
enum {
    OPT_PAGES = POOLOPT_TOOL_FIRST, OPT_VARIANT, OPT_VERIFY, OPT_FILE_SIZE,
    OPT_PREFETCH, OPT_OVERWRITE, OPT_DIRTY_RATE, OPT_CKPT_EVERY, OPT_STREAM,
    OPT_TIMELINE, OPT_ROUNDS, OPT_DEPENDENT, OPT_RATE,
};

/* --stream [N]: the depth is optional, and may be the next word
 * ("--stream 32") as well as "--stream=32".  A workload's name is never a
 * number, so a next word that starts with a digit is the depth; it is
 * taken by moving optind past it, as getopt does for a required value. */
static void parse_stream(struct bench_opts *o, const char *arg, int argc,
                         char **argv)
{
    if (!arg && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
        arg = argv[optind++];
    o->stream = true;
    o->stream_depth = arg ? (unsigned)opt_u64("--stream", arg, 1, BP_MAX_STREAM_DEPTH)
                          : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        POOLOPT_LONGOPTS,
        { "file", required_argument, NULL, 'f' },
        { "file-size", required_argument, NULL, OPT_FILE_SIZE },
        { "threads", required_argument, NULL, 't' },
        { "duration", required_argument, NULL, 'd' },
        { "warmup", required_argument, NULL, 'w' },
        { "dist", required_argument, NULL, 'D' },
        { "write-pct", required_argument, NULL, 'W' },
        { "pages", required_argument, NULL, OPT_PAGES },
        { "prefetch", required_argument, NULL, OPT_PREFETCH },
        { "stream", optional_argument, NULL, OPT_STREAM },
        { "overwrite", no_argument, NULL, OPT_OVERWRITE },
        { "dirty-rate", required_argument, NULL, OPT_DIRTY_RATE },
        { "rate", required_argument, NULL, OPT_RATE },
        { "checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY },
        { "variant", required_argument, NULL, OPT_VARIANT },
        { "seed", required_argument, NULL, 's' },
        { "verify", no_argument, NULL, OPT_VERIFY },
        { "timeline", no_argument, NULL, OPT_TIMELINE },
        { "rounds", required_argument, NULL, OPT_ROUNDS },
        { "dependent", no_argument, NULL, OPT_DEPENDENT },
        { "json", no_argument, NULL, 'j' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct bench_opts o = {
        .path = DEFAULT_FILE, .page_size = BP_DEFAULT_PAGE_SIZE,
        .duration = -1, .warmup = -1, .theta = DEFAULT_THETA, .write_pct = -1,
        .variants = HIT_ALL, .seed = 1, .dirty_rate = -1,
        .progress = isatty(STDERR_FILENO),
    };
    poolopt_init(&o.pool);
    opt_prog(PROG);
    const char *ckpt_only = NULL;   /* an option only checkpoint takes */
    const char *hit_only = NULL;    /* and one only hit takes */
    int c;
    opterr = 0;     /* opt_unknown says what is wrong, in one line */
    while ((c = getopt_long(argc, argv, POOLOPT_SHORT "f:t:d:w:D:W:s:jqhV",
                            longopts, NULL)) != -1) {
        if (poolopt_take(&o.pool, c, optarg))
            continue;
        switch (c) {
        case 'f':
            if (!*optarg)
                opt_usage("-f needs a file name (it was empty)");
            o.path = optarg;
            o.given |= GIVEN_FILE;
            break;
        case OPT_FILE_SIZE:
            o.file_size = opt_size("--file-size", optarg);
            o.given |= GIVEN_FILE_SIZE;
            break;
        case 't': parse_threads(&o, optarg); break;
        case 'd': o.duration = opt_secs("--duration", optarg, true, 1e6); break;
        case 'w': o.warmup = opt_secs("--warmup", optarg, true, 1e6); break;
        case 'D': parse_dist(&o, optarg); break;
        case 'W': o.write_pct = (int)opt_u64("--write-pct", optarg, 0, 100); break;
        case OPT_PAGES: o.pages = opt_u64("--pages", optarg, 1, UINT64_MAX); break;
        case OPT_PREFETCH:
            o.prefetch = (unsigned)opt_u64("--prefetch", optarg, 1, MAX_PREFETCH);
            break;
        case OPT_OVERWRITE:
            o.overwrite = true;
            break;
        case OPT_STREAM:
            parse_stream(&o, optarg, argc, argv);
            break;
        case OPT_DIRTY_RATE:
            o.dirty_rate = (int64_t)opt_u64("--dirty-rate", optarg, 0, 100000000);
            ckpt_only = "--dirty-rate";
            break;
        case OPT_RATE:
            o.rate = opt_u64("--rate", optarg, 1, 100000000);
            break;
        case OPT_CKPT_EVERY:
            o.checkpoint_every = opt_u64("--checkpoint-every", optarg, 0, UINT64_MAX);
            o.given |= GIVEN_CHECKPOINT_EVERY;
            ckpt_only = "--checkpoint-every";
            break;
        case OPT_VARIANT:
            o.variants = parse_variants(optarg);
            o.variant_arg = optarg;
            hit_only = "--variant";
            break;
        case 's':
            o.seed = opt_u64("--seed", optarg, 0, UINT64_MAX);
            o.given |= GIVEN_SEED;
            break;
        case OPT_VERIFY: o.verify = true; break;
        case OPT_TIMELINE: o.timeline = true; break;
        case OPT_DEPENDENT:
            o.dependent = true;
            hit_only = "--dependent";
            break;
        case OPT_ROUNDS: o.rounds = (unsigned)opt_u64("--rounds", optarg, 1, 1000); break;
        case 'j': o.json = true; break;
        case 'q': o.progress = false; break;
        case 'h': usage(stdout); return 0;
        case 'V': opt_version(); return 0;
        default:
            opt_unknown(argv, optind, optopt);
        }
    }
    poolopt_check(&o.pool);
    if (o.pool.page_size)
        o.page_size = o.pool.page_size;
    /* A --pool no pool can have is refused before a data file is made. */
    if (o.pool.pool_bytes)
        bench_frames(&o, 0);
    if (optind >= argc)
        opt_usage("no workload given");
    o.workload = argv[optind++];
    const struct workload *wl = NULL;
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (strcmp(o.workload, workloads[i].name) == 0)
            wl = &workloads[i];
    if (!wl)
        opt_usage("unknown workload '%s'; choose one of hit, randread, seqscan, "
                  "randwrite, mixed, seqwrite, checkpoint, trace, warmup, "
                  "resize, prepare",
                  o.workload);
    if (wl->run == wl_trace) {
        if (optind >= argc)
            opt_usage("trace needs a trace FILE");
        o.trace = argv[optind++];
    }
    if (optind < argc)
        opt_usage("unexpected argument '%s'", argv[optind]);
    if (o.file_size && o.file_size % o.page_size)
        opt_usage("--file-size %llu is not a multiple of the page size %u",
                  (unsigned long long)o.file_size, o.page_size);
    if (o.nthreads > 1 && wl->run != wl_hit)
        opt_usage("only hit takes a list of thread counts");
    if (o.overwrite && wl->run != wl_randwrite && wl->run != wl_mixed)
        opt_usage("only randwrite and mixed take --overwrite (seqwrite always "
                  "overwrites)");
    if (o.stream && wl->run != wl_randread && wl->run != wl_seqscan)
        opt_usage("only randread and seqscan take --stream");
    if (o.stream && o.prefetch)
        opt_usage("--stream and --prefetch are two ways to keep reads in "
                  "flight: give one of them");
    if (o.timeline && wl->run != wl_randread && wl->run != wl_randwrite &&
        wl->run != wl_mixed && wl->run != wl_checkpoint)
        opt_usage("only randread, randwrite, mixed and checkpoint take --timeline");
    if (o.rate && wl->run != wl_randread && wl->run != wl_randwrite &&
        wl->run != wl_mixed)
        opt_usage("only randread, randwrite and mixed take --rate");
    if (o.rate && o.stream)
        opt_usage("--rate paces pins; a read stream (--stream) is not paced");
    if (hit_only && wl->run != wl_hit)
        opt_usage("only hit takes %s", hit_only);
    if (o.write_pct >= 0 && wl->run != wl_mixed && wl->run != wl_resize)
        opt_usage("only mixed and resize take --write-pct");
    if (o.prefetch && wl->run != wl_randread && wl->run != wl_randwrite &&
        wl->run != wl_mixed)
        opt_usage("only randread, randwrite and mixed take --prefetch");
    if (o.rounds && wl->run != wl_warmup)
        opt_usage("only warmup takes --rounds");
    /* A pass from a cold pool: time before it would eat the pass (and
     * warm the pool) unmeasured.  (-w 0, what they do, is no error.) */
    if (o.warmup > 0 && wl->run == wl_prepare)
        opt_usage("prepare takes no --warmup: it runs no workload, only makes "
                  "the data file (if it is missing) and reports it");
    if (o.warmup > 0 && (wl->run == wl_seqscan || wl->run == wl_seqwrite ||
                         wl->run == wl_trace))
        opt_usage("%s takes no --warmup: it measures one pass from a cold "
                  "pool (limit the pass with -d)", o.workload);
    if (ckpt_only && wl->run != wl_checkpoint)
        opt_usage("only checkpoint takes %s", ckpt_only);
    /* These run until their time is up: for 0, for ever.  (seqscan,
     * seqwrite and trace take 0 as the whole pass; warmup checks its
     * own.) */
    if (o.duration == 0 &&
        (wl->run == wl_hit || wl->run == wl_randread || wl->run == wl_randwrite ||
         wl->run == wl_mixed || wl->run == wl_checkpoint || wl->run == wl_resize))
        opt_usage("%s needs a duration above 0 (-d)", o.workload);
    report_init(&o);
    run_seed(o.seed);
    int status = wl->run(&o);
    return interrupted() ? EXIT_INTERRUPTED : status;
}
