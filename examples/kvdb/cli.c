/* SPDX-License-Identifier: MIT */
/* cli.c - the kvdb program: global options, the small commands (put, get,
 * mget, del, scan, count, check, stats) and the helpers the other command
 * files share.  Run `kvdb --help`.
 *
 * The pool settings and the size grammar are those of the bpool tools
 * (tools/common/poolopt.h, parse.h), so -p, -P and --frames mean here what
 * they mean in bpool-shell, bpool-bench and bpool-stress. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "../../tools/common/parse.h"
#include "../../tools/common/poolopt.h"
#include "../../tools/common/printable.h"

static const char usage_text[] =
    "usage: kvdb [OPTIONS] FILE COMMAND [ARGS]\n"
    "\n"
    "A B+tree key-value store in one bpool data file (see README.md).\n"
    "\n"
    "Commands:\n"
    "  put KEY VALUE [KEY VALUE...]\n"
    "                       insert or replace, then commit (all or none)\n"
    "  get KEY              print the value (exit 1 if there is none)\n"
    "  mget KEY...          look the keys up at once (kvdb_mget): print\n"
    "                       KEY<tab>VALUE for each key found, in the order\n"
    "                       given (exit 1 if one is missing)\n"
    "  del KEY              delete, then commit (exit 1 if there is none)\n"
    "  scan [FROM [TO]]     print KEY<tab>VALUE for FROM <= KEY < TO, in\n"
    "                       order (--keys: keys only; --count: only how many;\n"
    "                       --no-hint: without BP_SCAN and read-ahead)\n"
    "  count                number of keys\n"
    "  check [-v]           verify the structure of the file (exit 1 if it\n"
    "                       finds problems; -v: also the shape of the tree)\n"
    "  stats                file, tree and pool statistics\n"
    "  load N               insert N generated random keys (progress on a\n"
    "                       terminal); --seed S, --start I (first key index),\n"
    "                       --step K (keys I, I+K, ...; I + N x K at most\n"
    "                       2^64 - 1), --commit-every M (default 10000;\n"
    "                       0: once, after the last key), --threads T,\n"
    "                       --batch B (insert each B keys in key order),\n"
    "                       --sorted (all N in key order: --batch N);\n"
    "                       prints `committed I` once keys below I are\n"
    "                       durable\n"
    "  verify N             check generated keys --start I .. I+N (--step K)\n"
    "                       are present with their values (--absent: absent);\n"
    "                       --seed S, --threads T, --sorted (in key order),\n"
    "                       --batch B (each B keys in key order);\n"
    "                       --scan: then a full scan must return exactly\n"
    "                       these keys, in order, and nothing else\n"
    "  unload N             delete generated keys I, I+K, ... (--start I,\n"
    "                       --step K, --seed S, --threads T, --sorted,\n"
    "                       --batch B), then commit\n"
    "  mt                   concurrency test: --writers W --readers R\n"
    "                       --scanners S --keys N --commit-ms MS\n"
    "                       (--compact-every K: every Kth commit compacts\n"
    "                       the file instead); verifies\n"
    "                       what it reads (readers: gets, and mgets of 16\n"
    "                       keys), then everything, then checks\n"
    "  hotscan              warm the index with lookups (--lookups M), scan\n"
    "                       everything, report how many index pages stayed\n"
    "                       in the pool (--no-hint: scan without BP_SCAN)\n"
    "  compact              move the tree's pages to the front of the file\n"
    "                       and cut off the free pages after them\n"
    "  bench N              benchmark: recreate FILE, insert N keys, reopen,\n"
    "                       --lookups M random lookups (default N, at\n"
    "                       least 1);\n"
    "                       --commit-every C (default 10000; 0: once, after\n"
    "                       the last insert), --seed S;\n"
    "                       --threads T: the lookups again by 2, 4, ...\n"
    "                       up to T threads (at most 64);\n"
    "                       --json: the result as a JSON object\n"
    "\n"
    "Options (before FILE; the pool settings mean what they mean in the bpool\n"
    "tools):\n"
    "  -p, --pool SIZE      pool size in bytes (default 64M); SIZE is decimal\n"
    "                       or 0x hex with an optional K, M, G or T (powers\n"
    "                       of 1024)\n"
    "      --frames N       pool size in frames (instead of --pool)\n"
    "  -P, --page-size SIZE page size of a new file, a power of two from 8K\n"
    "                       to 64K (default 8K)\n"
    "      --no-checksums   new file without bpool page checksums\n"
    "                       (--checksums: with them, the default)\n"
    "      --io bpool|pread bpool (O_DIRECT, default) or pread/pwrite through\n"
    "                       the page cache with no cache of kvdb's own (its\n"
    "                       files have no checksums; it opens none that do)\n"
    "      --stats          print the pool's counters at the end (after\n"
    "                       the command's commit)\n"
    "      --no-compact     closing does not compact the file (it does when\n"
    "                       more than a quarter of it is free)\n"
    "  -j, --json           results (bench) as JSON objects\n"
    "      --crash-after-writes N  testing: die (exit 99) just before the Nth\n"
    "                       page or meta write (also KVDB_CRASH_AFTER_WRITES)\n"
    "      --power-cut-after MS  testing: record every write to FILE, and MS\n"
    "                       ms later write the image a power cut could leave\n"
    "                       to FILE.cut and exit 98 (FILE must exist)\n"
    "      --conflict-every N  testing: every Nth optimistic page read reports\n"
    "                       a conflict (the lookup restarts)\n"
    "      --pool-size SIZE deprecated: --pool SIZE\n"
    "      --pool-mb M      deprecated: --pool MM\n"
    "  -h, --help           this text\n"
    "  -V, --version        print the version\n"
    "\n"
    "Exit status: 0 success, 1 not found / check or verify failed, 2 error\n"
    "or bad usage.\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

/* ---------------------------------------------------------------- */
/* Helpers shared by the commands                                   */
/* ---------------------------------------------------------------- */

bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s == NULL || *s == '-' || *s == '\0')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1000, end++;
    else if (*end == 'M')
        mul = 1000000, end++;
    else if (*end == 'G')
        mul = 1000000000, end++;
    if (errno || *end != '\0' || v > UINT64_MAX / mul)
        return false;   /* junk, or more than 64 bits hold */
    *out = v * mul;
    return true;
}

static bool in_list(const char *const *l, const char *name)
{
    for (; l && *l; l++)
        if (strcmp(*l, name) == 0)
            return true;
    return false;
}

bool args_parse(struct args *a, int argc, char **argv, const char *const *opts,
                const char *const *flags)
{
    a->argc = argc;
    a->argv = argv;
    a->pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] == '-' && s[1] == '-' && s[2] != '\0') {
            if (in_list(flags, s + 2))
                continue;
            if (in_list(opts, s + 2) && i + 1 < argc) {
                i++;
                continue;
            }
            fprintf(stderr, "kvdb: unknown option or missing value: %s\n",
                    printable(s));
            opt_try_help();
            return false;
        }
        if (strcmp(s, "-v") == 0 && in_list(flags, "v"))
            continue;
        if (a->pos == 8) {
            fprintf(stderr, "kvdb: too many arguments\n");
            opt_try_help();
            return false;
        }
        a->posv[a->pos++] = argv[i];
    }
    return true;
}

const char *args_get(const struct args *a, const char *name)
{
    for (int i = 0; i + 1 < a->argc; i++)
        if (a->argv[i][0] == '-' && a->argv[i][1] == '-' &&
            strcmp(a->argv[i] + 2, name) == 0)
            return a->argv[i + 1];
    return NULL;
}

bool args_flag(const struct args *a, const char *name)
{
    /* As args_parse takes them: --NAME, and -v where it is a flag; any
     * other word with one dash is a positional argument (a scan from
     * "-keys" is not --keys). */
    for (int i = 0; i < a->argc; i++) {
        const char *s = a->argv[i];
        if ((s[0] == '-' && s[1] == '-' && strcmp(s + 2, name) == 0) ||
            (strcmp(name, "v") == 0 && strcmp(s, "-v") == 0))
            return true;
    }
    return false;
}

uint64_t arg_u64(const struct args *a, const char *name, uint64_t def,
                 bool *ok)
{
    const char *s = args_get(a, name);
    uint64_t v;
    if (s == NULL)
        return def;
    if (!parse_u64(s, &v)) {
        fprintf(stderr, "kvdb: --%s wants a number, not \"%s\"\n", name,
                printable(s));
        *ok = false;
        return def;
    }
    return v;
}

double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int report(int err, const char *what)
{
    const char *d = kvdb_errdetail();
    /* File names and keys, in `what` and the detail: control bytes as
     * \xHH, as every tool prints them (doc/tools.md). */
    fprintf(stderr, "kvdb: %s: %s%s%s\n", printable(what), kvdb_strerror(err),
            d[0] ? ": " : "", printable(d));
    return EX_ERR;
}

int open_db(const struct cli *c, bool create, kvdb **db)
{
    struct kvdb_options o = c->o;
    if (create)
        o.flags |= KVDB_CREATE;
    if (c->power_cut_ms) {
        int e = powercut_arm(c->path, c->power_cut_ms);
        if (e < 0) {
            fprintf(stderr, "kvdb: --power-cut-after: cannot record the writes "
                    "to %s: %s (it must exist)\n", printable(c->path),
                    strerror(-e));
            return e;
        }
    }
    int r = kvdb_open(c->path, &o, db);
    if (r < 0)
        report(r, c->path);
    return r;
}

void print_stats(kvdb *db, FILE *out)
{
    struct kvdb_stats s;
    kvdb_stats(db, &s);
    uint64_t pins = s.hits + s.misses;
    fprintf(out, "io %s, %u frames of %u bytes (%.1f MiB)%s\n", s.io,
            s.frames, s.page_size,
            (double)s.frames * s.page_size / 1048576.0,
            s.checksums ? ", page checksums" : "");
    fprintf(out, "pins %llu: hits %llu, misses %llu, hit ratio %.3f\n",
            (unsigned long long)pins, (unsigned long long)s.hits,
            (unsigned long long)s.misses,
            pins ? (double)s.hits / (double)pins : 0.0);
    fprintf(out, "reads %llu, writes %llu (%llu requests), evictions %llu, "
            "prefetched %llu (%llu used), syncs %llu\n",
            (unsigned long long)s.reads, (unsigned long long)s.writes,
            (unsigned long long)s.write_requests,
            (unsigned long long)s.evictions,
            (unsigned long long)s.prefetch_pages,
            (unsigned long long)s.prefetch_hits, (unsigned long long)s.syncs);
    fprintf(out, "writes: %llu in place, %llu restructuring (%llu fell "
            "back), %llu pages copied, %llu splits, %llu shares, %llu merges, %llu "
            "commits, %llu pins retried\n",
            (unsigned long long)s.optimistic,
            (unsigned long long)s.pessimistic,
            (unsigned long long)s.restarts,
            (unsigned long long)s.cow_copies, (unsigned long long)s.splits,
            (unsigned long long)s.shares, (unsigned long long)s.merges, (unsigned long long)s.commits,
            (unsigned long long)s.nofree_retries);
    fprintf(out, "descents: %llu optimistic reads (%llu conflicts), %llu "
            "descents restarted, %llu latched after repeated conflicts\n",
            (unsigned long long)s.optimistic_reads,
            (unsigned long long)s.optimistic_conflicts,
            (unsigned long long)s.descent_restarts,
            (unsigned long long)s.descent_fallbacks);
    fprintf(out, "file: %llu pages, %llu free, %llu pending, %llu "
            "quarantined (free but failing their checksum)\n",
            (unsigned long long)s.pages, (unsigned long long)s.free_pages,
            (unsigned long long)s.pending_pages,
            (unsigned long long)s.quarantined);
}

int close_db(const struct cli *c, kvdb *db)
{
    /* With --stats the command's changes are committed first, as the
     * close would commit them, so that the counters show that commit's
     * writes and sync (they were printed before it). */
    int r = c->stats ? kvdb_commit(db) : 0;
    if (c->stats)
        print_stats(db, stderr);
    if (r < 0) {
        /* Said before the close, whose own commit of the broken handle
         * would replace the cause's detail. */
        int ex = report(r, "commit");
        (void)kvdb_close(db);
        return ex;
    }
    int cr = kvdb_close(db);
    if (cr < 0)
        return report(cr, "close");
    return EX_OK;
}

/* ---------------------------------------------------------------- */
/* Small commands                                                   */
/* ---------------------------------------------------------------- */

/* Print bytes, escaping what is not printable (and tab, newline, '\'). */
static void put_escaped(const uint8_t *p, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\')
            fputs("\\\\", out);
        else if (p[i] < 0x20 || p[i] >= 0x7f)
            fprintf(out, "\\x%02x", p[i]);
        else
            fputc(p[i], out);
    }
}

static int cmd_put(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || argc % 2 != 0) {
        fprintf(stderr, "kvdb: usage: put KEY VALUE [KEY VALUE...]\n");
        opt_try_help();
        return EX_ERR;
    }
    /* All pairs are checked first, so that a bad one leaves the file as
     * it was: the pairs are committed together or not at all. */
    for (int i = 0; i < argc; i += 2) {
        size_t kl = strlen(argv[i]), vl = strlen(argv[i + 1]);
        if (kl == 0 || kl > KVDB_KEY_MAX || vl > KVDB_VAL_MAX) {
            fprintf(stderr, "kvdb: put: %s of %zu bytes: keys are 1 to %u "
                    "bytes, values 0 to %u; nothing written\n",
                    kl == 0 || kl > KVDB_KEY_MAX ? "key" : "value",
                    kl == 0 || kl > KVDB_KEY_MAX ? kl : vl, KVDB_KEY_MAX,
                    KVDB_VAL_MAX);
            return EX_ERR;
        }
    }
    kvdb *db;
    if (open_db(c, true, &db) < 0)
        return EX_ERR;
    for (int i = 0; i < argc; i += 2) {
        int r = kvdb_put(db, argv[i], strlen(argv[i]), argv[i + 1],
                         strlen(argv[i + 1]));
        if (r < 0) {
            /* All pairs or none: the ones before go too. */
            report(r, "put");
            kvdb_discard(db);
            return EX_ERR;
        }
    }
    return close_db(c, db);
}

static int cmd_get_del(struct cli *c, int argc, char **argv, bool del)
{
    if (argc != 1) {
        fprintf(stderr, "kvdb: usage: %s KEY\n", del ? "del" : "get");
        opt_try_help();
        return EX_ERR;
    }
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    uint8_t val[KVDB_VAL_MAX];
    size_t vlen = 0;
    int r = del ? kvdb_del(db, argv[0], strlen(argv[0]))
                : kvdb_get(db, argv[0], strlen(argv[0]), val, sizeof(val),
                           &vlen);
    int ex = EX_OK;
    if (r == -ENOENT) {
        fprintf(stderr, "kvdb: %s: not found\n", printable(argv[0]));
        ex = EX_FAIL;
    } else if (r < 0) {
        ex = report(r, del ? "del" : "get");
    } else if (!del) {
        put_escaped(val, vlen, stdout);
        putchar('\n');
    }
    int cr = close_db(c, db);
    return ex != EX_OK ? ex : cr;
}

static int cmd_mget(struct cli *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "kvdb: usage: mget KEY...\n");
        opt_try_help();
        return EX_ERR;
    }
    struct kvdb_mget_item *it = calloc((size_t)argc, sizeof(*it));
    uint8_t *vals = malloc((size_t)argc * KVDB_VAL_MAX);
    if (it == NULL || vals == NULL) {
        free(it);
        free(vals);
        fprintf(stderr, "kvdb: mget: out of memory\n");
        return EX_ERR;
    }
    for (int i = 0; i < argc; i++)
        it[i] = (struct kvdb_mget_item){ .key = argv[i],
                                         .klen = strlen(argv[i]),
                                         .val = vals + (size_t)i * KVDB_VAL_MAX,
                                         .cap = KVDB_VAL_MAX };
    kvdb *db;
    if (open_db(c, false, &db) < 0) {
        free(it);
        free(vals);
        return EX_ERR;
    }
    int r = kvdb_mget(db, it, (size_t)argc);
    int ex = r < 0 ? report(r, "mget") : EX_OK;
    /* After an error too: the keys looked up before it have their
     * answers, the others carry the error. */
    for (int i = 0; i < argc; i++) {
        if (it[i].result == 0) {
            put_escaped((const uint8_t *)argv[i], it[i].klen, stdout);
            putchar('\t');
            put_escaped(it[i].val, it[i].vlen, stdout);
            putchar('\n');
        } else if (it[i].result == -ENOENT) {
            fprintf(stderr, "kvdb: %s: not found\n", printable(argv[i]));
            ex = EX_FAIL;
        } else if (it[i].result == -EINVAL) {
            fprintf(stderr, "kvdb: mget: key %d ('%s', %zu bytes): invalid: "
                    "keys are 1 to %u bytes\n", i + 1, printable(argv[i]), it[i].klen,
                    KVDB_KEY_MAX);
            ex = EX_ERR;
        } else {
            fprintf(stderr, "kvdb: mget: %s: %s\n", printable(argv[i]),
                    kvdb_strerror(it[i].result));
            ex = EX_ERR;
        }
    }
    free(it);
    free(vals);
    int cr = close_db(c, db);
    return ex != EX_OK ? ex : cr;
}

static int cmd_scan(struct cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"keys", "count", "no-hint", NULL};
    struct args a;
    if (!args_parse(&a, argc, argv, NULL, flags))
        return EX_ERR;   /* args_parse said why */
    if (a.pos > 2) {
        fprintf(stderr, "kvdb: usage: scan [FROM [TO]] [--keys] [--count] "
                "[--no-hint]\n");
        opt_try_help();
        return EX_ERR;
    }
    const char *from = a.pos > 0 ? a.posv[0] : NULL;
    const char *to = a.pos > 1 ? a.posv[1] : NULL;
    bool keys = args_flag(&a, "keys"), count = args_flag(&a, "count");
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    kvdb_cursor *cur;
    int r = kvdb_cursor_open(db, from, from ? strlen(from) : 0, to,
                             to ? strlen(to) : 0,
                             args_flag(&a, "no-hint") ? KVDB_CURSOR_NOHINT : 0,
                             &cur);
    uint64_t n = 0;
    if (r == 0) {
        const void *k, *v;
        size_t kl, vl;
        while ((r = kvdb_cursor_next(cur, &k, &kl, &v, &vl)) > 0) {
            n++;
            if (count)
                continue;
            put_escaped(k, kl, stdout);
            if (!keys) {
                putchar('\t');
                put_escaped(v, vl, stdout);
            }
            putchar('\n');
        }
        kvdb_cursor_close(cur);
    }
    if (count && r == 0)
        printf("%llu\n", (unsigned long long)n);
    int ex = r < 0 ? report(r, "scan") : EX_OK;
    int cr = close_db(c, db);
    return ex != EX_OK ? ex : cr;
}

static int cmd_count(struct cli *c)
{
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    printf("%llu\n", (unsigned long long)kvdb_count(db));
    return close_db(c, db);
}

static int cmd_check(struct cli *c, int argc, char **argv)
{
    static const char *const flags[] = {"v", "verbose", NULL};
    struct args a;
    if (!args_parse(&a, argc, argv, NULL, flags))
        return EX_ERR;   /* args_parse said why */
    if (a.pos > 0) {
        fprintf(stderr, "kvdb: usage: check [-v]\n");
        opt_try_help();
        return EX_ERR;
    }
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    int r = kvdb_check(db, stdout, args_flag(&a, "v") ||
                                       args_flag(&a, "verbose"));
    int ex;
    if (r < 0) {
        ex = report(r, "check");
    } else if (r > 0) {
        printf("check: %d problems\n", r);
        ex = EX_FAIL;
    } else {
        printf("check: ok, %llu keys\n", (unsigned long long)kvdb_count(db));
        ex = EX_OK;
    }
    int cr = close_db(c, db);
    return ex != EX_OK ? ex : cr;
}

static int cmd_stats(struct cli *c)
{
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    /* walk the tree first, so the pool's counters say something */
    kvdb_check(db, NULL, 0);
    struct kvdb_stats s;
    kvdb_stats(db, &s);
    printf("file %s: %llu pages of %u bytes (%.1f MiB), last commit %llu\n",
           printable(c->path), (unsigned long long)s.pages, s.page_size,
           (double)s.pages * s.page_size / 1048576.0,
           (unsigned long long)s.commit_seq);
    printf("tree: %llu keys, height %u, %llu free pages, %llu pending, %llu "
           "quarantined\n",
           (unsigned long long)s.keys, s.height,
           (unsigned long long)s.free_pages,
           (unsigned long long)s.pending_pages,
           (unsigned long long)s.quarantined);
    uint64_t res, tot;
    int bad_index = kvdb_index_residency(db, &res, &tot);
    if (bad_index == 0)
        printf("index: %llu internal pages, %llu resident\n",
               (unsigned long long)tot, (unsigned long long)res);
    else
        report(bad_index, "index");
    /* A new process has no history: the counters are those of the walk
     * above (`kvdb --stats FILE COMMAND` prints them after any command). */
    printf("pool counters of this process (one walk of the whole tree):\n");
    print_stats(db, stdout);
    int r = kvdb_close(db);
    return r < 0 ? report(r, "close") : bad_index < 0 ? EX_ERR : EX_OK;
}

static int cmd_compact(struct cli *c)
{
    kvdb *db;
    if (open_db(c, false, &db) < 0)
        return EX_ERR;
    struct kvdb_stats s;
    kvdb_stats(db, &s);
    int r = kvdb_compact(db);
    if (r < 0) {
        int ex = report(r, "compact");
        close_db(c, db);
        return ex;
    }
    printf("compact: %llu pages, %d cut off\n",
           (unsigned long long)(s.pages - (uint64_t)r), r);
    return close_db(c, db);
}

/* ---------------------------------------------------------------- */
/* main                                                             */
/* ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    kvdb_options_init(&c.o);
    const char *env = getenv("KVDB_CRASH_AFTER_WRITES");
    if (env != NULL && !parse_u64(env, &c.o.crash_after_writes)) {
        fprintf(stderr, "kvdb: KVDB_CRASH_AFTER_WRITES=%s is no number\n",
                env);
        return EX_ERR;
    }
    /* The options only kvdb has (long only). */
    enum { O_IO = POOLOPT_TOOL_FIRST, O_STATS, O_CRASH, O_POOL_MB,
           O_CONFLICT, O_POWER_CUT, O_NO_COMPACT };
    static const struct option longopts[] = {
        POOLOPT_LONGOPTS,
        { "io", required_argument, NULL, O_IO },
        { "stats", no_argument, NULL, O_STATS },
        { "no-compact", no_argument, NULL, O_NO_COMPACT },
        { "crash-after-writes", required_argument, NULL, O_CRASH },
        { "conflict-every", required_argument, NULL, O_CONFLICT },
        { "power-cut-after", required_argument, NULL, O_POWER_CUT },
        { "pool-mb", required_argument, NULL, O_POOL_MB },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct poolopt pool;
    poolopt_init(&pool);
    opt_prog("kvdb");
    opterr = 0;     /* opt_unknown says what is wrong, in one line */
    int opt;
    /* "+": the options end at FILE; the command's own follow it. */
    while ((opt = getopt_long(argc, argv, "+" POOLOPT_SHORT "jhV", longopts,
                              NULL)) != -1) {
        if (opt == 'P') {
            /* kvdb's own range, not the bpool tools' (4K to 1M): a usage
             * error here, as in the other tools, rather than kvdb_open's
             * refusal, which had no pointer to --help. */
            uint64_t ps = opt_size("--page-size", optarg);
            if (ps < KVDB_PAGE_MIN || ps > KVDB_PAGE_MAX || (ps & (ps - 1)))
                opt_bad("--page-size", optarg, "want a power of two from 8K to 64K");
            pool.page_size = (uint32_t)ps;
            continue;
        }
        if (poolopt_take(&pool, opt, optarg)) {
            if (opt != 'p' && opt != 'P' && opt != POOLOPT_FRAMES &&
                opt != POOLOPT_CHECKSUMS && opt != POOLOPT_NO_CHECKSUMS)
            {
                const struct option *lo = longopts;
                while (lo->val != opt)
                    lo++;
                opt_usage("--%s: kvdb takes only these pool settings: --pool, "
                          "--frames, --page-size, --checksums, --no-checksums",
                          lo->name);
            }
            continue;
        }
        switch (opt) {
        case O_IO:
            if (strcmp(optarg, "bpool") == 0)
                c.o.io = KVDB_IO_BPOOL;
            else if (strcmp(optarg, "pread") == 0)
                c.o.io = KVDB_IO_PREAD;
            else
                opt_bad("--io", optarg, "want bpool or pread");
            c.given |= CLI_GIVEN_IO;
            break;
        case O_STATS: c.stats = true; break;
        case O_NO_COMPACT: c.o.flags |= KVDB_NOCOMPACT; break;
        case O_CRASH:
            c.o.crash_after_writes = opt_u64("--crash-after-writes", optarg, 1,
                                             UINT64_MAX);
            break;
        case O_POWER_CUT:
            c.power_cut_ms = opt_u64("--power-cut-after", optarg, 1, 86400000);
            break;
        case O_CONFLICT:
            c.o.conflict_every = opt_u64("--conflict-every", optarg, 1,
                                         UINT64_MAX);
            break;
        case O_POOL_MB:
            pool.pool_bytes = opt_u64("--pool-mb", optarg, 1, 1ull << 24) << 20;
            break;
        case 'j': c.json = true; break;
        case 'h': usage(stdout); return EX_OK;
        case 'V': opt_version(); return EX_OK;
        default: opt_unknown(argv, optind, optopt);
        }
    }
    poolopt_check(&pool);
    /* What the line leaves unset keeps kvdb_options_init's default. */
    if (pool.frames) {
        c.o.pool_frames = pool.frames;
        c.given |= CLI_GIVEN_FRAMES;
    }
    if (pool.pool_bytes) {
        c.o.pool_bytes = pool.pool_bytes;
        c.given |= CLI_GIVEN_POOL;
    }
    if (pool.page_size) {
        c.o.page_size = pool.page_size;
        c.given |= CLI_GIVEN_PAGE_SIZE;
    }
    if (pool.checksums >= 0)
        c.given |= CLI_GIVEN_CHECKSUMS;
    if (pool.checksums == 0)
        c.o.flags |= KVDB_NOCHECKSUMS;
    if (pool.checksums == 1 && c.o.io == KVDB_IO_PREAD)
        opt_usage("--checksums with --io pread: the pread pager cannot "
                  "verify bpool's page checksums, and makes files without "
                  "them; use --io bpool");
    if (argc - optind < 2)
        opt_usage(argc == optind ? "no FILE and COMMAND given"
                                 : "no COMMAND given after FILE");
    int i = optind;
    c.path = argv[i];
    if (!*c.path)
        opt_usage("FILE is empty: name the database file");
    const char *cmd = argv[i + 1];
    /* Fewer than 4 frames of the page size in force - an existing file's
     * own (bench makes the file anew, with -P's) - is named here, in the
     * command line's words. */
    if (pool.pool_bytes) {
        uint32_t ps = c.o.page_size ? c.o.page_size : 8192, file_ps;
        if (strcmp(cmd, "bench") != 0 &&
            kvdb_file_page_size(c.path, &file_ps) == 0)
            ps = file_ps;
        poolopt_min_frames(&pool, ps);
    }
    int n = argc - i - 2;
    char **args = argv + i + 2;
    if (strcmp(cmd, "put") == 0)
        return cmd_put(&c, n, args);
    if (strcmp(cmd, "get") == 0)
        return cmd_get_del(&c, n, args, false);
    if (strcmp(cmd, "mget") == 0)
        return cmd_mget(&c, n, args);
    if (strcmp(cmd, "del") == 0)
        return cmd_get_del(&c, n, args, true);
    if (strcmp(cmd, "scan") == 0)
        return cmd_scan(&c, n, args);
    if (strcmp(cmd, "count") == 0 && n == 0)
        return cmd_count(&c);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(&c, n, args);
    if (strcmp(cmd, "stats") == 0 && n == 0)
        return cmd_stats(&c);
    if (strcmp(cmd, "compact") == 0 && n == 0)
        return cmd_compact(&c);
    if (strcmp(cmd, "load") == 0)
        return cmd_load(&c, n, args);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(&c, n, args);
    if (strcmp(cmd, "unload") == 0)
        return cmd_unload(&c, n, args);
    if (strcmp(cmd, "mt") == 0)
        return cmd_mt(&c, n, args);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(&c, n, args);
    if (strcmp(cmd, "hotscan") == 0)
        return cmd_hotscan(&c, n, args);
    opt_usage("unknown command or arguments: %s", cmd);
}
