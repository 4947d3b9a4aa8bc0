/* SPDX-License-Identifier: MIT */
/* crc32c.c - CRC-32C (Castagnoli), for page checksums: the SSE 4.2 crc32
 * instruction where the CPU has it (chosen once, at first use), a table
 * otherwise.  Both give the same values (tests/check_checksum.c). */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82F63B78u  /* reflected Castagnoli polynomial */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
}

uint32_t bp__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&table_once, table_init);
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

int bp__crc32c_have_hw(void)
{
    return __builtin_cpu_supports("sse4.2");
}

uint32_t bp__crc32c(uint32_t crc, const void *buf, size_t len)
{
    static _Atomic int hw = -1;   /* every thread computes the same */
    int h = atomic_load_explicit(&hw, memory_order_relaxed);
    if (h < 0) {
        h = bp__crc32c_have_hw();
        atomic_store_explicit(&hw, h, memory_order_relaxed);
    }
    return h ? crc32c_hw(crc, buf, len) : bp__crc32c_sw(crc, buf, len);
}

uint32_t bp__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return bp__crc32c_have_hw() ? crc32c_hw(crc, buf, len) : bp__crc32c_sw(crc, buf, len);
}
#else
int bp__crc32c_have_hw(void)
{
    return 0;
}

uint32_t bp__crc32c(uint32_t crc, const void *buf, size_t len)
{
    return bp__crc32c_sw(crc, buf, len);
}

uint32_t bp__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return bp__crc32c_sw(crc, buf, len);
}
#endif
