/* SPDX-License-Identifier: MIT */
/* sqlite_bench.c - the `kvdb bench` measurement run on SQLite, for
 * comparison (examples/kvdb/bench.sh builds and runs it; it is not part of
 * the kvdb program and the build does not need SQLite).
 *
 *     sqlite_bench FILE N [--lookups M] [--commit-every C] [--cache-kb KB]
 *                  [--seed S] [--page-size B] [--threads T]
 *
 * The same keys and values as kvdb's bench (keygen.c), in a WITHOUT ROWID
 * table of BLOB key and value; PRAGMA cache_size set to KB KiB (the pool
 * size kvdb is given); WAL journal with synchronous=FULL, so that every
 * COMMIT is durable as a kvdb_commit is.  Phase 1 inserts N keys in
 * transactions of C (0: one, committed after the last insert); phase 2
 * closes, drops the file from the page cache, reopens and times M random
 * lookups of present keys after an untimed warm-up of M/4; with
 * --threads T, the lookups once more by 2, 4, ... up to T threads from a
 * cold start, each with a connection of its own and
 * KB/threads of cache (the same memory in all), WAL letting them read at
 * once (lookups_per_s_t2 and so on).  Prints one line in the format of `kvdb bench`, with the
 * page cache held by the database and its WAL after each phase.
 *
 * Build: cc -O2 -I. sqlite_bench.c keygen.c benchutil.c -lsqlite3 -pthread
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
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

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_bench: %s: %s\n", what,
            db ? sqlite3_errmsg(db) : "out of memory");
    exit(2);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite_bench: %s: %s\n", sql, err ? err : "?");
        exit(2);
    }
}

static double file_mb(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0;
}

static sqlite3 *open_db(const char *path, uint64_t cache_kib, uint32_t ps)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, "open");
    /* The lookup threads open their connections at once, and the journal
     * mode's pragma takes a lock: wait for it rather than fail. */
    sqlite3_busy_timeout(db, 10000);
    char sql[256];
    snprintf(sql, sizeof(sql), "PRAGMA page_size=%u", ps);
    exec(db, sql);
    snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%llu",
             (unsigned long long)cache_kib);
    exec(db, sql);
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, "PRAGMA synchronous=FULL");
    return db;
}

/* A lookup thread of the multi-threaded phase (bench_threads): a
 * connection of its own, with a share of the cache. */
struct mt {
    const char *path;
    uint64_t seed, n, cache_kib;
    uint32_t ps;
};

static void mt_main(struct bench_thread *t)
{
    const struct mt *m = t->arg;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    sqlite3 *db = open_db(m->path, m->cache_kib, m->ps);
    sqlite3_stmt *get;
    if (sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &get,
                           NULL) != SQLITE_OK)
        die(db, "prepare select");
    uint64_t rng = bench_rng_seed(m->seed, t->id), warm = t->lookups / 4;
    for (uint64_t i = 0; i < warm + t->lookups; i++) {
        if (i == warm)
            bench_thread_warm(t);
        size_t kl = kg_key(m->seed, bench_rng_next(&rng) % m->n, key);
        sqlite3_bind_blob(get, 1, key, (int)kl, SQLITE_STATIC);
        int r = sqlite3_step(get);
        if (r == SQLITE_ROW) {
            const void *v = sqlite3_column_blob(get, 0);
            int vl = sqlite3_column_bytes(get, 0);
            if (vl > 0 && v != NULL)
                memcpy(val, v, (size_t)vl);
        } else if (r == SQLITE_DONE) {
            t->missing++;
        } else {
            die(db, "select");
        }
        sqlite3_reset(get);
    }
    sqlite3_finalize(get);
    sqlite3_close(db);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (argc - 3) % 2 != 0) {
        fprintf(stderr, "usage: sqlite_bench FILE N [--lookups M] "
                "[--commit-every C] [--cache-kb KB] [--seed S] "
                "[--page-size B] [--threads T]\n");
        return 2;
    }
    const char *path = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    uint64_t lookups = bench_arg(argc, argv, "--lookups", n);
    uint64_t every = bench_arg(argc, argv, "--commit-every", 10000);
    uint64_t cache_kb = bench_arg(argc, argv, "--cache-kb", 65536);
    uint64_t seed = bench_arg(argc, argv, "--seed", 42);
    uint32_t ps = (uint32_t)bench_arg(argc, argv, "--page-size", 8192);
    uint64_t max_threads = bench_arg(argc, argv, "--threads", 1);
    if (max_threads == 0 || max_threads > 64) {
        fprintf(stderr, "sqlite_bench: --threads: want 1 to 64\n");
        return 2;
    }
    if (n == 0) {
        fprintf(stderr, "sqlite_bench: N must be > 0\n");
        return 2;
    }
    /* --commit-every 0, as kvdb bench takes it: no commit along the way,
     * one after the last insert */
    if (every == 0)
        every = UINT64_MAX;
    char wal[4096], shm[4096];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    const char *old[] = {path, wal, shm};
    for (int i = 0; i < 3; i++) {
        if (unlink(old[i]) != 0 && errno != ENOENT) {
            perror(old[i]);
            return 2;
        }
    }

    /* Phase 1: inserts */
    sqlite3 *db = open_db(path, cache_kb, ps);
    exec(db, "CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv VALUES (?1, ?2)",
                           -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare insert");
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    double t0 = bench_now(), peak_mb = 0;
    exec(db, "BEGIN");
    for (uint64_t i = 0; i < n; i++) {
        size_t kl = kg_key(seed, i, key), vl = kg_val(key, kl, 0, val);
        sqlite3_bind_blob(ins, 1, key, (int)kl, SQLITE_STATIC);
        sqlite3_bind_blob(ins, 2, val, (int)vl, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(ins);
        if ((i + 1) % every == 0) {
            exec(db, "COMMIT");
            exec(db, "BEGIN");
            double now_mb = file_mb(path) + file_mb(wal);
            if (now_mb > peak_mb)
                peak_mb = now_mb;
        }
    }
    exec(db, "COMMIT");
    double t_ins = bench_now() - t0;
    double pc_ins = bench_page_cache_mb(path) + bench_page_cache_mb(wal);
    sqlite3_finalize(ins);
    double end_mb = file_mb(path) + file_mb(wal), t_close = bench_now();
    if (end_mb > peak_mb)
        peak_mb = end_mb;
    if (sqlite3_close(db) != SQLITE_OK)
        die(db, "close");
    t_close = bench_now() - t_close;
    double fmb = file_mb(path);

    /* Phase 2: lookups from a cold page cache, by one thread (the
     * figure lookups_per_s), then by 2, 4, ... each with a connection of
     * its own and a share of the cache. */
    uint64_t missing = 0;
    double lk_per_s = 0, pc_lk = 0, mt_per_s[8] = {0};
    unsigned mt_n = 0;
    for (unsigned t = 1; t <= max_threads && mt_n < 8; t *= 2) {
        struct mt m = { .path = path, .seed = seed, .n = n,
                        .cache_kib = cache_kb / t, .ps = ps };
        int err = 0;
        bench_drop_cache(path);
        bench_drop_cache(wal);
        double per_s = bench_threads(t, lookups, mt_main, &m, &missing, &err);
        if (t == 1) {
            lk_per_s = per_s;
            pc_lk = bench_page_cache_mb(path) + bench_page_cache_mb(wal);
        } else {
            mt_per_s[mt_n++] = per_s;
        }
    }
    printf("bench io=sqlite frames=0 pool_mb=%.1f page=%u keys=%llu "
           "file_mb=%.1f peak_mb=%.1f close_s=%.3f inserts_per_s=%.0f "
           "lookups=%llu lookups_per_s=%.0f "
           "page_cache_mb_after_inserts=%.1f page_cache_mb_after_lookups=%.1f"
           " missing=%llu",
           (double)cache_kb / 1024.0, ps, (unsigned long long)n, fmb, peak_mb,
           t_close,
           (double)n / t_ins, (unsigned long long)lookups,
           lk_per_s, pc_ins, pc_lk,
           (unsigned long long)missing);
    for (unsigned i = 0; i < mt_n; i++)
        printf(" lookups_per_s_t%u=%.0f", 2u << i, mt_per_s[i]);
    printf("\n");
    return missing ? 1 : 0;
}
