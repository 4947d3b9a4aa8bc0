/* SPDX-License-Identifier: MIT */
/* crc32c.h - CRC-32C for page checksums. */
#ifndef BPOOL_CRC32C_H
#define BPOOL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf, continuing from crc (0 to start): the fastest available
 * implementation. */
uint32_t bp__crc32c(uint32_t crc, const void *buf, size_t len);

/* The table implementation, and the instruction one (the table where the
 * CPU lacks SSE 4.2); for tests. */
uint32_t bp__crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t bp__crc32c_hw(uint32_t crc, const void *buf, size_t len);
int bp__crc32c_have_hw(void);

#endif
