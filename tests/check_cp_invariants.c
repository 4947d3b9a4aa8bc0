/* SPDX-License-Identifier: MIT */
/*
 * check_cp_invariants.c - bp__cp_check catches what it is there to catch.
 *
 * Every CLOCK-Pro test (check_clockpro, check_replay, bpool-sim's
 * PSIM_CHECK) trusts bp__cp_check to fail the moment the policy's lists,
 * counts, hands, index or free lists disagree; a check that always said 0
 * would let all of them pass.  So this program builds a policy in a state
 * that has every kind of entry (hot, cold, cold in test, non-resident,
 * free frames and free entries), breaks one thing at a time, as a bug in
 * clockpro.c could, and asserts that the check fails - and that the
 * breakages meant for different checks are caught by different ones.
 *
 * To reach inside the policy it compiles src/clockpro.c into itself (a
 * white-box test: the struct is private to that file), so it links
 * libbpool_sim for the simulated pool but not libbpool_core.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../src/clockpro.c"
#include "../tools/policy_sim.h"

enum { M = 256, CAP = 256, PAGES = 1024, REFS = 8000 };

/* Build the state: skewed references (3 in 4 to half as many pages as
 * frames, the rest over a file four times the frames), then two hot
 * frames forgotten so that the free-frame stack is not empty. */
static void build(struct psim_cp *s, enum bp__cp_adapt adapt)
{
    struct bp__cp_config cfg;
    bp__cp_config_init(&cfg);
    cfg.adapt = adapt;
    ck_assert_int_eq(psim_cp_init_with(s, M, CAP, &cfg), 0);
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < REFS; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t page = (x % 4) ? x % (M / 2) : x % PAGES;
        ck_assert_int_ge(psim_cp_ref(s, page, 0, false), 0);
    }
    /* then a short scan of new pages: cold ones, some evicted in their
     * test period (non-resident) */
    for (uint64_t page = PAGES; page < PAGES + M / 4; page++)
        ck_assert_int_ge(psim_cp_ref(s, page, 0, false), 0);
    struct bp__clockpro *cp = s->cp;
    for (uint32_t f = 0, n = 0; f < M && n < 2; f++)
        if (cp->ent[f].status == BP__CP_HOT) {
            psim_cp_forget(s, f);
            n++;
        }
    ck_assert_int_eq(bp__cp_check(cp), 0);
    /* Every kind the breakages below need. */
    ck_assert_uint_gt(cp->hot, 0);
    ck_assert_uint_gt(cp->cold, 1);
    ck_assert_uint_gt(cp->nonres, 0);
    ck_assert_uint_gt(cp->nfree, 1);
    ck_assert_uint_ne(cp->free_ent, NONE);
    ck_assert_uint_ne(cp->hand_test, NONE);
}

/* The first entry of the clock (from the head) with this status. */
static uint32_t find(const struct bp__clockpro *cp, unsigned status)
{
    uint32_t i = cp->head;
    do {
        if (cp->ent[i].status == status)
            return i;
        i = cp->ent[i].next;
    } while (i != cp->head);
    ck_abort_msg("no entry of status %u", status);
    return NONE;
}

static uint32_t find_cold(const struct bp__clockpro *cp)
{
    uint32_t i = cp->head;
    do {
        if (is_res_cold(cp->ent[i].status))
            return i;
        i = cp->ent[i].next;
    } while (i != cp->head);
    ck_abort_msg("no resident cold entry");
    return NONE;
}

/* A bucket of the non-resident index that is empty. */
static uint32_t empty_bucket(const struct bp__clockpro *cp)
{
    for (uint32_t b = 0; b < cp->nbucket; b++)
        if (cp->bucket[b] == NONE)
            return b;
    ck_abort_msg("no empty bucket");
    return NONE;
}

/* A free frame (on the free stack). */
static uint32_t free_frame(const struct bp__clockpro *cp)
{
    return cp->free_top;
}

typedef void (*breakage_fn)(struct bp__clockpro *cp);

/* ---- Counts and the cold target --------------------------------------- */
static void mc_above_band(struct bp__clockpro *cp) { cp->m_c = cp->m_c_max + 1; }
static void mc_below_band(struct bp__clockpro *cp) { cp->m_c = cp->m_c_min - 1; }
static void nonres_over_cap(struct bp__clockpro *cp) { cp->nonres = cp->cap + 1; }
static void frames_miscounted(struct bp__clockpro *cp) { cp->nfree++; }
static void hot_miscounted(struct bp__clockpro *cp)
{
    cp->hot++;      /* nfree + hot + cold still m: only the walk sees it */
    cp->nfree--;
}
static void in_test_miscounted(struct bp__clockpro *cp) { cp->in_test++; }

/* ---- The clock's links -------------------------------------------------- */
static void head_out_of_range(struct bp__clockpro *cp) { cp->head = cp->nent; }
static void next_out_of_range(struct bp__clockpro *cp)
{
    cp->ent[cp->head].next = cp->nent;
}
static void next_not_linked_back(struct bp__clockpro *cp)
{
    /* head -> a, but a's prev names another entry */
    uint32_t a = cp->ent[cp->head].next;
    cp->ent[a].prev = cp->ent[a].next;
}
static void prev_not_linked_back(struct bp__clockpro *cp)
{
    /* the head's prev is an entry whose next is not the head */
    cp->ent[cp->head].prev = cp->ent[cp->head].next;
}
static void status_unknown(struct bp__clockpro *cp) { cp->ent[cp->head].status = 9; }

/* ---- Entries ------------------------------------------------------------ */
static void nonres_not_indexed(struct bp__clockpro *cp)
{
    /* a page of another bucket: the index no longer finds it */
    struct cp_entry *e = &cp->ent[find(cp, BP__CP_NONRES)];
    uint64_t page = ent_page(e) + PAGES;
    while (bucket_of(cp, page) == bucket_of(cp, ent_page(e)))
        page++;
    ent_set_page(e, page);
}
static void resident_not_a_frame(struct bp__clockpro *cp)
{
    /* a non-resident entry (no frame's) turned hot where it stands */
    cp->ent[find(cp, BP__CP_NONRES)].status = BP__CP_HOT;
}
static void nonres_in_a_frame(struct bp__clockpro *cp)
{
    /* a non-resident entry moved into the free frame's entry, linked and
     * indexed as it was: only where it sits is wrong */
    uint32_t n = find(cp, BP__CP_NONRES), f = free_frame(cp);
    struct cp_entry *e = &cp->ent[f];
    *e = cp->ent[n];
    cp->ent[e->prev].next = f;
    cp->ent[e->next].prev = f;
    if (cp->head == n)
        cp->head = f;
    if (cp->hand_test == n)
        cp->hand_test = f;
    uint32_t *link = &cp->bucket[bucket_of(cp, ent_page(e))];
    while (*link != n)
        link = &cp->ent[*link].aux;
    *link = f;
    cp->ent[n].status = BP__CP_OUT;
    cp->ent[n].next = cp->free_ent;
    cp->free_ent = n;
}
static void held_bit_without_credit(struct bp__clockpro *cp)
{
    cp->ent[find(cp, BP__CP_HOT)].held_ref = 1;
}
static void held_bit_on_nonres(struct bp__clockpro *cp)
{
    cp->ent[find(cp, BP__CP_NONRES)].held_ref = 1;
}

/* ---- Hands -------------------------------------------------------------- */
static void hot_hand_lost(struct bp__clockpro *cp) { cp->hand_hot = NONE; }
static void cold_hand_lost(struct bp__clockpro *cp) { cp->hand_cold = NONE; }
static void test_hand_lost(struct bp__clockpro *cp) { cp->hand_test = NONE; }
static void hot_hand_on_cold(struct bp__clockpro *cp) { cp->hand_hot = find_cold(cp); }
static void cold_hand_on_hot(struct bp__clockpro *cp)
{
    cp->hand_cold = find(cp, BP__CP_HOT);
}
static void test_hand_on_hot(struct bp__clockpro *cp)
{
    cp->hand_test = find(cp, BP__CP_HOT);
}

/* ---- The non-resident index --------------------------------------------- */
static void index_out_of_range(struct bp__clockpro *cp)
{
    cp->bucket[empty_bucket(cp)] = cp->nent;
}
static void index_holds_resident(struct bp__clockpro *cp)
{
    /* (its aux reads as the chain's next link: never followed, the
     * check stops at the entry itself) */
    cp->bucket[empty_bucket(cp)] = find(cp, BP__CP_HOT);
}
static void index_wrong_bucket(struct bp__clockpro *cp)
{
    /* a non-resident entry reachable from a second bucket too */
    cp->bucket[empty_bucket(cp)] = find(cp, BP__CP_NONRES);
}
static void index_extra_entry(struct bp__clockpro *cp)
{
    /* a free entry made non-resident and indexed, but not in the clock */
    uint32_t f = cp->free_ent;
    cp->free_ent = cp->ent[f].next;
    struct cp_entry *e = &cp->ent[f];
    ent_set_page(e, 5000000);
    e->status = BP__CP_NONRES;
    uint32_t b = bucket_of(cp, 5000000);
    e->aux = cp->bucket[b];
    cp->bucket[b] = f;
}

/* ---- Frames and the free stack ------------------------------------------ */
static void free_frame_in_use(struct bp__clockpro *cp)
{
    /* not in the clock, not in the index: only its status is wrong */
    cp->ent[free_frame(cp)].status = BP__CP_NONRES;
}
static void free_frame_held_bit(struct bp__clockpro *cp)
{
    cp->ent[free_frame(cp)].held_ref = 1;
}
static void free_frame_resident(struct bp__clockpro *cp)
{
    /* a frame resident by its status, but in no list */
    cp->ent[free_frame(cp)].status = BP__CP_HOT;
}
static void free_top_resident(struct bp__clockpro *cp)
{
    cp->free_top = find(cp, BP__CP_HOT);
}
static void free_top_out_of_range(struct bp__clockpro *cp) { cp->free_top = cp->m; }
static void free_stack_cycle(struct bp__clockpro *cp)
{
    uint32_t f = free_frame(cp);
    cp->ent[f].next = f;
}
static void free_stack_lost(struct bp__clockpro *cp) { cp->free_top = NONE; }

/* ---- The cold list ------------------------------------------------------ */
static void cold_list_cut_short(struct bp__clockpro *cp)
{
    cp->ent[cp->cold_first].aux = NONE;   /* the forward link */
}
static void cold_list_back_link(struct bp__clockpro *cp)
{
    cp->cold_prev[cp->ent[cp->cold_first].aux] = NONE;
}
static void cold_list_runs_on(struct bp__clockpro *cp)
{
    /* past its last cold entry, to a hot one */
    cp->ent[cp->cold_last].aux = find(cp, BP__CP_HOT);
}

/* ---- Sizes -------------------------------------------------------------- */
static void parked_miscounted(struct bp__clockpro *cp)
{
    cp->parked++;   /* free + parked + hot + cold still m */
    cp->nfree--;
}
static void limit_above_frames(struct bp__clockpro *cp) { cp->limit = cp->m + 1; }
static void entries_below_frames(struct bp__clockpro *cp)
{
    cp->nent_live = cp->frames_max - 1;
}

/* ---- The free entry list ------------------------------------------------ */
static void free_ent_out_of_range(struct bp__clockpro *cp) { cp->free_ent = cp->nent; }
static void free_ent_in_use(struct bp__clockpro *cp)
{
    cp->ent[cp->free_ent].status = BP__CP_HOT;
}
static void free_ent_held_bit(struct bp__clockpro *cp)
{
    cp->ent[cp->free_ent].held_ref = 1;
}
static void free_ents_lost(struct bp__clockpro *cp) { cp->free_ent = NONE; }

struct breakage {
    const char *name;
    breakage_fn fn;
    enum bp__cp_adapt adapt;  /* the policy it is applied to */
    int group;                /* breakages of one group may be caught by
                                 the same check; different groups by
                                 different checks */
};

static const struct breakage breakages[] = {
    {"m_c above the band", mc_above_band, BP__CP_ADAPT_MC, 1},
    {"m_c below the band", mc_below_band, BP__CP_ADAPT_MC, 1},
    {"more non-resident than the cap", nonres_over_cap, BP__CP_ADAPT_MC, 2},
    {"free + hot + cold != frames", frames_miscounted, BP__CP_ADAPT_MC, 3},
    {"head out of range", head_out_of_range, BP__CP_ADAPT_MC, 4},
    {"next out of range", next_out_of_range, BP__CP_ADAPT_MC, 5},
    {"next not linked back", next_not_linked_back, BP__CP_ADAPT_MC, 6},
    {"prev not linked back", prev_not_linked_back, BP__CP_ADAPT_MC, 7},
    {"unknown status", status_unknown, BP__CP_ADAPT_MC, 8},
    {"non-resident entry not indexed", nonres_not_indexed, BP__CP_ADAPT_MC, 9},
    {"resident entry not a frame's", resident_not_a_frame, BP__CP_ADAPT_MC, 10},
    {"non-resident entry in a frame's", nonres_in_a_frame, BP__CP_ADAPT_MC, 11},
    {"held bit without credit", held_bit_without_credit, BP__CP_ADAPT_MC, 12},
    {"held bit on a non-resident entry", held_bit_on_nonres,
     BP__CP_ADAPT_CREDIT, 12},
    {"hot count off", hot_miscounted, BP__CP_ADAPT_MC, 13},
    {"in-test count off", in_test_miscounted, BP__CP_ADAPT_MC, 14},
    {"hot hand lost", hot_hand_lost, BP__CP_ADAPT_MC, 15},
    {"cold hand lost", cold_hand_lost, BP__CP_ADAPT_MC, 16},
    {"test hand lost", test_hand_lost, BP__CP_ADAPT_MC, 17},
    {"hot hand on a cold entry", hot_hand_on_cold, BP__CP_ADAPT_MC, 18},
    {"cold hand on a hot entry", cold_hand_on_hot, BP__CP_ADAPT_MC, 19},
    {"test hand on a hot entry", test_hand_on_hot, BP__CP_ADAPT_MC, 20},
    {"index link out of range", index_out_of_range, BP__CP_ADAPT_MC, 21},
    {"index holds a resident entry", index_holds_resident, BP__CP_ADAPT_MC, 22},
    {"entry in the wrong bucket", index_wrong_bucket, BP__CP_ADAPT_MC, 23},
    {"index entry not in the clock", index_extra_entry, BP__CP_ADAPT_MC, 24},
    {"free frame's entry in use", free_frame_in_use, BP__CP_ADAPT_MC, 25},
    {"free frame's entry with a held bit", free_frame_held_bit,
     BP__CP_ADAPT_MC, 25},
    {"frame resident in no list", free_frame_resident, BP__CP_ADAPT_MC, 26},
    {"free stack top is resident", free_top_resident, BP__CP_ADAPT_MC, 27},
    {"free stack top out of range", free_top_out_of_range, BP__CP_ADAPT_MC, 27},
    {"free stack cycle", free_stack_cycle, BP__CP_ADAPT_MC, 28},
    {"free stack lost", free_stack_lost, BP__CP_ADAPT_MC, 29},
    {"free entry link out of range", free_ent_out_of_range, BP__CP_ADAPT_MC, 30},
    {"free entry in use", free_ent_in_use, BP__CP_ADAPT_MC, 31},
    {"free entry with a held bit", free_ent_held_bit, BP__CP_ADAPT_MC, 31},
    {"free entries lost", free_ents_lost, BP__CP_ADAPT_MC, 32},
    {"cold list cut short", cold_list_cut_short, BP__CP_ADAPT_MC, 33},
    {"cold list back link wrong", cold_list_back_link, BP__CP_ADAPT_MC, 33},
    {"cold list runs past its last", cold_list_runs_on, BP__CP_ADAPT_MC, 34},
    {"parked frames miscounted", parked_miscounted, BP__CP_ADAPT_MC, 35},
    {"limit above the frames", limit_above_frames, BP__CP_ADAPT_MC, 36},
    {"entries linked in below the frames", entries_below_frames,
     BP__CP_ADAPT_MC, 37},
};
#define NBREAK (sizeof breakages / sizeof breakages[0])

/* Proves breakage _i is caught: the state checks clean before it and
 * fails after it. */
START_TEST(test_breakage_caught)
{
    const struct breakage *b = &breakages[_i];
    struct psim_cp s;
    build(&s, b->adapt);
    b->fn(s.cp);
    int r = bp__cp_check(s.cp);
    if (r == 0)
        ck_abort_msg("bp__cp_check missed: %s", b->name);
    ck_assert_int_lt(r, 0);
    psim_cp_fini(&s);
}
END_TEST

/* Proves the checks are distinct: breakages of different groups fail
 * different checks, so no check stands in for another that is broken. */
START_TEST(test_distinct_checks)
{
    int caught[NBREAK];   /* the check (a negative line of clockpro.c) */
    for (size_t i = 0; i < NBREAK; i++) {
        struct psim_cp s;
        build(&s, breakages[i].adapt);
        breakages[i].fn(s.cp);
        caught[i] = bp__cp_check(s.cp);
        psim_cp_fini(&s);
    }
    for (size_t i = 0; i < NBREAK; i++)
        for (size_t j = i + 1; j < NBREAK; j++)
            if (breakages[i].group != breakages[j].group && caught[i] == caught[j])
                ck_abort_msg("\"%s\" and \"%s\" are caught by one check "
                             "(clockpro.c:%d)", breakages[i].name,
                             breakages[j].name, -caught[i]);
}
END_TEST

Suite *test_suite(void);
Suite *test_suite(void)
{
    Suite *s = suite_create("cp_invariants");
    TCase *tc = tcase_create("breakages");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_breakage_caught, 0, (int)NBREAK);
    tcase_add_test(tc, test_distinct_checks);
    suite_add_tcase(s, tc);
    return s;
}
