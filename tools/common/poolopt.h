/* SPDX-License-Identifier: MIT */
/* poolopt.h - the pool settings every tool takes, with one name and one
 * meaning in all of them (bpool-shell, bpool-bench, bpool-stress, kvdb).
 *
 * The short options mean the same in every tool that has them:
 *
 *   -f, --file FILE        the data file (bpool-shell: a script; its data
 *                          file is its operand)
 *   -p, --pool SIZE        pool size in bytes (a SIZE: parse.h); the pool
 *                          gets SIZE / page size frames
 *   -P, --page-size SIZE   page size
 *   -t, --threads N        threads
 *   -d, --duration SECS    measured or run time
 *   -s, --seed N           random seed
 *   -q, --quiet            no progress
 *   -j, --json             results as JSON objects (json.h)
 *   -h, --help, -V, --version
 *
 * A tool's main() puts POOLOPT_SHORT in its getopt string and
 * POOLOPT_LONGOPTS in its option table, then hands every option to
 * poolopt_take() first; what is left is the tool's own.  A tool's own
 * long-only options take values from POOLOPT_TOOL_FIRST up.  Adding a
 * pool setting is one line in POOLOPT_LONGOPTS, one case in
 * poolopt_take(), one in poolopt_apply(), poolopt_json() and the help.
 */
#ifndef BPOOL_TOOLS_POOLOPT_H
#define BPOOL_TOOLS_POOLOPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bpool.h"
#include "json.h"

/* What the command line set; 0 / -1: the tool's or the library's
 * default. */
struct poolopt {
    uint64_t pool_bytes;       /* -p, --pool */
    uint32_t frames;           /* --frames (instead of --pool) */
    uint64_t pool_bytes_max;   /* --pool-max: bp_resize's ceiling */
    int io_engine;             /* --io-engine: BP_IO_*; -1: default */
    bool no_fixed_buffers;     /* --no-fixed-buffers: BP_IO_NO_FIXED_BUFFERS */
    uint32_t page_size;        /* -P, --page-size */
    int flushers;              /* --flushers; -1: default, 0: BP_NOFLUSH */
    uint32_t queue_depth;      /* --queue-depth */
    uint32_t checkpoint_rate;  /* --checkpoint-rate, pages/s; 0: no limit */
    bool checkpoint_rate_given;  /* --checkpoint-rate given (0 is a value) */
    uint32_t coalesce_bytes;   /* --coalesce */
    uint32_t dirty_low, dirty_high, dirty_max;  /* --dirty-*, % of frames */
    bool no_readahead;         /* --no-readahead */
    int checksums;             /* --checksums 1, --no-checksums 0, else -1 */
    bool no_header;            /* --no-header: BP_NOHEADER */
    bool doublewrite;          /* --doublewrite: BP_DOUBLEWRITE */
    bool atomic;               /* --atomic: BP_ATOMIC */
};

enum {
    POOLOPT_FRAMES = 0x1000, POOLOPT_FLUSHERS, POOLOPT_NO_FLUSH,
    POOLOPT_QUEUE_DEPTH, POOLOPT_CHECKPOINT_RATE, POOLOPT_COALESCE,
    POOLOPT_NO_READAHEAD, POOLOPT_CHECKSUMS, POOLOPT_NO_CHECKSUMS,
    POOLOPT_DIRTY_LOW, POOLOPT_DIRTY_HIGH, POOLOPT_DIRTY_MAX,
    POOLOPT_NO_HEADER, POOLOPT_DOUBLEWRITE, POOLOPT_ATOMIC, POOLOPT_POOL_MAX,
    POOLOPT_IO_ENGINE, POOLOPT_NO_FIXED_BUFFERS,
    POOLOPT_TOOL_FIRST = 0x1100     /* a tool's own long-only options */
};

#define POOLOPT_SHORT "p:P:"

/* The deepest AIO queue bp_open takes (bp_options.queue_depth). */
#define POOLOPT_QUEUE_DEPTH_MAX 65536u

/* --pool-size is the deprecated spelling of --pool (bpool-shell's);
 * --engine is short for --io-engine. */
#define POOLOPT_LONGOPTS                                                  \
    { "pool", required_argument, NULL, 'p' },                             \
    { "pool-size", required_argument, NULL, 'p' },                        \
    { "frames", required_argument, NULL, POOLOPT_FRAMES },                \
    { "pool-max", required_argument, NULL, POOLOPT_POOL_MAX },            \
    { "io-engine", required_argument, NULL, POOLOPT_IO_ENGINE },          \
    { "engine", required_argument, NULL, POOLOPT_IO_ENGINE },             \
    { "no-fixed-buffers", no_argument, NULL, POOLOPT_NO_FIXED_BUFFERS },  \
    { "page-size", required_argument, NULL, 'P' },                        \
    { "flushers", required_argument, NULL, POOLOPT_FLUSHERS },            \
    { "no-flush", no_argument, NULL, POOLOPT_NO_FLUSH },                  \
    { "queue-depth", required_argument, NULL, POOLOPT_QUEUE_DEPTH },      \
    { "checkpoint-rate", required_argument, NULL, POOLOPT_CHECKPOINT_RATE }, \
    { "coalesce", required_argument, NULL, POOLOPT_COALESCE },            \
    { "no-readahead", no_argument, NULL, POOLOPT_NO_READAHEAD },          \
    { "checksums", no_argument, NULL, POOLOPT_CHECKSUMS },                \
    { "no-checksums", no_argument, NULL, POOLOPT_NO_CHECKSUMS },          \
    { "dirty-low", required_argument, NULL, POOLOPT_DIRTY_LOW },          \
    { "dirty-high", required_argument, NULL, POOLOPT_DIRTY_HIGH },        \
    { "dirty-max", required_argument, NULL, POOLOPT_DIRTY_MAX },          \
    { "no-header", no_argument, NULL, POOLOPT_NO_HEADER },                \
    { "doublewrite", no_argument, NULL, POOLOPT_DOUBLEWRITE },            \
    { "atomic", no_argument, NULL, POOLOPT_ATOMIC }

/* Nothing set. */
void poolopt_init(struct poolopt *o);
/* If c (getopt_long's value) is a pool option, take its value arg into
 * o and return true; a bad value is a usage error (exits, parse.h). */
bool poolopt_take(struct poolopt *o, int c, const char *arg);
/* After the last option: settings that contradict each other (--pool
 * and --frames, a --pool of fewer than BP_MIN_FRAMES frames of
 * --page-size) are a usage error. */
void poolopt_check(const struct poolopt *o);
/* A --pool of fewer than BP_MIN_FRAMES frames of page_size (the page size
 * in force, given or not) is a usage error naming the frames. */
void poolopt_min_frames(const struct poolopt *o, uint32_t page_size);
/* Frames for a pool: --frames, else --pool (else dflt_bytes) divided by
 * the page size; a --pool of fewer than BP_MIN_FRAMES frames, or of more
 * than a pool has (2^31 - 1, bp_open(3)), is a usage error naming the
 * count; a default of fewer gets BP_MIN_FRAMES. */
uint32_t poolopt_frames(const struct poolopt *o, uint32_t page_size,
                        uint64_t dflt_bytes);
/* Does --pool-max (if given) leave room for a pool of frames frames of
 * page_size bytes?  bp_open refuses a pool_bytes_max below the pool. */
bool poolopt_max_fits(const struct poolopt *o, uint32_t frames,
                      uint32_t page_size);
/* The usage error of a --pool-max that does not fit (exits). */
_Noreturn void poolopt_max_usage(const struct poolopt *o, uint32_t frames,
                                 uint32_t page_size);
/* Set in bo (already bp_options_init'ed) what o sets, but the pool size
 * and the page size, which the tools resolve themselves. */
void poolopt_apply(const struct poolopt *o, struct bp_options *bo);
/* The pool settings, as members of the current JSON object ("pool_bytes"
 * ... in bytes, "flushers" ...): what o sets, null for each setting it
 * leaves to the tool's or the library's default (doc/tools.md); the tool
 * writes frames and page_size.  o is the command line's, before a data
 * file's header decided anything. */
void poolopt_json(struct json *j, const struct poolopt *o);
/* The help lines of the long-only pool settings. */
void poolopt_usage(FILE *to);

#endif /* BPOOL_TOOLS_POOLOPT_H */
