/* SPDX-License-Identifier: MIT */
/* le_bytes.h - little-endian integers in byte arrays: the on-disk fields
 * of the file header (fileheader.c) and of the checksum trailer
 * (checksum.c), the same on every host. */
#ifndef BPOOL_LE_BYTES_H
#define BPOOL_LE_BYTES_H

#include <stdint.h>

static inline void bp__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t bp__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline void bp__put64(uint8_t *p, uint64_t v)
{
    bp__put32(p, (uint32_t)v);
    bp__put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t bp__get64(const uint8_t *p)
{
    return bp__get32(p) | (uint64_t)bp__get32(p + 4) << 32;
}

#endif
