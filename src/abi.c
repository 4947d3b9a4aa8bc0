/* SPDX-License-Identifier: MIT */
/* abi.c - structs that cross the library's interface at the caller's size
 * (bpool.h, "How the structures grow"; doc/abi.md): a caller's struct
 * coming in, and one of ours going out.  A program built against an older
 * header has smaller structs, one built against a newer header larger
 * ones; both meet the library here. */
#include <errno.h>
#include <string.h>

#include "bpool_internal.h"

int bp__struct_in(void *dst, size_t dst_size, const void *src,
                  size_t src_size, size_t *bad_offset)
{
    const unsigned char *s = src;
    for (size_t i = dst_size; i < src_size; i++) {
        if (s[i]) {
            *bad_offset = i;
            return -E2BIG;
        }
    }
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
    return 0;
}

void bp__struct_out(void *dst, size_t dst_size, const void *src,
                    size_t src_size)
{
    if (dst_size <= src_size) {
        memcpy(dst, src, dst_size);
        return;
    }
    memcpy(dst, src, src_size);
    memset((unsigned char *)dst + src_size, 0, dst_size - src_size);
}

int bp__struct_out_size(size_t size, const char *fn, const char *type,
                        size_t ours, const char *macro)
{
    if (size == 0 || size > BP__STRUCT_SIZE_MAX)
        return bp__fail(-EINVAL, "%s: size is %zu, which no version of %s "
                        "has (%zu bytes in this one, at most %u in any); pass "
                        "sizeof(%s), as the %s macro does", fn, size, type,
                        ours, BP__STRUCT_SIZE_MAX, type, macro);
    return 0;
}

_Static_assert(sizeof(struct bp_options) <= BP__STRUCT_SIZE_MAX &&
               sizeof(struct bp_info) <= BP__STRUCT_SIZE_MAX &&
               sizeof(struct bp_stats) <= BP__STRUCT_SIZE_MAX,
               "a struct outgrew BP__STRUCT_SIZE_MAX");

/* No struct ends in padding: every byte beyond sizeof in a newer caller's
 * struct is a field this library does not know (doc/abi.md). */
_Static_assert(sizeof(struct bp_options) ==
               offsetof(struct bp_options, io_flags) + sizeof(uint32_t),
               "struct bp_options ends in padding");
_Static_assert(sizeof(struct bp_info) ==
               offsetof(struct bp_info, frames_max) + sizeof(uint32_t),
               "struct bp_info ends in padding");
_Static_assert(sizeof(struct bp_stats) ==
               offsetof(struct bp_stats, io_fixed_files) + sizeof(uint64_t),
               "struct bp_stats ends in padding");
