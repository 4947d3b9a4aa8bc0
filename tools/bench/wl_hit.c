/* SPDX-License-Identifier: MIT */
/* wl_hit.c - the hit workload: what a pin of a resident page costs, next
 * to what a program would otherwise pay for the same page.
 *
 * The hit set is `pages` pages (default: as many as the pool has frames)
 * spread over the file.  Each thread replays its own precomputed sequence
 * of 2^20 page numbers (uniform or zipf over the hit set), so drawing
 * random numbers costs nothing inside the timed loop, and every variant
 * replays the same sequences:
 *
 *   bpool  bp_pin(BP_READ), load the page's first word, bp_unpin; every
 *          page was pinned once before, so every pin is a hit (the result
 *          line reports misses during the loop, which must be 0);
 *   pin    the same with bp_pin(BP_PIN): a pin without the content latch
 *          (nobody writes the pages here, so the load is safe), which
 *          shows what the shared latch of a BP_READ pin adds;
 *   write  the same with bp_pin(BP_WRITE), the page not changed: what
 *          the exclusive latch costs (taken in the pin's CAS, let go by a
 *          CAS of its own, the version moved twice);
 *   optimistic  bp_read_optimistic, load the page's first word,
 *          bp_validate (again on BP_ECHANGED, which nothing here causes):
 *          a read that writes no shared memory;
 *   pread  pread() of page_size bytes of a page the page cache holds
 *          (each page was read once before), load the first word;
 *   mmap   load the first word of the page in a shared mapping of the
 *          file (each page touched before): no system call at all;
 *   floor  the least a buffer pool can do: look the page up in an
 *          open-addressing table (16-byte slots of page and frame; the
 *          pool's page table keeps 8-byte ones and reads the page from
 *          the frame's descriptor), one atomic increment of the frame's
 *          64-byte state word, load the first word of the frame, one
 *          atomic decrement.
 *
 * With --dependent each page number depends on the word loaded from the
 * page before (as a B+tree descent's next page comes from the page it is
 * in), so no two operations' cache misses overlap; without it the
 * processor runs ahead into the next operations of a short loop (the
 * floor's, mmap's) and overlaps their misses, which a long one (a pin
 * and an unpin in a library) cannot do as much.
 *
 * Each variant runs for the same duration after a short warm-up; ns_op is
 * per thread (elapsed * threads / ops), cpu_ns_op the process's CPU time
 * per operation (the same when every thread has a CPU to itself; on a
 * busy machine the wall-clock figure grows and this one does not).  The pread and mmap variants fill
 * the page cache with the hit set: the data file's cached pages are
 * dropped again at the end (POSIX_FADV_DONTNEED).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define KEYS (1u << 20)
#define KEYMASK (KEYS - 1)
#define BATCH 256u           /* operations between two looks at the phase */

struct floor_slot {
    uint64_t page;
    uint32_t frame;
    uint32_t pad;
};

struct floor_state {
    _Atomic uint64_t v;
} __attribute__((aligned(64)));

struct floor_tab {
    struct floor_slot *slots;
    uint64_t mask;
    struct floor_state *state;
    char *arena;
    size_t arena_bytes;
};

struct hit_ctx {
    const struct bench_opts *o;
    uint32_t page_size;
    uint64_t npages;          /* hit set */
    uint64_t *set;            /* the hit set's page numbers */
    uint32_t **keys;          /* per thread: KEYS page numbers */
    bp_pool *pool;
    int fd;                   /* buffered, for pread */
    const char *map;          /* shared mapping of the file */
    size_t map_bytes;
    struct floor_tab ft;
    _Atomic uint64_t cursor;  /* for the parallel bpool warm-up */
    struct bp_stats st;       /* counted while measuring */
    int64_t pool_thp;         /* bytes of the pool's arena on huge pages */
    int64_t ft_thp;           /* the same for the floor's arena */
};

static void stats_reset(void *arg)
{
    bp_stats_reset(((struct hit_ctx *)arg)->pool);
}

static void stats_take(void *arg)
{
    struct hit_ctx *c = arg;
    bp_stats(c->pool, &c->st);
}

static inline uint64_t hash64(uint64_t x)
{
    return x * 0x9e3779b97f4a7c15ull;
}

/* ---- Workers ----------------------------------------------------------- */

/* Pin and unpin pages of the hit set in `mode`: the bpool and pin
 * variants. */
#define POOL_LOOP(MODE, WHAT)                                                \
    bool verify = ((struct hit_ctx *)w->run->arg)->o->verify;                \
    HIT_LOOP(                                                                \
        bp_page p;                                                           \
        int rc = bp_pin(c->pool, pg, (MODE), &p);                            \
        if (rc < 0) {                                                        \
            worker_fail(w, rc, (WHAT), pg);                                  \
            goto out;                                                        \
        }                                                                    \
        uint64_t v = *(const uint64_t *)p.data;                              \
        sink += v;                                                           \
        bp_unpin(&p);                                                        \
        if (verify && v != pg) {                                             \
            worker_fail_data(w, pg, v);                                      \
            goto out;                                                        \
        }                                                                    \
    )

#define HIT_LOOP(BODY)                                                       \
    struct hit_ctx *c = w->run->arg;                                         \
    const uint32_t *k = c->keys[w->id];                                      \
    uint64_t i = 0, ops = 0, sink = 0;                                       \
    for (;;) {                                                               \
        int ph = run_phase(w);                                               \
        if (ph == PH_STOP)                                                   \
            break;                                                           \
        for (unsigned j = 0; j < BATCH; j++, i++) {                          \
            uint64_t pg = k[(i + (DEPENDENT ? sink >> 63 : 0)) & KEYMASK]; \
            BODY                                                             \
        }                                                                    \
        if (ph == PH_MEASURE)                                                \
            ops += BATCH;                                                    \
        atomic_store_explicit(&w->progress, i, memory_order_relaxed);        \
    }                                                                        \
    goto out;                                                                \
out:                                                                         \
    w->ops = ops;                                                            \
    w->sink = sink;

static inline __attribute__((always_inline)) void
w_bpool_(struct worker *w, const bool DEPENDENT)
{
    POOL_LOOP(BP_READ, "bp_pin(BP_READ)")
}

static inline __attribute__((always_inline)) void
w_pin_(struct worker *w, const bool DEPENDENT)
{
    POOL_LOOP(BP_PIN, "bp_pin(BP_PIN)")
}

static inline __attribute__((always_inline)) void
w_write_(struct worker *w, const bool DEPENDENT)
{
    POOL_LOOP(BP_WRITE, "bp_pin(BP_WRITE)")
}

static inline __attribute__((always_inline)) void
w_optimistic_(struct worker *w, const bool DEPENDENT)
{
    bool verify = ((struct hit_ctx *)w->run->arg)->o->verify;
    HIT_LOOP(
        uint64_t v;
        int rc;
        do {
            bp_ticket t;
            rc = bp_read_optimistic(c->pool, pg, &t);
            if (rc < 0)
                break;
            v = *(const volatile uint64_t *)t.data;
            rc = bp_validate(&t);
        } while (rc == -BP_ECHANGED);
        if (rc < 0) {
            worker_fail(w, rc, "bp_read_optimistic", pg);
            goto out;
        }
        sink += v;
        if (verify && v != pg) {
            worker_fail_data(w, pg, v);
            goto out;
        }
    )
}

static inline __attribute__((always_inline)) void
w_pread_(struct worker *w, const bool DEPENDENT)
{
    struct hit_ctx *cc = w->run->arg;
    uint64_t *buf = aligned_alloc(4096, cc->page_size);
    if (!buf) {
        worker_fail(w, -ENOMEM, "buffer", 0);
        return;
    }
    HIT_LOOP(
        ssize_t n = pread(c->fd, buf, c->page_size, df_page_offset(c->o, pg));
        if (n != (ssize_t)c->page_size) {
            worker_fail(w, n < 0 ? -errno : -EIO, "pread", pg);
            goto out;
        }
        sink += buf[0];
    )
    free(buf);
}

static inline __attribute__((always_inline)) void
w_mmap_(struct worker *w, const bool DEPENDENT)
{
    HIT_LOOP(
        sink += *(volatile const uint64_t *)(c->map + df_page_offset(c->o, pg));
    )
}

static inline __attribute__((always_inline)) void
w_floor_(struct worker *w, const bool DEPENDENT)
{
    HIT_LOOP(
        const struct floor_tab *t = &c->ft;
        uint64_t h = hash64(pg) & t->mask;
        while (t->slots[h].page != pg)
            h = (h + 1) & t->mask;
        uint32_t f = t->slots[h].frame;
        atomic_fetch_add_explicit(&t->state[f].v, 1, memory_order_acquire);
        sink += *(const uint64_t *)(t->arena + (size_t)f * c->page_size);
        atomic_fetch_sub_explicit(&t->state[f].v, 1, memory_order_release);
    )
}

/* Each variant twice: with independent pins (the next page number known
 * before this pin ends, so the processor overlaps their cache misses),
 * and --dependent (DEPENDENT: the next index waits for the word loaded
 * from this page, as a tree descent's next page does; sink >> 63 is 0,
 * but the processor cannot know that before the load). */
#define BOTH_WAYS(name)                                                      \
    static void name(struct worker *w) { name##_(w, false); }                \
    static void name##_dep(struct worker *w) { name##_(w, true); }
BOTH_WAYS(w_bpool)
BOTH_WAYS(w_pin)
BOTH_WAYS(w_write)
BOTH_WAYS(w_optimistic)
BOTH_WAYS(w_pread)
BOTH_WAYS(w_mmap)
BOTH_WAYS(w_floor)

/* Pin every page of the hit set once, from several threads: the reads
 * that make the set resident. */
static void w_warm_bpool(struct worker *w)
{
    struct hit_ctx *c = w->run->arg;
    for (;;) {
        uint64_t i = atomic_fetch_add(&c->cursor, 1);
        if (i >= c->npages || run_phase(w) == PH_STOP)
            return;
        bp_page p;
        int rc = bp_pin(c->pool, c->set[i], BP_READ, &p);
        if (rc < 0) {
            worker_fail(w, rc, "bp_pin (warm-up)", c->set[i]);
            return;
        }
        bp_unpin(&p);
        atomic_store_explicit(&w->progress, i, memory_order_relaxed);
    }
}

/* ---- Set-up of each variant ------------------------------------------- */

static void die_oom(void)
{
    fprintf(stderr, PROG ": hit: out of memory\n");
    exit(1);
}

static void setup_bpool(struct hit_ctx *c, uint32_t frames)
{
    /* No read-ahead: the warm-up pins the set in page order, and pages
     * read ahead beyond it would take frames from the set it measures. */
    struct bench_opts o = *c->o;
    o.pool.no_readahead = true;
    c->pool = bench_open_pool(&o, frames);
    atomic_store(&c->cursor, 0);
    struct run r = {
        .label = "hit: warm-up", .nthreads = 16, .fn = w_warm_bpool, .arg = c,
        .progress = c->o->progress,
    };
    if (run_threads(&r) < 0)
        exit(1);
    /* Where the frames are: a TLB miss per pin costs more than the pin. */
    bp_page p;
    if (bp_pin(c->pool, c->set[0], BP_READ, &p) == 0) {
        c->pool_thp = thp_bytes_at(p.data);
        bp_unpin(&p);
    }
}

static void setup_pread(struct hit_ctx *c)
{
    c->fd = open(c->o->path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        fprintf(stderr, PROG ": cannot open %s: %s\n", printable(c->o->path), strerror(errno));
        exit(1);
    }
    void *buf = malloc(c->page_size);
    if (!buf)
        die_oom();
    for (uint64_t i = 0; i < c->npages; i++)
        if (pread(c->fd, buf, c->page_size, df_page_offset(c->o, c->set[i])) < 0) {
            fprintf(stderr, PROG ": pread %s: %s\n", printable(c->o->path), strerror(errno));
            exit(1);
        }
    free(buf);
}

static void setup_mmap(struct hit_ctx *c)
{
    int fd = open(c->o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, PROG ": cannot open %s: %s\n", printable(c->o->path), strerror(errno));
        exit(1);
    }
    c->map_bytes = (size_t)(c->o->file_size + c->o->data_start);   /* and the header */
    void *m = mmap(NULL, c->map_bytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        fprintf(stderr, PROG ": cannot map %s: %s\n", printable(c->o->path), strerror(errno));
        exit(1);
    }
    c->map = m;
    uint64_t sink = 0;
    for (uint64_t i = 0; i < c->npages; i++)
        sink += *(volatile const uint64_t *)(c->map + df_page_offset(c->o, c->set[i]));
    (void)sink;
}

static void setup_floor(struct hit_ctx *c)
{
    struct floor_tab *t = &c->ft;
    uint64_t cap = 16;
    while (cap < 2 * c->npages)
        cap <<= 1;
    t->mask = cap - 1;
    t->slots = malloc(cap * sizeof *t->slots);
    t->state = aligned_alloc(64, c->npages * sizeof *t->state);
    t->arena_bytes = (size_t)c->npages * c->page_size;
    void *a = mmap(NULL, t->arena_bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!t->slots || !t->state || a == MAP_FAILED)
        die_oom();
    madvise(a, t->arena_bytes, MADV_HUGEPAGE);   /* as the pool's arena */
    t->arena = a;
    for (uint64_t h = 0; h < cap; h++)
        t->slots[h].page = UINT64_MAX;
    for (uint64_t f = 0; f < c->npages; f++) {
        uint64_t pg = c->set[f];
        uint64_t h = hash64(pg) & t->mask;
        while (t->slots[h].page != UINT64_MAX)
            h = (h + 1) & t->mask;
        t->slots[h].page = pg;
        t->slots[h].frame = (uint32_t)f;
        atomic_init(&t->state[f].v, 0);
        *(uint64_t *)(t->arena + f * c->page_size) = pg;
    }
    c->ft_thp = thp_bytes_at(t->arena);
}

/* ---- The workload ---------------------------------------------------- */

static void gen_keys(struct hit_ctx *c, enum dist d, unsigned nthreads)
{
    struct picker pk;
    picker_init(&pk, d, c->npages, c->o->theta);
    for (unsigned t = 0; t < nthreads; t++) {
        struct rng r;
        rng_seed(&r, c->o->seed + 1000003ull * t + (d == DIST_ZIPF));
        for (uint32_t i = 0; i < KEYS; i++) {
            /* picker_next scatters zipf ranks over [0, npages); for the
             * uniform case any index is as good. */
            uint64_t idx = picker_next(&pk, &r);
            c->keys[t][i] = (uint32_t)c->set[idx];
        }
    }
}

int wl_hit(struct bench_opts *o)
{
    static const struct {
        unsigned bit;
        const char *name;
        worker_fn fn, fn_dependent;
    } variants[] = {
        { HIT_BPOOL, "bpool", w_bpool, w_bpool_dep },
        { HIT_PIN, "pin", w_pin, w_pin_dep },
        { HIT_WRITE, "write", w_write, w_write_dep },
        { HIT_OPT, "optimistic", w_optimistic, w_optimistic_dep },
        { HIT_PREAD, "pread", w_pread, w_pread_dep },
        { HIT_MMAP, "mmap", w_mmap, w_mmap_dep },
        { HIT_FLOOR, "floor", w_floor, w_floor_dep },
    };
    double duration = o->duration >= 0 ? o->duration : 2.0;   /* main refuses 0 */
    df_prepare(o, 0);
    struct hit_ctx c = { .o = o, .page_size = o->page_size, .fd = -1 };
    uint32_t frames = bench_frames(o, DEFAULT_POOL);
    uint64_t file_pages = df_pages(o);
    if (file_pages > UINT32_MAX) {
        fprintf(stderr, PROG ": hit: the file has more than 2^32 pages; use a "
                "smaller --file-size\n");
        return 1;
    }
    c.npages = o->pages ? o->pages : frames;
    if (c.npages > frames)
        c.npages = frames;   /* more would not be all hits */
    if (c.npages > file_pages)
        c.npages = file_pages;

    /* The hit set: pages spread over the whole file. */
    uint64_t mult = scatter_mult(file_pages, SCATTER_GOLDEN);
    c.set = malloc(c.npages * sizeof *c.set);
    if (!c.set)
        die_oom();
    for (uint64_t i = 0; i < c.npages; i++)
        c.set[i] = scatter(i, file_pages, mult);

    /* Without -t: 1, 2, 4... up to the CPUs, and the CPUs.  Here, not in
     * the options: their JSON says null for what the workload chose. */
    uint32_t threads[MAX_THREAD_COUNTS];
    unsigned nthreads = 0;
    if (o->nthreads) {
        memcpy(threads, o->threads, o->nthreads * sizeof *threads);
        nthreads = o->nthreads;
    } else {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (ncpu < 1)
            ncpu = 1;
        for (long t = 1; t < ncpu && nthreads < MAX_THREAD_COUNTS - 1; t *= 2)
            threads[nthreads++] = (uint32_t)t;
        threads[nthreads++] = (uint32_t)(ncpu > 1024 ? 1024 : ncpu);
    }
    unsigned maxt = 1;
    for (unsigned i = 0; i < nthreads; i++)
        if (threads[i] > maxt)
            maxt = threads[i];
    c.keys = calloc(maxt, sizeof *c.keys);
    if (!c.keys)
        die_oom();
    for (unsigned t = 0; t < maxt; t++)
        if (!(c.keys[t] = malloc(KEYS * sizeof **c.keys)))
            die_oom();

    df_drop_cache(o->path);
    if (o->variants & (HIT_BPOOL | HIT_PIN | HIT_WRITE | HIT_OPT))
        setup_bpool(&c, frames);
    if (o->variants & HIT_PREAD)
        setup_pread(&c);
    if (o->variants & HIT_MMAP)
        setup_mmap(&c);
    if (o->variants & HIT_FLOOR)
        setup_floor(&c);

    enum dist dists[2] = { DIST_UNIFORM, DIST_ZIPF };
    unsigned ndists = 2;
    if (o->dist_set) {
        dists[0] = o->dist;
        ndists = 1;
    }
    double warmup = o->warmup >= 0 ? o->warmup : (duration / 4 < 0.5 ? duration / 4 : 0.5);
    int status = 0;
    for (unsigned d = 0; d < ndists && !status; d++) {
        gen_keys(&c, dists[d], maxt);
        for (unsigned ti = 0; ti < nthreads && !status; ti++) {
            for (unsigned v = 0; v < sizeof variants / sizeof variants[0]; v++) {
                if (!(o->variants & variants[v].bit))
                    continue;
                char label[64];
                snprintf(label, sizeof label, "hit %s %s x%u", variants[v].name,
                         dist_name(dists[d]), threads[ti]);
                struct run r = {
                    .label = label, .nthreads = threads[ti],
                    .fn = o->dependent ? variants[v].fn_dependent : variants[v].fn,
                    .arg = &c, .warmup = warmup,
                    .duration = duration, .progress = o->progress,
                    .at_measure = c.pool ? stats_reset : NULL,
                    .at_stop = c.pool ? stats_take : NULL,
                };
                if (run_threads(&r) < 0) {
                    status = 1;
                    break;
                }
                report_begin("hit");
                report_str("variant", variants[v].name);
                report_str("dist", dist_name(dists[d]));
                if (dists[d] == DIST_ZIPF)
                    report_dbl("theta", o->theta, 2);
                report_u64("threads", threads[ti]);
                report_u64("dependent", o->dependent);
                report_u64("pages", c.npages);
                report_u64("page_size", o->page_size);
                report_u64("file_size", o->file_size);
                report_u64("ops", r.ops);
                report_dbl("elapsed_s", r.elapsed, 3);
                report_dbl("ops_s", (double)r.ops / r.elapsed, 0);
                report_dbl("ns_op", r.elapsed * 1e9 * threads[ti] / (double)r.ops, 1);
                report_dbl("cpu_ns_op", r.cpu * 1e9 / (double)r.ops, 1);
                bool pool_variant = variants[v].bit & (HIT_BPOOL | HIT_PIN | HIT_WRITE | HIT_OPT);
                if (pool_variant) {
                    report_u64("hits", c.st.hits);
                    report_u64("misses", c.st.misses);
                    report_u64("frames", frames);
                }
                /* How much of the frames' memory huge pages back. */
                if (pool_variant)
                    report_dbl("thp_mib", c.pool_thp < 0 ? NAN : (double)c.pool_thp / 1048576.0, 1);
                if (variants[v].bit == HIT_FLOOR)
                    report_dbl("thp_mib", c.ft_thp < 0 ? NAN : (double)c.ft_thp / 1048576.0, 1);
                report_end();
            }
        }
    }

    if (c.pool)
        bench_close_pool(c.pool, o->path, NULL);
    if (c.fd >= 0)
        close(c.fd);
    if (c.map)
        munmap((void *)c.map, c.map_bytes);
    if (c.ft.arena)
        munmap(c.ft.arena, c.ft.arena_bytes);
    free(c.ft.slots);
    free(c.ft.state);
    if (o->variants & (HIT_PREAD | HIT_MMAP))
        df_drop_cache(o->path);
    for (unsigned t = 0; t < maxt; t++)
        free(c.keys[t]);
    free(c.keys);
    free(c.set);
    return status;
}
