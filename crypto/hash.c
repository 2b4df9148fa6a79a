#include "crypto/hash.h"
#include "proto/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pm_hash(const void *data, size_t len, uint8_t out[PM_HASH_BYTES])
{
    crypto_generichash(out, PM_HASH_BYTES, data, len, NULL, 0);
}

void pm_hasher_init(pm_hasher *h)
{
    crypto_generichash_init(&h->state, NULL, 0, PM_HASH_BYTES);
}

void pm_hasher_update(pm_hasher *h, const void *data, size_t len)
{
    crypto_generichash_update(&h->state, data, len);
}

void pm_hasher_final(pm_hasher *h, uint8_t out[PM_HASH_BYTES])
{
    crypto_generichash_final(&h->state, out, PM_HASH_BYTES);
}

int pm_hash_file(const char *path, uint8_t out[PM_HASH_BYTES], uint64_t *size_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return PM_E_IO;
    pm_hasher h;
    pm_hasher_init(&h);
    uint8_t buf[65536];
    uint64_t total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        pm_hasher_update(&h, buf, n);
        total += n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return PM_E_IO;
    pm_hasher_final(&h, out);
    if (size_out)
        *size_out = total;
    return PM_OK;
}

int pm_hash_file_chunks(const char *path, uint32_t chunk_size, uint8_t out[PM_HASH_BYTES],
                        uint64_t *size_out, uint8_t (**chunks)[PM_HASH_BYTES], size_t *n_chunks)
{
    *chunks = NULL;
    *n_chunks = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return PM_E_IO;
    pm_hasher whole, piece;
    pm_hasher_init(&whole);
    pm_hasher_init(&piece);
    uint8_t buf[65536];
    uint64_t total = 0, in_piece = 0;
    size_t n, cap = 0;
    int rc = PM_OK;
    while (rc == PM_OK && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        pm_hasher_update(&whole, buf, n);
        total += n;
        for (size_t off = 0; chunk_size && off < n;) {
            size_t take = n - off;
            if (take > chunk_size - in_piece)
                take = (size_t)(chunk_size - in_piece);
            pm_hasher_update(&piece, buf + off, take);
            off += take;
            in_piece += take;
            if (in_piece == chunk_size) {
                if (*n_chunks == cap) {
                    cap = cap ? 2 * cap : 16;
                    uint8_t(*grown)[PM_HASH_BYTES] = realloc(*chunks, cap * PM_HASH_BYTES);
                    if (!grown) {
                        rc = PM_E_NOMEM;
                        break;
                    }
                    *chunks = grown;
                }
                pm_hasher_final(&piece, (*chunks)[(*n_chunks)++]);
                pm_hasher_init(&piece);
                in_piece = 0;
            }
        }
    }
    if (ferror(f))
        rc = PM_E_IO;
    fclose(f);
    if (rc == PM_OK && chunk_size && in_piece) {
        uint8_t(*grown)[PM_HASH_BYTES] = realloc(*chunks, (*n_chunks + 1) * PM_HASH_BYTES);
        if (grown) {
            *chunks = grown;
            pm_hasher_final(&piece, (*chunks)[(*n_chunks)++]);
        } else {
            rc = PM_E_NOMEM;
        }
    }
    if (rc) {
        free(*chunks);
        *chunks = NULL;
        *n_chunks = 0;
        return rc;
    }
    pm_hasher_final(&whole, out);
    if (size_out)
        *size_out = total;
    return PM_OK;
}

void pm_hex_encode(const uint8_t *bin, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bin[i] >> 4];
        out[2 * i + 1] = digits[bin[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pm_hex_decode(const char *hex, uint8_t *bin, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return PM_E_INVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return PM_E_INVAL;
        bin[i] = (uint8_t)(hi << 4 | lo);
    }
    return PM_OK;
}
