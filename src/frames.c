/* SPDX-License-Identifier: MIT */
/* frames.c - the frame arena, the frame descriptors, and the transitions
 * of frame_state.h that wait: for a content latch, for a read or an
 * eviction under way, for a write in flight.
 *
 * The arena is one anonymous mapping holding every frame's bytes back to
 * back, so frame f's data is at arena + f * page_size.  Its start is
 * aligned to max(4096, the file system's O_DIRECT memory alignment), and
 * to 2 MiB when the arena is at least that large, so that the kernel can
 * back it with transparent huge pages (fewer TLB misses on a large pool);
 * every frame is then aligned to the page size's low bits as well, because
 * page sizes are powers of two >= 4096.  Descriptors live in their own
 * array so the small, hot state words are packed densely and never share
 * a cache line with page bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bpool_internal.h"

#define HUGE_ALIGN (2u << 20)

int bp__frames_create(bp_pool *pool)
{
    /* Room for frames_max frames, so bp_resize never moves one: the
     * mapping reserves address space only, and the pages of frames not
     * in use are never touched (or are given back, resize.c). */
    size_t bytes = (size_t)pool->frames_max * pool->page_size;
    size_t align = 4096;
    if (pool->mem_align > align)
        align = pool->mem_align;
    if (bytes >= HUGE_ALIGN && align < HUGE_ALIGN)
        align = HUGE_ALIGN;

    /* A pool larger than the machine's memory would only page to swap
     * (and its metadata, which is written at open, could take the machine
     * down first): refuse it while nothing is allocated yet. */
    long phys = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t need = (uint64_t)bytes + (uint64_t)pool->frames_max * BP__FRAME_META_BYTES;
    /* room for bp_resize to grow into (pool_bytes_max) */
    bool reserve = pool->frames_max > atomic_load(&pool->nframes);
    if (phys > 0 && psz > 0 && need / (uint64_t)psz > (uint64_t)phys)
        return bp__fail(-ENOMEM, "cannot map a frame arena of %zu bytes (%u "
                        "frames of %u bytes%s): with its metadata the pool "
                        "needs %llu bytes, more than this machine's %llu "
                        "bytes of memory; choose a smaller %s", bytes,
                        pool->frames_max, pool->page_size,
                        reserve ? ", as many as pool_bytes_max allows" : "",
                        (unsigned long long)need,
                        (unsigned long long)phys * (unsigned long long)psz,
                        reserve ? "pool_bytes_max (the most bp_resize may "
                                  "give the pool)" : "pool");

    /* Over-map by one alignment unit, then trim both ends. */
    size_t len = bytes + align;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return bp__fail(-ENOMEM, "cannot map a frame arena of %zu bytes "
                        "(%u frames of %u bytes): %s; choose a smaller pool",
                        bytes, pool->frames_max, pool->page_size, strerror(errno));
    size_t head = (align - (uintptr_t)m % align) % align;
    char *start = m + head;
    if (head)
        munmap(m, head);
    size_t tail = len - head - bytes;
    if (tail)
        munmap(start + bytes, tail);
    pool->arena = start;
    pool->arena_len = bytes;
    pool->frame_align = (uint32_t)(align < pool->page_size ? align : pool->page_size);
    if (pool->frame_align < 4096)
        pool->frame_align = 4096;
    pool->huge_pages = 0;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_ALIGN && madvise(pool->arena, bytes, MADV_HUGEPAGE) == 0)
        pool->huge_pages = 1;
#endif
    pool->chunk_faulted = NULL;
    if (pool->huge_pages &&
        !(pool->chunk_faulted = calloc(bytes / HUGE_ALIGN, 1))) {
        munmap(pool->arena, bytes);
        pool->arena = NULL;
        return bp__fail(-ENOMEM, "cannot allocate the frame arena's map of "
                        "huge pages (%zu bytes)", bytes / HUGE_ALIGN);
    }

    void *d = NULL;
    if (posix_memalign(&d, 64, (size_t)pool->frames_max * sizeof(struct bp__frame))) {
        munmap(pool->arena, bytes);
        pool->arena = NULL;
        free(pool->chunk_faulted);
        pool->chunk_faulted = NULL;
        return bp__fail(-ENOMEM, "cannot allocate %u frame descriptors",
                        pool->frames_max);
    }
    pool->frames = d;
    for (uint32_t f = 0; f < pool->frames_max; f++)
        bp__frame_init(&pool->frames[f]);
    return 0;
}

void bp__frames_destroy(bp_pool *pool)
{
    free(pool->frames);
    pool->frames = NULL;
    free(pool->chunk_faulted);
    pool->chunk_faulted = NULL;
    if (pool->arena)
        munmap(pool->arena, pool->arena_len);
    pool->arena = NULL;
}

/* With the arena on transparent huge pages, the first write into a 2 MiB
 * chunk has the kernel allocate a huge page, charge it to the process's
 * memory cgroup and clear it, and only then see whether another thread's
 * fault mapped one there first - in which case it gives its own back.
 * Frames are handed out in order, so a pool filling up under 32 threads
 * faulted each chunk from up to 32 threads at once, and had up to 64 MiB
 * charged beside what it keeps: enough to have a pool sized to its
 * cgroup's cap killed (doc/performance.md, "Filling a pool under a
 * memory cap").  So each chunk is faulted here, once, under the miss
 * lock, by the admission that first uses one of its frames: the frame is
 * free or claimed, so nobody reads its bytes, and no other frame of a
 * chunk never faulted is in use.  The fault is the kernel's allocation of
 * a huge page (which may compact memory first): the one thing other than
 * memory work the miss lock is ever held across, once per 2 MiB of the
 * pool (doc/locking.md). */
void bp__frame_first_touch(bp_pool *pool, uint32_t f)
{
    if (!pool->chunk_faulted)
        return;
    size_t off = (size_t)f * pool->page_size, chunk = off / HUGE_ALIGN;
    /* (A last chunk the arena ends inside gets no huge page: the mapping
     * ends there.  The map has no byte for it.) */
    if (chunk >= pool->arena_len / HUGE_ALIGN || pool->chunk_faulted[chunk])
        return;
    /* Every small page of the frame, in case the kernel falls back to
     * them (the page size is at most 1 MiB: a frame is in one chunk). */
    for (size_t p = 0; p < pool->page_size; p += 4096)
        ((volatile char *)pool->arena)[off + p] = 0;
    pool->chunk_faulted[chunk] = 1;
}

void bp__frames_unfaulted_from(bp_pool *pool, uint32_t from)
{
    if (!pool->chunk_faulted)
        return;
    size_t first = ((size_t)from * pool->page_size + HUGE_ALIGN - 1) / HUGE_ALIGN;
    size_t n = pool->arena_len / HUGE_ALIGN;
    if (first < n)
        memset(pool->chunk_faulted + first, 0, n - first);
}

/* ---- The calling thread ------------------------------------------------ */

BP__TLS uint32_t bp__tls_self;
BP__TLS uint32_t bp__tls_latches_held;

uint32_t bp__self_slow(void)
{
    static _Atomic uint32_t next_self = 1;
    uint32_t id;
    do  /* 0 means "nobody"; skip it when the count wraps */
        id = atomic_fetch_add_explicit(&next_self, 1, memory_order_relaxed);
    while (id == 0);
    bp__tls_self = id;
    return id;
}

/* ---- Parking ------------------------------------------------------------
 *
 * A thread that must wait for a frame sleeps in one of PARK_BUCKETS wait
 * queues (a mutex and a condition variable), chosen by the frame's
 * address, so a descriptor carries no pthread object of its own (the
 * idea of the kernel's hashed bit wait queues and WebKit's ParkingLot).
 *
 * The protocol, which cannot lose a wake-up:
 *   waiter: lock the bucket; set PARKED (and what it waits for, e.g.
 *           XWAIT) in the state word with one fetch_or; look at the word
 *           that RMW returned: if what it waits for is there, unlock and
 *           go; else sleep on the bucket's condition variable.
 *   waker:  make its change with an RMW; if the word it replaced had
 *           PARKED, lock the bucket, clear PARKED, broadcast, unlock.
 * The two RMWs are ordered on the one word.  If the waiter's came first,
 * the waker sees PARKED and must take the bucket's mutex, which the
 * waiter holds until it sleeps; if the waker's came first, the waiter's
 * fetch_or returns the changed word and it does not sleep.  Every sleeper
 * of the bucket wakes and looks again (a sleeper for another frame, or
 * whose condition is still false, parks again), so clearing PARKED on a
 * wake never strands anyone.  Bucket mutexes are leaves of the lock order
 * (doc/locking.md): nothing else is taken while one is held.
 */
#define PARK_BUCKETS 256
#define SPINS 64   /* latch attempts before parking: a latch is usually
                      held for a few hundred nanoseconds */

static struct park_bucket {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} __attribute__((aligned(64))) park_table[PARK_BUCKETS] = {
    [0 ... PARK_BUCKETS - 1] = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER },
};

static struct park_bucket *bucket_of(const struct bp__frame *fr)
{
    uintptr_t a = (uintptr_t)fr / sizeof(*fr);
    return &park_table[(a * UINT64_C(0x9E3779B97F4A7C15)) >> 56];
}

_Static_assert(PARK_BUCKETS == 256, "bucket_of takes the top 8 bits");

typedef bool (*ready_fn)(uint64_t state, struct bp__frame *fr, const void *arg);

static void park(struct bp__frame *fr, uint64_t also_set, ready_fn ready,
                 const void *arg)
{
    struct park_bucket *b = bucket_of(fr);
    pthread_mutex_lock(&b->mu);
    uint64_t s = atomic_fetch_or_explicit(&fr->state, BP__F_PARKED | also_set,
                                          memory_order_acq_rel);
    if (!ready(s | BP__F_PARKED | also_set, fr, arg))
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

/* park(), giving up after ns nanoseconds (a spurious or timed-out wake
 * is harmless: every caller looks again). */
static void park_for(struct bp__frame *fr, ready_fn ready, const void *arg,
                     uint64_t ns)
{
    struct park_bucket *b = bucket_of(fr);
    struct timespec until;
    /* Monotonic: a wall clock stepped back must not stretch a 0.2 ms nap
     * (a stream helper's, pool.c's wait_read) into the size of the step. */
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)ns;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&b->mu);
    uint64_t s = atomic_fetch_or_explicit(&fr->state, BP__F_PARKED,
                                          memory_order_acq_rel);
    if (!ready(s | BP__F_PARKED, fr, arg))
        pthread_cond_clockwait(&b->cv, &b->mu, CLOCK_MONOTONIC, &until);
    pthread_mutex_unlock(&b->mu);
}

/* In a child of fork (forkgen.c): the table is the parent's copy, whose
 * mutexes a thread of the parent may have held at the fork (in park() or
 * bp__frame_wake) and whose condition variables may count the parent's
 * sleepers - none of them in the child, so nobody would ever unlock the
 * one or leave the other, and the child's next wake on that bucket (a
 * bp_unpin of a page it pinned for reading) would wait for ever.  No
 * thread of the child is parked: the table starts afresh. */
void bp__park_after_fork(void)
{
    for (unsigned i = 0; i < PARK_BUCKETS; i++) {
        (void)pthread_mutex_init(&park_table[i].mu, NULL);
        (void)pthread_cond_init(&park_table[i].cv, NULL);
    }
}

void bp__frame_wake(struct bp__frame *fr)
{
    struct park_bucket *b = bucket_of(fr);
    pthread_mutex_lock(&b->mu);
    atomic_fetch_and_explicit(&fr->state, ~BP__F_PARKED, memory_order_relaxed);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static bool latch_ready(uint64_t s, struct bp__frame *fr, const void *arg)
{
    (void)fr;
    return bp__latch_free_for(s, *(const enum bp__latch *)arg);
}

void bp__frame_latch_wait(struct bp__frame *fr, enum bp__latch want)
{
    /* A waiter announces itself at once: a writer so that no new reader
     * overtakes it while it spins (write preference), a reader so that
     * the writer inside lets readers in before the next writer (a
     * readers' turn).  A reader's announcement goes with every shared
     * latch taken, so it says it again before it sleeps. */
    uint64_t announce = want == BP__LATCH_X ? BP__F_XWAIT : BP__F_SWAIT;
    atomic_fetch_or_explicit(&fr->state, announce, memory_order_relaxed);
    for (unsigned n = 0;; n++) {
        if (bp__frame_try_latch(fr, want))
            return;
        if (n < SPINS)
            cpu_relax();
        else
            park(fr, announce, latch_ready, &want);
    }
}

static bool io_ready(uint64_t s, struct bp__frame *fr, const void *arg)
{
    return atomic_load_explicit(&fr->page, memory_order_acquire) != *(const uint64_t *)arg ||
           (s & BP__F_VALID) || !(s & (BP__F_READING | BP__F_CLAIMED));
}

/* io_ready, or the read is a stream's: the untimed wait must not sleep
 * through it, as the stream's owner may not reap it for a long time (the
 * frame can pass to a stream between a waiter's look at the streams and
 * its park, so the look alone does not tell). */
static bool io_ready_or_streamed(uint64_t s, struct bp__frame *fr, const void *arg)
{
    return io_ready(s, fr, arg) || (s & BP__F_STREAMED);
}

bool bp__frame_wait_io(struct bp__frame *fr, uint64_t page)
{
    uint64_t s;
    while (!io_ready_or_streamed(s = atomic_load_explicit(&fr->state, memory_order_acquire),
                                 fr, &page))
        park(fr, 0, io_ready_or_streamed, &page);
    return io_ready(s, fr, &page);
}

bool bp__frame_wait_io_for(struct bp__frame *fr, uint64_t page, uint64_t ns)
{
    if (io_ready(atomic_load_explicit(&fr->state, memory_order_acquire), fr, &page))
        return true;
    park_for(fr, io_ready, &page, ns);
    return io_ready(atomic_load_explicit(&fr->state, memory_order_acquire), fr, &page);
}

static bool write_ready(uint64_t s, struct bp__frame *fr, const void *arg)
{
    (void)fr;
    (void)arg;
    return !(s & BP__F_WRITING);
}

void bp__frame_wait_write(struct bp__frame *fr)
{
    while (!write_ready(atomic_load_explicit(&fr->state, memory_order_acquire), fr, NULL))
        park(fr, 0, write_ready, NULL);
}

static bool leaving_ready(uint64_t s, struct bp__frame *fr, const void *arg)
{
    return atomic_load_explicit(&fr->page, memory_order_acquire) != *(const uint64_t *)arg ||
           (s & (BP__F_VALID | BP__F_LEAVING)) != (BP__F_VALID | BP__F_LEAVING);
}

bool bp__frame_wait_leaving(struct bp__frame *fr, uint64_t page, uint64_t ns)
{
    if (leaving_ready(atomic_load_explicit(&fr->state, memory_order_acquire), fr, &page))
        return true;
    park_for(fr, leaving_ready, &page, ns);
    return leaving_ready(atomic_load_explicit(&fr->state, memory_order_acquire), fr, &page);
}
