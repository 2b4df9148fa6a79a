/* Raw libsodium throughput of the per-byte work a cold fetch cannot skip, the yardstick
 * the cold retrieves of bench/bench_pixels.sh are measured against:
 *
 *   bench/raw_pixels [BYTES] [INSTANCE_BYTES] [MESSAGE_BYTES]
 *                    (defaults 157286400, 524288 and 1048576: the CT, a slice, a chunk)
 *
 * Every byte of another trust's instance crosses the mesh encrypted by CURVE, whose
 * cipher is libsodium's crypto_box with a precomputed key (XSalsa20-Poly1305, sealed by
 * the holder, opened by the receiver, one box per transport message), and is checked by
 * the receiver against its signed BLAKE2b-256 hash (invariant 4). Times each over BYTES
 * of random data on this one thread, in memory (no copies, no system calls). Prints
 *   seal_mb_s S, open_mb_s O, hash_mb_s H
 *   receiver_mb_s R   R = 1 / (1/O + 1/H): one core opening and hashing every byte, the
 *                     most one receiving core takes in if nothing else it did cost anything
 *   two_cores_mb_s T  T = 2 / (1/S + 1/O + 1/H): sealing, opening and hashing spread
 *                     perfectly over two cores, holder and receiver on one machine. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mb_s(size_t bytes, double seconds)
{
    return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

int main(int argc, char **argv)
{
    size_t bytes = argc > 1 ? strtoul(argv[1], NULL, 10) : 157286400;
    size_t instance = argc > 2 ? strtoul(argv[2], NULL, 10) : 524288;
    size_t message = argc > 3 ? strtoul(argv[3], NULL, 10) : 1048576;
    if (sodium_init() < 0 || !bytes || !instance || !message || instance > bytes ||
        message > bytes || bytes > ((size_t)4 << 30)) {
        fprintf(stderr, "usage: raw_pixels [BYTES (up to 4 GiB)] [INSTANCE_BYTES] "
                        "[MESSAGE_BYTES] (neither larger than BYTES)\n");
        return 2;
    }
    size_t boxes = (bytes + message - 1) / message;
    unsigned char *plain = malloc(bytes), *boxed = malloc(bytes + boxes * crypto_box_MACBYTES);
    if (!plain || !boxed) {
        fprintf(stderr, "raw_pixels: cannot allocate %zu bytes twice\n", bytes);
        return 1;
    }
    randombytes_buf(plain, bytes);
    memset(boxed, 0, bytes + boxes * crypto_box_MACBYTES); /* its pages are not timed */
    unsigned char pk_a[crypto_box_PUBLICKEYBYTES], sk_a[crypto_box_SECRETKEYBYTES];
    unsigned char pk_b[crypto_box_PUBLICKEYBYTES], sk_b[crypto_box_SECRETKEYBYTES];
    unsigned char key_a[crypto_box_BEFORENMBYTES], key_b[crypto_box_BEFORENMBYTES];
    unsigned char nonce[crypto_box_NONCEBYTES] = {0};
    crypto_box_keypair(pk_a, sk_a);
    crypto_box_keypair(pk_b, sk_b);
    if (crypto_box_beforenm(key_a, pk_b, sk_a) || crypto_box_beforenm(key_b, pk_a, sk_b)) {
        fprintf(stderr, "raw_pixels: crypto_box_beforenm failed\n");
        return 1;
    }

    double t0 = now();
    for (size_t off = 0, i = 0; off < bytes; off += message, i++) {
        size_t n = bytes - off < message ? bytes - off : message;
        sodium_increment(nonce, sizeof nonce); /* a box per message, each with its nonce */
        crypto_box_easy_afternm(boxed + off + i * crypto_box_MACBYTES, plain + off, n, nonce,
                                key_a);
    }
    double t1 = now();
    sodium_memzero(nonce, sizeof nonce);
    size_t opened = 0;
    for (size_t off = 0, i = 0; off < bytes; off += message, i++) {
        size_t n = bytes - off < message ? bytes - off : message;
        sodium_increment(nonce, sizeof nonce);
        opened += crypto_box_open_easy_afternm(plain + off, boxed + off + i * crypto_box_MACBYTES,
                                               n + crypto_box_MACBYTES, nonce, key_b) == 0;
    }
    double t2 = now();
    unsigned char h[32], all = 0;
    for (size_t off = 0; off < bytes; off += instance) {
        size_t n = bytes - off < instance ? bytes - off : instance;
        crypto_generichash(h, sizeof h, plain + off, n, NULL, 0);
        all ^= h[0]; /* used, so the loop is not optimised away */
    }
    double t3 = now();
    if (opened != boxes) {
        fprintf(stderr, "raw_pixels: %zu of %zu boxes did not open\n", boxes - opened, boxes);
        return 1;
    }
    double seal = mb_s(bytes, t1 - t0), open = mb_s(bytes, t2 - t1), hash = mb_s(bytes, t3 - t2);
    int all_timed = seal > 0 && open > 0 && hash > 0;
    printf("seal_mb_s %.0f\nopen_mb_s %.0f\nhash_mb_s %.0f\n", seal, open, hash);
    printf("receiver_mb_s %.0f\n", all_timed ? 1 / (1 / open + 1 / hash) : 0);
    printf("two_cores_mb_s %.0f\n", all_timed ? 2 / (1 / seal + 1 / open + 1 / hash) : 0);
    fprintf(stderr, "raw_pixels: %zu bytes, %zu-byte boxes, %zu-byte instances (digest %02x)\n",
            bytes, message, instance, all);
    free(plain);
    free(boxed);
    return 0;
}
