/* Unit test of the blob store (store/blobs.c): adoption moves a file under its content
 * hash and indexes it, idempotently (pinning only ever upgrades); an expected hash that
 * does not match stores nothing; chunk hashes are those of the pieces; a blob whose
 * file went missing is not held; eviction removes unpinned blobs least recently used
 * first, never a pinned one, and usage adds up. */
#include "test/check.h"

#include "crypto/hash.h"
#include "proto/clock.h"
#include "store/blobs.h"
#include "store/store.h"

#include <sodium.h>

static char *tmp;

/* Writes len bytes of content (byte i is seed + i) to a fresh temporary path of b. */
static void write_temp(pm_blobs *b, unsigned char seed, size_t len, char path[4096])
{
    CHECK_RC(pm_blobs_temp_path(b, path, 4096));
    FILE *f = fopen(path, "wb");
    CHECK(f);
    for (size_t i = 0; i < len; i++)
        CHECK(fputc((unsigned char)(seed + i), f) != EOF);
    CHECK(fclose(f) == 0);
}

static void content_hash(unsigned char seed, size_t len, uint8_t out[PM_HASH_BYTES])
{
    unsigned char *buf = malloc(len ? len : 1);
    CHECK(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed + i);
    pm_hash(buf, len, out);
    free(buf);
}

static void adopt(pm_blobs *b, unsigned char seed, size_t len, int pinned,
                  uint8_t hash[PM_HASH_BYTES])
{
    char path[4096];
    uint64_t size = 0;
    write_temp(b, seed, len, path);
    CHECK_RC(pm_blobs_adopt(b, path, pinned, NULL, hash, &size));
    CHECK_EQ_INT(size, len);
    CHECK(access(path, F_OK) != 0); /* moved, not copied */
}

/* The LRU clock is wall time in ms: wait (without sleeping blind) for the next tick so
 * that two accesses are ordered. */
static void next_ms(void)
{
    uint64_t t = pm_now_ms();
    while (pm_now_ms() == t)
        ;
}

static void usage_is(pm_blobs *b, uint64_t total, uint64_t cache, uint64_t count)
{
    uint64_t t, c, n;
    CHECK_RC(pm_blobs_usage(b, &t, &c, &n));
    CHECK_EQ_INT(t, total);
    CHECK_EQ_INT(c, cache);
    CHECK_EQ_INT(n, count);
}

static void test_adopt(pm_blobs *b)
{
    uint8_t h[PM_HASH_BYTES], want[PM_HASH_BYTES];
    adopt(b, 1, 1000, 0, h);
    content_hash(1, 1000, want);
    CHECK(memcmp(h, want, PM_HASH_BYTES) == 0);
    CHECK(pm_blobs_has(b, h));
    char path[4096];
    CHECK_RC(pm_blobs_path(b, h, path, sizeof path));
    uint8_t on_disk[PM_HASH_BYTES];
    uint64_t size;
    CHECK_RC(pm_hash_file(path, on_disk, &size));
    CHECK(memcmp(on_disk, want, PM_HASH_BYTES) == 0 && size == 1000);
    usage_is(b, 1000, 1000, 1);

    /* The same content again, now pinned: one blob, no longer cache. */
    uint8_t h2[PM_HASH_BYTES];
    adopt(b, 1, 1000, 1, h2);
    CHECK(memcmp(h, h2, PM_HASH_BYTES) == 0);
    usage_is(b, 1000, 0, 1);
    /* And unpinned once more: pinning never goes back down. */
    adopt(b, 1, 1000, 0, h2);
    usage_is(b, 1000, 0, 1);
}

static void test_expect_mismatch(pm_blobs *b)
{
    char path[4096];
    uint8_t wrong[PM_HASH_BYTES], real[PM_HASH_BYTES], h[PM_HASH_BYTES];
    content_hash(9, 10, wrong);
    content_hash(7, 500, real);
    write_temp(b, 7, 500, path);
    CHECK_CODE(pm_blobs_adopt(b, path, 0, wrong, h, NULL), PM_E_HASH);
    CHECK(access(path, F_OK) != 0); /* the bad file is removed */
    CHECK(!pm_blobs_has(b, real));
    CHECK(!pm_blobs_has(b, wrong));
    char where[4096];
    CHECK_CODE(pm_blobs_path(b, real, where, sizeof where), PM_E_NOTFOUND);
    /* The right expectation is accepted. */
    write_temp(b, 7, 500, path);
    CHECK_RC(pm_blobs_adopt(b, path, 1, real, h, NULL));
    CHECK(memcmp(h, real, PM_HASH_BYTES) == 0);
}

static void test_chunks(pm_blobs *b)
{
    char path[4096];
    uint8_t h[PM_HASH_BYTES], (*chunks)[PM_HASH_BYTES] = NULL;
    size_t n = 0;
    uint64_t size = 0;
    write_temp(b, 3, 2500, path);
    CHECK_RC(pm_blobs_adopt_chunked(b, path, 1, 1000, h, &size, &chunks, &n));
    CHECK_EQ_INT(n, 3); /* 1000 + 1000 + 500 */
    unsigned char buf[2500];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(3 + i);
    for (size_t i = 0; i < n; i++) {
        uint8_t want[PM_HASH_BYTES];
        size_t len = i < 2 ? 1000 : 500;
        pm_hash(buf + i * 1000, len, want);
        CHECK(memcmp(chunks[i], want, PM_HASH_BYTES) == 0);
    }
    free(chunks);
}

static void test_missing_file(pm_blobs *b)
{
    uint8_t h[PM_HASH_BYTES];
    adopt(b, 40, 64, 1, h);
    char path[4096];
    CHECK_RC(pm_blobs_path(b, h, path, sizeof path));
    CHECK(unlink(path) == 0);
    CHECK_CODE(pm_blobs_path(b, h, path, sizeof path), PM_E_NOTFOUND);
}

static void test_evict_lru(void)
{
    char *dir = check_path(tmp, "evict");
    char *blobdir = check_path(tmp, "evict-blobs");
    pm_store *s = NULL;
    pm_blobs *b = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    CHECK_RC(pm_blobs_open(s, blobdir, &b));
    uint8_t old[PM_HASH_BYTES], mid[PM_HASH_BYTES], young[PM_HASH_BYTES], pin[PM_HASH_BYTES];
    adopt(b, 10, 100, 0, old);
    next_ms();
    adopt(b, 20, 100, 0, mid);
    next_ms();
    adopt(b, 30, 100, 0, young);
    adopt(b, 50, 5000, 1, pin);
    next_ms();
    /* Reading the oldest makes it the youngest. */
    CHECK_RC(pm_blobs_touch(b, (const uint8_t(*)[PM_HASH_BYTES])old, 1));
    usage_is(b, 5300, 300, 4);
    uint64_t evicted = 0;
    CHECK_RC(pm_blobs_evict(b, 300, &evicted));
    CHECK_EQ_INT(evicted, 0); /* at the limit: nothing to do */
    CHECK_RC(pm_blobs_evict(b, 150, &evicted));
    CHECK_EQ_INT(evicted, 2); /* mid, then young; old was touched last */
    CHECK(pm_blobs_has(b, old) && !pm_blobs_has(b, mid) && !pm_blobs_has(b, young));
    char path[4096];
    CHECK_CODE(pm_blobs_path(b, mid, path, sizeof path), PM_E_NOTFOUND);
    CHECK_RC(pm_blobs_evict(b, 0, &evicted));
    CHECK_EQ_INT(evicted, 1);
    CHECK(pm_blobs_has(b, pin)); /* pinned: never evicted */
    CHECK_RC(pm_blobs_path(b, pin, path, sizeof path));
    usage_is(b, 5000, 0, 1);
    pm_blobs_close(&b);
    pm_blobs_close(&b); /* safe twice */
    CHECK(b == NULL);
    pm_store_close(&s);
    free(dir);
    free(blobdir);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    tmp = check_tmpdir("blobs");
    char *dir = check_path(tmp, "store"), *blobdir = check_path(tmp, "blobs");
    pm_store *s = NULL;
    pm_blobs *b = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    CHECK_RC(pm_blobs_open(s, blobdir, &b));
    test_adopt(b);
    test_expect_mismatch(b);
    test_chunks(b);
    test_missing_file(b);
    pm_blobs_close(&b);
    pm_store_close(&s);
    free(dir);
    free(blobdir);
    test_evict_lru();
    check_tmpdir_remove(&tmp);
    printf("test_blobs: ok\n");
    return 0;
}
