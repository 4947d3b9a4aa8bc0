/* SPDX-License-Identifier: MIT */
/* version.c - the library's own version, which a program compares with
 * the header it was compiled against (BP_VERSION_*) to find the library it
 * actually runs with. */
#include "bpool_internal.h"

const char *bp_version(void)
{
    return BP_VERSION_STRING;
}

int bp_version_number(void)
{
    return BP_VERSION_NUMBER;
}
