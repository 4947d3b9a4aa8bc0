/* SPDX-License-Identifier: MIT */
/* crash.c - bpool-stress --crash: kill the workload, check what survived.
 *
 * Each cycle the parent forks a child that opens the pool and runs the
 * workload; at a random moment (5% to 100% of --duration after the fork)
 * the parent kills it with SIGKILL, then reopens the file with a fresh
 * pool and checks every page:
 *
 *   - consistent: header, checksum and payload agree, page number right;
 *   - version >= its durable version: the largest version the side log
 *     says a completed bp_checkpoint or bp_sync made durable;
 *   - version <= the version last written (ver[], in memory shared with
 *     the child: nothing newer than what was written can appear).
 *
 * The versions found become ver[] for the next child, so the cycles
 * continue one history.  The parent has no threads when it forks (its
 * pools are closed), so the child is an ordinary process.
 *
 * The side log (DATAFILE.dlog, in the data file's directory) is a sequence
 * of records, each appended with one write(2) and then fsync'd:
 *
 *   u32 magic "DLOG", u32 count, u64 sequence,
 *   count x (u64 page, u64 version), u64 checksum of all of the above.
 *
 * A checkpointing thread reads ver[] for every page *before* calling
 * bp_checkpoint/bp_sync and, once the call has returned success, appends
 * the pages whose version rose since the last record.  Versions read
 * before the call started are covered by its guarantee ("every page dirty
 * when the call starts is durable"), so the log never claims too much:
 * the check is sound.  A record torn by the kill fails its checksum; the
 * parent ignores it and truncates the log back to the last whole record
 * before the next cycle.
 *
 * --power-cut: the cycle ends in a simulated power cut instead of a kill.
 * The child records every write to the data file (powercut.h) from its
 * start - the file is durable then: the parent fsync'd it - and at the
 * random moment a thread of its own takes the side log's lock, so that
 * no checkpoint completing later can log anything, writes the image a
 * power cut could leave (FILE.cut) and ends the process.  The parent
 * moves the image over the data file and checks it as after a kill,
 * except that a page written after its durable version may be torn: it
 * must be detected (by bpool's checksum when the pool has them, else by
 * the tool's own), and is put back at its durable version before the
 * next cycle.  The file's size is modelled too: the image has the size
 * the last fdatasync made durable, or the one set since.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"
#include "../powercut.h"

#define DLOG_MAGIC 0x474f4c44u      /* "DLOG" */

struct dlog {
    int fd;
    pthread_mutex_t mu;
    uint64_t *logged;               /* [cap] highest version logged */
    uint64_t *buf;                  /* one record */
    uint64_t cap, seq, records;
};

static uint64_t rec_sum(const uint64_t *w, uint64_t n)
{
    uint64_t h = 0x6a09e667f3bcc908ull;
    for (uint64_t i = 0; i < n; i++)
        h = mix64(h ^ w[i]);
    return h;
}

struct dlog *dlog_open(const char *path, const uint64_t *floor, uint64_t cap)
{
    struct dlog *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cap = cap;
    d->logged = calloc(cap, sizeof *d->logged);
    d->buf = malloc((2 * cap + 3) * sizeof *d->buf);
    d->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (!d->logged || !d->buf || d->fd < 0) {
        fprintf(stderr, PROG ": side log %s: %s\n", printable(path), strerror(errno));
        if (d->fd >= 0)
            close(d->fd);
        free(d->logged);
        free(d->buf);
        free(d);
        return NULL;
    }
    if (floor)
        memcpy(d->logged, floor, cap * sizeof *floor);
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

int dlog_append(struct dlog *d, const uint64_t *snap, uint64_t n)
{
    int err = 0;
    pthread_mutex_lock(&d->mu);
    uint64_t *w = d->buf, k = 0;
    for (uint64_t p = 0; p < n && p < d->cap; p++)
        if (snap[p] > d->logged[p]) {
            w[2 + 2 * k] = p;
            w[3 + 2 * k] = snap[p];
            k++;
        }
    if (k > 0) {
        w[0] = (uint64_t)DLOG_MAGIC | (k << 32);
        w[1] = ++d->seq;
        w[2 + 2 * k] = rec_sum(w, 2 + 2 * k);
        size_t len = (3 + 2 * k) * sizeof *w, off = 0;
        while (off < len) {
            ssize_t r = write(d->fd, (char *)w + off, len - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                err = r < 0 ? -errno : -EIO;
                break;
            }
            off += (size_t)r;
        }
        if (!err && fsync(d->fd) < 0)
            err = -errno;
        if (!err) {
            for (uint64_t i = 0; i < k; i++)
                d->logged[w[2 + 2 * i]] = w[3 + 2 * i];
            d->records++;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return err;
}

uint64_t dlog_records(const struct dlog *d)
{
    return d->records;
}

void dlog_close(struct dlog *d)
{
    if (!d)
        return;
    close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d->logged);
    free(d->buf);
    free(d);
}

long dlog_read(const char *path, uint64_t *floor, uint64_t cap, uint64_t *valid)
{
    *valid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, PROG ": side log %s: %s\n", printable(path), strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        fprintf(stderr, PROG ": side log %s: %s\n", printable(path), strerror(errno));
        close(fd);
        return -1;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    uint64_t *w = malloc(size + 8);
    if (!w) {
        close(fd);
        fprintf(stderr, PROG ": out of memory reading %s\n", printable(path));
        return -1;
    }
    while (got < size) {
        ssize_t r = read(fd, (char *)w + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    long records = 0;
    uint64_t nw = got / 8, i = 0;
    while (i + 3 <= nw) {
        if ((uint32_t)w[i] != DLOG_MAGIC)
            break;
        uint64_t k = w[i] >> 32;
        if (k > (nw - i - 3) / 2 || rec_sum(&w[i], 2 + 2 * k) != w[i + 2 + 2 * k])
            break;                          /* torn by the kill */
        for (uint64_t e = 0; e < k; e++) {
            uint64_t p = w[i + 2 + 2 * e], v = w[i + 3 + 2 * e];
            if (p >= cap) {
                fprintf(stderr, PROG ": FAIL: side log %s names page %" PRIu64
                        ", beyond the %" PRIu64 " pages allowed for\n", printable(path), p, cap);
                free(w);
                return -1;
            }
            if (v > floor[p])
                floor[p] = v;
        }
        i += 3 + 2 * k;
        records++;
    }
    *valid = i * 8;
    free(w);
    return records;
}

/* Read the log into floor[] and cut a torn record off its end. */
static long read_floors(const struct stress_opts *o, uint64_t *floor, uint64_t cap)
{
    uint64_t valid;
    long recs = dlog_read(o->dlog_path, floor, cap, &valid);
    struct stat sb;
    if (recs >= 0 && stat(o->dlog_path, &sb) == 0 && (uint64_t)sb.st_size > valid &&
        truncate(o->dlog_path, (off_t)valid) < 0) {
        fprintf(stderr, PROG ": truncating %s: %s\n", printable(o->dlog_path), strerror(errno));
        return -1;
    }
    return recs;
}

/* --power-cut: the moment of the cut, and where the child says what it
 * left (memory shared with the parent). */
struct cut_plan {
    struct run *run;
    uint64_t at_ns;
    struct pc_cut_info *info;
};

/* Cut the power now: nothing the process does after this reaches the
 * "device".  Holding the side log's lock, no sync can be logged after
 * the image is taken; the process ends holding it. */
static void power_cut_now(struct cut_plan *cp)
{
    struct run *run = cp->run;
    pthread_mutex_lock(&run->dlog->mu);
    int r = pc_cut(run->o->cut_path, mix64(run->seed ^ 0x637574ull), cp->info);
    if (r < 0)
        fprintf(stderr, PROG ": writing the power-cut image %s: %s\n",
                run->o->cut_path, strerror(-r));
    fflush(stdout);
    fflush(stderr);
    pc_power_off(r < 0 ? EXIT_SETUP : EXIT_CUT);
}

static void *cutter_main(void *arg)
{
    struct cut_plan *cp = arg;
    for (uint64_t now; (now = now_ns()) < cp->at_ns;) {
        uint64_t left = cp->at_ns - now;
        struct timespec ts = { (time_t)(left / 1000000000u),
                               (long)(left % 1000000000u) };
        nanosleep(&ts, NULL);
    }
    power_cut_now(cp);
    return NULL;
}

/* The child: one workload run, killed at any moment by the parent, or
 * (cut != NULL) ended by a simulated power cut at cut->at_ns. */
static int child_main(struct run *run, const uint64_t *floor, unsigned cycle,
                      struct cut_plan *cut)
{
    const struct stress_opts *o = run->o;
    run->cycle = cycle;
    run->seed = mix64(o->seed + cycle);
    atomic_store(&run->stop, 0);
    atomic_store(&run->failed, 0);
    run->dlog = dlog_open(o->dlog_path, floor, run->cap);
    if (!run->dlog)
        return EXIT_SETUP;
    if (cut) {
        int r = pc_start(o->path);
        pthread_t t;
        if (r < 0 || pthread_create(&t, NULL, cutter_main, cut) != 0) {
            fprintf(stderr, PROG ": cannot record the writes to %s: %s\n",
                    o->path, strerror(r < 0 ? -r : EAGAIN));
            dlog_close(run->dlog);
            return EXIT_SETUP;
        }
    }
    int status;
    run->pool = stress_open(o, 0, &status);
    if (!run->pool) {
        dlog_close(run->dlog);
        return status;
    }
    run->base_pages = stress_page_count(o, run->pool);
    atomic_store(&run->alloc_left, run->cap - run->base_pages);
    status = run_threads(run, PH_WORK);
    int r = bp_close(run->pool);
    if (r < 0 && status == EXIT_OK) {
        fprintf(stderr, PROG ": FAIL: bp_close: %s: %s\n", bp_err_name(r), printable(bp_errdetail()));
        status = EXIT_FAIL;
    }
    if (status == EXIT_OK)                    /* a clean close is a sync */
        status = crash_log_all(run, run->dlog);
    if (cut && status == EXIT_OK)
        power_cut_now(cut);                   /* the workload ended first */
    dlog_close(run->dlog);
    return status;
}

int crash_log_all(struct run *run, struct dlog *d)
{
    uint64_t *snap = malloc(run->cap * sizeof *snap);
    if (!snap) {
        fprintf(stderr, PROG ": out of memory\n");
        return EXIT_SETUP;
    }
    for (uint64_t p = 0; p < run->cap; p++)
        snap[p] = atomic_load_explicit(&run->ver[p], memory_order_relaxed);
    int r = dlog_append(d, snap, run->cap);
    free(snap);
    if (r < 0) {
        fprintf(stderr, PROG ": FAIL: appending to the side log %s: %s\n",
                run->o->dlog_path, strerror(-r));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int cycles(struct stress_opts *o, struct run *run, uint64_t *floor,
                  struct totals *tot, struct summary *s, struct rng *rngp,
                  struct pc_cut_info *cut_info);

int crash_run(struct stress_opts *o, struct run *run, uint64_t *floor,
              struct totals *tot, struct summary *s)
{
    struct rng rng;
    rng_seed(&rng, o->seed ^ 0x6b696c6c6b696c6cull);
    uint64_t t_start = now_ns();
    struct pc_cut_info *cut_info = NULL;
    if (o->power_cut) {
        cut_info = mmap(NULL, sizeof *cut_info, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (cut_info == MAP_FAILED) {
            fprintf(stderr, PROG ": mmap: %s\n", strerror(errno));
            return EXIT_SETUP;
        }
    }
    int status = cycles(o, run, floor, tot, s, &rng, cut_info);
    if (cut_info)
        munmap(cut_info, sizeof *cut_info);
    s->seconds = (double)(now_ns() - t_start) / 1e9;
    return status;
}

/* The image of a cut becomes the data file, durably: the next cycle
 * starts from it as from a machine that came back up. */
static int take_image(const struct stress_opts *o)
{
    int fd = open(o->cut_path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0 || rename(o->cut_path, o->path) < 0) {
        fprintf(stderr, PROG ": moving the power-cut image %s over %s: %s\n",
                o->cut_path, o->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EXIT_SETUP;
    }
    close(fd);
    return EXIT_OK;
}

/* Pages with a durable version (floor above 0). */
static uint64_t pages_with_floor(const uint64_t *floor, uint64_t cap)
{
    uint64_t n = 0;
    for (uint64_t p = 0; p < cap; p++)
        n += floor[p] > 0;
    return n;
}

static int cycles(struct stress_opts *o, struct run *run, uint64_t *floor,
                  struct totals *tot, struct summary *s, struct rng *rngp,
                  struct pc_cut_info *cut_info)
{
    struct rng rng = *rngp;
    for (unsigned c = 1; c <= o->cycles; c++) {
        if (read_floors(o, floor, run->cap) < 0)
            return EXIT_FAIL;
        memset(run->ts, 0, o->threads * sizeof *run->ts);
        memset(run->bs, 0, sizeof *run->bs);
        fflush(stdout);
        fflush(stderr);
        uint64_t t0 = now_ns();
        uint64_t kill_at = t0 + (uint64_t)(o->duration * (0.05 + 0.95 * rng_double(&rng)) * 1e9);
        struct cut_plan plan = { run, kill_at, cut_info };
        if (o->power_cut) {
            memset(cut_info, 0, sizeof *cut_info);
            /* the child cuts; killed only if it hangs */
            kill_at += (uint64_t)(o->hang_timeout * 1e9);
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
            return EXIT_SETUP;
        }
        if (pid == 0) {
            signals_restore();
            int st = child_main(run, floor, c, o->power_cut ? &plan : NULL);
            fflush(stdout);
            _exit(st);
        }
        int wst = 0;
        pid_t w = 0;
        while ((w = waitpid(pid, &wst, WNOHANG)) == 0 && now_ns() < kill_at &&
               !stress_signal) {
            struct timespec ts = { 0, 2000000 };
            nanosleep(&ts, NULL);
        }
        if (stress_signal) {    /* no cycle to check: stop */
            if (w == 0) {
                kill(pid, SIGKILL);
                while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
                    ;
            }
            return EXIT_SIGNAL(stress_signal);
        }
        bool killed = false;
        if (w == 0) {
            kill(pid, SIGKILL);
            while ((w = waitpid(pid, &wst, 0)) < 0 && errno == EINTR)
                ;
            killed = WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL;
        }
        double lived = (double)(now_ns() - t0) / 1e9;
        bool cut = !killed && o->power_cut && WIFEXITED(wst) &&
                   WEXITSTATUS(wst) == EXIT_CUT;
        if (o->power_cut && !cut) {
            fprintf(stderr, PROG ": FAIL: cycle %u: the workload %s instead of "
                    "ending in a power cut\n", c, killed ? "hung and was killed"
                    : "exited");
            return killed || !WIFEXITED(wst) || WEXITSTATUS(wst) != EXIT_SETUP
                       ? EXIT_FAIL : EXIT_SETUP;
        }
        if (cut) {
            int st = take_image(o);
            if (st != EXIT_OK)
                return st;
            s->cuts++;
            s->cut_pending += cut_info->pending;
            s->cut_dropped += cut_info->dropped;
            s->cut_torn += cut_info->torn;
        } else if (!killed && !(WIFEXITED(wst) && WEXITSTATUS(wst) == 0)) {
            if (WIFEXITED(wst))
                fprintf(stderr, PROG ": FAIL: cycle %u: the workload exited with "
                        "status %d\n", c, WEXITSTATUS(wst));
            else
                fprintf(stderr, PROG ": FAIL: cycle %u: the workload died of signal "
                        "%d (%s)\n", c, WTERMSIG(wst), strsignal(WTERMSIG(wst)));
            return WIFEXITED(wst) && WEXITSTATUS(wst) == EXIT_SETUP ? EXIT_SETUP
                                                                     : EXIT_FAIL;
        }
        /* Each cycle ends one way: killed, a clean exit or a cut. */
        s->cycles++;
        s->kills += killed;
        s->clean_exits += !killed && !cut;
        struct totals cyc;
        totals_peek(&cyc, run->ts, o->threads);
        for (unsigned i = 0; i < o->threads; i++)
            totals_add(tot, &run->ts[i]);
        s->bs.hits += run->bs->hits;
        s->bs.misses += run->bs->misses;
        s->bs.reads += run->bs->reads;
        s->bs.writes += run->bs->writes;
        s->bs.evictions += run->bs->evictions;
        s->bs.syncs += run->bs->syncs;

        long recs = read_floors(o, floor, run->cap);
        if (recs < 0)
            return EXIT_FAIL;
        /* The durable figures as of this cycle, before its check: a run
         * stopped in a later cycle, or in this check, reports them. */
        s->durable_records = (uint64_t)recs;
        s->floor_pages = pages_with_floor(floor, run->cap);
        struct check_result res;
        int st = check_file(o, run->ver, run->cap, floor,
                            cut ? CHECK_CUT : killed ? CHECK_FLOOR : CHECK_EXACT,
                            0, false, &res);
        if (stress_signal)
            return EXIT_SIGNAL(stress_signal);
        s->torn_detected += res.torn;
        s->pages_verified += res.checked;
        s->above_floor += res.above_floor;
        s->end_pages = res.pages;
        const char *how = cut ? "power cut" : killed ? "SIGKILL" : "clean exit";
        if (!o->json && !o->quiet && cut)
            printf("cycle %u/%u: power cut after %.2f s, %" PRIu64 " ops; %u "
                   "writes not durable (%u left out, %u torn); %ld side-log "
                   "records; %" PRIu64 " pages checked: %s (%" PRIu64 " at their "
                   "durable version, %" PRIu64 " above it, %" PRIu64 " torn and "
                   "put back)\n", c, o->cycles, lived, totals_ops(&cyc),
                   cut_info->pending, cut_info->dropped, cut_info->torn, recs,
                   res.checked, st == EXIT_OK ? "ok" : "FAIL", res.at_floor,
                   res.above_floor, res.torn);
        else if (!o->json && !o->quiet)
            printf("cycle %u/%u: %s after %.2f s, %" PRIu64 " ops; %ld side-log "
                   "records; %" PRIu64 " pages checked: %s (%" PRIu64 " at their "
                   "durable version, %" PRIu64 " above it, %" PRIu64 " older than "
                   "the last written)\n", c, o->cycles, how, lived,
                   totals_ops(&cyc), recs, res.checked,
                   st == EXIT_OK ? "ok" : "FAIL", res.at_floor, res.above_floor,
                   res.below_last);
        if (st != EXIT_OK) {
            fprintf(stderr, PROG ": FAIL: cycle %u (%s after %.2f s): the check "
                    "after reopening failed\n", c, how, lived);
            return st;
        }
    }
    return EXIT_OK;
}
