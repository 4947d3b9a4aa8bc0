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
 * Exit status: 0 when every test passed, 1 otherwise (Automake's harness
 * reads it).
 */
#include <check.h>
#include <stdlib.h>

Suite *test_suite(void);

int main(void)
{
    SRunner *sr = srunner_create(test_suite());
    int failed;

    /* CK_ENV: print mode from CK_VERBOSITY, CK_NORMAL when it is unset. */
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
