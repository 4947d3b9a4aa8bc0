/* SPDX-License-Identifier: MIT */
/* cli_load.c - the commands that work on generated keys: load (bulk
 * random inserts with periodic commits), verify, unload (bulk deletes)
 * and mt (writers, readers, scanners and a committer at once, checking
 * every answer).  Keys and values come from keygen.c. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../../tools/common/printable.h"
#include "../../tools/common/parse.h"
#include "keygen.h"

#define MAX_THREADS 64

static void nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- */
/* A parallel loop over key indices start, start+step, ...          */
/* ---------------------------------------------------------------- */

enum job_kind { JOB_PUT, JOB_GET, JOB_ABSENT, JOB_DEL };

struct job {
    kvdb *db;
    enum job_kind kind;
    uint64_t seed, start, step, n;
    uint64_t batch;                  /* > 0: ordinals sorted by key in
                                        batches of this many */
    uint64_t *perm;                  /* ordinal -> offset, or NULL */
    atomic_uint_fast64_t next;       /* next ordinal to hand out */
    atomic_uint_fast64_t done;       /* ordinals finished */
    atomic_uint_fast64_t cur[MAX_THREADS]; /* ordinal each thread is on */
    atomic_uint_fast64_t wrong;
    atomic_int err;
    atomic_uint_fast64_t failed; /* lowest ordinal whose operation failed */
    atomic_bool stop;
    pthread_mutex_t print_mu;
};

struct worker {
    struct job *j;
    int t;
};

static void wrong(struct job *j, const char *key, size_t kl, const char *why)
{
    if (atomic_fetch_add(&j->wrong, 1) < 10) {
        pthread_mutex_lock(&j->print_mu);
        fprintf(stderr, "kvdb: key %.*s: %s\n", (int)(kl > 40 ? 40 : kl), key,
                why);
        pthread_mutex_unlock(&j->print_mu);
    }
}

static void *job_main(void *arg)
{
    struct worker *w = arg;
    struct job *j = w->j;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX], got[KVDB_VAL_MAX];
    for (;;) {
        /* Publish a lower bound of the ordinal we take before taking it,
         * so the committer's min over threads never passes it. */
        atomic_store(&j->cur[w->t], atomic_load(&j->next));
        uint64_t k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n || atomic_load(&j->stop))
            break;
        atomic_store(&j->cur[w->t], k);
        uint64_t off = j->perm ? j->perm[k] : k;
        size_t kl = kg_key(j->seed, j->start + off * j->step, key);
        size_t vl = kg_val(key, kl, 0, val), gl = 0;
        int r = 0;
        switch (j->kind) {
        case JOB_PUT:
            r = kvdb_put(j->db, key, kl, val, vl);
            break;
        case JOB_DEL:
            r = kvdb_del(j->db, key, kl);
            if (r == -ENOENT) {
                wrong(j, key, kl, "not found for deletion");
                r = 0;
            }
            break;
        case JOB_GET:
            r = kvdb_get(j->db, key, kl, got, sizeof(got), &gl);
            if (r == -ENOENT) {
                wrong(j, key, kl, "missing");
                r = 0;
            } else if (r == 0 && (gl != vl || memcmp(got, val, vl) != 0)) {
                wrong(j, key, kl, "wrong value");
            }
            break;
        case JOB_ABSENT:
            r = kvdb_get(j->db, key, kl, got, sizeof(got), &gl);
            if (r == 0)
                wrong(j, key, kl, "present, but should be absent");
            if (r == -ENOENT)
                r = 0;
            break;
        }
        if (r < 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&j->err, &zero, r)) {
                pthread_mutex_lock(&j->print_mu);
                report(r, "operation");
                pthread_mutex_unlock(&j->print_mu);
            }
            /* Its thread is done, but this ordinal is not: no
             * "committed" line may pass it. */
            uint_fast64_t low = atomic_load(&j->failed);
            while (k < low && !atomic_compare_exchange_weak(&j->failed, &low, k))
                ;
            atomic_store(&j->stop, true);
            break;
        }
        atomic_fetch_add(&j->done, 1);
    }
    atomic_store(&j->cur[w->t], UINT64_MAX);
    return NULL;
}

/* Every offset below the returned one is finished. */
static uint64_t done_prefix(struct job *j, int threads)
{
    uint64_t m = atomic_load(&j->next);
    for (int t = 0; t < threads; t++) {
        uint64_t c = atomic_load(&j->cur[t]);
        if (c < m)
            m = c;
    }
    /* After the threads' ordinals: a thread that failed records its
     * ordinal here before it leaves cur[] as finished. */
    uint64_t failed = atomic_load(&j->failed);
    if (failed < m)
        m = failed;
    if (m > j->n)
        m = j->n;
    /* sorted batches: only whole batches are a prefix of offsets */
    return j->batch && m < j->n ? m / j->batch * j->batch : m;
}

static _Thread_local uint64_t sort_seed, sort_base, sort_step;

static int by_key(const void *a, const void *b)
{
    uint64_t x = kg_hash(sort_seed, sort_base + *(const uint64_t *)a *
                                                    sort_step);
    uint64_t y = kg_hash(sort_seed, sort_base + *(const uint64_t *)b *
                                                    sort_step);
    return x < y ? -1 : x > y;
}

/* Order each batch of offsets by key (keys sort as their kg_hash). */
static int make_perm(struct job *j)
{
    /* A count whose bytes do not fit a size_t is refused, not wrapped
     * (and not handed to calloc, which sanitizers abort on). */
    if (j->n > SIZE_MAX / sizeof(uint64_t))
        return -ENOMEM;
    j->perm = calloc(j->n ? j->n : 1, sizeof(uint64_t));
    if (j->perm == NULL)
        return -ENOMEM;
    for (uint64_t k = 0; k < j->n; k++)
        j->perm[k] = k;
    sort_seed = j->seed;
    sort_base = j->start;
    sort_step = j->step;
    for (uint64_t b = 0; b < j->n; b += j->batch) {
        uint64_t len = j->n - b < j->batch ? j->n - b : j->batch;
        qsort(j->perm + b, len, sizeof(uint64_t), by_key);
    }
    return 0;
}

/* Run the job on `threads` threads.  commit_every > 0 (puts): commit
 * about every commit_every operations and print "committed I" with I the
 * first key index not known to be committed. */
static int run_job(struct job *j, int threads, uint64_t commit_every,
                   const char *name)
{
    pthread_t tid[MAX_THREADS];
    struct worker w[MAX_THREADS];
    atomic_init(&j->next, 0);
    atomic_init(&j->done, 0);
    atomic_init(&j->wrong, 0);
    atomic_init(&j->err, 0);
    atomic_init(&j->failed, UINT64_MAX);
    atomic_init(&j->stop, false);
    pthread_mutex_init(&j->print_mu, NULL);
    for (int t = 0; t < threads; t++)
        atomic_init(&j->cur[t], 0);
    bool tty = isatty(2);
    double t0 = now_sec(), shown = t0;
    int started = 0;
    for (; started < threads; started++) {
        w[started].j = j;
        w[started].t = started;
        if (pthread_create(&tid[started], NULL, job_main, &w[started]) != 0) {
            atomic_store(&j->stop, true);
            break;
        }
    }
    uint64_t committed_at = 0;
    int r = 0;
    for (;;) {
        bool all = true;
        for (int t = 0; t < started; t++)
            if (atomic_load(&j->cur[t]) != UINT64_MAX)
                all = false;
        if (all)
            break;
        nap_ms(2);
        uint64_t d = atomic_load(&j->done);
        if (commit_every && d - committed_at >= commit_every) {
            uint64_t p = done_prefix(j, started);
            committed_at = d;
            if ((r = kvdb_commit(j->db)) < 0) {
                report(r, "commit");
                atomic_store(&j->stop, true);
                break;
            }
            printf("committed %llu\n",
                   (unsigned long long)(j->start + p * j->step));
            fflush(stdout);
        }
        double now = now_sec();
        if (tty && now - shown > 0.25) {
            shown = now;
            fprintf(stderr, "\r%s: %llu/%llu (%.0f%%) %.0f/s   ", name,
                    (unsigned long long)d, (unsigned long long)j->n,
                    j->n ? 100.0 * (double)d / (double)j->n : 100.0,
                    (double)d / (now - t0));
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    if (tty)
        fprintf(stderr, "\r%60s\r", "");
    if (r == 0)
        r = atomic_load(&j->err);
    if (r == 0 && started < threads)
        r = -EAGAIN;
    if (r == 0 && commit_every) {
        if ((r = kvdb_commit(j->db)) < 0) {
            report(r, "commit");
        } else {
            printf("committed %llu\n",
                   (unsigned long long)(j->start + j->n * j->step));
        }
    }
    double secs = now_sec() - t0;
    uint64_t bad = atomic_load(&j->wrong);
    /* Stopped by an error: the keys done were as expected, but not all
     * of the N asked for were done. */
    printf("%s: %llu keys in %.2f s (%.0f/s)%s", name,
           (unsigned long long)atomic_load(&j->done), secs,
           secs > 0 ? (double)atomic_load(&j->done) / secs : 0.0,
           bad ? "" : r < 0 ? ", stopped by the error above\n"
                            : ", all as expected\n");
    if (bad)
        printf(", %llu NOT as expected\n", (unsigned long long)bad);
    fflush(stdout);
    pthread_mutex_destroy(&j->print_mu);
    if (r < 0)
        return EX_ERR;
    return bad ? EX_FAIL : EX_OK;
}

/* verify --scan: a cursor over the whole file must return exactly the
 * job's keys, in order, each with its version 0 value, and nothing else. */
static int scan_exactly(struct job *j)
{
    uint64_t *idx = j->n > SIZE_MAX / sizeof(uint64_t) ? NULL
                    : calloc(j->n ? j->n : 1, sizeof(uint64_t));
    if (idx == NULL) {
        fprintf(stderr, "kvdb: verify --scan: out of memory\n");
        return EX_ERR;
    }
    for (uint64_t k = 0; k < j->n; k++)
        idx[k] = k;
    sort_seed = j->seed;
    sort_base = j->start;
    sort_step = j->step;
    qsort(idx, j->n, sizeof(uint64_t), by_key);
    kvdb_cursor *cur;
    int r = kvdb_cursor_open(j->db, NULL, 0, NULL, 0, 0, &cur);
    if (r < 0) {
        free(idx);
        return report(r, "verify --scan");
    }
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    const void *k, *v;
    size_t kl, vl;
    uint64_t got = 0, bad = 0;
    double t0 = now_sec();
    while ((r = kvdb_cursor_next(cur, &k, &kl, &v, &vl)) > 0) {
        const char *why = NULL;
        if (got >= j->n) {
            why = "returned after all expected keys";
        } else {
            size_t el = kg_key(j->seed, j->start + idx[got] * j->step, key);
            size_t wl = kg_val(key, el, 0, val);
            if (kl != el || memcmp(k, key, kl) != 0)
                why = "not the next expected key";
            else if (vl != wl || memcmp(v, val, vl) != 0)
                why = "wrong value";
        }
        if (why != NULL && bad++ < 10)
            fprintf(stderr, "kvdb: scan: key %.*s (#%llu): %s\n",
                    (int)(kl > 40 ? 40 : kl), (const char *)k,
                    (unsigned long long)got, why);
        got++;
    }
    kvdb_cursor_close(cur);
    free(idx);
    if (r < 0)
        return report(r, "verify --scan");
    double secs = now_sec() - t0;
    if (got != j->n)
        bad++;
    printf("scan: %llu keys in order in %.2f s, %llu expected%s\n",
           (unsigned long long)got, secs, (unsigned long long)j->n,
           bad ? ", NOT as expected" : ", exactly as expected");
    return bad ? EX_FAIL : EX_OK;
}

/* Each command's options are those it uses, and an option it would
 * ignore is unknown there: load commits (--commit-every), verify alone
 * looks for absence (--absent).  --scan is verify's too; load and unload
 * take it only to refuse it in words that say so. */
static const char *const load_opts[] = {"seed", "start", "step",
                                        "commit-every", "threads", "batch",
                                        NULL};
static const char *const keys_opts[] = {"seed", "start", "step", "threads",
                                        "batch", NULL};
static const char *const load_unload_flags[] = {"sorted", "scan", NULL};
static const char *const verify_flags[] = {"absent", "sorted", "scan", NULL};

static int bulk(struct cli *c, int argc, char **argv, const char *name,
                const char *const *opts, const char *const *flags)
{
    struct args a;
    uint64_t n;
    bool ok = true;
    if (!args_parse(&a, argc, argv, opts, flags))
        return EX_ERR;   /* args_parse said why */
    if (a.pos != 1 || !parse_u64(a.posv[0], &n)) {
        if (a.pos == 1)
            fprintf(stderr, "kvdb: %s: N wants a whole number below 2^64, "
                    "not \"%s\"\n",
                    name, printable(a.posv[0]));
        else
            fprintf(stderr, "kvdb: usage: %s N [options]\n", name);
        opt_try_help();
        return EX_ERR;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return EX_ERR;
    j->n = n;
    j->seed = arg_u64(&a, "seed", 1, &ok);
    j->start = arg_u64(&a, "start", 0, &ok);
    j->step = arg_u64(&a, "step", 1, &ok);
    uint64_t every = arg_u64(&a, "commit-every", 10000, &ok);
    /* 0: no commit along the way, only run_job's after the last key,
     * named in a "committed" line as any other.  run_job takes 0 for no
     * commits at all (verify's and unload's): the close committed the
     * whole load, and no line said so. */
    if (every == 0)
        every = UINT64_MAX;
    uint64_t threads = arg_u64(&a, "threads", 1, &ok);
    j->batch = args_flag(&a, "sorted") ? n : arg_u64(&a, "batch", 0, &ok);
    if (!ok || j->step == 0 || threads == 0 || threads > MAX_THREADS) {
        if (ok && j->step == 0)
            fprintf(stderr, "kvdb: %s: --step 0: want 1 or more\n", name);
        else if (ok)
            fprintf(stderr, "kvdb: %s: --threads %llu: want 1 to %d\n", name,
                    (unsigned long long)threads, MAX_THREADS);
        opt_try_help();   /* after arg_u64's line, or the one above */
        free(j);
        return EX_ERR;
    }
    /* Key indices start, start + step, ..., and start + n * step, the
     * one "committed" names after the last: none may wrap past 2^64 - 1
     * (the keys would start over from 0). */
    if (n > (UINT64_MAX - j->start) / j->step) {
        fprintf(stderr, "kvdb: %s: %llu keys from --start %llu by --step "
                "%llu run past key index 2^64 - 1\n", name,
                (unsigned long long)n, (unsigned long long)j->start,
                (unsigned long long)j->step);
        opt_try_help();
        free(j);
        return EX_ERR;
    }
    bool load = strcmp(name, "load") == 0;
    if (args_flag(&a, "scan") &&
        (strcmp(name, "verify") != 0 || args_flag(&a, "absent"))) {
        fprintf(stderr, "kvdb: %s: --scan goes with verify (without "
                "--absent)\n", name);
        opt_try_help();
        free(j);
        return EX_ERR;
    }
    if (load)
        j->kind = JOB_PUT;
    else if (strcmp(name, "unload") == 0)
        j->kind = JOB_DEL;
    else
        j->kind = args_flag(&a, "absent") ? JOB_ABSENT : JOB_GET;
    if (j->batch && make_perm(j) < 0) {
        fprintf(stderr, "kvdb: out of memory ordering %llu keys; ask for "
                "fewer\n", (unsigned long long)j->n);
        free(j);
        return EX_ERR;
    }
    if (open_db(c, load, &j->db) < 0) {
        free(j->perm);
        free(j);
        return EX_ERR;
    }
    int ex = run_job(j, (int)threads, load ? every : 0, name);
    if (ex == EX_OK && args_flag(&a, "scan"))
        ex = scan_exactly(j);
    int cr = close_db(c, j->db);
    free(j->perm);
    free(j);
    return ex != EX_OK ? ex : cr;
}

int cmd_load(struct cli *c, int argc, char **argv)
{
    return bulk(c, argc, argv, "load", load_opts, load_unload_flags);
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
    return bulk(c, argc, argv, "verify", keys_opts, verify_flags);
}

int cmd_unload(struct cli *c, int argc, char **argv)
{
    return bulk(c, argc, argv, "unload", keys_opts, load_unload_flags);
}

/* ---------------------------------------------------------------- */
/* mt: everything at once                                           */
/* ---------------------------------------------------------------- */

/*
 * Writer w owns key indices p * W + w for positions p = 0, 1, ... At
 * position p it puts its key (version 0); then, if p % 4 == 2, it puts
 * position p - 1 again with version 1 (a replacement), and if p % 4 == 3
 * it deletes position p - 3.  Then it publishes progress = p + 1.
 * So a reader that saw progress q knows: every position below q with
 * p % 4 != 0 is present with a value of its key; p % 4 == 0 is absent if
 * p + 3 < q.  Scanners check order and that every value names its key.
 */
struct mt {
    kvdb *db;
    uint64_t seed, per;       /* positions per writer */
    int writers;
    atomic_uint_fast64_t progress[MAX_THREADS];
    atomic_bool writers_done;
    atomic_uint_fast64_t gets, mgets, scans, scanned, commits, bad;
    atomic_uint_fast64_t compacted;   /* pages cut off by compactions */
    atomic_int err;
};

struct mt_thread {
    struct mt *m;
    int id;
    uint64_t rng;
};

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void mt_error(struct mt *m, int r, const char *what)
{
    int zero = 0;
    if (atomic_compare_exchange_strong(&m->err, &zero, r))
        report(r, what);
}

static void mt_bad(struct mt *m, const char *what, const char *key, size_t kl)
{
    if (atomic_fetch_add(&m->bad, 1) < 10)
        fprintf(stderr, "kvdb: mt: %s: %.*s\n", what,
                (int)(kl > 40 ? 40 : kl), key);
}

static size_t mt_key(struct mt *m, int w, uint64_t p, char *key)
{
    return kg_key(m->seed, p * (uint64_t)m->writers + (uint64_t)w, key);
}

static void *mt_writer(void *arg)
{
    struct mt_thread *t = arg;
    struct mt *m = t->m;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    for (uint64_t p = 0; p < m->per && !atomic_load(&m->err); p++) {
        size_t kl = mt_key(m, t->id, p, key);
        int r = kvdb_put(m->db, key, kl, val, kg_val(key, kl, 0, val));
        if (r == 0 && p % 4 == 2) {
            kl = mt_key(m, t->id, p - 1, key);
            r = kvdb_put(m->db, key, kl, val, kg_val(key, kl, 1, val));
        }
        if (r == 0 && p % 4 == 3) {
            kl = mt_key(m, t->id, p - 3, key);
            r = kvdb_del(m->db, key, kl);
        }
        if (r < 0) {
            mt_error(m, r, "mt writer");
            break;
        }
        atomic_store(&m->progress[t->id], p + 1);
    }
    return NULL;
}

/* What a reader found for position p of a writer whose progress was q
 * (r: 0 or -ENOENT), against what the writers promise. */
static void mt_check(struct mt *m, uint64_t p, uint64_t q, int r,
                     const char *key, size_t kl, const char *val, size_t vl)
{
    if (p % 4 != 0 && r == -ENOENT)
        mt_bad(m, "missing", key, kl);
    else if (p % 4 == 0 && p + 3 < q && r == 0)
        mt_bad(m, "deleted but present", key, kl);
    else if (r == 0 && !kg_val_ok(key, kl, val, vl))
        mt_bad(m, "wrong value", key, kl);
}

#define MT_MGET 16   /* keys per kvdb_mget of a reader */

/* Every other round a reader looks MT_MGET keys up with one kvdb_mget. */
static int mt_mget(struct mt_thread *t)
{
    struct mt *m = t->m;
    static _Thread_local char keys[MT_MGET][KVDB_KEY_MAX];
    static _Thread_local char vals[MT_MGET][KVDB_VAL_MAX];
    struct kvdb_mget_item it[MT_MGET];
    uint64_t pos[MT_MGET], prog[MT_MGET];
    for (int i = 0; i < MT_MGET; i++) {
        int w = (int)(rnd(&t->rng) % (uint64_t)m->writers);
        prog[i] = atomic_load(&m->progress[w]);
        pos[i] = prog[i] ? rnd(&t->rng) % prog[i] : 0;
        size_t kl = mt_key(m, w, pos[i], keys[i]);
        it[i] = (struct kvdb_mget_item){ .key = keys[i], .klen = kl,
                                         .val = vals[i], .cap = KVDB_VAL_MAX };
    }
    int r = kvdb_mget(m->db, it, MT_MGET);
    atomic_fetch_add(&m->gets, MT_MGET);
    atomic_fetch_add(&m->mgets, 1);
    if (r < 0)
        return r;
    for (int i = 0; i < MT_MGET; i++) {
        if (it[i].result < 0 && it[i].result != -ENOENT)
            return it[i].result;
        if (prog[i] == 0)    /* nothing written yet: may be anything */
            continue;
        mt_check(m, pos[i], prog[i], it[i].result, keys[i], it[i].klen,
                 vals[i], it[i].vlen);
    }
    return 0;
}

static void *mt_reader(void *arg)
{
    struct mt_thread *t = arg;
    struct mt *m = t->m;
    char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX];
    while (!atomic_load(&m->writers_done) && !atomic_load(&m->err)) {
        if (rnd(&t->rng) % 2 == 0) {
            int r = mt_mget(t);
            if (r < 0) {
                mt_error(m, r, "mt reader (mget)");
                break;
            }
            continue;
        }
        int w = (int)(rnd(&t->rng) % (uint64_t)m->writers);
        uint64_t q = atomic_load(&m->progress[w]);
        if (q == 0)
            continue;
        uint64_t p = rnd(&t->rng) % q;
        size_t kl = mt_key(m, w, p, key), vl;
        int r = kvdb_get(m->db, key, kl, val, sizeof(val), &vl);
        atomic_fetch_add(&m->gets, 1);
        if (r < 0 && r != -ENOENT) {
            mt_error(m, r, "mt reader");
            break;
        }
        mt_check(m, p, q, r, key, kl, val, vl);
    }
    return NULL;
}

static void *mt_scanner(void *arg)
{
    struct mt_thread *t = arg;
    struct mt *m = t->m;
    char prev[KVDB_KEY_MAX];
    while (!atomic_load(&m->writers_done) && !atomic_load(&m->err)) {
        /* a range starting at a random 2-hex-digit prefix */
        char from[3];
        snprintf(from, sizeof(from), "%02x", (unsigned)(rnd(&t->rng) % 256));
        kvdb_cursor *cur;
        int r = kvdb_cursor_open(m->db, from, 2, NULL, 0, 0, &cur);
        if (r < 0) {
            mt_error(m, r, "mt scanner");
            break;
        }
        size_t pl = 0, n = 0;
        const void *k, *v;
        size_t kl, vl;
        while (n < 2000 && (r = kvdb_cursor_next(cur, &k, &kl, &v, &vl)) > 0) {
            if (n > 0 && kvdb_keycmp(prev, pl, k, kl) >= 0)
                mt_bad(m, "scan out of order at", k, kl);
            /* The values of generated keys (mt's, load's); the file's
             * other keys (README: it may hold some) are no business of
             * mt's. */
            if (kg_is_key(k, kl) && !kg_val_ok(k, kl, v, vl))
                mt_bad(m, "scan: wrong value", k, kl);
            memcpy(prev, k, kl);
            pl = kl;
            n++;
        }
        kvdb_cursor_close(cur);
        if (r < 0) {
            mt_error(m, r, "mt scanner");
            break;
        }
        atomic_fetch_add(&m->scans, 1);
        atomic_fetch_add(&m->scanned, n);
    }
    return NULL;
}

/* How many of the writers' keys the file holds already (an earlier mt
 * with the same seed): the writers' puts replace them and their deletes
 * remove them, so they do not add to the count the run ends with. */
static int mt_present(struct mt *m, uint64_t *n)
{
    char key[KVDB_KEY_MAX];
    *n = 0;
    for (int w = 0; w < m->writers; w++)
        for (uint64_t p = 0; p < m->per; p++) {
            int r = kvdb_get(m->db, key, mt_key(m, w, p, key), NULL, 0, NULL);
            if (r < 0 && r != -ENOENT)
                return r;
            *n += r == 0;
        }
    return 0;
}

int cmd_mt(struct cli *c, int argc, char **argv)
{
    static const char *const opts[] = {"writers", "readers", "scanners",
                                       "keys", "commit-ms", "seed",
                                       "compact-every", NULL};
    struct args a;
    bool ok = true;
    if (!args_parse(&a, argc, argv, opts, NULL))
        return EX_ERR;   /* args_parse said why */
    if (a.pos != 0) {
        fprintf(stderr, "kvdb: usage: mt [--writers W] [--readers R] "
                "[--scanners S] [--keys N] [--commit-ms MS] "
                "[--compact-every K]\n");
        opt_try_help();
        return EX_ERR;
    }
    struct mt *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return EX_ERR;
    uint64_t W = arg_u64(&a, "writers", 2, &ok);
    uint64_t R = arg_u64(&a, "readers", 2, &ok);
    uint64_t S = arg_u64(&a, "scanners", 1, &ok);
    uint64_t N = arg_u64(&a, "keys", 20000, &ok);
    uint64_t cms = arg_u64(&a, "commit-ms", 50, &ok);
    /* every Kth commit is a compaction, under the readers and scanners */
    uint64_t compact_every = arg_u64(&a, "compact-every", 0, &ok);
    m->seed = arg_u64(&a, "seed", 7, &ok);
    if (!ok || W == 0 || W > MAX_THREADS || R > MAX_THREADS ||
        S > MAX_THREADS || W + R + S > MAX_THREADS || N < 4 * W) {
        if (ok)
            fprintf(stderr, "kvdb: mt: bad numbers (1 writer at least, %d "
                    "threads at most, keys >= 4 x writers)\n", MAX_THREADS);
        opt_try_help();
        free(m);
        return EX_ERR;
    }
    m->writers = (int)W;
    m->per = N / W;
    if (open_db(c, true, &m->db) < 0) {
        free(m);
        return EX_ERR;
    }
    /* The keys that are not the writers' stay as they are. */
    uint64_t own, before = kvdb_count(m->db);
    int pr = mt_present(m, &own);
    if (pr < 0) {
        report(pr, "mt: looking for the writers' keys");
        close_db(c, m->db);
        free(m);
        return EX_ERR;
    }
    before -= own;
    pthread_t tid[MAX_THREADS];
    struct mt_thread th[MAX_THREADS];
    int nt = 0;
    double t0 = now_sec();
    for (uint64_t i = 0; i < W + R + S; i++, nt++) {
        th[nt].m = m;
        th[nt].id = (int)(i < W ? i : i - W);
        th[nt].rng = kg_mix(i + 1) | 1;
        void *(*fn)(void *) = i < W ? mt_writer
                              : i < W + R ? mt_reader : mt_scanner;
        if (pthread_create(&tid[nt], NULL, fn, &th[nt]) != 0) {
            mt_error(m, -EAGAIN, "pthread_create");
            break;
        }
    }
    /* the committer: this thread */
    for (;;) {
        bool done = true;
        for (int w = 0; w < m->writers; w++)
            if (atomic_load(&m->progress[w]) < m->per)
                done = false;
        if (done || atomic_load(&m->err))
            break;
        nap_ms((unsigned)cms);
        uint64_t k = atomic_fetch_add(&m->commits, 1) + 1;
        bool compact = compact_every && k % compact_every == 0;
        int r = compact ? kvdb_compact(m->db) : kvdb_commit(m->db);
        if (r < 0) {
            mt_error(m, r, compact ? "mt compact" : "mt commit");
            break;
        }
        if (compact)
            atomic_fetch_add(&m->compacted, (uint64_t)r);
    }
    atomic_store(&m->writers_done, true);
    for (int i = 0; i < nt; i++)
        pthread_join(tid[i], NULL);
    double secs = now_sec() - t0;
    int ex = atomic_load(&m->err) ? EX_ERR : EX_OK;
    printf("mt: %llu writers x %llu keys, %llu readers (%llu gets, %llu "
           "mgets of %d), %llu scanners (%llu scans, %llu pairs), %llu "
           "commits (%llu pages cut by compactions) in %.2f s\n",
           (unsigned long long)W, (unsigned long long)m->per,
           (unsigned long long)R, (unsigned long long)atomic_load(&m->gets),
           (unsigned long long)atomic_load(&m->mgets), MT_MGET,
           (unsigned long long)S, (unsigned long long)atomic_load(&m->scans),
           (unsigned long long)atomic_load(&m->scanned),
           (unsigned long long)atomic_load(&m->commits),
           (unsigned long long)atomic_load(&m->compacted), secs);
    /* Final state: exactly what the writers left. */
    if (ex == EX_OK) {
        char key[KVDB_KEY_MAX], val[KVDB_VAL_MAX], want[KVDB_VAL_MAX];
        uint64_t expect = before;
        for (int w = 0; w < m->writers; w++) {
            for (uint64_t p = 0; p < m->per; p++) {
                size_t kl = mt_key(m, w, p, key), vl;
                bool gone = p % 4 == 0 && p + 3 < m->per;
                uint32_t ver = p % 4 == 1 && p + 1 < m->per ? 1 : 0;
                size_t wl = kg_val(key, kl, ver, want);
                int r = kvdb_get(m->db, key, kl, val, sizeof(val), &vl);
                expect += !gone;
                if (r < 0 && r != -ENOENT) {
                    ex = report(r, "mt final get");
                    break;
                }
                if (gone ? r == 0 : r != 0)
                    mt_bad(m, gone ? "final: deleted but present"
                                   : "final: missing", key, kl);
                else if (!gone && (vl != wl || memcmp(val, want, vl)))
                    mt_bad(m, "final: wrong version", key, kl);
            }
        }
        if (kvdb_count(m->db) != expect) {
            fprintf(stderr, "kvdb: mt: count %llu, expected %llu\n",
                    (unsigned long long)kvdb_count(m->db),
                    (unsigned long long)expect);
            atomic_fetch_add(&m->bad, 1);
        }
        pr = kvdb_check(m->db, stdout, 0);
        if (pr != 0) {
            fprintf(stderr, "kvdb: mt: check found %d problems\n", pr);
            atomic_fetch_add(&m->bad, 1);
        }
    }
    uint64_t bad = atomic_load(&m->bad);
    if (ex == EX_OK && bad)
        ex = EX_FAIL;
    printf("mt: %s (%llu wrong answers)\n", ex == EX_OK ? "ok" : "FAILED",
           (unsigned long long)bad);
    int cr = close_db(c, m->db);
    free(m);
    return ex != EX_OK ? ex : cr;
}
