/* SPDX-License-Identifier: MIT */
/* lmdb_bench.c - the `kvdb bench` measurement run on LMDB, for comparison
 * (examples/kvdb/bench.sh builds and runs it where liblmdb-dev is found;
 * it is not part of the kvdb program and the build does not need LMDB).
 *
 *     lmdb_bench FILE N [--lookups M] [--commit-every C] [--seed S]
 *                [--map-mb MB] [--threads T]
 *
 * The same keys and values as kvdb's bench (keygen.c), in LMDB's main
 * database, opened with MDB_NOSUBDIR (FILE and FILE-lock), MDB_WRITEMAP
 * (a write transaction changes the mapped file in place: without it LMDB
 * keeps a transaction's dirty pages in process memory, which a memory cap
 * punishes) and MDB_NORDAHEAD (random reads; the page cache is LMDB's only
 * cache).  A commit is durable (mdb_txn_commit syncs, as kvdb_commit and
 * SQLite's synchronous=FULL do).  Phase 1 inserts N keys in transactions
 * of C (0: one, committed after the last insert); phase 2 closes, drops
 * the file from the page cache, reopens and times M random lookups of
 * present keys, each in a read-only transaction reset and renewed between
 * lookups, after an untimed warm-up of M/4; with --threads T, the lookups
 * once more by 2, 4, ... up to T threads, each with read transactions of
 * its own, from a cold start
 * (lookups_per_s_t2 and so on).  Prints one line in the format of `kvdb bench`, with the file's
 * live size (the pages the tree uses, from mdb_env_stat) besides its size
 * (the pages up to LMDB's high-water mark: the mapped file itself is
 * sparse, as large as the map), and the page cache it held after each
 * phase.
 *
 * LMDB takes keys of at most 511 bytes: the few longer keys of keygen.c
 * (about one in 512) are left out of the inserts and the lookups, and
 * counted (skipped_keys).
 *
 * Build: cc -O2 -I. lmdb_bench.c keygen.c benchutil.c -llmdb -pthread
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "keygen.h"
#include "kvdb.h"

static void check(int rc, const char *what)
{
    if (rc != MDB_SUCCESS) {
        fprintf(stderr, "lmdb_bench: %s: %s\n", what, mdb_strerror(rc));
        exit(2);
    }
}

static MDB_env *open_env(const char *path, uint64_t map_mb)
{
    MDB_env *env;
    check(mdb_env_create(&env), "mdb_env_create");
    check(mdb_env_set_mapsize(env, (size_t)map_mb << 20), "mdb_env_set_mapsize");
    check(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_WRITEMAP | MDB_NORDAHEAD,
                       0600), "mdb_env_open");
    return env;
}

/* A lookup thread of the multi-threaded phase (bench_threads): read
 * transactions of its own on the shared environment. */
struct mt {
    MDB_env *env;
    MDB_dbi dbi;
    uint64_t seed, n;
    size_t max_key;
};

static void mt_main(struct bench_thread *t)
{
    const struct mt *m = t->arg;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    MDB_txn *txn;
    check(mdb_txn_begin(m->env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
    uint64_t rng = bench_rng_seed(m->seed, t->id), warm = t->lookups / 4;
    for (uint64_t i = 0; i < warm + t->lookups; i++) {
        if (i == warm)
            bench_thread_warm(t);
        size_t kl = kg_key(m->seed, bench_rng_next(&rng) % m->n, key);
        if (kl > m->max_key) {
            i--;          /* a key LMDB could not take: draw another */
            continue;
        }
        MDB_val k = { kl, key }, v;
        int r = mdb_get(txn, m->dbi, &k, &v);
        if (r == MDB_SUCCESS) {
            if (v.mv_size > 0 && v.mv_size <= sizeof(val))
                memcpy(val, v.mv_data, v.mv_size);
        } else if (r == MDB_NOTFOUND) {
            t->missing++;
        } else {
            check(r, "mdb_get");
        }
        mdb_txn_reset(txn);
        check(mdb_txn_renew(txn), "mdb_txn_renew");
    }
    mdb_txn_abort(txn);
}

/* Lookups/s of `threads` threads sharing `lookups`, from a cold start. */
static double lookups_mt(const char *path, uint64_t map_mb, uint64_t seed,
                         uint64_t n, uint64_t lookups, size_t max_key,
                         unsigned threads, uint64_t *missing)
{
    bench_drop_cache(path);
    MDB_env *env = open_env(path, map_mb);
    MDB_txn *txn;
    MDB_dbi dbi;
    check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
    check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
    mdb_txn_abort(txn);
    struct mt m = { .env = env, .dbi = dbi, .seed = seed, .n = n,
                    .max_key = max_key };
    int err = 0;
    double per_s = bench_threads(threads, lookups, mt_main, &m, missing, &err);
    mdb_env_close(env);
    return per_s;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: lmdb_bench FILE N [--lookups M] "
                "[--commit-every C] [--seed S] [--map-mb MB] "
                "[--threads T]\n");
        return 2;
    }
    const char *path = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    uint64_t lookups = bench_arg(argc, argv, "--lookups", n);
    uint64_t every = bench_arg(argc, argv, "--commit-every", 10000);
    uint64_t seed = bench_arg(argc, argv, "--seed", 42);
    uint64_t map_mb = bench_arg(argc, argv, "--map-mb", 4096);
    uint64_t max_threads = bench_arg(argc, argv, "--threads", 1);
    if (max_threads == 0 || max_threads > 64) {
        fprintf(stderr, "lmdb_bench: --threads: want 1 to 64\n");
        return 2;
    }
    if (n == 0) {
        fprintf(stderr, "lmdb_bench: N must be > 0\n");
        return 2;
    }
    /* --commit-every 0, as kvdb bench takes it: no commit along the way,
     * one after the last insert */
    if (every == 0)
        every = UINT64_MAX;
    char lock[4096];
    snprintf(lock, sizeof(lock), "%s-lock", path);
    const char *old[] = {path, lock};
    for (int i = 0; i < 2; i++) {
        if (unlink(old[i]) != 0 && errno != ENOENT) {
            perror(old[i]);
            return 2;
        }
    }

    /* Phase 1: inserts */
    MDB_env *env = open_env(path, map_mb);
    MDB_txn *txn;
    MDB_dbi dbi;
    check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
    check(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open");
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    size_t max_key = (size_t)mdb_env_get_maxkeysize(env);
    uint64_t skipped = 0;
    double t0 = bench_now();
    for (uint64_t i = 0; i < n; i++) {
        size_t kl = kg_key(seed, i, key), vl = kg_val(key, kl, 0, val);
        if (kl > max_key) {
            skipped++;
            continue;
        }
        MDB_val k = { kl, key }, v = { vl, val };
        check(mdb_put(txn, dbi, &k, &v, 0), "mdb_put");
        if ((i + 1) % every == 0) {
            check(mdb_txn_commit(txn), "mdb_txn_commit");
            check(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin");
        }
    }
    check(mdb_txn_commit(txn), "mdb_txn_commit");
    double t_ins = bench_now() - t0;
    double pc_ins = bench_page_cache_mb(path);
    MDB_stat st;
    MDB_envinfo info;
    check(mdb_env_stat(env, &st), "mdb_env_stat");
    check(mdb_env_info(env, &info), "mdb_env_info");
    double live_mb = (double)(st.ms_branch_pages + st.ms_leaf_pages +
                              st.ms_overflow_pages) * st.ms_psize / 1048576.0;
    double fmb = (double)(info.me_last_pgno + 1) * st.ms_psize / 1048576.0;
    unsigned psize = st.ms_psize;
    mdb_env_close(env);

    /* Phase 2: lookups from a cold page cache, by one thread (the
     * figure lookups_per_s), then by 2, 4, ... with read transactions of
     * their own. */
    uint64_t missing = 0;
    double lk_per_s = 0, pc_lk = 0, mt_per_s[8] = {0};
    unsigned mt_n = 0;
    for (unsigned t = 1; t <= max_threads && mt_n < 8; t *= 2) {
        double per_s = lookups_mt(path, map_mb, seed, n, lookups, max_key, t,
                                  &missing);
        if (t == 1) {
            lk_per_s = per_s;
            pc_lk = bench_page_cache_mb(path);
        } else {
            mt_per_s[mt_n++] = per_s;
        }
    }
    unlink(lock);
    printf("bench io=lmdb frames=0 pool_mb=0.0 page=%u keys=%llu "
           "file_mb=%.1f peak_mb=%.1f live_mb=%.1f inserts_per_s=%.0f "
           "lookups=%llu "
           "lookups_per_s=%.0f page_cache_mb_after_inserts=%.1f "
           "page_cache_mb_after_lookups=%.1f missing=%llu skipped_keys=%llu",
           psize, (unsigned long long)n, fmb, fmb, live_mb, (double)n / t_ins,
           (unsigned long long)lookups, lk_per_s, pc_ins, pc_lk,
           (unsigned long long)missing, (unsigned long long)skipped);
    for (unsigned i = 0; i < mt_n; i++)
        printf(" lookups_per_s_t%u=%.0f", 2u << i, mt_per_s[i]);
    printf("\n");
    return missing ? 1 : 0;
}
