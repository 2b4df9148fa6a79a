/* crypto/: identity files, signatures, CURVE key derivation, hashing and hex. */
#include "test/check.h"

#include "crypto/hash.h"
#include "crypto/identity.h"
#include "crypto/sign.h"
#include "proto/log.h"

#include <fcntl.h>
#include <sodium.h>

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(close(fd) == 0);
    CHECK(chmod(path, mode) == 0); /* umask must not decide the test */
}

static void test_identity_files(const char *dir)
{
    pm_identity *id = NULL, *loaded = NULL;
    CHECK_RC(pm_identity_generate(&id));
    CHECK(id);
    char *key = check_path(dir, "node.key");
    CHECK_RC(pm_identity_save(id, key));

    struct stat st;
    CHECK(stat(key, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0600);
    CHECK_EQ_INT(st.st_size, 65); /* 64 hex digits and a newline */

    CHECK_RC(pm_identity_load(key, &loaded));
    CHECK(memcmp(pm_identity_public(id), pm_identity_public(loaded), PM_ID_BYTES) == 0);
    /* The loaded key signs exactly like the original (Ed25519 is deterministic). */
    uint8_t s1[PM_SIG_BYTES], s2[PM_SIG_BYTES];
    pm_identity_sign(id, (const uint8_t *)"abc", 3, s1);
    pm_identity_sign(loaded, (const uint8_t *)"abc", 3, s2);
    CHECK(memcmp(s1, s2, sizeof s1) == 0);

    /* Refuses to overwrite, and leaves the existing file intact. */
    pm_identity *other = NULL;
    CHECK_RC(pm_identity_generate(&other));
    CHECK_CODE(pm_identity_save(other, key), PM_E_EXISTS);
    pm_identity_destroy(&loaded);
    CHECK_RC(pm_identity_load(key, &loaded));
    CHECK(memcmp(pm_identity_public(id), pm_identity_public(loaded), PM_ID_BYTES) == 0);
    pm_identity_destroy(&loaded);

    /* A key file readable by group or by others is refused, as ssh does. */
    CHECK(chmod(key, 0640) == 0);
    CHECK_CODE(pm_identity_load(key, &loaded), PM_E_KEY);
    CHECK(loaded == NULL);
    CHECK(chmod(key, 0604) == 0);
    CHECK_CODE(pm_identity_load(key, &loaded), PM_E_KEY);
    CHECK(chmod(key, 0600) == 0);
    CHECK_RC(pm_identity_load(key, &loaded));
    pm_identity_destroy(&loaded);

    /* Missing, truncated and non-hex files. */
    char *missing = check_path(dir, "missing.key");
    CHECK_CODE(pm_identity_load(missing, &loaded), PM_E_KEY);
    char *bad = check_path(dir, "bad.key");
    write_file(bad, "0123456789abcdef\n", 0600);
    CHECK_CODE(pm_identity_load(bad, &loaded), PM_E_KEY);
    unlink(bad);
    write_file(bad, "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0600);
    CHECK_CODE(pm_identity_load(bad, &loaded), PM_E_KEY);
    unlink(bad);
    /* Without the trailing newline it is still a valid key. */
    write_file(bad, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 0600);
    CHECK_RC(pm_identity_load(bad, &loaded));
    pm_identity_destroy(&loaded);

    /* Saving into a missing directory is an I/O error. */
    char *nodir = check_path(dir, "no/such/dir.key");
    CHECK_CODE(pm_identity_save(id, nodir), PM_E_IO);

    /* destroy accepts NULL and is safe twice. */
    pm_identity_destroy(NULL);
    pm_identity_destroy(&loaded);
    pm_identity_destroy(&other);
    pm_identity_destroy(&other);
    CHECK(other == NULL);
    pm_identity_destroy(&id);
    free(key);
    free(missing);
    free(bad);
    free(nodir);
}

static void test_sign_verify(void)
{
    pm_identity *a = NULL, *b = NULL;
    CHECK_RC(pm_identity_generate(&a));
    CHECK_RC(pm_identity_generate(&b));
    CHECK(memcmp(pm_identity_public(a), pm_identity_public(b), PM_ID_BYTES) != 0);

    uint8_t body[300];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7 + 1);
    uint8_t sig[PM_SIG_BYTES];
    CHECK_RC(pm_sign_event(a, 1, body, sizeof body, sig));
    CHECK_RC(pm_verify_event(pm_identity_public(a), 1, body, sizeof body, sig));

    /* Another key, another format number, a flipped bit anywhere: all refused. */
    CHECK_CODE(pm_verify_event(pm_identity_public(b), 1, body, sizeof body, sig), PM_E_SIG);
    CHECK_CODE(pm_verify_event(pm_identity_public(a), 2, body, sizeof body, sig), PM_E_SIG);
    for (size_t bit = 0; bit < sizeof body * 8; bit += 37) {
        body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_CODE(pm_verify_event(pm_identity_public(a), 1, body, sizeof body, sig), PM_E_SIG);
        body[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t bit = 0; bit < PM_SIG_BYTES * 8; bit += 5) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_CODE(pm_verify_event(pm_identity_public(a), 1, body, sizeof body, sig), PM_E_SIG);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK_CODE(pm_verify_event(pm_identity_public(a), 1, body, sizeof body - 1, sig), PM_E_SIG);
    CHECK_RC(pm_verify_event(pm_identity_public(a), 1, body, sizeof body, sig));

    /* An event signature is domain-separated: a raw signature of the body is not one. */
    uint8_t raw[PM_SIG_BYTES];
    pm_identity_sign(a, body, sizeof body, raw);
    CHECK(crypto_sign_verify_detached(raw, body, sizeof body, pm_identity_public(a)) == 0);
    CHECK_CODE(pm_verify_event(pm_identity_public(a), 1, body, sizeof body, raw), PM_E_SIG);

    /* The empty body signs and verifies too. */
    CHECK_RC(pm_sign_event(a, 1, NULL, 0, sig));
    CHECK_RC(pm_verify_event(pm_identity_public(a), 1, NULL, 0, sig));
    CHECK_CODE(pm_verify_event(pm_identity_public(b), 1, NULL, 0, sig), PM_E_SIG);

    pm_identity_destroy(&a);
    pm_identity_destroy(&b);
}

static void test_curve(void)
{
    pm_identity *a = NULL;
    CHECK_RC(pm_identity_generate(&a));
    uint8_t pk[PM_CURVE_KEY_BYTES], sk[PM_CURVE_KEY_BYTES], pk2[PM_CURVE_KEY_BYTES];
    CHECK_RC(pm_identity_curve_keys(a, pk, sk));
    CHECK_RC(pm_identity_curve_public_of(pm_identity_public(a), pk2));
    CHECK(memcmp(pk, pk2, sizeof pk) == 0);
    /* The secret really is the public key's: X25519 base point times sk gives pk. */
    uint8_t derived[PM_CURVE_KEY_BYTES];
    CHECK(crypto_scalarmult_base(derived, sk) == 0);
    CHECK(memcmp(derived, pk, sizeof pk) == 0);
    sodium_memzero(sk, sizeof sk);

    /* Two identities give two different CURVE keys. */
    pm_identity *b = NULL;
    CHECK_RC(pm_identity_generate(&b));
    CHECK_RC(pm_identity_curve_public_of(pm_identity_public(b), pk2));
    CHECK(memcmp(pk, pk2, sizeof pk) != 0);

    /* A node id that is not a valid Ed25519 point is refused. The all-zero id is a
     * low-order point, and y = 2 is not on the curve. */
    uint8_t bogus[PM_ID_BYTES] = {0};
    CHECK_CODE(pm_identity_curve_public_of(bogus, pk2), PM_E_KEY);
    bogus[0] = 2;
    CHECK_CODE(pm_identity_curve_public_of(bogus, pk2), PM_E_KEY);
    pm_identity_destroy(&a);
    pm_identity_destroy(&b);
}

static void test_hex(void)
{
    uint8_t bin[4] = {0x00, 0xAB, 0x7f, 0xff}, out[4];
    char hex[9];
    pm_hex_encode(bin, 4, hex);
    CHECK(strcmp(hex, "00ab7fff") == 0);
    CHECK_RC(pm_hex_decode("00ab7fff", out, 4));
    CHECK(memcmp(out, bin, 4) == 0);
    CHECK_RC(pm_hex_decode("00AB7FFF", out, 4)); /* upper case is accepted */
    CHECK(memcmp(out, bin, 4) == 0);
    CHECK_CODE(pm_hex_decode("00ab7ff", out, 4), PM_E_INVAL);   /* odd length, short */
    CHECK_CODE(pm_hex_decode("00ab7fff0", out, 4), PM_E_INVAL); /* too long */
    CHECK_CODE(pm_hex_decode("00ab7fff00", out, 4), PM_E_INVAL);
    CHECK_CODE(pm_hex_decode("00ab7fgf", out, 4), PM_E_INVAL); /* not a digit */
    CHECK_CODE(pm_hex_decode("00ab 7ff", out, 4), PM_E_INVAL);
    CHECK_CODE(pm_hex_decode("0xab7fff", out, 4), PM_E_INVAL);
    CHECK_CODE(pm_hex_decode("", out, 4), PM_E_INVAL);
    CHECK_CODE(pm_hex_decode(NULL, out, 4), PM_E_INVAL);
    CHECK_RC(pm_hex_decode("", out, 0)); /* zero bytes: the empty string */
    pm_hex_encode(bin, 0, hex);
    CHECK(hex[0] == '\0');
    /* Every byte value round-trips. */
    uint8_t all[256], back[256];
    char allhex[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    pm_hex_encode(all, 256, allhex);
    CHECK_EQ_INT(strlen(allhex), 512);
    CHECK_RC(pm_hex_decode(allhex, back, 256));
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_hash(const char *dir)
{
    /* pm_hash is BLAKE2b-256, unkeyed. */
    uint8_t h[PM_HASH_BYTES], ref[PM_HASH_BYTES];
    pm_hash("abc", 3, h);
    crypto_generichash(ref, sizeof ref, (const uint8_t *)"abc", 3, NULL, 0);
    CHECK(memcmp(h, ref, sizeof h) == 0);
    char hex[PM_HASH_HEX];
    pm_hash("", 0, h);
    pm_hex_encode(h, PM_HASH_BYTES, hex);
    /* The published BLAKE2b-256 of the empty string. */
    CHECK(strcmp(hex, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8") == 0);

    /* A file of 200,000 bytes (several read buffers) hashes like the same bytes in
     * memory, and like the incremental hasher fed in odd-sized pieces. */
    size_t len = 200000;
    uint8_t *data = malloc(len);
    CHECK(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 9));
    char *path = check_path(dir, "blob");
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(data, 1, len, f) == len);
    CHECK(fclose(f) == 0);
    uint64_t size = 0;
    CHECK_RC(pm_hash_file(path, h, &size));
    CHECK_EQ_INT(size, len);
    pm_hash(data, len, ref);
    CHECK(memcmp(h, ref, sizeof h) == 0);
    pm_hasher st;
    pm_hasher_init(&st);
    for (size_t off = 0; off < len;) {
        size_t n = off % 977 + 1;
        if (n > len - off)
            n = len - off;
        pm_hasher_update(&st, data + off, n);
        off += n;
    }
    pm_hasher_final(&st, ref);
    CHECK(memcmp(h, ref, sizeof h) == 0);
    CHECK_RC(pm_hash_file(path, h, NULL)); /* size_out is optional */

    /* An empty file, a missing file, a directory. */
    char *empty = check_path(dir, "empty");
    f = fopen(empty, "wb");
    CHECK(f && fclose(f) == 0);
    CHECK_RC(pm_hash_file(empty, h, &size));
    CHECK_EQ_INT(size, 0);
    pm_hash("", 0, ref);
    CHECK(memcmp(h, ref, sizeof h) == 0);
    char *missing = check_path(dir, "missing");
    CHECK_CODE(pm_hash_file(missing, h, &size), PM_E_IO);
    CHECK_CODE(pm_hash_file(dir, h, &size), PM_E_IO);
    free(data);
    free(path);
    free(empty);
    free(missing);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF); /* refusals log; the test checks the codes */
    char *dir = check_tmpdir("crypto");
    test_identity_files(dir);
    test_sign_verify();
    test_curve();
    test_hex();
    test_hash(dir);
    check_tmpdir_remove(&dir);
    printf("test_crypto: ok\n");
    return 0;
}
