/* SPDX-License-Identifier: MIT */
/* keygen.h - deterministic test keys and values (for load, verify, mt,
 * bench): key i of a seed is unique, random-looking and of varied length;
 * a value names its key, so a reader can tell a right value from a wrong
 * one without knowing which version it should be. */
#ifndef KVDB_KEYGEN_H
#define KVDB_KEYGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t kg_mix(uint64_t x);   /* a bijection of 64-bit integers */
uint64_t kg_unmix(uint64_t x); /* its inverse */
/* The number whose 16 hex digits start key i: keys sort as these do. */
uint64_t kg_hash(uint64_t seed, uint64_t i);
/* Key i: 16 hex digits of a bijection of i (so keys never repeat), then
 * 0-15 letters, and about one key in 512 a tail of 200-900 more.  out
 * needs KVDB_KEY_MAX bytes.  Returns the length. */
size_t kg_key(uint64_t seed, uint64_t i, char *out);
/* Value version ver of key: "v<ver>:" then the key's first 16 bytes
 * repeated, 1-32 bytes long or, about one in 256, 300-1000.  out needs
 * KVDB_VAL_MAX bytes. */
size_t kg_val(const char *key, size_t klen, uint32_t ver, char *out);
/* Is key (klen bytes) one kg_key makes, for some seed and index?  (A
 * key follows from the 64 bits its first 16 digits spell.) */
bool kg_is_key(const void *key, size_t klen);
/* Is val some version of key's value? */
bool kg_val_ok(const void *key, size_t klen, const void *val, size_t vlen);

#endif
