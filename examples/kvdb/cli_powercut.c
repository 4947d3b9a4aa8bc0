/* SPDX-License-Identifier: MIT */
/* cli_powercut.c - kvdb --power-cut-after MS (testing): a simulated power
 * cut while a command runs.
 *
 * From before the file is opened, every write to it is recorded
 * (tools/powercut.h; the file must exist and be durable, as a previous
 * kvdb command leaves it).  MS milliseconds later a thread takes stdout's
 * lock - so that no "committed I" line can be printed for a commit the
 * image does not hold - writes the image a power cut could leave to
 * FILE.cut and ends the process with status 98.  tests/kvdb_crash.sh
 * moves the image over the file and checks it as after a kill. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../../tools/common/printable.h"
#include "../../tools/powercut.h"

struct cutter {
    char *image;
    uint64_t ms;
};

static void *cutter_main(void *arg)
{
    struct cutter *c = arg;
    struct timespec ts = { (time_t)(c->ms / 1000), (long)(c->ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    flockfile(stdout);   /* held until the end: nothing more is printed */
    struct pc_cut_info in;
    int r = pc_cut(c->image, (uint64_t)time(NULL) ^ (uint64_t)getpid(), &in);
    if (r < 0) {
        fprintf(stderr, "kvdb: writing the power-cut image %s: %s\n", printable(c->image),
                strerror(-r));
        pc_power_off(EX_ERR);
    }
    fprintf(stderr, "kvdb: power cut after %llu ms: %u writes not durable "
            "(%u left out, %u torn); image %s\n", (unsigned long long)c->ms,
            in.pending, in.dropped, in.torn, printable(c->image));
    pc_power_off(EX_POWER_CUT);
}

int powercut_arm(const char *path, uint64_t ms)
{
    static struct cutter c;
    size_t n = strlen(path);
    c.image = malloc(n + sizeof ".cut");
    if (!c.image)
        return -ENOMEM;
    memcpy(c.image, path, n);
    memcpy(c.image + n, ".cut", sizeof ".cut");
    c.ms = ms;
    int r = pc_start(path);
    if (r < 0)
        return r;
    pthread_t t;
    r = pthread_create(&t, NULL, cutter_main, &c);
    return r ? -r : 0;
}
