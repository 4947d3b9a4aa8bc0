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
 * transactions of C; phase 2 closes, drops the file from the page cache,
 * reopens and times M random lookups of present keys after an untimed
 * warm-up of M/4; with --threads T, the lookups once more by 2, 4, ... up
 * to T threads from a cold start, each with a connection of its own and
 * KB/threads of cache (the same memory in all), WAL letting them read at
 * once (lookups_per_s_t2 and so on).  Prints one line in the format of `kvdb bench`, with the
 * page cache held by the database and its WAL after each phase.
 *
 * Build: cc -O2 -I. sqlite_bench.c keygen.c -lsqlite3
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keygen.h"
#include "kvdb.h"

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

/* MiB of path in the page cache (mincore over a mapping); 0 if absent */
static double cached_mb(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat sb;
    double mb = 0;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        long ps = sysconf(_SC_PAGESIZE);
        size_t n = (size_t)((sb.st_size + ps - 1) / ps);
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = malloc(n);
        if (m != MAP_FAILED && vec != NULL &&
            mincore(m, (size_t)sb.st_size, vec) == 0) {
            size_t in = 0;
            for (size_t i = 0; i < n; i++)
                in += vec[i] & 1;
            mb = (double)in * (double)ps / 1048576.0;
        }
        free(vec);
        if (m != MAP_FAILED)
            munmap(m, (size_t)sb.st_size);
    }
    close(fd);
    return mb;
}

static double file_mb(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0;
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static sqlite3 *open_db(const char *path, uint64_t cache_kib, uint32_t ps)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, "open");
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

/* One lookup thread of the multi-threaded phase: a connection of its own. */
struct mt {
    const char *path;
    uint64_t seed, n, lookups, cache_kib, missing;
    uint32_t ps;
    unsigned id;
    pthread_barrier_t *warm, *done;
    double t0, t1;           /* its timed part: after the warm-up */
};

static void *mt_main(void *arg)
{
    struct mt *m = arg;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    sqlite3 *db = open_db(m->path, m->cache_kib, m->ps);
    sqlite3_stmt *get;
    if (sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &get,
                           NULL) != SQLITE_OK)
        die(db, "prepare select");
    uint64_t rng = kg_mix(m->seed ^ ((uint64_t)m->id + 1) * 0x9e3779b97f4a7c15ull) | 1;
    uint64_t warm = m->lookups / 4;
    for (uint64_t i = 0; i < warm + m->lookups; i++) {
        if (i == warm) {
            pthread_barrier_wait(m->warm);
            m->t0 = now_sec();
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t kl = kg_key(m->seed, rng % m->n, key);
        sqlite3_bind_blob(get, 1, key, (int)kl, SQLITE_STATIC);
        int r = sqlite3_step(get);
        if (r == SQLITE_ROW) {
            const void *v = sqlite3_column_blob(get, 0);
            int vl = sqlite3_column_bytes(get, 0);
            if (vl > 0 && v != NULL)
                memcpy(val, v, (size_t)vl);
        } else if (r == SQLITE_DONE) {
            m->missing++;
        } else {
            die(db, "select");
        }
        sqlite3_reset(get);
    }
    m->t1 = now_sec();
    pthread_barrier_wait(m->done);
    sqlite3_finalize(get);
    sqlite3_close(db);
    return NULL;
}

/* Lookups/s of `threads` threads sharing `lookups`, from a cold start. */
static double lookups_mt(const char *path, const char *wal, uint64_t cache_kib,
                         uint32_t ps, uint64_t seed, uint64_t n,
                         uint64_t lookups, unsigned threads, uint64_t *missing)
{
    drop_cache(path);
    drop_cache(wal);
    pthread_barrier_t warm, done;
    pthread_barrier_init(&warm, NULL, threads + 1);
    pthread_barrier_init(&done, NULL, threads + 1);
    struct mt m[64];
    pthread_t th[64];
    for (unsigned t = 0; t < threads; t++) {
        m[t] = (struct mt){ .path = path, .seed = seed, .n = n,
                            .lookups = lookups / threads,
                            .cache_kib = cache_kib / threads, .ps = ps, .id = t,
                            .warm = &warm, .done = &done };
        if (pthread_create(&th[t], NULL, mt_main, &m[t]) != 0) {
            fprintf(stderr, "sqlite_bench: cannot start %u threads\n", threads);
            exit(2);
        }
    }
    /* The threads' own clocks: the main thread may run late. */
    pthread_barrier_wait(&warm);
    pthread_barrier_wait(&done);
    double first = 0, last = 0;
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        if (t == 0 || m[t].t0 < first)
            first = m[t].t0;
        if (m[t].t1 > last)
            last = m[t].t1;
        *missing += m[t].missing;
    }
    pthread_barrier_destroy(&warm);
    pthread_barrier_destroy(&done);
    return (double)(lookups / threads * threads) / (last - first);
}

static uint64_t arg(int argc, char **argv, const char *name, uint64_t def)
{
    for (int i = 3; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtoull(argv[i + 1], NULL, 10);
    return def;
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
    uint64_t lookups = arg(argc, argv, "--lookups", n);
    uint64_t every = arg(argc, argv, "--commit-every", 10000);
    uint64_t cache_kb = arg(argc, argv, "--cache-kb", 65536);
    uint64_t seed = arg(argc, argv, "--seed", 42);
    uint32_t ps = (uint32_t)arg(argc, argv, "--page-size", 8192);
    uint64_t max_threads = arg(argc, argv, "--threads", 1);
    if (max_threads == 0 || max_threads > 64) {
        fprintf(stderr, "sqlite_bench: --threads: want 1 to 64\n");
        return 2;
    }
    if (n == 0 || every == 0) {
        fprintf(stderr, "sqlite_bench: N and --commit-every must be > 0\n");
        return 2;
    }
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
    sqlite3_stmt *ins, *get;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv VALUES (?1, ?2)",
                           -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare insert");
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    double t0 = now_sec();
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
        }
    }
    exec(db, "COMMIT");
    double t_ins = now_sec() - t0;
    double pc_ins = cached_mb(path) + cached_mb(wal);
    sqlite3_finalize(ins);
    if (sqlite3_close(db) != SQLITE_OK)
        die(db, "close");
    double fmb = file_mb(path);

    /* Phase 2: lookups, from a cold page cache */
    drop_cache(path);
    drop_cache(wal);
    db = open_db(path, cache_kb, ps);
    if (sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &get,
                           NULL) != SQLITE_OK)
        die(db, "prepare select");
    uint64_t rng = kg_mix(seed) | 1, warm = lookups / 4, missing = 0;
    double t1 = now_sec();
    for (uint64_t i = 0; i < warm + lookups; i++) {
        if (i == warm)
            t1 = now_sec();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t kl = kg_key(seed, rng % n, key);
        sqlite3_bind_blob(get, 1, key, (int)kl, SQLITE_STATIC);
        int r = sqlite3_step(get);
        if (r == SQLITE_ROW) {
            const void *v = sqlite3_column_blob(get, 0);
            int vl = sqlite3_column_bytes(get, 0);
            if (vl > 0 && v != NULL)
                memcpy(val, v, (size_t)vl);
        } else if (r == SQLITE_DONE) {
            missing++;
        } else {
            die(db, "select");
        }
        sqlite3_reset(get);
    }
    double t_lk = now_sec() - t1;
    double pc_lk = cached_mb(path) + cached_mb(wal);
    sqlite3_finalize(get);
    sqlite3_close(db);
    double mt_per_s[8] = {0};
    unsigned mt_n = 0;
    for (unsigned t = 2; t <= max_threads && mt_n < 8; t *= 2, mt_n++)
        mt_per_s[mt_n] = lookups_mt(path, wal, cache_kb, ps, seed, n, lookups,
                                    t, &missing);
    printf("bench io=sqlite frames=0 pool_mb=%.1f page=%u keys=%llu "
           "file_mb=%.1f inserts_per_s=%.0f lookups=%llu lookups_per_s=%.0f "
           "page_cache_mb_after_inserts=%.1f page_cache_mb_after_lookups=%.1f"
           " missing=%llu",
           (double)cache_kb / 1024.0, ps, (unsigned long long)n, fmb,
           (double)n / t_ins, (unsigned long long)lookups,
           (double)lookups / t_lk, pc_ins, pc_lk,
           (unsigned long long)missing);
    for (unsigned i = 0; i < mt_n; i++)
        printf(" lookups_per_s_t%u=%.0f", 2u << i, mt_per_s[i]);
    printf("\n");
    return missing ? 1 : 0;
}
