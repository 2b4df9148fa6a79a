#include "hash.h"
#include "../proto/error.h"

#include <stdio.h>
#include <string.h>

void pm_hash(const void *data, size_t len, uint8_t out[PM_HASH_BYTES])
{
    crypto_generichash(out, PM_HASH_BYTES, data, len, NULL, 0);
}

void pm_hasher_init(pm_hasher *h) { crypto_generichash_init(&h->state, NULL, 0, PM_HASH_BYTES); }

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
