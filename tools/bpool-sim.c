/* SPDX-License-Identifier: MIT */
/* bpool-sim.c - replay a page-reference trace through a replacement policy
 * and report hits and misses.
 *
 * The command line only: traces are read by trace.c and replayed by
 * policy_sim.c (libbpool_sim, shared with the tests), where the clockpro
 * policy is src/clockpro.c itself, driven through the same interface
 * (clockpro.h) the pool uses, so a replay measures the code the pool runs;
 * lru and clock are small baselines.
 *
 * Rules of a replay (those of doc/clockpro.md and tests/data): cold start,
 * every reference counted, and a reference to the page just referenced is
 * a hit that changes no state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpool.h"
#include "common/json.h"
#include "common/parse.h"
#include "common/printable.h"
#include "policy_sim.h"
#include "trace.h"

#define EXIT_USAGE 2
/* A bad option value exits from parse.c: with the status usage() gives. */
_Static_assert(OPT_EXIT_USAGE == EXIT_USAGE, "one status for every usage error");

/* ---- Command line ----------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
        "usage: bpool-sim [-p POLICY] -n FRAMES[,FRAMES...] [--json] [TRACE|-]\n"
        "\n"
        "Replay a page-reference trace (one page number per line; blank lines\n"
        "and # comments ignored; .gz read directly; - or no TRACE: stdin)\n"
        "through a replacement policy with each frame count, from a cold start,\n"
        "and print one line per frame count:\n"
        "  policy=clockpro frames=1000 refs=505500 hits=494010 misses=11490 miss_ratio=0.0227\n"
        "\n"
        "options:\n"
        "  -p, --policy POLICY   replacement policy (default clockpro):\n");
    for (int i = 0; i < PSIM_NPOLICIES; i++)
        fprintf(to, "                          %-9s %s\n", psim_policies[i].name,
                psim_policies[i].help);
    fprintf(to,
        "      --variant NAME    clockpro's rules: paper (the pool's, default),\n"
        "                          authors or authors-slip (doc/clockpro.md)\n"
        "      --partitions P    clockpro split P ways by page hash, each part\n"
        "                          a clock of its own with 1/P of the frames (what\n"
        "                          one miss lock per part would do); default 1\n"
        "  -n, --frames LIST     comma-separated frame counts (each >= 4)\n"
        "  -j, --json            one JSON object per line instead\n"
        "  -v, --verbose         also print replay speed to stderr\n"
        "  -h, --help            this help\n"
        "  -V, --version         print the version\n"
        "\n"
        "exit status: 0 success, 2 bad usage or bad trace, 1 other failure\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "policy", required_argument, NULL, 'p' },
        { "frames", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "variant", required_argument, NULL, 'R' },
        { "partitions", required_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 },
    };
    int pol = PSIM_CLOCKPRO, c;
    uint64_t *frames = NULL;
    size_t nframes = 0;
    uint64_t parts = 1;
    bool json = false, verbose = false;
    const char *variant = NULL;        /* --variant as given, for --json */
    const char *policy_given = NULL;   /* -p as given, for --json */
    bool parts_given = false;
    struct bp__cp_config cfg;

    opt_prog("bpool-sim");
    bp__cp_config_init(&cfg);
    opterr = 0;     /* opt_unknown says what is wrong, in one line */

    while ((c = getopt_long(argc, argv, "p:n:jvhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            pol = psim_policy_by_name(optarg);
            policy_given = optarg;
            if (pol < 0) {
                free(frames);
                opt_bad("--policy", optarg, "choose one of clockpro, lru, clock");
            }
            break;
        case 'n':
            free(frames);
            frames = opt_u64_list("--frames", optarg, BP_MIN_FRAMES, 1u << 30, &nframes);
            break;
        case 'R':
            if (bp__cp_config_variant(&cfg, optarg) < 0) {
                free(frames);
                opt_bad("--variant", optarg,
                        "choose one of paper, authors, authors-slip");
            }
            variant = optarg;
            break;
        case 'P':
            parts = opt_u64("--partitions", optarg, 1, 1u << 20);
            parts_given = true;
            break;
        case 'j': json = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); free(frames); return 0;
        case 'V': opt_version(); free(frames); return 0;
        default: free(frames); opt_unknown(argv, optind, optopt);
        }
    }
    if (parts_given && pol != PSIM_CLOCKPRO) {
        free(frames);
        opt_usage("--partitions splits clockpro only");
    }
    if (nframes == 0 || argc - optind > 1) {
        free(frames);
        opt_usage(nframes == 0 ? "-n FRAMES is required (the frame counts to replay with)"
                                : "give at most one trace");
    }
    /* Before the trace is read, which may be standard input. */
    for (size_t i = 0; i < nframes; i++) {
        if (frames[i] / parts < BP_MIN_FRAMES) {
            uint64_t nf = frames[i];
            free(frames);
            opt_usage("-n %llu cannot be split %llu ways (--partitions): each "
                      "part needs at least %u frames", (unsigned long long)nf,
                      (unsigned long long)parts, (unsigned)BP_MIN_FRAMES);
        }
    }
    struct trace t = { 0 };
    char err[4096 + 256];
    int rc = trace_load(optind < argc ? argv[optind] : "-", &t, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "bpool-sim: %s\n", printable(err));   /* a name's bytes */
        free(frames);
        return rc == -ENOMEM ? 1 : EXIT_USAGE;
    }

    /* A replay's memory follows its frames.  Where every page of the
     * trace fits (in each part: parts x the pages), nothing is ever
     * evicted and every page misses once, whatever the frames: a replay
     * gets at most that many, and its line names the count asked for. */
    uint64_t distinct;
    if (psim_distinct_pages(&t, &distinct) < 0) {
        fprintf(stderr, "bpool-sim: out of memory counting the trace's pages\n");
        free(frames);
        trace_free(&t);
        return 1;
    }
    uint64_t enough = parts * (distinct > BP_MIN_FRAMES ? distinct : BP_MIN_FRAMES);

    for (size_t i = 0; i < nframes; i++) {
        uint32_t nf = (uint32_t)frames[i];     /* at most 2^30 */
        uint32_t run_nf = nf < enough ? nf : (uint32_t)enough;
        struct psim_result r;
        struct timespec t0, t1;
        const char *name = psim_policies[pol].name;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int run = parts > 1 ? psim_run_partitioned(&t, run_nf, (uint32_t)parts, &cfg, &r)
                            : psim_run_with((enum psim_policy)pol, &t, run_nf, 0, &cfg, &r);
        if (run < 0) {     /* the command line was checked: not a usage error */
            fprintf(stderr, "bpool-sim: %s\n", r.msg);
            free(frames);
            trace_free(&t);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* An empty trace has no ratio: null in JSON, "-" in text, as the
         * other tools print one of no pins. */
        double ratio = r.refs ? (double)r.misses / (double)r.refs : NAN;
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (json) {     /* the tools' JSON convention: common/json.h */
            struct json j;
            json_begin(&j, stdout);
            json_object(&j, "options");
            /* The command line's, null for what it left to the default
             * (the result's policy and partitions give the values used). */
            if (policy_given)
                json_str(&j, "policy", policy_given);
            else
                json_null(&j, "policy");
            json_str(&j, "trace", optind < argc ? argv[optind] : "-");
            if (variant && pol == PSIM_CLOCKPRO)   /* lru and clock have none */
                json_str(&j, "variant", variant);
            else
                json_null(&j, "variant");
            if (parts_given)
                json_u64(&j, "partitions", parts);
            else
                json_null(&j, "partitions");
            json_end_object(&j);
            json_str(&j, "policy", name);
            json_u64(&j, "frames", nf);
            if (parts > 1)
                json_u64(&j, "partitions", parts);
            json_u64(&j, "refs", r.refs);
            json_u64(&j, "hits", r.hits);
            json_u64(&j, "misses", r.misses);
            json_dbl(&j, "hit_ratio", 1.0 - ratio, 4);
            json_dbl(&j, "miss_ratio", ratio, 4);
            json_dbl(&j, "elapsed_s", s, 3);
            json_end(&j);
        } else
        {
            printf("policy=%s frames=%u ", name, nf);
            if (parts > 1)
                printf("partitions=%llu ", (unsigned long long)parts);
            printf("refs=%llu hits=%llu misses=%llu ",
                   (unsigned long long)r.refs, (unsigned long long)r.hits,
                   (unsigned long long)r.misses);
            if (isfinite(ratio))
                printf("miss_ratio=%.4f\n", ratio);
            else
                printf("miss_ratio=-\n");
        }
        if (verbose) {
            fprintf(stderr, "bpool-sim: %s frames=%u: %.3f s, %.2f M refs/s\n",
                    name, nf, s, s > 0 ? (double)r.refs / s / 1e6 : 0.0);
        }
    }
    free(frames);
    trace_free(&t);
    return 0;
}
