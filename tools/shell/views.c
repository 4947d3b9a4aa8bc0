/* SPDX-License-Identifier: MIT */
/*
 * views.c - bpool-shell's pictures of the pool: "frames" (one line per
 * frame: page, pins, dirty, I/O state, CLOCK-Pro status, reference bit)
 * and "clock" (CLOCK-Pro's circular list from the oldest entry to the
 * newest, with its three hands, the hot/cold/non-resident counts and the
 * cold target m_c).  On a small pool, running a few pins between two
 * "clock"s shows the algorithm at work.
 *
 * Both come from snapshots (bp_inspect_frames, bp_inspect_clock): the
 * library copies the state, then calls back without holding its locks.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>

#include "shell.h"

/* ------------------------------------------------------------------------
 * frames
 * ---------------------------------------------------------------------- */

struct frames_walk {
    bool all;                    /* also the free frames */
    uint32_t frames, used, dirty, pinned, io, prefetched;
};

/* A frame's I/O state, from its flags. */
static const char *frame_state(const struct bp_frame_info *fi)
{
    if (fi->flags & BP_FI_READING)
        return "reading";
    if (fi->flags & BP_FI_WRITING)
        return "writing";
    if (fi->pgno == UINT64_MAX)
        return "free";
    if (!(fi->flags & BP_FI_VALID))
        return "invalid";
    if (fi->flags & BP_FI_LEAVING)
        return "leaving";
    if (fi->flags & BP_FI_PREFETCHED)
        return "prefetched";
    return "valid";
}

static int frame_line(void *arg, const struct bp_frame_info *fi)
{
    struct frames_walk *w = arg;
    w->frames++;
    if (fi->pgno != UINT64_MAX)
        w->used++;
    if (fi->flags & BP_FI_DIRTY)
        w->dirty++;
    if (fi->pins > 0)
        w->pinned++;
    if (fi->flags & (BP_FI_READING | BP_FI_WRITING))
        w->io++;
    if (fi->flags & BP_FI_PREFETCHED)
        w->prefetched++;
    if (interrupted())
        return -EINTR;
    if (!w->all && fi->pgno == UINT64_MAX && fi->pins == 0 &&
        !(fi->flags & (BP_FI_READING | BP_FI_WRITING)))
        return 0;
    char page[PAGE_NAME_MAX];
    if (fi->pgno == UINT64_MAX)
        snprintf(page, sizeof page, "-");
    else
        page_name(fi->pgno, page);
    printf("%6u %8s %5u  %-5s  %-10s  %-9s  %u\n", fi->frame, page, fi->pins,
           fi->flags & BP_FI_DIRTY ? "yes" : "no", frame_state(fi),
           fi->status ? fi->status : "?", fi->flags & BP_FI_REF ? 1u : 0u);
    return 0;
}

int cmd_frames(struct shell *sh, const struct command *cmd, int argc,
               struct word *argv)
{
    struct frames_walk w;
    memset(&w, 0, sizeof w);
    if (argc > 0) {
        if (!word_is(&argv[0], "all"))
            return fail(sh, usage_of(cmd), "frames: unknown argument \"%s\" "
                        "(use all, or nothing)", echo(&argv[0]));
        w.all = true;
    }
    puts(" frame     page  pins  dirty  state       clock      ref");
    int rc = bp_inspect_frames(sh->pool, frame_line, &w);
    if (rc == -EINTR)
        return fail_interrupted(sh, "frames");
    if (rc < 0)
        return fail_lib(sh, rc, "cannot look at the frames");
    printf("%u %s: %u in use, %u free; %u dirty, %u pinned, %u under I/O, "
           "%u prefetched%s\n", w.frames, plural(w.frames, "frame", "frames"),
           w.used, w.frames - w.used, w.dirty, w.pinned, w.io, w.prefetched,
           w.all || w.used == w.frames ? "" : " (free frames not shown: "
           "frames all)");
    return 0;
}

/* ------------------------------------------------------------------------
 * clock
 * ---------------------------------------------------------------------- */

struct clock_walk {
    uint64_t pos;
    uint64_t hand_pg[3];         /* page under each hand, or UINT64_MAX */
    bool list;                   /* print the entries */
};

static void hands_str(uint32_t hands, char *buf, size_t size)
{
    buf[0] = '\0';
    if (hands == 0)
        return;
    snprintf(buf, size, "<-%s%s%s", hands & BP_HAND_HOT ? " hot" : "",
             hands & BP_HAND_COLD ? " cold" : "",
             hands & BP_HAND_TEST ? " test" : "");
}

static int clock_line(void *arg, const struct bp_clock_entry *e)
{
    struct clock_walk *w = arg;
    for (int h = 0; h < 3; h++)
        if (e->hands & (1u << h))
            w->hand_pg[h] = e->pgno;
    if (interrupted())
        return -EINTR;
    if (w->list) {
        char frame[16], hands[32];
        if (e->frame == UINT32_MAX)
            snprintf(frame, sizeof frame, "-");
        else
            snprintf(frame, sizeof frame, "%u", e->frame);
        hands_str(e->hands, hands, sizeof hands);
        printf("%5llu %8s %6s  %-11s  %s%s%s\n",
               (unsigned long long)w->pos, PN(e->pgno), frame, e->status ? e->status : "?",
               e->frame == UINT32_MAX ? "-" : e->ref ? "1" : "0",
               hands[0] ? "    " : "", hands);
    }
    w->pos++;
    return 0;
}

int cmd_clock(struct shell *sh, const struct command *cmd, int argc,
              struct word *argv)
{
    struct clock_walk w = { 0, { UINT64_MAX, UINT64_MAX, UINT64_MAX }, true };
    if (argc > 0) {
        if (!word_is(&argv[0], "summary"))
            return fail(sh, usage_of(cmd), "clock: unknown argument \"%s\" "
                        "(use summary, or nothing)", echo(&argv[0]));
        w.list = false;
    }
    struct bp_clock_summary sum;
    if (w.list)
        puts("  pos     page  frame  status       ref  hands");
    int rc = bp_inspect_clock(sh->pool, clock_line, &w, &sum);
    if (rc == -EINTR)
        return fail_interrupted(sh, "clock");
    if (rc < 0)
        return fail_lib(sh, rc, "cannot look at the clock");
    if (w.list && w.pos == 0)
        puts("(the clock is empty: pin some pages)");
    printf("clock: %u hot, %u cold, %u nonresident, %u free %s; m_c %u "
           "(min %u, max %u)\n", sum.hot, sum.cold, sum.nonresident,
           sum.free_frames, plural(sum.free_frames, "frame", "frames"),
           sum.cold_target, sum.cold_target_min, sum.cold_target_max);
    if (w.pos > 0) {
        static const char *const names[3] = { "hot", "cold", "test" };
        fputs("hands:", stdout);
        for (int h = 0; h < 3; h++) {
            if (w.hand_pg[h] == UINT64_MAX)
                printf(" %s -", names[h]);
            else
                printf(" %s at page %s", names[h], PN(w.hand_pg[h]));
            fputs(h < 2 ? "," : "\n", stdout);
        }
    }
    return 0;
}
