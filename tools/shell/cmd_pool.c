/* SPDX-License-Identifier: MIT */
/*
 * cmd_pool.c - bpool-shell's commands on the pool as a whole: open,
 * close, info, stats, flush, sync, checkpoint, prefetch, evict.
 *
 * Each prints one line saying what it did (or "name value" lines for info
 * and stats, in a fixed order, so scripts can pick fields with awk).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shell.h"
#include "../common/filehdr.h"
#include "../common/poolopt.h"

/* ------------------------------------------------------------------------
 * open, close
 * ---------------------------------------------------------------------- */

/* Is the word a file name: not empty, no NUL byte (the C string would
 * end there and name another file)?  0, or -1 having said why. */
static int check_file_name(struct shell *sh, const struct command *cmd,
                           const struct word *w)
{
    if (w->len > 0 && memchr(w->s, '\0', w->len) == NULL)
        return 0;
    return fail(sh, usage_of(cmd), "%s: bad file name \"%s\" (it must not "
                "be empty nor hold a NUL byte)", cmd->name, echo(w));
}

/* Open path with o (the session's defaults already merged in). */
int open_pool(struct shell *sh, const char *path, const struct open_opts *o,
              bool operand)
{
    struct bp_options bo;
    bp_options_init(&bo);
    bo.flags = o->flags;
    if (o->frames != 0)
        bo.pool_frames = o->frames;
    if (o->pool_bytes != 0)
        bo.pool_bytes = o->pool_bytes;
    bo.pool_bytes_max = o->pool_bytes_max;
    if (o->page_size != 0)
        bo.page_size = o->page_size;
    if (o->queue_depth != 0)
        bo.queue_depth = o->queue_depth;
    if (o->flushers_set && o->flushers == 0)
        bo.flags |= BP_NOFLUSH;
    else if (o->flushers_set)
        bo.flushers = o->flushers;
    bo.checkpoint_rate = o->checkpoint_rate;
    if (o->coalesce_bytes)
        bo.coalesce_bytes = o->coalesce_bytes;
    if (o->dirty_low)
        bo.dirty_low = o->dirty_low;
    if (o->dirty_high)
        bo.dirty_high = o->dirty_high;
    if (o->dirty_max)
        bo.dirty_max = o->dirty_max;
    if (o->io_engine_set)
        bo.io_engine = o->io_engine;
    bo.io_flags = o->io_flags;
    bp_pool *pool;
    /* The pool's threads start here and inherit the signal mask: block
     * Ctrl-C and friends so that they always reach the shell's thread. */
    sigset_t old;
    block_signals(&old);
    int rc = bp_open(path, &bo, &pool);
    restore_signals(&old);
    if (rc < 0)
        return fail_lib_hint(sh, rc, hint_for_open(rc, bo.flags,
                                                   bp_errdetail(), operand),
                             "cannot open %s", printable(path));
    char *copy = strdup(path);
    if (copy == NULL) {
        bp_close(pool);
        return fail_code(sh, -ENOMEM, NULL, "hint: free some memory",
                         "cannot open %s", printable(path));
    }
    sh->pool = pool;
    sh->path = copy;
    sh->flags = bo.flags;
    lat_reset(&sh->lat);
    return 0;
}

/* Close the open pool, unpinning the shell's pages first. */
int close_pool(struct shell *sh, bool verbose)
{
    int n = drop_all_pins(sh);
    if (n < 0)
        return -1;
    if (verbose && n > 0)
        printf("unpinned %d %s\n", n, plural((uint64_t)n, "page", "pages"));
    int rc = bp_close(sh->pool);
    if (rc == -EBUSY)   /* still open: some pin the shell does not know */
        return fail_lib(sh, rc, "cannot close %s", printable(sh->path));
    sh->pool = NULL;    /* freed even when writing back failed */
    if (rc < 0) {
        fail_lib(sh, rc, "closing %s lost data", printable(sh->path));
    } else if (verbose) {
        printf("closed %s\n", printable(sh->path));
    }
    free(sh->path);
    sh->path = NULL;
    return rc < 0 ? -1 : 0;
}

void print_opened(struct shell *sh)
{
    struct bp_info in;
    if (bp_info(sh->pool, &in) < 0)
        return;
    printf("opened %s: %llu %s of %u bytes, %u frames\n", printable(sh->path),
           (unsigned long long)in.page_count,
           plural(in.page_count, "page", "pages"), in.page_size, in.frames);
}

/* Parse "NAME=VALUE" options of open into o.  Returns 0 or -1. */
static int open_option(struct shell *sh, const struct command *cmd,
                       const struct word *w, struct open_opts *o)
{
    const char *u = usage_of(cmd);
    struct word v;
    uint64_t x;
    if (word_is(w, "create")) {
        o->flags |= BP_CREATE;
    } else if (word_is(w, "excl")) {
        o->flags |= BP_CREATE | BP_EXCL;
    } else if (word_is(w, "noflush")) {
        o->flags |= BP_NOFLUSH;
    } else if (word_is(w, "noreadahead")) {
        o->flags |= BP_NOREADAHEAD;
#ifdef BP_CHECKSUMS
    } else if (word_is(w, "checksums")) {
        o->flags |= BP_CHECKSUMS;
#endif
    } else if (word_is(w, "noheader")) {
        o->flags |= BP_NOHEADER;
    } else if (word_is(w, "doublewrite")) {
        o->flags |= BP_DOUBLEWRITE;
    } else if (word_is(w, "atomic")) {
        o->flags |= BP_ATOMIC;
    } else if (word_prefix(w, "frames=", &v)) {
        if (parse_num(sh, &v, UINT32_MAX, "frames", u, &x) < 0)
            return -1;
        if (x == 0)
            return fail(sh, u, "open: frames=0: a pool has at least %u "
                        "frames", BP_MIN_FRAMES);
        o->frames = (uint32_t)x;
    } else if (word_prefix(w, "pool=", &v)) {
        if (parse_size(sh, &v, UINT64_MAX, "pool size", u, &x) < 0)
            return -1;
        if (x == 0)
            return fail(sh, u, "open: pool=0: a pool has at least %u frames",
                        BP_MIN_FRAMES);
        o->pool_bytes = x;
    } else if (word_prefix(w, "poolmax=", &v)) {
        if (parse_size(sh, &v, UINT64_MAX, "largest pool size", u, &x) < 0)
            return -1;
        o->pool_bytes_max = x;
    } else if (word_prefix(w, "pagesize=", &v)) {
        if (parse_size(sh, &v, UINT32_MAX, "page size", u, &x) < 0)
            return -1;
        o->page_size = (uint32_t)x;
    } else if (word_prefix(w, "queue=", &v)) {
        if (parse_num(sh, &v, POOLOPT_QUEUE_DEPTH_MAX, "queue depth", u,
                      &x) < 0)
            return -1;
        if (x == 0)
            return fail(sh, u, "open: queue=0: a queue depth is at least 1");
        o->queue_depth = (uint32_t)x;
    } else if (word_prefix(w, "flushers=", &v)) {
        if (parse_num(sh, &v, BP_MAX_FLUSHERS, "flushers", u, &x) < 0)
            return -1;
        o->flushers = (uint32_t)x;
        o->flushers_set = true;
    } else if (word_prefix(w, "rate=", &v)) {
        if (parse_num(sh, &v, UINT32_MAX, "checkpoint rate", u, &x) < 0)
            return -1;
        o->checkpoint_rate = (uint32_t)x;
        o->checkpoint_rate_set = true;
    } else {
        return fail(sh, u, "open: unknown option \"%s\" (see: help open)",
                    echo(w));
    }
    return 0;
}

/* Does poolmax= leave room for the pool's own frames with some page size
 * from small to large (bp_open refuses a pool_bytes_max below the pool)? */
static bool poolmax_fits(const struct open_opts *o, uint32_t small,
                         uint32_t large)
{
    for (uint64_t ps = small; ps <= large; ps *= 2) {
        uint64_t frames = o->frames ? o->frames
                          : (o->pool_bytes ? o->pool_bytes
                                           : BP_DEFAULT_POOL_BYTES) / ps;
        if (o->pool_bytes_max / ps >= frames)
            return true;
    }
    return false;
}

/* The page size an open of path without pagesize= gets: its header's, or
 * for a new file or one without a header the default; 0 when the header
 * records none a pool takes (damaged: the open names it). */
static uint32_t page_size_to_be(const char *path, const struct open_opts *o)
{
    struct filehdr h;
    if (o->flags & BP_NOHEADER || filehdr_read(path, &h) < 0 || !h.bpool)
        return BP_DEFAULT_PAGE_SIZE;
    return h.page_size;
}

/* What the existing file's header records, which bp_open would hold
 * against the options only after the open pool was closed: a page size
 * (pagesize=, or the session's -P) other than its own is refused; its
 * checksum setting is taken, unless this open asked for checksums
 * (`asked`) of a file made without them. */
static int check_header(struct shell *sh, const char *path,
                        struct open_opts *o, bool asked)
{
    struct filehdr h;
    if ((o->flags & BP_NOHEADER) || filehdr_read(path, &h) < 0 || !h.bpool)
        return 0;
    char why[200];
    if (filehdr_page_size_differs(&h, o->page_size)) {
        char fix[80];
        snprintf(why, sizeof why, "%s has pages of %u bytes (its header "
                 "says so), not %u", printable(path), h.page_size,
                 o->page_size);
        snprintf(fix, sizeof fix, "hint: open it with pagesize=%u",
                 h.page_size);
        return fail_code(sh, -BP_EPAGESIZE, why, fix, "cannot open %s",
                         printable(path));
    }
#ifdef BP_CHECKSUMS
    if (!(h.flags & FILEHDR_CHECKSUMS) && asked) {
        snprintf(why, sizeof why, "%s was made without page checksums (its "
                 "header says so)", printable(path));
        return fail_code(sh, -BP_EFORMAT, why, "hint: leave checksums out "
                         "to open it as it was made", "cannot open %s",
                         printable(path));
    }
    o->flags = (o->flags & ~(uint32_t)BP_CHECKSUMS) |
               (h.flags & FILEHDR_CHECKSUMS ? BP_CHECKSUMS : 0);
#else
    (void)asked;
#endif
    return 0;
}

/* The sizes bp_open would refuse (bp_open(3): page size, frames, the
 * resize reserve), checked before the open pool is closed, and reported
 * as bp_open's refusal would be.  Without a page size, the one the open
 * will get (the file's, or the default); only when the file's header
 * names none, a size is refused only if no page size would do. */
static int check_sizes(struct shell *sh, const char *path,
                       const struct open_opts *o)
{
    const uint64_t most = INT32_MAX;   /* frames a pool may have */
    uint32_t ps = o->page_size;
    const char *hint = hint_for(-BP_EPOOLSIZE);
    const char *poolmax_hint = "hint: give poolmax=SIZE from the pool's "
                               "size up, or leave it out";
    char why[200];
    if (ps && (ps < BP_MIN_PAGE_SIZE || ps > BP_MAX_PAGE_SIZE || (ps & (ps - 1)))) {
        snprintf(why, sizeof why, "pagesize=%u: a page size is a power of "
                 "two from %u to %u bytes", ps, BP_MIN_PAGE_SIZE,
                 BP_MAX_PAGE_SIZE);
        return fail_code(sh, -BP_EPAGESIZE, why, hint_for(-BP_EPAGESIZE),
                         "cannot open %s", printable(path));
    }
    if (!ps)
        ps = page_size_to_be(path, o);
    uint32_t small = ps ? ps : BP_MIN_PAGE_SIZE, large = ps ? ps : BP_MAX_PAGE_SIZE;
    if (o->frames && (o->frames < BP_MIN_FRAMES || o->frames > most))
        snprintf(why, sizeof why, "frames=%u: a pool has %u to %llu frames",
                 o->frames, BP_MIN_FRAMES, (unsigned long long)most);
    else if (o->pool_bytes && o->pool_bytes / small < BP_MIN_FRAMES)
        snprintf(why, sizeof why, "pool=%llu bytes is too small: a pool has "
                 "at least %u frames (%u bytes of %u-byte pages)",
                 (unsigned long long)o->pool_bytes, BP_MIN_FRAMES,
                 BP_MIN_FRAMES * small, small);
    else if (o->pool_bytes && o->pool_bytes / large > most)
        snprintf(why, sizeof why, "pool=%llu bytes is too large: a pool has "
                 "at most %llu frames", (unsigned long long)o->pool_bytes,
                 (unsigned long long)most);
    else if (o->pool_bytes_max && o->pool_bytes_max / large > most) {
        snprintf(why, sizeof why, "poolmax=%llu bytes is too large: a pool "
                 "has at most %llu frames",
                 (unsigned long long)o->pool_bytes_max,
                 (unsigned long long)most);
        hint = poolmax_hint;
    } else if (o->pool_bytes_max && !poolmax_fits(o, small, large)) {
        snprintf(why, sizeof why, "poolmax=%llu bytes is below the pool's "
                 "size (poolmax is the most resize may grow the pool to)",
                 (unsigned long long)o->pool_bytes_max);
        hint = poolmax_hint;
    } else {
        return 0;
    }
    return fail_code(sh, -BP_EPOOLSIZE, why, hint, "cannot open %s",
                     printable(path));
}

int cmd_open(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    struct open_opts o = sh->defaults, given;
    memset(&given, 0, sizeof given);
    o.flags &= ~(BP_CREATE | BP_EXCL);
    for (int i = 1; i < argc; i++) {
        if (option_repeats(argv, 1, i))
            return fail(sh, usage_of(cmd), "open: \"%s\": that option is "
                        "given twice", echo(&argv[i]));
        if (open_option(sh, cmd, &argv[i], &given) < 0)
            return -1;
    }
    if (given.frames != 0 && given.pool_bytes != 0)
        return fail(sh, usage_of(cmd), "open: give frames=N or pool=SIZE, "
                    "not both");
    /* What this open says wins over the command line's defaults. */
    if (given.frames != 0 || given.pool_bytes != 0) {
        o.frames = given.frames;
        o.pool_bytes = given.pool_bytes;
    }
    if (given.pool_bytes_max != 0)
        o.pool_bytes_max = given.pool_bytes_max;
    if (given.page_size != 0)
        o.page_size = given.page_size;
    if (given.queue_depth != 0)
        o.queue_depth = given.queue_depth;
    if (given.flushers_set) {
        o.flushers = given.flushers;
        o.flushers_set = true;
    }
    if (given.checkpoint_rate_set)
        o.checkpoint_rate = given.checkpoint_rate;
    o.flags |= given.flags;
    if (check_file_name(sh, cmd, &argv[0]) < 0)
        return -1;
    /* The open pool is closed first (the new one may be the same file):
     * what can be checked before is, so that a typo keeps it open.  The
     * flags bp_open refuses together first, then the sizes. */
    if ((o.flags & BP_RDONLY) && (o.flags & BP_CREATE))
        return fail(sh, "hint: this session is read-only (--read-only): "
                    "open a file that exists", "open: %s: a read-only pool "
                    "cannot create its file", o.flags & BP_EXCL ? "excl"
                                                                : "create");
    if ((o.flags & BP_DOUBLEWRITE) && (o.flags & BP_NOHEADER))
        return fail(sh, usage_of(cmd), "open: doublewrite with noheader: the "
                    "doublewrite area is recorded in the file's header");
    if (check_sizes(sh, argv[0].s, &o) < 0)
        return -1;
    struct stat st;
    int err = stat(argv[0].s, &st) == 0 ? 0 : errno;
    if (err != 0 && !(err == ENOENT && (o.flags & BP_CREATE)))
        return fail_code(sh, -err, NULL, hint_for(-err), "cannot open %s",
                         printable(argv[0].s));
    if (err == 0 && (o.flags & BP_EXCL))
        return fail_code(sh, -EEXIST, NULL, hint_for(-EEXIST),
                         "cannot create %s", printable(argv[0].s));
    if (err == 0 && S_ISDIR(st.st_mode))
        return fail_code(sh, -EISDIR, NULL, hint_for(-EISDIR),
                         "cannot open %s", printable(argv[0].s));
    if (err == 0 && check_header(sh, argv[0].s, &o,
                                 (given.flags & BP_CHECKSUMS) != 0) < 0)
        return -1;
    if (sh->pool != NULL && close_pool(sh, true) < 0)
        return -1;
    if (open_pool(sh, argv[0].s, &o, false) < 0)
        return -1;
    print_opened(sh);
    return 0;
}

int cmd_close(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    return close_pool(sh, true);
}

/* ------------------------------------------------------------------------
 * info, stats
 * ---------------------------------------------------------------------- */

int cmd_info(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    struct bp_info in;
    int rc = bp_info(sh->pool, &in);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot get pool information");
    /* No path: file 0 was detached (detach 0); the fields of file 0
     * below are then 0. */
    printf("file %s\n", in.path ? printable(in.path) : "-");
    printf("page_size %u\n", in.page_size);
    printf("pages %llu\n", (unsigned long long)in.page_count);
    printf("frames %u\n", in.frames);
    printf("frames_max %u\n", in.frames_max);
    printf("pool_bytes %llu\n",
           (unsigned long long)in.frames * in.page_size);
    printf("queue_depth %u\n", in.queue_depth);
    printf("aio_lanes %u\n", in.aio_lanes);
    printf("dio_mem_align %u\n", in.dio_mem_align);
    printf("dio_offset_align %u\n", in.dio_offset_align);
    printf("frame_align %u\n", in.frame_align);
    printf("align_source %s\n", in.align_source ? in.align_source : "");
    printf("io_engine %s\n", in.io_engine ? in.io_engine : "");
    printf("huge_pages %d\n", in.huge_pages);
    printf("flushers %u\n", in.flushers);
    printf("dirty_low %u\n", in.dirty_low);
    printf("dirty_high %u\n", in.dirty_high);
    printf("dirty_max %u\n", in.dirty_max);
    printf("coalesce_bytes %u\n", in.coalesce_bytes);
    printf("checkpoint_rate %u\n", in.checkpoint_rate);
    printf("readahead_min %u\n", in.readahead_min);
    printf("readahead_max %u\n", in.readahead_max);
#ifdef BP_CHECKSUMS
    printf("checksums %d\n", in.checksums);
    printf("page_payload %u\n", in.page_payload);
#endif
    printf("format_version %u\n", in.format_version);
    printf("file_id ");
    for (size_t i = 0; i < sizeof(in.file_id); i++)
        printf("%02x", in.file_id[i]);
    printf("\n");
    printf("doublewrite_pages %u\n", in.doublewrite_pages);
    printf("torn_repaired %u\n", in.torn_repaired);
    printf("atomic_write_max %u\n", in.atomic_write_max);
    printf("atomic_writes %d\n", in.atomic_writes);
    printf("files %u\n", in.files);
    return 0;
}

int cmd_stats(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    int rc;
    if (argc > 0) {
        if (!word_is(&argv[0], "reset"))
            return fail(sh, usage_of(cmd), "stats: unknown argument \"%s\"",
                        echo(&argv[0]));
        rc = bp_stats_reset(sh->pool);
        if (rc < 0)
            return fail_lib(sh, rc, "cannot reset the statistics");
        lat_reset(&sh->lat);
        puts("statistics reset");
        return 0;
    }
    struct bp_stats st;
    rc = bp_stats(sh->pool, &st);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot get the statistics");
#define STAT_(f) printf(#f " %llu\n", (unsigned long long)st.f)
    STAT_(hits); STAT_(misses); STAT_(reads); STAT_(writes);
    STAT_(evictions); STAT_(evict_writes); STAT_(flusher_writes);
    STAT_(write_requests); STAT_(write_errors); STAT_(clean_waits);
    STAT_(throttle_waits); STAT_(prefetch_pages); STAT_(prefetch_hits);
    STAT_(prefetch_wasted); STAT_(readahead_windows); STAT_(io_errors);
    STAT_(io_submits); STAT_(allocs); STAT_(nofree); STAT_(syncs);
    STAT_(dirty); STAT_(pinned); STAT_(resident);
    STAT_(hot); STAT_(cold); STAT_(nonresident); STAT_(cold_target);
    STAT_(optimistic_reads); STAT_(optimistic_conflicts);
    STAT_(admissions); STAT_(miss_lock_wait_ns); STAT_(miss_lock_hold_ns);
    STAT_(miss_victim_writes); STAT_(miss_victim_write_ns);
    STAT_(miss_frame_waits); STAT_(miss_frame_wait_ns);
    STAT_(miss_reads); STAT_(miss_submit_ns); STAT_(miss_device_ns);
    STAT_(miss_read_waits); STAT_(miss_read_wait_ns);
    STAT_(warm_listed); STAT_(warm_done); STAT_(warm_pages);
    STAT_(resizes); STAT_(io_fixed_buffers); STAT_(io_fixed_files);
#undef STAT_
    uint64_t pins = st.hits + st.misses;
    if (pins)   /* no ratio of no pins: "-", as every tool prints it */
        printf("hit_ratio %.4f\n", (double)st.hits / (double)pins);
    else
        puts("hit_ratio -");
    const struct latency *l = &sh->lat;
    printf("shell_pins %llu\n", (unsigned long long)l->h.count);
    printf("shell_pin_us_min %.2f\n", (double)l->min_ns / 1000.0);
    printf("shell_pin_us_avg %.2f\n",
           l->h.count ? (double)l->h.sum / (double)l->h.count / 1000.0 : 0.0);
    printf("shell_pin_us_p50 %.2f\n", lat_percentile_us(l, 50));
    printf("shell_pin_us_p99 %.2f\n", lat_percentile_us(l, 99));
    printf("shell_pin_us_max %.2f\n", (double)l->h.max / 1000.0);
    return 0;
}

/* ------------------------------------------------------------------------
 * flush, sync, checkpoint
 * ---------------------------------------------------------------------- */

/* After flush all: pages this shell holds for write were skipped (the
 * library cannot latch them from the thread that holds them; sync and
 * checkpoint fail with EDEADLK over a dirty one instead). */
static void note_write_pins(const struct shell *sh)
{
    int n = count_write_pins(sh);
    if (n > 0)
        printf("note: %d %s pinned for write by this shell %s not written "
               "(unpin %s, then run it again)\n", n,
               plural((uint64_t)n, "page", "pages"),
               plural((uint64_t)n, "was", "were"),
               plural((uint64_t)n, "it", "them"));
}

int cmd_flush(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    (void)argc;
    if (word_is(&argv[0], "all")) {
        int rc = bp_flush_all(sh->pool);
        if (rc < 0)
            return fail_lib(sh, rc, "flush all failed");
        printf("flushed %d %s\n", rc, plural((uint64_t)rc, "page", "pages"));
        note_write_pins(sh);
        return 0;
    }
    uint64_t pgno;
    if (get_page(sh, &argv[0], usage_of(cmd), &pgno) < 0)
        return -1;
    struct pin *p = find_pin(sh, pgno);
    if (p != NULL && p->pg.mode == BP_WRITE) {
        char hint[96];
        snprintf(hint, sizeof hint, "hint: unpin it first: unpin %s "
                 "(flush takes the page's read latch)",
                 PN(pgno));
        return fail(sh, hint, "page %s is pinned for write by this shell",
                    PN(pgno));
    }
    int rc = bp_flush_page(sh->pool, pgno);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot flush page %s",
                        PN(pgno));
    if (rc > 0)
        printf("flushed page %s\n", PN(pgno));
    else
        printf("page %s is clean or not in memory: nothing to write\n",
               PN(pgno));
    return 0;
}

int cmd_sync(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    int rc = bp_sync(sh->pool);
    if (rc < 0)
        return fail_lib(sh, rc, "sync failed");
    puts("synced");
    return 0;
}

int cmd_checkpoint(struct shell *sh, const struct command *cmd, int argc,
                   struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    int rc = bp_checkpoint(sh->pool);
    if (rc < 0)
        return fail_lib(sh, rc, "checkpoint failed");
    printf("checkpoint: wrote %d %s, synced\n", rc,
           plural((uint64_t)rc, "page", "pages"));
    return 0;
}

/* ------------------------------------------------------------------------
 * prefetch, evict
 * ---------------------------------------------------------------------- */

/* Pages of [first, last] in memory with their bytes (read finished). */
struct resident_count {
    uint64_t first, last, n;
};

static int count_resident(void *arg, const struct bp_frame_info *fi)
{
    struct resident_count *rc = arg;
    if (fi->pgno >= rc->first && fi->pgno <= rc->last &&
        (fi->flags & BP_FI_VALID) && !(fi->flags & BP_FI_READING))
        rc->n++;
    return 0;
}

/* Wait until the n pages from first are resident, or no more arrive for
 * a second.  Returns how many are, or -1 (error or Ctrl-C). */
static int64_t wait_resident(struct shell *sh, uint64_t first, uint64_t n)
{
    struct resident_count c = { first, first + n - 1, 0 };
    uint64_t best = 0, since = now_ns();
    for (;;) {
        c.n = 0;
        int rc = bp_inspect_frames(sh->pool, count_resident, &c);
        if (rc < 0)
            return fail_lib(sh, rc, "prefetch: cannot look at the frames");
        if (c.n >= n)
            return (int64_t)c.n;
        if (c.n > best) {
            best = c.n;
            since = now_ns();
        } else if (now_ns() - since > 1000000000u) {
            return (int64_t)c.n;
        }
        if (interrupted())
            return fail_interrupted(sh, "prefetch wait");
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
}

int cmd_prefetch(struct shell *sh, const struct command *cmd, int argc,
                 struct word *argv)
{
    uint64_t first, last;
    uint32_t flags = 0;
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        if (word_is(&argv[i], "scan"))
            flags |= BP_SCAN;
        else if (word_is(&argv[i], "wait"))
            wait = true;
        else
            return fail(sh, usage_of(cmd), "prefetch: unknown option \"%s\" "
                        "(use scan or wait)", echo(&argv[i]));
    }
    if (parse_range(sh, &argv[0], "pages", usage_of(cmd), &first, &last) < 0 ||
        check_page(sh, first) < 0)
        return -1;
    uint64_t end = range_end(sh, first, last);
    int rc = bp_prefetch(sh->pool, first, end - first + 1, flags);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot prefetch pages %s",
                        RN(first, end));
    uint64_t n = (uint64_t)rc;
    if (n == 1)
        printf("prefetch: queued page %s", PN(first));
    else
        printf("prefetch: queued pages %s (%llu pages)",
               RN(first, first + n - 1), (unsigned long long)n);
    printf("%s%s\n", flags & BP_SCAN ? ", as a scan" : "",
           end < last ? ", clipped to the end of the file" : "");
    if (!wait || n == 0)
        return 0;
    fflush(stdout);
    int64_t got = wait_resident(sh, first, n);
    if (got < 0)
        return -1;
    printf("prefetch: %lld of %llu %s resident%s\n", (long long)got,
           (unsigned long long)n, plural(n, "page", "pages"),
           (uint64_t)got < n ? " (the reader stops when no clean cold frame "
           "is free; see: clock)" : "");
    return 0;
}

/* ------------------------------------------------------------------------
 * dump, warm (warm restart)
 * ---------------------------------------------------------------------- */

/* ------------------------------------------------------------------------
 * Files of the pool
 * ---------------------------------------------------------------------- */

/* Is the file at path (the same file, by any name) attached to the
 * pool?  Its number in *file. */
struct same_file {
    struct stat st;
    uint32_t file;
};

static int is_same_file(void *arg, uint32_t file, const char *path)
{
    struct same_file *sf = arg;
    struct stat st;
    if (stat(path, &st) == 0 && st.st_dev == sf->st.st_dev &&
        st.st_ino == sf->st.st_ino) {
        sf->file = file;
        return 1;
    }
    return 0;
}

static bool attached_as(struct shell *sh, const char *path, uint32_t *file)
{
    struct same_file sf;
    if (stat(path, &sf.st) != 0 || bp_files(sh->pool, is_same_file, &sf) != 1)
        return false;
    *file = sf.file;
    return true;
}

/* Make the missing file path for "attach FILE create".  bp_attach takes
 * the pool's flags: with BP_CREATE (the shell's first pool, "open FILE
 * create") it makes the file itself; without, it takes an empty file as
 * new and writes its header, so the shell makes one.  *made: the shell
 * did, and removes it if the attach fails. */
static int attach_create(struct shell *sh, const char *path, bool *made)
{
    *made = false;
    if (sh->flags & BP_RDONLY)
        return fail(sh, "hint: this session is read-only (--read-only): "
                    "attach a file that exists", "attach: create: a "
                    "read-only pool cannot create its file");
    if (sh->flags & BP_CREATE)
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail_code(sh, -errno, NULL, hint_for_new_file(-errno),
                         "cannot create %s", printable(path));
    close(fd);
    *made = true;
    return 0;
}

int cmd_attach(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    const char *path = argv[0].s;
    bool create = argc == 2, made = false;
    if (check_file_name(sh, cmd, &argv[0]) < 0)
        return -1;
    if (create && !word_is(&argv[1], "create"))
        return fail(sh, usage_of(cmd), "attach: unknown option \"%s\" (use "
                    "create)", echo(&argv[1]));
    /* As open: a missing file is made only when asked, whatever flags the
     * pool was opened with (a typo made a new file). */
    struct stat st;
    if (stat(path, &st) != 0) {
        int err = errno;
        if (err != ENOENT || !create)
            return fail_code(sh, -err, NULL, err == ENOENT ? "hint: "
                             "attach FILE create makes a new one"
                             : hint_for(-err), "cannot attach %s",
                             printable(path));
        if (attach_create(sh, path, &made) < 0)
            return -1;
    }
    uint32_t file;
    int rc = bp_attach(sh->pool, path, &file);
    if (rc < 0) {
        char own[96];
        const char *hint = create ? hint_for_new_file(rc) : NULL;
        if (rc == -BP_ELOCKED && attached_as(sh, path, &file)) {
            /* Locked by this very pool: nobody else to close. */
            snprintf(own, sizeof own, "hint: it is this pool's file %u "
                     "already: name its pages %u:PAGE", file, file);
            hint = own;
        }
        fail_lib_hint(sh, rc, hint, "cannot attach %s", printable(path));
        if (made)
            unlink(path);
        return -1;
    }
    struct bp_file_info fi;
    uint64_t pages = bp_file_info(sh->pool, file, &fi) == 0 ? fi.page_count : 0;
    printf("attached %s as file %u (%llu %s): name its pages %u:PAGE\n",
           printable(path), file, (unsigned long long)pages,
           plural(pages, "page", "pages"), file);
    return 0;
}

int cmd_detach(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    (void)argc;
    uint64_t file;
    if (parse_num(sh, &argv[0], BP_MAX_FILES - 1, "file number",
                  usage_of(cmd), &file) < 0)
        return -1;
    for (int i = 0; i < sh->npins; i++)
        if (BP_PAGE_FILE(sh->pins[i].pg.pgno) == file) {
            char hint[96];
            snprintf(hint, sizeof hint, "hint: unpin it first: unpin %s",
                     PN(sh->pins[i].pg.pgno));
            return fail(sh, hint, "cannot detach file %llu: this shell holds "
                        "page %s pinned", (unsigned long long)file,
                        PN(sh->pins[i].pg.pgno));
        }
    int rc = bp_detach(sh->pool, (uint32_t)file);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot detach file %llu",
                        (unsigned long long)file);
    printf("detached file %llu: written back, synced and closed\n",
           (unsigned long long)file);
    return 0;
}

int cmd_truncate(struct shell *sh, const struct command *cmd, int argc,
                 struct word *argv)
{
    uint64_t pages = UINT64_MAX, file = 0;
    if (parse_count_file(sh, argc, argv, BP_PAGE_NO(UINT64_MAX) + 1,
                         "page count", usage_of(cmd), &pages, &file) < 0)
        return -1;
    if (pages == UINT64_MAX)
        return fail(sh, usage_of(cmd), "truncate: how many pages to keep?");
    for (int i = 0; i < sh->npins; i++)
        if (BP_PAGE_FILE(sh->pins[i].pg.pgno) == file &&
            BP_PAGE_NO(sh->pins[i].pg.pgno) >= pages) {
            char hint[96];
            snprintf(hint, sizeof hint, "hint: unpin it first: unpin %s",
                     PN(sh->pins[i].pg.pgno));
            return fail(sh, hint, "cannot cut file %llu to %llu pages: this "
                        "shell holds page %s pinned",
                        (unsigned long long)file, (unsigned long long)pages,
                        PN(sh->pins[i].pg.pgno));
        }
    uint64_t had = bp_file_page_count(sh->pool, (uint32_t)file);
    int rc = bp_truncate_file(sh->pool, (uint32_t)file, pages);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot cut file %llu to %llu pages",
                        (unsigned long long)file, (unsigned long long)pages);
    printf("file %llu: %llu pages, %llu cut off\n", (unsigned long long)file,
           (unsigned long long)pages, (unsigned long long)(had - pages));
    return 0;
}

static int print_file(void *arg, uint32_t file, const char *path)
{
    bp_pool *pool = arg;
    struct bp_file_info fi;
    if (bp_file_info(pool, file, &fi) < 0)
        return 0;
    printf("%4u  %10llu  %10llu  %8llu  %s\n", file,
           (unsigned long long)fi.page_count, (unsigned long long)fi.resident,
           (unsigned long long)fi.dirty, printable(path));
    return 0;
}

int cmd_files(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    printf("file       pages    resident     dirty  path\n");
    int rc = bp_files(sh->pool, print_file, sh->pool);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot list the files");
    return 0;
}

int cmd_resize(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    (void)argc;
    uint64_t bytes;
    if (parse_size(sh, &argv[0], UINT64_MAX, "pool size", usage_of(cmd),
                   &bytes) < 0)
        return -1;
    struct bp_info before, after;
    if (bp_info(sh->pool, &before) < 0)
        return fail_lib(sh, -EINVAL, "cannot get pool information");
    uint64_t t0 = now_ns();
    int rc = bp_resize(sh->pool, bytes);
    double took = (double)(now_ns() - t0) / 1e9;
    char detail[512];
    (void)snprintf(detail, sizeof detail, "%s", rc < 0 ? bp_errdetail() : "");
    /* Below the fewest frames no reserve helps: name the size that is
     * enough, as the command line's --pool does. */
    if (rc == -BP_EPOOLSIZE && bytes / before.page_size < BP_MIN_FRAMES) {
        char hint[128];
        snprintf(hint, sizeof hint, "hint: a pool has at least %u frames: "
                 "resize %llu or more", BP_MIN_FRAMES,
                 (unsigned long long)BP_MIN_FRAMES * before.page_size);
        return fail_code(sh, rc, detail, hint, "cannot resize the pool");
    }
    if (rc == -BP_EPOOLSIZE)
        return fail_code(sh, rc, detail, "hint: \"info\" shows "
                         "frames_max; open with poolmax=SIZE to grow further",
                         "cannot resize the pool");
    if (rc == -EBUSY)
        return fail_code(sh, rc, detail, "hint: unpin the pages this "
                         "shell holds (see \"pinned\"), then resize again",
                         "cannot resize the pool");
    if (rc < 0)
        return fail_lib(sh, rc, "cannot resize the pool");
    (void)bp_info(sh->pool, &after);
    printf("resized: %u -> %u frames (%llu bytes) in %.3f s\n",
           before.frames, after.frames,
           (unsigned long long)after.frames * after.page_size, took);
    return 0;
}

int cmd_dump(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    (void)argc;
    if (check_file_name(sh, cmd, &argv[0]) < 0)
        return -1;
    int rc = bp_dump_resident(sh->pool, argv[0].s);
    if (rc < 0)
        return fail_lib_hint(sh, rc, hint_for_new_file(rc),
                             "cannot dump the resident pages");
    printf("dump: %d %s listed in %s\n", rc, plural((uint64_t)rc, "page", "pages"),
           argv[0].s);
    return 0;
}

int cmd_warm(struct shell *sh, const struct command *cmd, int argc,
             struct word *argv)
{
    bool wait = false;
    if (check_file_name(sh, cmd, &argv[0]) < 0)
        return -1;
    if (argc == 2 && word_is(&argv[1], "wait"))
        wait = true;
    else if (argc == 2)
        return fail(sh, usage_of(cmd), "warm: unknown option \"%s\" (use "
                    "wait)", echo(&argv[1]));
    /* warm_pages counts the pages every warm since open (or stats reset)
     * read: this warm's are what it adds from here on. */
    struct bp_stats st;
    int rc = bp_stats(sh->pool, &st);
    if (rc < 0)
        return fail_lib(sh, rc, "warm: cannot get the statistics");
    uint64_t read_before = st.warm_pages;
    rc = bp_warm(sh->pool, argv[0].s);
    if (rc == -ENOENT)
        return fail_code(sh, rc, bp_errdetail(), "hint: write a dump first: dump FILE",
                         "cannot warm the pool");
    if (rc < 0)
        return fail_lib(sh, rc, "cannot warm the pool");
    printf("warm: %d %s listed, reading in the background\n", rc,
           plural((uint64_t)rc, "page", "pages"));
    if (!wait)
        return 0;
    fflush(stdout);
    uint64_t t0 = now_ns();
    for (;;) {
        if ((rc = bp_stats(sh->pool, &st)) < 0)
            return fail_lib(sh, rc, "warm: cannot get the statistics");
        if (st.warm_done >= st.warm_listed)
            break;
        if (interrupted())
            return fail_interrupted(sh, "warm wait");
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
    uint64_t read = st.warm_pages - read_before;
    printf("warm: done in %.3f s: %llu %s read, %llu resident\n",
           (double)(now_ns() - t0) / 1e9, (unsigned long long)read,
           plural(read, "page", "pages"), (unsigned long long)st.resident);
    return 0;
}

/* Pages resident now, for "evict all". */
struct page_list {
    uint64_t *pg;
    size_t n, cap;
};

static int collect_pages(void *arg, const struct bp_frame_info *fi)
{
    struct page_list *l = arg;
    if (fi->pgno == UINT64_MAX)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint64_t *p = realloc(l->pg, cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        l->pg = p;
        l->cap = cap;
    }
    l->pg[l->n++] = fi->pgno;
    return 0;
}

static int evict_one(struct shell *sh, uint64_t pgno)
{
    if (find_pin(sh, pgno) != NULL) {
        char hint[64];
        snprintf(hint, sizeof hint, "hint: unpin it first: unpin %s",
                 PN(pgno));
        return fail(sh, hint, "cannot evict page %s: this shell holds it "
                    "pinned", PN(pgno));
    }
    int rc = bp_evict_page(sh->pool, pgno);
    if (rc < 0)
        return fail_lib(sh, rc, "cannot evict page %s",
                        PN(pgno));
    if (rc > 0)
        printf("evicted page %s\n", PN(pgno));
    else
        printf("page %s is not in memory: nothing to evict\n",
               PN(pgno));
    return 0;
}

int cmd_evict(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    (void)argc;
    uint64_t first = 0, last = UINT64_MAX;
    bool all = word_is(&argv[0], "all");
    if (!all) {
        if (parse_range(sh, &argv[0], "pages", usage_of(cmd), &first,
                        &last) < 0 || check_page(sh, first) < 0)
            return -1;
        if (first == last)
            return evict_one(sh, first);
    }
    struct page_list l = { NULL, 0, 0 };
    int rc = bp_inspect_frames(sh->pool, collect_pages, &l);
    if (rc < 0) {
        free(l.pg);
        return fail_lib(sh, rc, "evict: cannot look at the frames");
    }
    uint64_t evicted = 0, kept = 0;
    for (size_t i = 0; i < l.n && rc >= 0; i++) {
        if (l.pg[i] < first || l.pg[i] > last)
            continue;
        if (interrupted()) {
            rc = -EINTR;
            break;
        }
        if (find_pin(sh, l.pg[i]) != NULL) {
            kept++;
            continue;
        }
        rc = bp_evict_page(sh->pool, l.pg[i]);
        if (rc == -EBUSY) {
            kept++;
            rc = 0;
        } else if (rc > 0) {
            evicted++;
        }
    }
    free(l.pg);
    if (rc == -EINTR)
        return fail_interrupted(sh, "evict");
    if (rc < 0)
        return fail_lib(sh, rc, "evict failed after %llu %s",
                        (unsigned long long)evicted,
                        plural(evicted, "page", "pages"));
    printf("evicted %llu %s", (unsigned long long)evicted,
           plural(evicted, "page", "pages"));
    if (!all && range_end(sh, first, last) < last)
        printf(" (the range clipped to the end of the file)");
    if (kept > 0)
        printf("; kept %llu pinned, dirty or under I/O (unpin all, flush "
               "all, then evict again)", (unsigned long long)kept);
    putchar('\n');
    return 0;
}
