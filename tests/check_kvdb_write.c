/* SPDX-License-Identifier: MIT */
/*
 * check_kvdb_write.c - examples/kvdb's changes and commits through its C
 * interface, where the command line cannot reach: pool sizes and file
 * shapes that a command's defaults never meet, arguments a command never
 * passes, and a randomized model check against a map.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "testutil.h"
#include "../examples/kvdb/keygen.h"
#include "../examples/kvdb/kvdb_int.h"

static kvdb *open_db(const char *path, uint32_t flags, uint32_t frames)
{
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = flags;
    o.pool_frames = frames;
    kvdb *db;
    int r = kvdb_open(path, &o, &db);
    ck_assert_msg(r == 0, "kvdb_open: %s", kvdb_errdetail());
    return db;
}

/* Proves keygen's recognizer: kg_unmix undoes kg_mix, and kg_is_key
 * knows each generated key - short and long ones, of any seed - and
 * nothing else: not a key cut or changed by a byte, not a user's key.
 * (kvdb mt's scanners check the values of the keys it recognizes only.) */
START_TEST(test_keygen_recognizes_its_keys)
{
    uint64_t x = 0x243f6a8885a308d3ull;
    for (int i = 0; i < 1000; i++, x = x * 6364136223846793005ull + 1)
        ck_assert_uint_eq(kg_unmix(kg_mix(x)), x);
    char k[KVDB_KEY_MAX];
    int long_keys = 0;
    size_t n;
    for (uint64_t i = 0; i < 5000; i++) {
        n = kg_key(7, i, k);
        long_keys += n > 31;
        ck_assert_msg(kg_is_key(k, n), "key %llu of seed 7 not known",
                      (unsigned long long)i);
        ck_assert(!kg_is_key(k, n - 1));
        char was = k[n - 1];
        k[n - 1] = '!';   /* (a digit changed may spell another key) */
        ck_assert(!kg_is_key(k, n));
        k[n - 1] = was;
        k[0] = 'g';
        ck_assert(!kg_is_key(k, n));
    }
    ck_assert_int_gt(long_keys, 0);
    n = kg_key(123456789, 42, k);
    ck_assert(kg_is_key(k, n));
    ck_assert(!kg_is_key("a", 1));
    ck_assert(!kg_is_key("0123456789abcdefxyz", 19));
}
END_TEST

/* Proves a commit writes a free list of more trunk pages than the pool
 * has frames: the list is as long as the file's free pages make it, the
 * pool as small as a change of the tree allows.  (Every trunk was pinned
 * at once: with 8 frames and 10 trunks the commit failed with "no frame",
 * the handle was broken, and the puts since the last commit were lost.)
 * The free pages are a file longer than its commit says, which opening
 * counts as free (a crash after the file grew). */
START_TEST(test_commit_more_trunks_than_frames)
{
    char *path = tu_path("kvdb-trunks.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE, 8);
    ck_assert_int_eq(kvdb_put(db, "a", 1, "1", 1), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    /* (8192 - 16 - 32) / 8 = 1018 free pages a trunk: 10 trunks */
    const uint64_t extra = 10 * 1018;
    int fd = open(path, O_RDWR);
    ck_assert(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_eq(ftruncate(fd, size + (off_t)(extra * 8192)), 0);
    close(fd);

    db = open_db(path, 0, 8);
    struct kvdb_stats st;
    ck_assert_int_eq(kvdb_stats(db, &st), 0);
    ck_assert_uint_ge(st.free_pages, extra);
    ck_assert_int_eq(kvdb_put(db, "b", 1, "2", 1), 0);
    int r = kvdb_commit(db);
    ck_assert_msg(r == 0, "commit: %s", kvdb_errdetail());
    ck_assert_int_eq(kvdb_put(db, "c", 1, "3", 1), 0);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    r = kvdb_close(db);
    ck_assert_msg(r == 0, "close: %s", kvdb_errdetail());

    db = open_db(path, 0, 8);
    char v[8];
    size_t vl;
    ck_assert_int_eq(kvdb_get(db, "b", 1, v, sizeof v, &vl), 0);
    ck_assert_int_eq(kvdb_get(db, "c", 1, v, sizeof v, &vl), 0);
    ck_assert_uint_eq(kvdb_count(db), 3);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

/* Proves a key or value at NULL with a length kvdb takes is refused for
 * being at NULL: the message named the limits ("keys are 1 to 1024
 * bytes", "at most 1024") of a length within them. */
START_TEST(test_null_key_or_value_named)
{
    char *path = tu_path("kvdb-null.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE, 16);
    ck_assert_int_eq(kvdb_put(db, NULL, 3, "v", 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_del(db, NULL, 3), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_get(db, NULL, 3, NULL, 0, NULL), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "key of 3 bytes at NULL");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, 5), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "value of 5 bytes at NULL");
    /* the limits, where they are what is wrong */
    ck_assert_int_eq(kvdb_put(db, "k", 0, "v", 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(),
                     "key of 0 bytes: keys are 1 to 1024 bytes");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, KVDB_VAL_MAX + 1), -EINVAL);
    ck_assert_str_eq(kvdb_errdetail(), "value of 1025 bytes: at most 1024");
    ck_assert_int_eq(kvdb_put(db, "k", 1, NULL, 0), 0);
    ck_assert_uint_eq(kvdb_count(db), 1);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

/* A randomized model check of puts and deletes: keys of 1 to 1024 bytes
 * and values of 0 to 1024, the limits often, so that leaves hold 3 to
 * hundreds of cells and splits, shares with a sibling, merges and root
 * changes meet every size; commits, closes (which compact), compactions
 * and discards (what a crash leaves) in between.  After each, what the
 * file holds is compared with a map of what it should: every key by get,
 * all of them by a scan, the count, and kvdb_check. */
#define MODEL_KEYS 600u

struct model_key {
    uint8_t key[KVDB_KEY_MAX];
    size_t klen;
    uint32_t ver[2];          /* the value's version, 0: absent; [1]:
                                 as of the last commit */
};

static struct model_key *model;

/* Value version v of key i: its length and bytes follow from both. */
static size_t model_val(uint32_t i, uint32_t v, uint8_t *out)
{
    uint64_t h = tu_mix64((uint64_t)i << 32 | v);
    size_t len = h % 4 == 0 ? KVDB_VAL_MAX : h % 4 == 1 ? 0 : h % 97;
    for (size_t b = 0; b < len; b++)
        out[b] = (uint8_t)tu_mix64(h + b);
    return len;
}

static int model_cmp(const void *a, const void *b)
{
    const struct model_key *x = *(struct model_key *const *)a,
                           *y = *(struct model_key *const *)b;
    return kvdb_keycmp(x->key, x->klen, y->key, y->klen);
}

static void model_verify(kvdb *db, const char *when, long op)
{
    uint8_t got[KVDB_VAL_MAX], want[KVDB_VAL_MAX];
    struct model_key *live[MODEL_KEYS];
    uint32_t n = 0;
    for (uint32_t i = 0; i < MODEL_KEYS; i++) {
        size_t vl = 0;
        int r = kvdb_get(db, model[i].key, model[i].klen, got, sizeof got,
                         &vl);
        if (model[i].ver[0] == 0) {
            ck_assert_msg(r == -ENOENT, "%s, op %ld: key %u (%zu bytes) "
                          "is there (%d)", when, op, i, model[i].klen, r);
            continue;
        }
        size_t wl = model_val(i, model[i].ver[0], want);
        ck_assert_msg(r == 0 && vl == wl && memcmp(got, want, wl) == 0,
                      "%s, op %ld: key %u (%zu bytes): %d, %zu bytes for "
                      "%zu", when, op, i, model[i].klen, r, vl, wl);
        live[n++] = &model[i];
    }
    ck_assert_uint_eq(kvdb_count(db), n);
    qsort(live, n, sizeof(live[0]), model_cmp);
    kvdb_cursor *c;
    ck_assert_int_eq(kvdb_cursor_open(db, NULL, 0, NULL, 0, 0, &c), 0);
    const void *k, *v;
    size_t kl, vl;
    uint32_t seen = 0;
    int r;
    while ((r = kvdb_cursor_next(c, &k, &kl, &v, &vl)) > 0) {
        ck_assert_msg(seen < n && kl == live[seen]->klen &&
                      memcmp(k, live[seen]->key, kl) == 0,
                      "%s, op %ld: the scan's key %u is not the map's", when,
                      op, seen);
        seen++;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(seen, n);
    kvdb_cursor_close(c);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
}

START_TEST(test_model_check)
{
    char *path = tu_path("kvdb-model.db");
    unlink(path);
    uint64_t rnd = 0x6b76646220u + (uint64_t)_i;
    model = calloc(MODEL_KEYS, sizeof(*model));
    ck_assert_ptr_nonnull(model);
    /* Distinct keys: a length (the limits often), a prefix most keys
     * share, and the key's number in the last bytes. */
    for (uint32_t i = 0; i < MODEL_KEYS; i++) {
        uint64_t h = tu_mix64(i + 1);
        size_t kl = h % 5 == 0 ? KVDB_KEY_MAX : h % 5 == 1 ? 2 + h % 3
                                              : 2 + (h >> 8) % KVDB_KEY_MAX;
        kl = kl > KVDB_KEY_MAX ? KVDB_KEY_MAX : kl;
        memset(model[i].key, 'k', kl - 2);
        model[i].key[kl - 2] = (uint8_t)(i >> 8);
        model[i].key[kl - 1] = (uint8_t)i;
        model[i].klen = kl;
    }
    uint32_t page = _i % 2 ? 16384 : 8192;
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = KVDB_CREATE;
    o.page_size = page;
    o.pool_frames = 64;
    kvdb *db;
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    uint32_t next_ver = 1;
    uint8_t val[KVDB_VAL_MAX];
    for (long op = 0; op < 12000; op++) {
        uint32_t i = (uint32_t)(tu_rnd(&rnd) % MODEL_KEYS);
        /* phases of mostly puts and mostly deletes: the tree grows to a
         * few levels and shrinks back, merging */
        bool put = tu_rnd(&rnd) % 100 < (op / 2000 % 2 ? 30u : 75u);
        if (put) {
            uint32_t ver = next_ver++;
            size_t vl = model_val(i, ver, val);
            int r = kvdb_put(db, model[i].key, model[i].klen, val, vl);
            ck_assert_msg(r == 0, "op %ld: put: %s", op, kvdb_errdetail());
            model[i].ver[0] = ver;
        } else {
            int r = kvdb_del(db, model[i].key, model[i].klen);
            ck_assert_msg(r == (model[i].ver[0] ? 0 : -ENOENT),
                          "op %ld: del of key %u: %d (%s)", op, i, r,
                          kvdb_errdetail());
            model[i].ver[0] = 0;
        }
        uint32_t event = (uint32_t)(tu_rnd(&rnd) % 1000);
        if (event < 10) {
            if (event < 5)
                ck_assert_int_eq(kvdb_commit(db), 0);
            else if (event < 8)
                ck_assert_int_ge(kvdb_compact(db), 0);
            else
                ck_assert_int_eq(kvdb_close(db), 0);
            for (uint32_t k = 0; k < MODEL_KEYS; k++)
                model[k].ver[1] = model[k].ver[0];
        } else if (event < 12) {
            ck_assert_int_eq(kvdb_discard(db), 0);   /* a crash */
            for (uint32_t k = 0; k < MODEL_KEYS; k++)
                model[k].ver[0] = model[k].ver[1];
        } else {
            continue;
        }
        if (event >= 8) {
            o.flags = 0;
            ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
        }
        model_verify(db, event < 5 ? "commit" : event < 8 ? "compact"
                         : event < 10 ? "reopen" : "after a crash", op);
    }
    ck_assert_int_eq(kvdb_close(db), 0);
    free(model);
    unlink(path);
}
END_TEST

/* Proves a page write that fails under the pread pager (the file may not
 * grow past a size limit here, as on a full disk) keeps the page's change
 * in memory: every put that returned 0 is read back by a get in the same
 * session, and no later commit succeeds.  (The pager used to free the
 * page's only copy at the unpin: later pins read the old bytes from the
 * file, and gets missed keys that had been put or gave wrong values.) */
START_TEST(test_pread_failed_write_keeps_change)
{
    enum { KEYS = 20000 };
    char *path = tu_path("kvdb-pread-full.db");
    unlink(path);
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = KVDB_CREATE | KVDB_NOCHECKSUMS | KVDB_NOCOMPACT;
    o.io = KVDB_IO_PREAD;
    kvdb *db;
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    char k[32], v[32], got[64];
    for (int round = 0; round < 2; round++) {   /* free pages all over */
        for (int i = 0; i < KEYS; i++) {
            int kl = snprintf(k, sizeof k, "key%07d", (i * 7919) % KEYS);
            int vl = snprintf(v, sizeof v, "v%d-%d", round, i);
            ck_assert_int_eq(kvdb_put(db, k, (size_t)kl, v, (size_t)vl), 0);
        }
        ck_assert_int_eq(kvdb_commit(db), 0);
    }
    /* While the puts run, no byte may be written past half the file (no
     * assertion there: Check's own messages go to a file too). */
    off_t size = tu_file_size(path);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit was, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    lim = was;
    lim.rlim_cur = (rlim_t)size / 2;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static char put_ok[KEYS];
    int ok = 0;
    for (int i = 0; i < KEYS; i++) {
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "new-%d", i);
        put_ok[i] = kvdb_put(db, k, (size_t)kl, v, (size_t)vl) == 0;
        ok += put_ok[i];
    }
    int commit = kvdb_commit(db);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
    ck_assert_int_gt(ok, 0);
    ck_assert_int_lt(commit, 0);
    for (int i = 0; i < KEYS; i++) {
        if (!put_ok[i])
            continue;
        int kl = snprintf(k, sizeof k, "key%07d", i);
        int vl = snprintf(v, sizeof v, "new-%d", i);
        size_t n = 0;
        int r = kvdb_get(db, k, (size_t)kl, got, sizeof got, &n);
        ck_assert_msg(r == 0 && n == (size_t)vl && memcmp(got, v, n) == 0,
                      "key %d, put with success, reads back as %d (%s)", i,
                      r, r < 0 ? kvdb_errdetail() : "");
    }
    ck_assert_int_lt(kvdb_commit(db), 0);   /* nor any later one */
    (void)kvdb_close(db);
    unlink(path);
}
END_TEST

/* Proves a commit that fails while it takes pages for the free list's
 * trunks loses no page: a free list of two trunks, one free page for the
 * first, and a file that may not grow for the second (RLIMIT_FSIZE, as a
 * full disk).  The handle is broken, but kvdb_check still finds every
 * page of the file in the tree or on a list.  (The trunk taken before the
 * failure was on no list, and the check reported it leaked.) */
START_TEST(test_failed_commit_keeps_its_trunk_pages)
{
    /* about 1.8 KiB a pair: 4 a leaf, 1250 leaves */
    enum { KEYS = 5000, KLEN = 800, VLEN = KVDB_VAL_MAX, EXTRA = 1100 };
    char *path = tu_path("kvdb-trunk-fail.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE | KVDB_NOCOMPACT, 64);
    static char v[VLEN], k[KLEN];
    memset(v, 'a', sizeof v);
    memset(k, 'k', sizeof k);
    for (int i = 0; i < KEYS; i++) {
        k[0] = (char)('0' + i / 1000), k[1] = (char)('0' + i / 100 % 10);
        k[2] = (char)('0' + i / 10 % 10), k[3] = (char)('0' + i % 10);
        ck_assert_int_eq(kvdb_put(db, k, sizeof k, v, sizeof v), 0);
    }
    ck_assert_int_eq(kvdb_close(db), 0);
    int fd = open(path, O_RDWR);
    ck_assert(fd >= 0);
    ck_assert_int_eq(ftruncate(fd, lseek(fd, 0, SEEK_END) + EXTRA * 8192), 0);
    close(fd);
    /* Copy leaves of the commit into the free pages until one is left:
     * then EXTRA - 1 pages are pending, and the commit needs two trunks. */
    db = open_db(path, KVDB_NOCOMPACT, 64);
    struct kvdb_stats st;
    ck_assert_int_eq(kvdb_stats(db, &st), 0);
    ck_assert_uint_ge(st.free_pages, EXTRA);
    memset(v, 'b', sizeof v);
    for (int i = 0; i < KEYS && st.free_pages > 1; i++) {
        k[0] = (char)('0' + i / 1000), k[1] = (char)('0' + i / 100 % 10);
        k[2] = (char)('0' + i / 10 % 10), k[3] = (char)('0' + i % 10);
        ck_assert_int_eq(kvdb_put(db, k, sizeof k, v, sizeof v), 0);
        ck_assert_int_eq(kvdb_stats(db, &st), 0);
    }
    ck_assert_uint_eq(st.free_pages, 1);
    ck_assert_uint_gt(st.pending_pages, 1018);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit was, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    lim = was;
    lim.rlim_cur = (rlim_t)tu_file_size(path);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int r = kvdb_commit(db);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
    ck_assert_msg(r < 0, "a commit that needs the file to grow past its "
                  "limit succeeded");
    ck_assert_msg(strstr(kvdb_errdetail(), "grow"), "%s", kvdb_errdetail());
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    (void)kvdb_close(db);
    db = open_db(path, 0, 64);
    ck_assert_uint_eq(kvdb_count(db), KEYS);
    ck_assert_int_eq(kvdb_check(db, stderr, 0), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
    unlink(path);
}
END_TEST

/* A put that fails half way (a split finds no frame in a pool of 5)
 * breaks the handle: every later call fails with -EIO (kvdb.h), reads
 * too - a failed split leaves pages half changed in memory, and gets,
 * mgets and scans answered from them (a key whose replace failed was
 * gone) - and kvdb_count stays that of the keys put (it counted the key
 * whose put failed).  Reopened, the file holds its last commit. */
START_TEST(test_broken_handle_refuses_reads)
{
    char *path = tu_path("kvdb-broken.db");
    unlink(path);
    kvdb *db = open_db(path, KVDB_CREATE, 5);
    static char k[KVDB_KEY_MAX], v[KVDB_VAL_MAX];
    memset(v, 'v', sizeof v);
    int i, r = 0;
    for (i = 0; i < 4000; i++) {
        memset(k, 'a', sizeof k);
        snprintf(k, sizeof k, "%06d", i);
        k[6] = 'a';
        if (i == 8)
            ck_assert_int_eq(kvdb_commit(db), 0);
        if ((r = kvdb_put(db, k, sizeof k, v, sizeof v)) != 0)
            break;
    }
    ck_assert_msg(r < 0, "4000 puts of 2 KiB into 5 frames: none failed");
    ck_assert_uint_eq(kvdb_count(db), (uint64_t)i);
    size_t vl;
    memset(k, 'a', sizeof k);
    snprintf(k, sizeof k, "%06d", 0);
    k[6] = 'a';
    ck_assert_int_eq(kvdb_get(db, k, sizeof k, v, sizeof v, &vl), -EIO);
    ck_assert_msg(strstr(kvdb_errdetail(), "broken"), "%s", kvdb_errdetail());
    struct kvdb_mget_item it = { .key = k, .klen = sizeof k };
    ck_assert_int_eq(kvdb_mget(db, &it, 1), -EIO);
    ck_assert_int_eq(it.result, -EIO);
    kvdb_cursor *c;
    ck_assert_int_eq(kvdb_cursor_open(db, NULL, 0, NULL, 0, 0, &c), -EIO);
    ck_assert_int_eq(kvdb_put(db, "x", 1, "y", 1), -EIO);
    ck_assert_int_eq(kvdb_close(db), -EIO);
    db = open_db(path, 0, 64);
    ck_assert_uint_eq(kvdb_count(db), 8);
    ck_assert_int_eq(kvdb_get(db, k, sizeof k, v, sizeof v, &vl), 0);
    ck_assert_int_eq(kvdb_close(db), 0);
}
END_TEST

/* kvdb through pread/pwrite and a bpool pool on the same file keep each
 * other out, both ways: the pool's lock is an open file description
 * lock, which kvdb's flock alone does not conflict with (a bpool-shell
 * and a kvdb --io pread both wrote the file at once). */
START_TEST(test_pread_and_a_pool_keep_each_other_out)
{
    char *path = tu_path("kvdb-pread-lock.db");
    unlink(path);
    struct kvdb_options o;
    kvdb_options_init(&o);
    o.flags = KVDB_CREATE | KVDB_NOCHECKSUMS;
    o.io = KVDB_IO_PREAD;
    kvdb *db;
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    ck_assert_int_eq(kvdb_put(db, "a", 1, "1", 1), 0);
    ck_assert_int_eq(kvdb_commit(db), 0);

    /* kvdb has it: a pool is refused. */
    bp_pool *pool = NULL;
    int r = tu_try_open(path, BP_NOHEADER, 8192, 16, &pool);
    ck_assert_msg(r == -BP_ELOCKED, "a pool on a file kvdb --io pread has "
                  "open: %d (%s)", r, r < 0 ? bp_errdetail() : "opened");
    ck_assert_int_eq(kvdb_close(db), 0);

    /* A pool has it: kvdb through pread is refused, and says so. */
    ck_assert_int_eq(tu_try_open(path, BP_NOHEADER, 8192, 16, &pool), 0);
    o.flags = KVDB_NOCHECKSUMS;
    r = kvdb_open(path, &o, &db);
    ck_assert_msg(r < 0, "kvdb --io pread opened a file a pool has open");
    ck_assert_msg(strstr(kvdb_errdetail(), "in use by another process"),
                  "the detail: %s", kvdb_errdetail());
    ck_assert_int_eq(bp_close(pool), 0);

    /* Neither has it: kvdb opens it and finds its key. */
    ck_assert_int_eq(kvdb_open(path, &o, &db), 0);
    char v[8];
    size_t vl = 0;
    ck_assert_int_eq(kvdb_get(db, "a", 1, v, sizeof v, &vl), 0);
    ck_assert_uint_eq(vl, 1);
    ck_assert_int_eq(kvdb_close(db), 0);
}
END_TEST

Suite *test_suite(void)
{
    Suite *s = suite_create("kvdb_write");
    TCase *tc = tcase_create("commit");
    tcase_add_test(tc, test_commit_more_trunks_than_frames);
    tcase_add_test(tc, test_broken_handle_refuses_reads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("model");
    tcase_add_loop_test(tc, test_model_check, 0, 2);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    tc = tcase_create("pread");
    tcase_add_test(tc, test_pread_failed_write_keeps_change);
    tcase_add_test(tc, test_failed_commit_keeps_its_trunk_pages);
    tcase_add_test(tc, test_pread_and_a_pool_keep_each_other_out);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("arguments");
    tcase_add_test(tc, test_null_key_or_value_named);
    tcase_add_test(tc, test_keygen_recognizes_its_keys);
    suite_add_tcase(s, tc);
    return s;
}
