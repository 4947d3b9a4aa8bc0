/* SPDX-License-Identifier: MIT */
/* cli_bench.c - measurements: bench (inserts/s, lookups/s one key at a
 * time and BENCH_MGET keys per kvdb_mget, and how much of the file the
 * kernel's page cache holds afterwards) and hotscan (whether a full scan
 * leaves the index pages in the pool). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../../tools/common/printable.h"
#include "../../tools/common/parse.h"
#include "../../tools/common/json.h"
#include "benchutil.h"
#include "keygen.h"

/* CPU time of the calling thread: on a machine shared with other jobs,
 * a steadier measure of a single-threaded phase than the elapsed time,
 * which counts the time the thread waited for a core. */
static double thread_cpu_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BENCH_MGET 16   /* keys per kvdb_mget in the batched lookups */
#define KVDB_BENCH_THREADS_MAX 64   /* bench --threads (bench_threads' limit) */

struct lookup_run {
    double elapsed, cpu;      /* the timed part */
    uint64_t reads, missing;
    struct kvdb_stats s1, s2; /* before and after the timed part */
};

/* `lookups` random present keys after an untimed warm-up of a quarter
 * as many, one kvdb_get each (batch 1) or `batch` per kvdb_mget (the
 * last one fewer when `lookups` is not a multiple of it). */
static int time_lookups(kvdb *db, uint64_t seed, uint64_t n, uint64_t lookups,
                        uint32_t batch, struct lookup_run *lr)
{
    static char keys[BENCH_MGET][KVDB_KEY_MAX], vals[BENCH_MGET][KVDB_VAL_MAX];
    struct kvdb_mget_item it[BENCH_MGET];
    uint64_t rng = bench_rng_seed(seed, 0);
    uint64_t warm = lookups / 4 / batch * batch;  /* whole batches */
    double t1 = 0, cpu1 = 0;
    memset(lr, 0, sizeof(*lr));
    for (uint64_t i = 0, end = warm + lookups; i < end; i += batch) {
        uint32_t b = end - i < batch ? (uint32_t)(end - i) : batch;
        if (i >= warm && t1 == 0) {
            kvdb_stats(db, &lr->s1);
            t1 = now_sec();
            cpu1 = thread_cpu_sec();
        }
        for (uint32_t k = 0; k < b; k++) {
            size_t kl = kg_key(seed, bench_rng_next(&rng) % n, keys[k]);
            it[k] = (struct kvdb_mget_item){ .key = keys[k], .klen = kl,
                                             .val = vals[k],
                                             .cap = KVDB_VAL_MAX };
        }
        int r;
        if (batch == 1) {
            r = kvdb_get(db, keys[0], it[0].klen, vals[0], KVDB_VAL_MAX,
                         &it[0].vlen);
            it[0].result = r == -ENOENT ? r : 0;
        } else {
            r = kvdb_mget(db, it, b);
        }
        if (r < 0 && r != -ENOENT)
            return r;
        for (uint32_t k = 0; k < b; k++)
            lr->missing += it[k].result == -ENOENT;
    }
    lr->elapsed = now_sec() - t1;
    lr->cpu = thread_cpu_sec() - cpu1;
    kvdb_stats(db, &lr->s2);
    lr->reads = lr->s2.reads - lr->s1.reads;
    return 0;
}

/* A lookup thread of bench_threads on one handle: its own random keys. */
struct mt_lookups {
    kvdb *db;
    uint64_t seed, n;
};

static void mt_lookup_main(struct bench_thread *t)
{
    const struct mt_lookups *m = t->arg;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    uint64_t rng = bench_rng_seed(m->seed, t->id), warm = t->lookups / 4;
    for (uint64_t i = 0; i < warm + t->lookups; i++) {
        if (i == warm)
            bench_thread_warm(t);
        size_t kl = kg_key(m->seed, bench_rng_next(&rng) % m->n, key), vl;
        int r = kvdb_get(m->db, key, kl, val, KVDB_VAL_MAX, &vl);
        if (r == -ENOENT)
            t->missing++;
        else if (r < 0 && !t->err)
            t->err = r;
    }
}

/* A JSON option: its value when the command line gave it, else null. */
static void json_given_u64(struct json *j, bool given, const char *key,
                           uint64_t val)
{
    if (given)
        json_u64(j, key, val);
    else
        json_null(j, key);
}

/* Frames of the pool that bench_may_replace opens an old file with: it
 * reads the meta page and the free list's trunks, one page at a time. */
#define BENCH_CHECK_FRAMES 16

/* May bench remove FILE and make it anew?  Yes for a kvdb file, whichever
 * pager made it, that no process has open: kvdb_open says so, or why not
 * (reported).  The command line's pool and page size are for the new
 * file, not this one (its pages may be of another size): it is opened
 * with a small pool of its own, unchanged, and closed.  Through the pread
 * pager, a file made with bpool's page checksums is opened with bpool:
 * pread cannot verify them, but the file is kvdb's all the same, and
 * bench makes it anew without them. */
static int bench_may_replace(const struct cli *c)
{
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.io = c->o.io;
    o.pool_frames = BENCH_CHECK_FRAMES;
    o.flags = KVDB_NOCOMPACT;
    kvdb *old;
    int r = kvdb_open(c->path, &o, &old);
    if (r == -EOPNOTSUPP && o.io == KVDB_IO_PREAD) {
        o.io = KVDB_IO_BPOOL;
        r = kvdb_open(c->path, &o, &old);
    }
    if (r < 0) {
        report(r, c->path);
        return r;
    }
    (void)kvdb_close(old);   /* unchanged: nothing to commit */
    return 0;
}

int cmd_bench(struct cli *c, int argc, char **argv)
{
    static const char *const opts[] = {"lookups", "commit-every", "seed",
                                       "threads", NULL};
    static const char *const flags[] = {"json", NULL};
    struct args a;
    uint64_t n;
    bool ok = true;
    if (!args_parse(&a, argc, argv, opts, flags))
        return EX_ERR;   /* args_parse said why */
    if (a.pos != 1) {
        fprintf(stderr, "kvdb: usage: bench N [--lookups M] "
                "[--commit-every C] [--seed S] [--threads T] [--json]\n");
        opt_try_help();
        return EX_ERR;
    }
    /* A bad count is named (in load's words), not left to the usage. */
    if (!parse_u64(a.posv[0], &n)) {
        fprintf(stderr, "kvdb: bench: N wants a whole number below 2^64, "
                "not \"%s\"\n", printable(a.posv[0]));
        opt_try_help();
        return EX_ERR;
    }
    if (n == 0) {
        fprintf(stderr, "kvdb: bench: N 0: want 1 or more\n");
        opt_try_help();
        return EX_ERR;
    }
    bool json = c->json || args_flag(&a, "json");
    uint64_t lookups = arg_u64(&a, "lookups", n, &ok);
    uint64_t every = arg_u64(&a, "commit-every", 10000, &ok);
    uint64_t seed = arg_u64(&a, "seed", 42, &ok);
    /* --threads T: the lookups once more, by 2, 4, ... up to T threads */
    uint64_t max_threads = arg_u64(&a, "threads", 1, &ok);
    if (!ok) {
        opt_try_help();   /* after arg_u64's line */
        return EX_ERR;
    }
    if (lookups == 0) {
        fprintf(stderr, "kvdb: bench: --lookups 0: want 1 or more\n");
        opt_try_help();
        return EX_ERR;
    }
    if (max_threads == 0 || max_threads > KVDB_BENCH_THREADS_MAX) {
        fprintf(stderr, "kvdb: bench: --threads %llu: want 1 to %d\n",
                (unsigned long long)max_threads, KVDB_BENCH_THREADS_MAX);
        opt_try_help();
        return EX_ERR;
    }
    /* bench recreates FILE: only a kvdb file that nobody has open (it
     * would go on writing into the removed file, and lose it all), or
     * none at all.  kvdb_open says which, as every other command does:
     * an empty file is none of kvdb's either (get refuses it too), and is
     * left as it is, its mode included. */
    struct stat there;
    if (stat(c->path, &there) == 0 && bench_may_replace(c) < 0) {
        fprintf(stderr, "kvdb: bench: %s is left as it is (bench "
                "recreates only a kvdb file no process has open; name "
                "another file)\n", printable(c->path));
        return EX_ERR;
    }
    if (unlink(c->path) != 0 && errno != ENOENT) {
        fprintf(stderr, "kvdb: bench: cannot remove %s: %s\n", printable(c->path),
                strerror(errno));
        return EX_ERR;
    }
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    kvdb *db;
    int r;
    /* Phase 1: inserts, committed every `every` and at the end. */
    if (open_db(c, true, &db) < 0)
        return EX_ERR;
    double t0 = now_sec(), t_commit = 0;   /* t_commit: inside kvdb_commit */
    for (uint64_t i = 0; i <= n; i++) {
        if (i < n) {
            size_t kl = kg_key(seed, i, key);
            if ((r = kvdb_put(db, key, kl, val, kg_val(key, kl, 0, val))) < 0) {
                report(r, "bench insert");
                kvdb_close(db);
                return EX_ERR;
            }
        }
        /* Every `every` inserts, and once after the last. */
        if (i == n || (every && (i + 1) % every == 0)) {
            double tc = now_sec();
            if ((r = kvdb_commit(db)) < 0) {
                report(r, "bench commit");
                kvdb_close(db);
                return EX_ERR;
            }
            t_commit += now_sec() - tc;
        }
    }
    double t_ins = now_sec() - t0;
    struct kvdb_stats s0;
    kvdb_stats(db, &s0);
    double pc_ins = bench_page_cache_mb(c->path);
    /* The close compacts the file (kvdb_close): timed apart, and the file
     * measured after it as well as at its peak, before it. */
    double t_close = now_sec();
    if ((r = kvdb_close(db)) < 0)
        return report(r, "close");
    t_close = now_sec() - t_close;
    struct stat sb;
    double file_mb = stat(c->path, &sb) == 0 ? (double)sb.st_size / 1048576.0
                                              : NAN;
    double peak_mb = (double)s0.pages * s0.page_size / 1048576.0;
    /* Phase 2: cold start, a quarter untimed to warm up, then timed;
     * phase 3: the same, from a cold start again, BENCH_MGET keys per
     * kvdb_mget. */
    struct lookup_run one, many;
    double pc_lk = 0;
    for (int phase = 0; phase < 2; phase++) {
        bench_drop_cache(c->path);
        if (open_db(c, false, &db) < 0)
            return EX_ERR;
        r = time_lookups(db, seed, n, lookups, phase ? BENCH_MGET : 1,
                         phase ? &many : &one);
        if (r < 0) {
            report(r, phase ? "bench mget" : "bench lookup");
            kvdb_close(db);
            return EX_ERR;
        }
        if (phase == 0) {
            pc_lk = bench_page_cache_mb(c->path);
            if ((r = kvdb_close(db)) < 0)
                return report(r, "close");
        }
    }
    /* Phase 4: 2, 4, ... threads, each from a cold start. */
    double mt_per_s[8] = {0};
    unsigned mt_n = 0;
    for (unsigned t = 2; t <= max_threads && mt_n < 8; t *= 2, mt_n++) {
        if ((r = kvdb_close(db)) < 0)
            return report(r, "close");
        bench_drop_cache(c->path);
        if (open_db(c, false, &db) < 0)
            return EX_ERR;
        uint64_t miss = 0;
        struct mt_lookups m = { .db = db, .seed = seed, .n = n };
        r = 0;
        mt_per_s[mt_n] = bench_threads(t, lookups, mt_lookup_main, &m, &miss, &r);
        if (r < 0) {
            report(r, "bench lookup");
            kvdb_close(db);
            return EX_ERR;
        }
        one.missing += miss;
    }
    double t_lk = one.elapsed, cpu_lk = one.cpu;
    struct kvdb_stats s1 = one.s1, s2 = one.s2;
    uint64_t missing = one.missing + many.missing;
    uint64_t pins = (s2.hits - s1.hits) + (s2.misses - s1.misses);
    /* The pages the tree uses: the file less its free, freed-but-pending
     * and quarantined pages (copy-on-write leaves the last copies free). */
    uint64_t unused = s0.free_pages + s0.pending_pages + s0.quarantined;
    double live_mb = (double)(s0.pages > unused ? s0.pages - unused : 0) *
                     s0.page_size / 1048576.0;
    if (json) {         /* the bpool tools' convention: tools/common/json.h */
        /* The options as given, null for those left to kvdb's or
         * bpool's default (doc/tools.md); the result has the values
         * used. */
        struct json j;
        json_begin(&j, stdout);
        json_object(&j, "options");
        json_str(&j, "file", c->path);
        if (c->given & CLI_GIVEN_IO)
            json_str(&j, "io", c->o.io == KVDB_IO_PREAD ? "pread" : "bpool");
        else
            json_null(&j, "io");
        json_given_u64(&j, c->given & CLI_GIVEN_FRAMES, "frames",
                       c->o.pool_frames);
        json_given_u64(&j, c->given & CLI_GIVEN_POOL, "pool_bytes",
                       c->o.pool_bytes);
        json_given_u64(&j, c->given & CLI_GIVEN_PAGE_SIZE, "page_size",
                       c->o.page_size);
        if (c->given & CLI_GIVEN_CHECKSUMS)
            json_bool(&j, "checksums", !(c->o.flags & KVDB_NOCHECKSUMS));
        else
            json_null(&j, "checksums");
        json_u64(&j, "keys", n);
        json_given_u64(&j, args_get(&a, "lookups"), "lookups", lookups);
        json_given_u64(&j, args_get(&a, "commit-every"), "commit_every",
                       every);
        json_given_u64(&j, args_get(&a, "seed"), "seed", seed);
        json_given_u64(&j, args_get(&a, "threads"), "threads", max_threads);
        json_end_object(&j);
        json_str(&j, "command", "bench");
        json_str(&j, "io", s0.io);
        json_u64(&j, "frames", s0.frames);
        json_u64(&j, "page_size", s0.page_size);
        json_bool(&j, "checksums", s0.checksums);
        json_u64(&j, "lookups", lookups);
        json_u64(&j, "commit_every", every);
        json_u64(&j, "seed", seed);
        json_u64(&j, "threads", max_threads);
        json_dbl(&j, "pool_mib", (double)s0.frames * s0.page_size / 1048576.0, 1);
        json_dbl(&j, "file_mib", file_mb, 1);
        json_dbl(&j, "peak_file_mib", peak_mb, 1);
        json_dbl(&j, "close_s", t_close, 3);
        json_dbl(&j, "live_mib", live_mb, 1);
        json_dbl(&j, "insert_elapsed_s", t_ins, 3);
        json_dbl(&j, "inserts_s", (double)n / t_ins, 0);
        json_dbl(&j, "insert_commit_s", t_commit, 3);
        json_u64(&j, "insert_reads", s0.reads);
        json_u64(&j, "insert_writes", s0.writes);
        json_u64(&j, "insert_write_requests", s0.write_requests);
        json_dbl(&j, "lookup_elapsed_s", t_lk, 3);
        json_dbl(&j, "lookups_s", (double)lookups / t_lk, 0);
        json_dbl(&j, "lookup_cpu_s", cpu_lk, 3);
        json_dbl(&j, "lookups_per_cpu_s", (double)lookups / cpu_lk, 0);
        json_dbl(&j, "hit_ratio", pins ? (double)(s2.hits - s1.hits) / (double)pins : NAN, 4);
        json_dbl(&j, "miss_ratio", pins ? (double)(s2.misses - s1.misses) / (double)pins : NAN, 4);
        json_dbl(&j, "reads_per_lookup", (double)(s2.reads - s1.reads) / (double)lookups, 3);
        json_dbl(&j, "page_cache_mib_after_inserts", pc_ins, 1);
        json_dbl(&j, "page_cache_mib_after_lookups", pc_lk, 1);
        json_u64(&j, "mget_batch", BENCH_MGET);
        json_dbl(&j, "mget_lookup_elapsed_s", many.elapsed, 3);
        json_dbl(&j, "mget_lookups_s", (double)lookups / many.elapsed, 0);
        json_dbl(&j, "mget_lookups_per_cpu_s", (double)lookups / many.cpu, 0);
        json_dbl(&j, "mget_reads_per_lookup", (double)many.reads / (double)lookups, 3);
        for (unsigned i = 0; i < mt_n; i++) {
            char k[48];
            snprintf(k, sizeof(k), "lookups_s_threads_%u", 2u << i);
            json_dbl(&j, k, mt_per_s[i], 0);
        }
        json_u64(&j, "missing", missing);
        json_end(&j);
    } else {
        printf("bench io=%s frames=%u pool_mb=%.1f page=%u keys=%llu "
               "file_mb=%.1f peak_mb=%.1f close_s=%.3f live_mb=%.1f "
               "inserts_per_s=%.0f insert_commit_s=%.3f insert_reads=%llu "
               "insert_writes=%llu insert_write_requests=%llu lookups=%llu "
               "lookups_per_s=%.0f "
               "lookups_per_cpu_s=%.0f lookup_hit_ratio=%.3f "
               "reads_per_lookup=%.3f "
               "page_cache_mb_after_inserts=%.1f page_cache_mb_after_lookups=%.1f"
               " mget_batch=%u mget_lookups_per_s=%.0f mget_lookups_per_cpu_s=%.0f"
               " mget_reads_per_lookup=%.3f missing=%llu",
               s0.io, s0.frames, (double)s0.frames * s0.page_size / 1048576.0,
               s0.page_size, (unsigned long long)n,
               file_mb, peak_mb, t_close, live_mb,
               (double)n / t_ins, t_commit,
               (unsigned long long)s0.reads, (unsigned long long)s0.writes,
               (unsigned long long)s0.write_requests,
               (unsigned long long)lookups, (double)lookups / t_lk,
               (double)lookups / cpu_lk,
               pins ? (double)(s2.hits - s1.hits) / (double)pins : 0.0,
               (double)(s2.reads - s1.reads) / (double)lookups, pc_ins, pc_lk,
               BENCH_MGET, (double)lookups / many.elapsed,
               (double)lookups / many.cpu,
               (double)many.reads / (double)lookups,
               (unsigned long long)missing);
        for (unsigned i = 0; i < mt_n; i++)
            printf(" lookups_per_s_t%u=%.0f", 2u << i, mt_per_s[i]);
        printf("\n");
    }
    int ex = missing ? EX_FAIL : EX_OK;
    int cr = close_db(c, db);
    return ex != EX_OK ? ex : cr;
}

int cmd_hotscan(struct cli *c, int argc, char **argv)
{
    static const char *const opts[] = {"lookups", NULL};
    static const char *const flags[] = {"no-hint", NULL};
    struct args a;
    bool ok = true;
    if (!args_parse(&a, argc, argv, opts, flags))
        return EX_ERR;   /* args_parse said why */
    if (a.pos != 0) {
        fprintf(stderr, "kvdb: usage: hotscan [--lookups M] [--no-hint]\n");
        opt_try_help();
        return EX_ERR;
    }
    uint64_t lookups = arg_u64(&a, "lookups", 20000, &ok);
    bool hint = !args_flag(&a, "no-hint");
    if (!ok) {
        opt_try_help();   /* after arg_u64's line */
        return EX_ERR;
    }
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    char key[KVDB_KEY_MAX];
    int r = 0;
    /* Lookups of random keys (present or not): every one walks the index
     * from the root, so the internal pages become the pool's hot set. */
    for (uint64_t i = 0; i < lookups && r == 0; i++) {
        r = kvdb_get(db, key, kg_key(999, i, key), NULL, 0, NULL);
        if (r == -ENOENT)
            r = 0;
    }
    uint64_t res0 = 0, res1 = 0, tot = 0, pairs = 0;
    if (r == 0)
        r = kvdb_index_residency(db, &res0, &tot);
    kvdb_cursor *cur = NULL;
    if (r == 0)
        r = kvdb_cursor_open(db, NULL, 0, NULL, 0,
                             hint ? 0 : KVDB_CURSOR_NOHINT, &cur);
    if (r == 0) {
        const void *k, *v;
        size_t kl, vl;
        while ((r = kvdb_cursor_next(cur, &k, &kl, &v, &vl)) > 0)
            pairs++;
        kvdb_cursor_close(cur);
    }
    if (r == 0)
        r = kvdb_index_residency(db, &res1, &tot);
    if (r < 0) {
        report(r, "hotscan");
        kvdb_close(db);
        return EX_ERR;
    }
    struct kvdb_stats s;
    kvdb_stats(db, &s);
    printf("hotscan: scan %s BP_SCAN: %llu pairs; index pages resident "
           "before the scan %llu/%llu, after %llu/%llu; pool %u frames, "
           "%llu prefetched\n",
           hint ? "with" : "without", (unsigned long long)pairs,
           (unsigned long long)res0, (unsigned long long)tot,
           (unsigned long long)res1, (unsigned long long)tot, s.frames,
           (unsigned long long)s.prefetch_pages);
    return close_db(c, db);
}
