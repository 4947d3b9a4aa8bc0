/* SPDX-License-Identifier: MIT */
/*
 * dlopen_load.c - libbpool.so loaded at run time, as a plugin or Python's
 * ctypes loads it: dlopen, a pool used through dlsym'd functions, errors
 * with their detail in two threads, dlclose (which leaves the library
 * loaded: it is linked -z nodelete), dlopen again.
 *
 * The library keeps some thread-locals of the initial-exec model (one
 * instruction on the hit path), which a library loaded by dlopen must
 * find room for in the static TLS block, and the C library keeps only a
 * few hundred bytes of it to spare: when 9 KiB of error detail were
 * thread-local too, dlopen failed with "cannot allocate memory in static
 * TLS block".  This program links no bpool library: it finds the one the
 * build made under $top_builddir/.libs (skipped, exit 77, in a build
 * without shared libraries).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"

#define PS 8192u

static int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (cond) {                                                           \
            printf("ok   ");                                                  \
        } else {                                                              \
            printf("FAIL ");                                                  \
            failures++;                                                       \
        }                                                                     \
        printf(__VA_ARGS__);                                                  \
        printf("\n");                                                         \
    } while (0)

static struct {
    void (*options_init_sized)(struct bp_options *, size_t);
    int (*open)(const char *, const struct bp_options *, bp_pool **);
    int (*close)(bp_pool *);
    int (*alloc_page)(bp_pool *, uint64_t *, bp_page *);
    int (*pin)(bp_pool *, uint64_t, uint32_t, bp_page *);
    int (*mark_dirty)(bp_page *);
    int (*unpin)(bp_page *);
    const char *(*errdetail)(void);
} bp;

static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (!p) {
        printf("FAIL dlsym %s: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

/* A bp_open that must fail, and its detail in this thread. */
static int open_missing(const char *dir, char *detail, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/dir/x.bp", dir);
    struct bp_options o;
    bp.options_init_sized(&o, sizeof o);
    bp_pool *pool = NULL;
    int r = bp.open(path, &o, &pool);
    snprintf(detail, len, "%s", bp.errdetail());
    return r;
}

struct thread_arg {
    const char *dir;
    int r;
    char detail[512];
    int hold[2];   /* a pipe: with hold[0] >= 0, the thread stays until
                      it can read a byte */
    _Atomic int failed;   /* its call has failed: r and detail are set */
};

/* The detail buffer of the thread that outlives the library: nothing can
 * free it after the dlclose (bp_strerror(3)), so the pointer is kept here,
 * where a leak checker sees it. */
static const char *_Atomic late_buffer;

static void *thread_main(void *arg)
{
    struct thread_arg *t = arg;
    t->r = open_missing(t->dir, t->detail, sizeof t->detail);
    if (t->hold[0] >= 0)
        atomic_store(&late_buffer, bp.errdetail());
    atomic_store(&t->failed, 1);
    char c;
    if (t->hold[0] >= 0 && read(t->hold[0], &c, 1) != 1)
        return NULL;
    return NULL;
}

int main(void)
{
    const char *top = getenv("top_builddir");
    const char *tmp = getenv("BPOOL_TEST_TMPDIR");
    char so[4096];
    snprintf(so, sizeof so, "%s/.libs/libbpool.so", top && *top ? top : ".");
    if (access(so, R_OK) != 0) {
        printf("SKIP: no shared library at %s (built without one?)\n", so);
        return 77;
    }
    if (!tmp || !*tmp)
        tmp = ".";
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen %s: %s", so, h ? "loaded" : dlerror());
    if (!h)
        return 1;
    /* bp_options_init is a macro over bp_options_init_sized. */
    bp.options_init_sized = (void (*)(struct bp_options *, size_t))
        sym(h, "bp_options_init_sized");
    bp.open = (int (*)(const char *, const struct bp_options *, bp_pool **))
        sym(h, "bp_open");
    bp.close = (int (*)(bp_pool *))sym(h, "bp_close");
    bp.alloc_page = (int (*)(bp_pool *, uint64_t *, bp_page *))sym(h, "bp_alloc_page");
    bp.pin = (int (*)(bp_pool *, uint64_t, uint32_t, bp_page *))sym(h, "bp_pin");
    bp.mark_dirty = (int (*)(bp_page *))sym(h, "bp_mark_dirty");
    bp.unpin = (int (*)(bp_page *))sym(h, "bp_unpin");
    bp.errdetail = (const char *(*)(void))sym(h, "bp_errdetail");

    CHECK(strcmp(bp.errdetail(), "") == 0, "no detail before a failure: '%s'",
          bp.errdetail());
    char detail[512];
    int r = open_missing(tmp, detail, sizeof detail);
    CHECK(r < 0 && strstr(detail, "no/such/dir"), "a failed open: %d, '%s'",
          r, detail);
    /* Another thread's failure has its own detail, and leaves this one's. */
    struct thread_arg t = { .dir = "/nonexistent-elsewhere", .hold = { -1, -1 } };
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, &t) == 0, "a thread");
    pthread_join(th, NULL);
    /* One more, that failed a call and is still there at the dlclose: it
     * exits after the library is gone (its detail's buffer, freed at a
     * thread's exit by the library's code, must not be). */
    struct thread_arg late = { .dir = "/late" };
    pthread_t late_th;
    CHECK(pipe(late.hold) == 0 &&
          pthread_create(&late_th, NULL, thread_main, &late) == 0,
          "a thread that outlives the library");
    CHECK(t.r < 0 && strstr(t.detail, "nonexistent-elsewhere"),
          "the thread's failure: %d, '%s'", t.r, t.detail);
    CHECK(strstr(bp.errdetail(), "no/such/dir") != NULL,
          "this thread's detail kept: '%s'", bp.errdetail());

    /* A pool: pages written, closed, read back. */
    char path[4096];
    snprintf(path, sizeof path, "%s/dlopen_load.bp", tmp);
    unlink(path);
    struct bp_options o;
    bp.options_init_sized(&o, sizeof o);
    o.flags = BP_CREATE;
    o.pool_frames = 16;
    bp_pool *pool = NULL;
    r = bp.open(path, &o, &pool);
    CHECK(r == 0, "bp_open %s: %s", path, r ? bp.errdetail() : "ok");
    if (r)
        return 1;
    for (uint64_t i = 0; i < 8; i++) {
        uint64_t n;
        bp_page pg;
        r = bp.alloc_page(pool, &n, &pg);
        if (r == 0) {
            memset(pg.data, (int)('a' + n), PS);
            r = bp.mark_dirty(&pg);
            bp.unpin(&pg);
        }
        if (r) {
            CHECK(0, "page %llu: %s", (unsigned long long)i, bp.errdetail());
            return 1;
        }
    }
    r = bp.close(pool);
    CHECK(r == 0, "bp_close: %s", r ? bp.errdetail() : "ok");
    o.flags = 0;
    r = bp.open(path, &o, &pool);
    CHECK(r == 0, "bp_open again: %s", r ? bp.errdetail() : "ok");
    if (r)
        return 1;
    int same = 0;
    for (uint64_t i = 0; i < 8; i++) {
        bp_page pg;
        if (bp.pin(pool, i, BP_READ, &pg) == 0) {
            same += ((const char *)pg.data)[100] == (char)('a' + i);
            bp.unpin(&pg);
        }
    }
    CHECK(same == 8, "the pages read back: %d of 8", same);
    r = bp.close(pool);
    CHECK(r == 0, "bp_close: %s", r ? bp.errdetail() : "ok");
    unlink(path);
    for (int i = 0; i < 5000 && !atomic_load(&late.failed); i++)
        usleep(1000);
    CHECK(late.r < 0, "the late thread's failure: %d", late.r);
    CHECK(dlclose(h) == 0, "dlclose");
    /* Linked -z nodelete: the library stays, with the contexts the pools
     * left for later ones, and its code for the late thread's exit. */
    void *still = dlopen(so, RTLD_NOW | RTLD_NOLOAD);
    CHECK(still != NULL, "the library stays loaded after dlclose");
    CHECK(write(late.hold[1], "x", 1) == 1 && pthread_join(late_th, NULL) == 0,
          "the late thread exited after the dlclose");
    if (still) {
        /* The same library again: a pool opens and closes. */
        bp.open = (int (*)(const char *, const struct bp_options *,
                           bp_pool **))sym(still, "bp_open");
        bp.close = (int (*)(bp_pool *))sym(still, "bp_close");
        bp.options_init_sized(&o, sizeof o);
        o.flags = BP_CREATE;
        o.pool_frames = 16;
        r = bp.open(path, &o, &pool);
        CHECK(r == 0 && bp.close(pool) == 0, "a pool after dlopen again");
        unlink(path);
        dlclose(still);
    }
    printf("%d failed\n", failures);
    return failures ? 1 : 0;
}
