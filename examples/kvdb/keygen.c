/* SPDX-License-Identifier: MIT */
/* keygen.c - deterministic test keys and values (see keygen.h). */
#include <stdio.h>
#include <string.h>

#include "keygen.h"
#include "kvdb.h"

uint64_t kg_mix(uint64_t x)
{
    /* murmur3's fmix64: each step is invertible */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint64_t kg_unmix(uint64_t x)
{
    /* kg_mix's steps undone in reverse order: a shift by 33 of 64 bits
     * undoes itself, and each multiplier's inverse modulo 2^64 */
    x ^= x >> 33;
    x *= 0x9cb4b2f8129337dbull;
    x ^= x >> 33;
    x *= 0x4f74430c22a54005ull;
    x ^= x >> 33;
    return x;
}

bool kg_is_key(const void *key, size_t klen)
{
    const char *k = key;
    uint64_t h = 0;
    if (klen < 16 || klen > KVDB_KEY_MAX)
        return false;
    for (size_t i = 0; i < 16; i++) {
        int d = k[i] >= '0' && k[i] <= '9' ? k[i] - '0'
              : k[i] >= 'a' && k[i] <= 'f' ? k[i] - 'a' + 10 : -1;
        if (d < 0)
            return false;
        h = h << 4 | (uint64_t)d;
    }
    /* A key is made from the 64 bits its 16 digits spell, whatever the
     * seed and index that gave them: make it again from index
     * kg_unmix(h) of seed 0 (kg_hash(0, i) = h). */
    char again[KVDB_KEY_MAX];
    size_t n = kg_key(0, kg_unmix(h), again);
    return n == klen && memcmp(again, key, klen) == 0;
}

uint64_t kg_hash(uint64_t seed, uint64_t i)
{
    return kg_mix(i + seed * 0x9e3779b97f4a7c15ull);
}

size_t kg_key(uint64_t seed, uint64_t i, char *out)
{
    uint64_t h = kg_hash(seed, i);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    uint64_t t = kg_mix(h ^ 0x5bd1e995u);
    size_t n = 16 + t % 16;
    if ((t >> 8) % 512 == 0)
        n += 200 + (t >> 20) % 701;
    for (size_t k = 16; k < n; k++)
        out[k] = (char)('a' + (t >> (k % 40)) % 26);
    return n;
}

size_t kg_val(const char *key, size_t klen, uint32_t ver, char *out)
{
    uint64_t h = 0;
    for (size_t k = 0; k < 16 && k < klen; k++)
        h = h * 131 + (unsigned char)key[k];
    uint64_t t = kg_mix(h ^ ((uint64_t)ver << 32));
    size_t n = 1 + t % 32;
    if ((t >> 8) % 256 == 0)
        n = 300 + (t >> 20) % 701;
    int p = snprintf(out, KVDB_VAL_MAX, "v%u:", ver);
    size_t klen16 = klen < 16 ? klen : 16;
    if (n < (size_t)p)
        n = (size_t)p;
    for (size_t k = (size_t)p; k < n; k++)
        out[k] = key[(k - (size_t)p) % klen16];
    return n;
}

bool kg_val_ok(const void *key, size_t klen, const void *val, size_t vlen)
{
    const char *v = val, *k = key;
    size_t p = 0;
    if (vlen < 3 || v[0] != 'v')
        return false;
    p = 1;
    while (p < vlen && v[p] >= '0' && v[p] <= '9')
        p++;
    if (p == 1 || p >= vlen || v[p] != ':')
        return false;
    p++;
    size_t klen16 = klen < 16 ? klen : 16;
    for (size_t i = p; i < vlen; i++)
        if (v[i] != k[(i - p) % klen16])
            return false;
    return true;
}
