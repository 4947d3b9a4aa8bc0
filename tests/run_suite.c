/* SPDX-License-Identifier: MIT */
/*
 * run_suite.c - main() shared by every tests/check_<module> program.
 *
 * Each check_<module>.c defines test_suite(); this runs it with Check's
 * normal output ("Running suite(s): X", "100%: Checks: N, Failures: 0,
 * Errors: 0", then one line per failure), which the CI script counts.
 * Set CK_VERBOSITY=verbose to list every test, CK_RUN_CASE / CK_RUN_SUITE
 * to run one case, CK_FORK=no to debug a test in gdb.
 *
 * Exit status: 0 when every test passed, 1 otherwise, 77 when the
 * program's precondition is missing (test_skip_reason below; Automake's
 * harness reads it).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

Suite *test_suite(void);

/* A program whose tests need something a machine may lack (a tmpfs, root,
 * loop devices) defines this: a reason when the precondition is missing.
 * The program then runs nothing and exits 77, Automake's SKIP, rather than
 * counting tests that could not run as passed. */
const char *test_skip_reason(void) __attribute__((weak));

int main(void)
{
    const char *skip = test_skip_reason ? test_skip_reason() : NULL;
    if (skip) {
        printf("SKIP: %s\n", skip);
        return 77;
    }
    SRunner *sr = srunner_create(test_suite());
    int failed;

    /* CK_ENV: print mode from CK_VERBOSITY, CK_NORMAL when it is unset. */
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
