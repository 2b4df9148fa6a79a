/* Raw single-core Ed25519 verification rate of libsodium on this machine, the yardstick
 * catch-up is measured against (bench/bench_catchup.sh):
 *
 *   bench/raw_verify [MESSAGES] [BYTES]      (defaults 20000 and 400: an event's size)
 *
 * Signs MESSAGES distinct messages of BYTES bytes, then times crypto_sign_verify_detached
 * over all of them on this one thread. Prints "raw_verify_per_s R". */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    size_t bytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 400;
    if (sodium_init() < 0 || n == 0 || bytes == 0 || bytes > 65536) {
        fprintf(stderr, "usage: raw_verify [MESSAGES] [BYTES (1-65536)]\n");
        return 2;
    }
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    unsigned char *msg = malloc(n * bytes), *sig = malloc(n * crypto_sign_BYTES);
    if (!msg || !sig)
        return 1;
    randombytes_buf(msg, n * bytes);
    for (size_t i = 0; i < n; i++)
        crypto_sign_detached(sig + i * crypto_sign_BYTES, NULL, msg + i * bytes, bytes, sk);
    double t0 = now();
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += crypto_sign_verify_detached(sig + i * crypto_sign_BYTES, msg + i * bytes, bytes,
                                          pk) == 0;
    double t1 = now();
    if (ok != n) {
        fprintf(stderr, "raw_verify: %zu of %zu signatures did not verify\n", n - ok, n);
        return 1;
    }
    printf("raw_verify_per_s %.0f\n", n / (t1 - t0));
    free(msg);
    free(sig);
    return 0;
}
