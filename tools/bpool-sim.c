/* bpool-sim.c - replay a page-reference trace through a replacement policy
 * and report hits and misses.
 *
 * The clockpro policy here is src/clockpro.c itself, driven through the
 * same interface (clockpro.h) the pool uses: the simulator plays the pool's
 * part - a page table, one reference bit per frame, a try_evict that never
 * finds a pinned frame - so a replay measures the code the pool runs.  lru
 * and clock are small baselines kept in this file.
 *
 * Rules of a replay (the ones ../shared/clockpro.md's figures assume):
 * cold start, every reference counted, and a reference to the page just
 * referenced is a hit that changes no state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "bpool.h"
#include "clockpro.h"

#define EXIT_USAGE 2

/* ---- Trace loading ---------------------------------------------------- */

struct trace {
    uint64_t *ref;
    size_t n, cap;
};

static void die_trace(const char *name, size_t line, const char *what)
{
    fprintf(stderr, "bpool-sim: %s:%zu: %s; a trace has one non-negative page "
            "number per line (blank lines and lines starting with # are "
            "ignored)\n", name, line, what);
    exit(EXIT_USAGE);
}

/* Parse one line; returns false for blank and comment lines. */
static bool parse_line(char *s, const char *name, size_t line, uint64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#')
        return false;
    if (*s == '-')
        die_trace(name, line, "negative page number");
    if (*s < '0' || *s > '9')
        die_trace(name, line, "not a page number");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || v >= UINT64_MAX - 1)
        die_trace(name, line, "page number too large");
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != '\0')
        die_trace(name, line, "junk after the page number");
    *out = v;
    return true;
}

/* Read a trace, plain or gzip (zlib reads both), from a file or stdin. */
static void load_trace(const char *path, struct trace *t)
{
    bool use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "<stdin>" : path;
    gzFile gz = use_stdin ? gzdopen(0, "rb") : gzopen(path, "rb");
    if (!gz) {
        fprintf(stderr, "bpool-sim: cannot open %s: %s\n", name, strerror(errno));
        exit(EXIT_USAGE);
    }
    char buf[4096];
    size_t line = 0;
    while (gzgets(gz, buf, sizeof(buf))) {
        line++;
        size_t len = strlen(buf);
        if (len == sizeof(buf) - 1 && buf[len - 1] != '\n')
            die_trace(name, line, "line too long");
        uint64_t v;
        if (!parse_line(buf, name, line, &v))
            continue;
        if (t->n == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 1 << 16;
            t->ref = realloc(t->ref, t->cap * sizeof(*t->ref));
            if (!t->ref) {
                fprintf(stderr, "bpool-sim: out of memory reading %s\n", name);
                exit(1);
            }
        }
        t->ref[t->n++] = v;
    }
    int err;
    const char *msg = gzerror(gz, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
        fprintf(stderr, "bpool-sim: %s: read error: %s\n", name,
                err == Z_ERRNO ? strerror(errno) : msg);
        exit(EXIT_USAGE);
    }
    gzclose(gz);
}

/* ---- A page table for the simulated pool ------------------------------ */

/* Linear probing with backward-shift deletion: single-threaded, so entries
 * may move and no tombstones are needed. */
struct map {
    uint64_t mask;
    uint64_t *key;   /* UINT64_MAX: empty */
    uint32_t *val;
};

static uint64_t map_slot(const struct map *m, uint64_t k)
{
    return ((k * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & m->mask;
}

static void map_init(struct map *m, uint64_t entries)
{
    uint64_t cap = 16;
    while (cap < 2 * entries)
        cap <<= 1;
    m->mask = cap - 1;
    m->key = malloc(cap * sizeof(*m->key));
    m->val = malloc(cap * sizeof(*m->val));
    if (!m->key || !m->val) {
        fprintf(stderr, "bpool-sim: out of memory\n");
        exit(1);
    }
    memset(m->key, 0xff, cap * sizeof(*m->key));
}

static void map_free(struct map *m)
{
    free(m->key);
    free(m->val);
}

static uint32_t map_get(const struct map *m, uint64_t k)
{
    for (uint64_t i = map_slot(m, k);; i = (i + 1) & m->mask) {
        if (m->key[i] == k)
            return m->val[i];
        if (m->key[i] == UINT64_MAX)
            return UINT32_MAX;
    }
}

static void map_put(struct map *m, uint64_t k, uint32_t v)
{
    uint64_t i = map_slot(m, k);
    while (m->key[i] != UINT64_MAX)
        i = (i + 1) & m->mask;
    m->key[i] = k;
    m->val[i] = v;
}

static void map_del(struct map *m, uint64_t k)
{
    uint64_t i = map_slot(m, k);
    while (m->key[i] != k) {
        if (m->key[i] == UINT64_MAX)
            return;
        i = (i + 1) & m->mask;
    }
    /* Shift later members of the run back so lookups never stop early. */
    for (uint64_t j = (i + 1) & m->mask; m->key[j] != UINT64_MAX; j = (j + 1) & m->mask) {
        uint64_t home = map_slot(m, m->key[j]);
        bool movable = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            m->key[i] = m->key[j];
            m->val[i] = m->val[j];
            i = j;
        }
    }
    m->key[i] = UINT64_MAX;
}

/* ---- Policies --------------------------------------------------------- */

struct result {
    uint64_t refs, hits, misses;
};

/* The simulated pool's frames, as clockpro.c sees them. */
struct simpool {
    uint8_t *ref;  /* reference bit per frame */
};

static int sim_try_evict(void *ctx, uint32_t f)
{
    struct simpool *sp = ctx;
    if (sp->ref[f]) {
        sp->ref[f] = 0;
        return BP__CP_REFERENCED;
    }
    return BP__CP_EVICT;
}

static bool sim_test_clear_ref(void *ctx, uint32_t f)
{
    struct simpool *sp = ctx;
    bool r = sp->ref[f];
    sp->ref[f] = 0;
    return r;
}

static bool sim_test_ref(void *ctx, uint32_t f)
{
    return ((struct simpool *)ctx)->ref[f];
}

static const struct bp__cp_frame_ops sim_ops = {
    .try_evict = sim_try_evict,
    .test_clear_ref = sim_test_clear_ref,
    .test_ref = sim_test_ref,
};

static int run_clockpro(const struct trace *t, uint32_t frames, struct result *res)
{
    struct simpool sp = { .ref = calloc(frames, 1) };
    struct bp__clockpro *cp;
    struct map pt;
    if (!sp.ref || bp__cp_create(frames, frames, &sim_ops, &sp, &cp) < 0)
        return -ENOMEM;
    map_init(&pt, frames);
    uint64_t last = UINT64_MAX;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            continue;
        }
        last = p;
        uint32_t f = map_get(&pt, p);
        if (f != UINT32_MAX) {
            sp.ref[f] = 1;
            res->hits++;
            continue;
        }
        uint64_t victim;
        if (bp__cp_admit(cp, p, 0, &f, &victim) < 0) {
            fprintf(stderr, "bpool-sim: the policy found no frame (a bug)\n");
            exit(1);
        }
        if (victim != BP__CP_NOPAGE)
            map_del(&pt, victim);
        map_put(&pt, p, f);
        res->misses++;
    }
    res->refs = t->n;
    map_free(&pt);
    bp__cp_destroy(cp);
    free(sp.ref);
    return 0;
}

/* Exact LRU: a doubly linked list of frames, most recent at head. */
static int run_lru(const struct trace *t, uint32_t frames, struct result *res)
{
    uint32_t *prev = malloc(frames * sizeof(uint32_t));
    uint32_t *next = malloc(frames * sizeof(uint32_t));
    uint64_t *page = malloc(frames * sizeof(uint64_t));
    struct map pt;
    if (!prev || !next || !page)
        return -ENOMEM;
    map_init(&pt, frames);
    uint32_t used = 0, head = UINT32_MAX, tail = UINT32_MAX;
    uint64_t last = UINT64_MAX;
#define UNLINK(f) do { \
        if (prev[f] != UINT32_MAX) next[prev[f]] = next[f]; else head = next[f]; \
        if (next[f] != UINT32_MAX) prev[next[f]] = prev[f]; else tail = prev[f]; \
    } while (0)
#define PUSH(f) do { \
        prev[f] = UINT32_MAX; next[f] = head; \
        if (head != UINT32_MAX) prev[head] = f; else tail = f; \
        head = f; \
    } while (0)
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            continue;
        }
        last = p;
        uint32_t f = map_get(&pt, p);
        if (f != UINT32_MAX) {
            UNLINK(f);
            PUSH(f);
            res->hits++;
            continue;
        }
        res->misses++;
        if (used < frames) {
            f = used++;
        } else {
            f = tail;
            UNLINK(f);
            map_del(&pt, page[f]);
        }
        page[f] = p;
        map_put(&pt, p, f);
        PUSH(f);
    }
#undef UNLINK
#undef PUSH
    res->refs = t->n;
    map_free(&pt);
    free(prev);
    free(next);
    free(page);
    return 0;
}

/* CLOCK (second chance): one hand, one reference bit per frame. */
static int run_clock(const struct trace *t, uint32_t frames, struct result *res)
{
    uint8_t *ref = calloc(frames, 1);
    uint64_t *page = malloc(frames * sizeof(uint64_t));
    struct map pt;
    if (!ref || !page)
        return -ENOMEM;
    map_init(&pt, frames);
    uint32_t used = 0, hand = 0;
    uint64_t last = UINT64_MAX;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->ref[i];
        if (p == last) {
            res->hits++;
            continue;
        }
        last = p;
        uint32_t f = map_get(&pt, p);
        if (f != UINT32_MAX) {
            ref[f] = 1;
            res->hits++;
            continue;
        }
        res->misses++;
        if (used < frames) {
            f = used++;
        } else {
            while (ref[hand]) {
                ref[hand] = 0;
                hand = (hand + 1) % frames;
            }
            f = hand;
            hand = (hand + 1) % frames;
            map_del(&pt, page[f]);
        }
        page[f] = p;
        ref[f] = 0;
        map_put(&pt, p, f);
    }
    res->refs = t->n;
    map_free(&pt);
    free(ref);
    free(page);
    return 0;
}

static const struct policy {
    const char *name;
    int (*run)(const struct trace *, uint32_t, struct result *);
    const char *help;
} policies[] = {
    { "clockpro", run_clockpro, "CLOCK-Pro, the pool's own code (src/clockpro.c)" },
    { "lru", run_lru, "exact least-recently-used" },
    { "clock", run_clock, "CLOCK (second chance), one hand" },
};
#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))

/* ---- Command line ----------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
        "usage: bpool-sim [-p POLICY] -n FRAMES[,FRAMES...] [--json] [TRACE|-]\n"
        "\n"
        "Replay a page-reference trace (one page number per line; blank lines\n"
        "and # comments ignored; .gz read directly; - or no TRACE: stdin)\n"
        "through a replacement policy with each frame count, from a cold start,\n"
        "and print one line per frame count:\n"
        "  policy=clockpro frames=1000 refs=505500 hits=494010 misses=11490 miss_ratio=0.0227\n"
        "\n"
        "options:\n"
        "  -p, --policy POLICY   replacement policy (default clockpro):\n");
    for (size_t i = 0; i < NPOLICIES; i++)
        fprintf(to, "                          %-9s %s\n", policies[i].name, policies[i].help);
    fprintf(to,
        "  -n, --frames LIST     comma-separated frame counts (each >= 4)\n"
        "  -j, --json            one JSON object per line instead\n"
        "  -v, --verbose         also print replay speed to stderr\n"
        "  -h, --help            this help\n"
        "      --version         print the version\n"
        "\n"
        "exit status: 0 success, 2 bad usage or bad trace, 1 other failure\n");
}

static int parse_frames(const char *arg, uint32_t **out)
{
    size_t n = 0, cap = 8;
    uint32_t *v = malloc(cap * sizeof(*v));
    const char *s = arg;
    for (;;) {
        char *end;
        errno = 0;
        if (*s < '0' || *s > '9')
            return -1;
        unsigned long long x = strtoull(s, &end, 10);
        if (errno || x < BP_MIN_FRAMES || x > (1u << 30) || end == s)
            return -1;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = (uint32_t)x;
        if (*end == '\0')
            break;
        if (*end != ',')
            return -1;
        s = end + 1;
    }
    *out = v;
    return (int)n;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "policy", required_argument, NULL, 'p' },
        { "frames", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const struct policy *pol = &policies[0];
    uint32_t *frames = NULL;
    int nframes = 0, c;
    bool json = false, verbose = false;

    while ((c = getopt_long(argc, argv, "p:n:jvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            pol = NULL;
            for (size_t i = 0; i < NPOLICIES; i++)
                if (strcmp(optarg, policies[i].name) == 0)
                    pol = &policies[i];
            if (!pol) {
                fprintf(stderr, "bpool-sim: unknown policy '%s'; choose one "
                        "of clockpro, lru, clock\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'n':
            nframes = parse_frames(optarg, &frames);
            if (nframes <= 0) {
                fprintf(stderr, "bpool-sim: bad frame list '%s'; give "
                        "comma-separated numbers of at least %u, e.g. "
                        "-n 100,500,1000\n", optarg, BP_MIN_FRAMES);
                return EXIT_USAGE;
            }
            break;
        case 'j': json = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("bpool-sim %s\n", BP_VERSION_STRING); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (nframes == 0 || argc - optind > 1) {
        fprintf(stderr, nframes == 0 ? "bpool-sim: -n FRAMES is required\n"
                                     : "bpool-sim: give at most one trace\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    struct trace t = { 0 };
    load_trace(optind < argc ? argv[optind] : "-", &t);

    for (int i = 0; i < nframes; i++) {
        struct result r = { 0 };
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (pol->run(&t, frames[i], &r) < 0) {
            fprintf(stderr, "bpool-sim: out of memory for %u frames\n", frames[i]);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ratio = r.refs ? (double)r.misses / (double)r.refs : 0.0;
        if (json)
            printf("{\"policy\":\"%s\",\"frames\":%u,\"refs\":%llu,\"hits\":%llu,"
                   "\"misses\":%llu,\"miss_ratio\":%.4f}\n", pol->name, frames[i],
                   (unsigned long long)r.refs, (unsigned long long)r.hits,
                   (unsigned long long)r.misses, ratio);
        else
            printf("policy=%s frames=%u refs=%llu hits=%llu misses=%llu "
                   "miss_ratio=%.4f\n", pol->name, frames[i],
                   (unsigned long long)r.refs, (unsigned long long)r.hits,
                   (unsigned long long)r.misses, ratio);
        if (verbose) {
            double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
            fprintf(stderr, "bpool-sim: %s frames=%u: %.3f s, %.2f M refs/s\n",
                    pol->name, frames[i], s, s > 0 ? (double)r.refs / s / 1e6 : 0.0);
        }
    }
    free(frames);
    free(t.ref);
    return 0;
}
