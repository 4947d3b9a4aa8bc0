/* SPDX-License-Identifier: MIT */
/* cli.h - what the parts of the kvdb program share: the parsed global
 * options, option parsing helpers and the commands of cli_load.c and
 * cli_bench.c. */
#ifndef KVDB_CLI_H
#define KVDB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "kvdb.h"

struct cli {
    struct kvdb_options o;
    const char *path;
    bool stats;               /* --stats: pool counters at the end */
    bool json;                /* -j, --json: bench's result as JSON */
    uint64_t power_cut_ms;    /* --power-cut-after MS (testing), or 0 */
    unsigned given;           /* CLI_GIVEN_*: set on the command line, not
                                 left to kvdb's or bpool's default (the
                                 JSON options are null for the others) */
};

enum {
    CLI_GIVEN_IO = 1u << 0,          /* --io */
    CLI_GIVEN_FRAMES = 1u << 1,      /* --frames: o.pool_frames */
    CLI_GIVEN_POOL = 1u << 2,        /* -p, --pool-mb: o.pool_bytes */
    CLI_GIVEN_PAGE_SIZE = 1u << 3,   /* -P: o.page_size */
    CLI_GIVEN_CHECKSUMS = 1u << 4,   /* --checksums, --no-checksums */
};

/* cli_powercut.c: record the writes to path, and MS ms from now write the
 * image a power cut could leave to path.cut and exit EX_POWER_CUT.
 * Returns 0 or a negative errno. */
int powercut_arm(const char *path, uint64_t ms);

/* Exit statuses */
#define EX_OK 0
#define EX_FAIL 1             /* not found, check found problems, verify */
#define EX_ERR 2              /* usage or I/O error */
#define EX_POWER_CUT 98       /* --power-cut-after: the image is written */

/* argv scanning for commands: positional arguments and --name VALUE */
struct args {
    int argc;
    char **argv;
    int pos;                  /* positional arguments found */
    char *posv[8];
};
/* Parse "--name value" pairs and flags; names listed in flags take no
 * value.  Returns false on an unknown option or too many arguments,
 * after a line naming the cause and the --help line: the caller exits
 * with EX_ERR. */
bool args_parse(struct args *a, int argc, char **argv, const char *const *opts,
                const char *const *flags);
const char *args_get(const struct args *a, const char *name);
bool args_flag(const struct args *a, const char *name);
bool parse_u64(const char *s, uint64_t *out);   /* with k/M/G suffixes */
uint64_t arg_u64(const struct args *a, const char *name, uint64_t def,
                 bool *ok);

double now_sec(void);
int open_db(const struct cli *c, bool create, kvdb **db);
int close_db(const struct cli *c, kvdb *db);
void print_stats(kvdb *db, FILE *out);
int report(int err, const char *what);          /* prints, returns EX_ERR */

/* cli_load.c */
int cmd_load(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_unload(struct cli *c, int argc, char **argv);
int cmd_mt(struct cli *c, int argc, char **argv);
/* cli_bench.c */
int cmd_bench(struct cli *c, int argc, char **argv);
int cmd_hotscan(struct cli *c, int argc, char **argv);

#endif
