/* SPDX-License-Identifier: MIT */
/* testutil.c - helpers shared by the Check programs (see testutil.h). */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "io_engine.h"
#include "testutil.h"

static char dir[4096];

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_dir(void)
{
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_dir(void)
{
    static pid_t owner;
    if (dir[0] && owner == getpid())
        return dir;
    const char *top = getenv("top_builddir");
    snprintf(dir, sizeof(dir), "%s/tests/tmp-%d-XXXXXX", top && *top ? top : ".",
             (int)getpid());
    if (!mkdtemp(dir)) {
        /* top_builddir/tests may not exist when run by hand elsewhere. */
        snprintf(dir, sizeof(dir), "./tmp-%d-XXXXXX", (int)getpid());
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    /* Absolute, so a symbolic link a test makes to a path of it points
     * at the file from any directory. */
    char abs[PATH_MAX];
    if (realpath(dir, abs) && strlen(abs) < sizeof(dir))
        memcpy(dir, abs, strlen(abs) + 1);
    owner = getpid();
    atexit(rm_dir);
    return dir;
}

#ifdef BP_TEST_COVERAGE
/* libgcov's (tests/coverage.sh builds with --coverage and defines
 * BP_TEST_COVERAGE: a weak reference would not pull it from libgcov.a). */
extern void __gcov_dump(void);
#endif

void tu_child_exit(int code)
{
#ifdef BP_TEST_COVERAGE
    __gcov_dump();
#endif
    _exit(code);
}

void tu_child_alarm(unsigned seconds)
{
    alarm((unsigned)(seconds * tu_timeout_multiplier()));
}

void tu_in_child(int (*fn)(void *arg), void *arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        tu_child_alarm(10);
        tu_child_exit(fn(arg));
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child "
                  "failed (status %#x: exit code = mask of failed checks)",
                  (unsigned)status);
}

int tu_fail_writes(void *arg, const struct iocb *cb)
{
    (void)arg;
    return cb->aio_lio_opcode == IO_CMD_PWRITE ||
           cb->aio_lio_opcode == IO_CMD_PWRITEV ? -EIO : 0;
}

bool tu_under_valgrind(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload");
}

void tu_alloc_stamped(bp_pool *pool, uint64_t count, uint32_t payload,
                      uint32_t seed)
{
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n;
        bp_page pg;
        ck_assert_int_eq(bp_alloc_page(pool, &n, &pg), 0);
        tu_stamp(pg.data, payload, n, seed);
        ck_assert_int_eq(bp_mark_dirty(&pg), 0);
        ck_assert_int_eq(bp_unpin(&pg), 0);
    }
}

bool tu_write_covers(const struct iocb *cb, uint32_t page_size, uint64_t pgno)
{
    long long off;
    size_t len = 0;
    if (cb->aio_lio_opcode == IO_CMD_PWRITE) {
        off = cb->u.c.offset;
        len = cb->u.c.nbytes;
    } else if (cb->aio_lio_opcode == IO_CMD_PWRITEV) {
        off = cb->u.v.offset;
        for (long i = 0; i < (long)cb->u.v.nr; i++)
            len += cb->u.v.vec[i].iov_len;
    } else {
        return false;
    }
    long long at = (long long)tu_page_offset(page_size, pgno);
    return at >= off && at < off + (long long)len;
}

void *tu_keep(void *p)
{
    /* A forked test is short-lived: a fixed array is enough, and what
     * does not fit is merely reported as a leak.  volatile: the array is
     * never read, so the compiler would drop the stores (it does at -O2)
     * and every kept pointer would be reported as lost. */
    static void *volatile kept[1024];
    static unsigned nkept;
    if (nkept < sizeof(kept) / sizeof(kept[0]))
        kept[nkept++] = p;
    return p;
}

char *tu_path(const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", tu_dir(), name) < 0)
        abort();
    return tu_keep(p);
}

const char *tu_srcdir(void)
{
    const char *d = getenv("srcdir");
    return d && *d ? d : ".";
}

double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static pthread_mutex_t thread_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char thread_err_first[512];
static int thread_err_count;

void tu_thread_fail(const char *fmt, ...)
{
    pthread_mutex_lock(&thread_err_mu);
    if (thread_err_count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(thread_err_first, sizeof(thread_err_first), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&thread_err_mu);
}

void tu_assert_no_thread_errors(void)
{
    char msg[sizeof(thread_err_first)];
    pthread_mutex_lock(&thread_err_mu);
    int n = thread_err_count;
    memcpy(msg, thread_err_first, sizeof(msg));
    pthread_mutex_unlock(&thread_err_mu);
    ck_assert_msg(n == 0, "%d problem(s) in worker threads; first: %s", n, msg);
}

/* The first line of /proc/self/task/TID/NAME, or "?". */
static void task_file(const char *tid, const char *name, char *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/self/task/%s/%s", tid, name);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, (int)len, f))
        snprintf(buf, len, "?");
    if (f)
        fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

int tu_all_bytes(const void *p, size_t n, unsigned char c)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != c)
            return 0;
    return 1;
}

void tu_file_intact(const char *path, uint32_t page_size, uint64_t n,
                    uint32_t seed)
{
    char *buf = malloc(page_size);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tu_file_pages(path, page_size), n);
    for (uint64_t p = 0; p < n; p++) {
        tu_read_page(path, page_size, p, buf);
        ck_assert_msg(tu_stamped(buf, page_size, p, seed), "page %llu of %s "
                      "changed", (unsigned long long)p, path);
    }
    free(buf);
}

void tu_dump_threads(const char *why)
{
    fprintf(stderr, "watchdog: %s; the threads of process %d:\n", why,
            (int)getpid());
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char comm[64], wchan[64], sys[128];
        task_file(e->d_name, "comm", comm, sizeof(comm));
        task_file(e->d_name, "wchan", wchan, sizeof(wchan));
        task_file(e->d_name, "syscall", sys, sizeof(sys));
        /* syscall: the number first (202 futex, 208 io_getevents on
         * x86-64), "running" or -1 when not in a system call. */
        fprintf(stderr, "  thread %s (%s): wchan %s, syscall %.40s\n",
                e->d_name, comm, wchan, sys);
    }
    if (d)
        closedir(d);
    /* The stacks, if gdb is there; it must be allowed to attach to us. */
    if (system("command -v gdb >/dev/null 2>&1") == 0) {
        char cmd[256];
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
        snprintf(cmd, sizeof(cmd), "timeout 60 gdb -p %d -batch -nx "
                 "-ex 'thread apply all bt 40' </dev/null 1>&2",
                 (int)getpid());
        fflush(stderr);
        if (system(cmd) != 0)
            fprintf(stderr, "watchdog: gdb could not show the stacks\n");
    }
    fflush(stderr);
}

double tu_timeout_multiplier(void)
{
    const char *mult = getenv("CK_TIMEOUT_MULTIPLIER");
    return mult && atof(mult) > 1 ? atof(mult) : 1;
}

void tu_join_all(pthread_t *threads, unsigned n, double seconds, const char *what)
{
    seconds *= tu_timeout_multiplier();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)seconds;
    for (unsigned i = 0; i < n; i++) {
        int r = pthread_timedjoin_np(threads[i], NULL, &until);
        if (r == ETIMEDOUT) {
            char why[256];
            snprintf(why, sizeof(why), "%s: thread %u of %u has not finished "
                     "after %.0f s", what, i, n, seconds);
            tu_dump_threads(why);
            ck_abort_msg("%s (a hang: see the thread dump above)", why);
        }
        ck_assert_int_eq(r, 0);
    }
}

uint64_t tu_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return x ^ (x >> 33);
}

uint64_t tu_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

void tu_stamp(void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed)
{
    uint64_t *w = buf;
    for (uint32_t i = 0; i < page_size / 8; i++)
        w[i] = tu_mix64(pgno * 1000003u + seed * 7919u + i);
    w[0] = pgno;
}

int tu_stamped(const void *buf, uint32_t page_size, uint64_t pgno, uint32_t seed)
{
    const uint64_t *w = buf;
    if (w[0] != pgno)
        return 0;
    for (uint32_t i = 1; i < page_size / 8; i++)
        if (w[i] != tu_mix64(pgno * 1000003u + seed * 7919u + i))
            return 0;
    return 1;
}

static void make_file(const char *path, uint32_t page_size, uint64_t pages,
                      uint32_t seed, int header_flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *buf = calloc(1, page_size);
    if (fd < 0 || !buf)
        abort();
    off_t start = 0;
    if (header_flags >= 0) {
        struct bp__header h = { .version = BP__FORMAT_PLAIN,
                                .page_size = page_size,
                                .checksums = (header_flags & BP_CHECKSUMS) != 0,
                                .id = { 't', 'u' } };
        bp__header_format((uint8_t *)buf, &h);
        if (pwrite(fd, buf, page_size, 0) != (ssize_t)page_size)
            abort();
        start = page_size;
    }
    for (uint64_t i = 0; i < pages; i++) {
        tu_stamp(buf, page_size, i, seed);
        if (pwrite(fd, buf, page_size, start + (off_t)(i * page_size)) !=
            (ssize_t)page_size)
            abort();
    }
    if (fsync(fd) < 0)
        abort();
    close(fd);
    free(buf);
}

void tu_make_file(const char *path, uint32_t page_size, uint64_t pages,
                  uint32_t seed)
{
    make_file(path, page_size, pages, seed, 0);
}

void tu_make_file_flags(const char *path, uint32_t page_size, uint64_t pages,
                        uint32_t seed, uint32_t flags)
{
    make_file(path, page_size, pages, seed, (int)(flags & BP_CHECKSUMS));
}

void tu_make_raw_file(const char *path, uint32_t page_size, uint64_t pages,
                      uint32_t seed)
{
    make_file(path, page_size, pages, seed, -1);
}

off_t tu_page_offset(uint32_t page_size, uint64_t pgno)
{
    return (off_t)((pgno + 1) * page_size);
}

uint64_t tu_file_pages(const char *path, uint32_t page_size)
{
    off_t size = tu_file_size(path);
    ck_assert_msg(size >= (off_t)page_size && size % page_size == 0,
                  "%s is %lld bytes: not a header page and whole pages of %u",
                  path, (long long)size, page_size);
    return (uint64_t)size / page_size - 1;
}

void tu_read_page(const char *path, uint32_t page_size, uint64_t pgno, void *buf)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0 || pread(fd, buf, page_size, tu_page_offset(page_size, pgno)) !=
                  (ssize_t)page_size)
        abort();
    close(fd);
}

bp_pool *tu_open(const char *path, uint32_t frames, uint32_t flags)
{
    struct bp_options o;
    bp_pool *pool = NULL;
    bp_options_init(&o);
    o.pool_frames = frames;
    o.flags = flags;
    int r = bp_open(path, &o, &pool);
    ck_assert_msg(r == 0, "bp_open(%s, %u frames): %s: %s", path, frames,
                  bp_strerror(r), bp_errdetail());
    return pool;
}

void tu_read_page_direct(const char *path, uint32_t page_size, uint64_t pgno,
                         void *buf)
{
    int fd = open(path, O_RDONLY | O_DIRECT);
    ck_assert_msg(fd >= 0, "open(%s, O_DIRECT) failed", path);
    ck_assert_int_eq(pread(fd, buf, page_size, tu_page_offset(page_size, pgno)),
                     page_size);
    close(fd);
}

void tu_expect_file(const char *path, uint32_t page_size, const uint32_t *model,
                    uint64_t n)
{
    void *buf = NULL;
    ck_assert_int_eq(posix_memalign(&buf, 4096, page_size), 0);
    for (uint64_t p = 0; p < n; p++) {
        tu_read_page_direct(path, page_size, p, buf);
        ck_assert_msg(tu_stamped(buf, page_size, p, model[p]),
                      "file page %llu does not hold seed %u: a change was lost",
                      (unsigned long long)p, model[p]);
    }
    free(buf);
}

off_t tu_file_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s failed", path);
    return st.st_size;
}

void tu_assert_no_file(const char *path)
{
    struct stat st;
    ck_assert_msg(lstat(path, &st) < 0 && errno == ENOENT,
                  "%s exists after a failed call", path);
}

bp_pool *tu_open_opts(const char *path, uint32_t frames, uint32_t flags,
                      const struct bp_options *extra)
{
    struct bp_options o;
    if (extra)
        o = *extra;
    else
        bp_options_init(&o);
    o.flags |= flags;
    o.pool_frames = frames;
    bp_pool *pool = NULL;
    int r = bp_open(path, &o, &pool);
    ck_assert_msg(r == 0, "bp_open %s: %s", path, bp_errdetail());
    return pool;
}

int tu_try_open(const char *path, uint32_t flags, uint32_t page_size,
                uint32_t frames, bp_pool **out)
{
    struct bp_options o;
    bp_options_init(&o);
    o.flags = flags;
    o.page_size = page_size;
    o.pool_frames = frames;
    *out = NULL;
    return bp_open(path, &o, out);
}

struct bp_stats tu_stats(bp_pool *pool)
{
    struct bp_stats st;
    ck_assert_int_eq(bp_stats(pool, &st), 0);
    return st;
}

struct bp_stats tu_wait_warmed(bp_pool *pool)
{
    double end = tu_now() + 10 * tu_timeout_multiplier();
    struct bp_stats st = tu_stats(pool);
    while ((st.warm_done < st.warm_listed || st.pinned) && tu_now() < end) {
        usleep(2000);
        st = tu_stats(pool);
    }
    ck_assert_msg(st.warm_done == st.warm_listed && !st.pinned,
                  "warming: %llu of %llu pages dealt with, %llu pinned",
                  (unsigned long long)st.warm_done,
                  (unsigned long long)st.warm_listed,
                  (unsigned long long)st.pinned);
    return st;
}

struct bp_stats tu_settled_stats(bp_pool *pool)
{
    struct bp_stats st = tu_stats(pool);
    double end = tu_now() + 5 * tu_timeout_multiplier();
    for (; st.pinned && tu_now() < end; usleep(2000))
        st = tu_stats(pool);
    return st;
}

bool tu_await_parked(bp_pool *pool, uint64_t pgno)
{
    double end = tu_now() + 10 * tu_timeout_multiplier();
    do {
        uint32_t f = bp__pt_lookup(&pool->pt, pgno);
        if (f != BP__PT_NOTFOUND &&
            (atomic_load(&pool->frames[f].state) & BP__F_PARKED))
            return true;
        usleep(200);
    } while (tu_now() < end);
    return false;
}

void tu_expect_page(bp_pool *pool, uint64_t pgno, uint32_t mode, uint32_t seed)
{
    bp_page pg;
    int r = bp_pin(pool, pgno, mode, &pg);
    ck_assert_msg(r == 0, "pin %llu: %s", (unsigned long long)pgno,
                  bp_errdetail());
    ck_assert_msg(tu_stamped(pg.data, bp_page_size(pool), pgno, seed),
                  "page %llu does not hold seed %u", (unsigned long long)pgno,
                  seed);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

void tu_rewrite_page(bp_pool *pool, uint64_t pgno, uint32_t expect,
                     uint32_t seed)
{
    uint32_t ps = bp_page_size(pool);
    bp_page pg;
    int r = bp_pin(pool, pgno, BP_WRITE, &pg);
    ck_assert_msg(r == 0, "pin %llu for write: %s", (unsigned long long)pgno,
                  bp_errdetail());
    if (expect)
        ck_assert_msg(tu_stamped(pg.data, ps, pgno, expect),
                      "page %llu does not hold seed %u",
                      (unsigned long long)pgno, expect);
    tu_stamp(pg.data, ps, pgno, seed);
    ck_assert_int_eq(bp_mark_dirty(&pg), 0);
    ck_assert_int_eq(bp_unpin(&pg), 0);
}

const struct bp__io_engine *tu_engine(void)
{
    struct bp_options o;
    bp_options_init(&o);
#ifdef HAVE_LIBURING
    if (o.io_engine == BP_IO_URING || o.io_engine == BP_IO_AUTO)
        return &bp__engine_uring;
#endif
    return &bp__engine_libaio;
}

const char *tu_engine_info(void)
{
    return tu_engine() == &bp__engine_libaio ? "libaio+O_DIRECT"
                                             : "io_uring+O_DIRECT";
}

const char *tu_no_uring_reason(void)
{
    static char why[600];
    struct bp_options o;
    bp_options_init(&o);
    o.io_engine = BP_IO_URING;
    o.pool_frames = 8;
    bp_pool *pool = NULL;
    if (bp_pool_create(&o, &pool) == 0) {
        bp_close(pool);
        return NULL;
    }
    (void)snprintf(why, sizeof why, "no io_uring engine: %s", bp_errdetail());
    return why;
}
