#include "crypto/identity.h"
#include "crypto/hash.h"
#include "proto/error.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_identity {
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    uint8_t *secret_key; /* crypto_sign_SECRETKEYBYTES of sodium_malloc memory */
};

static int identity_from_seed(const uint8_t seed[crypto_sign_SEEDBYTES], pm_identity **out)
{
    pm_identity *self = calloc(1, sizeof *self);
    if (!self)
        return PM_E_NOMEM;
    self->secret_key = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (!self->secret_key) {
        free(self);
        return PM_E_NOMEM;
    }
    crypto_sign_seed_keypair(self->public_key, self->secret_key, seed);
    *out = self;
    return PM_OK;
}

int pm_identity_generate(pm_identity **out)
{
    if (sodium_init() < 0)
        return PM_E_NOMEM;
    uint8_t *seed = sodium_malloc(crypto_sign_SEEDBYTES);
    if (!seed)
        return PM_E_NOMEM;
    randombytes_buf(seed, crypto_sign_SEEDBYTES);
    int rc = identity_from_seed(seed, out);
    sodium_free(seed);
    return rc;
}

int pm_identity_save(const pm_identity *self, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return errno == EEXIST ? PM_E_EXISTS : PM_E_IO;
    /* The seed is the first half of libsodium's secret key. */
    char *hex = sodium_malloc(2 * crypto_sign_SEEDBYTES + 2);
    if (!hex) {
        close(fd);
        unlink(path);
        return PM_E_NOMEM;
    }
    pm_hex_encode(self->secret_key, crypto_sign_SEEDBYTES, hex);
    size_t len = 2 * crypto_sign_SEEDBYTES;
    hex[len++] = '\n';
    int rc = PM_OK;
    if (write(fd, hex, len) != (ssize_t)len || fsync(fd) != 0)
        rc = PM_E_IO;
    sodium_free(hex);
    if (close(fd) != 0)
        rc = PM_E_IO;
    if (rc != PM_OK)
        unlink(path);
    return rc;
}

int pm_identity_load(const char *path, pm_identity **out)
{
    int rc = PM_E_KEY;
    char *hex = NULL;
    uint8_t *seed = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        pm_error("identity", "cannot open key file %s: %s", path, strerror(errno));
        return PM_E_KEY;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        pm_error("identity", "key file %s is readable by others (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        goto fail;
    }
    hex = sodium_malloc(2 * crypto_sign_SEEDBYTES + 2);
    seed = sodium_malloc(crypto_sign_SEEDBYTES);
    if (!hex || !seed) {
        rc = PM_E_NOMEM;
        goto fail;
    }
    ssize_t n = read(fd, hex, 2 * crypto_sign_SEEDBYTES + 1);
    if (n < 2 * crypto_sign_SEEDBYTES) {
        pm_error("identity", "key file %s is truncated", path);
        goto fail;
    }
    hex[2 * crypto_sign_SEEDBYTES] = '\0';
    if (pm_hex_decode(hex, seed, crypto_sign_SEEDBYTES) != PM_OK) {
        pm_error("identity", "key file %s is not a hex seed", path);
        goto fail;
    }
    rc = identity_from_seed(seed, out);
fail:
    if (hex)
        sodium_free(hex);
    if (seed)
        sodium_free(seed);
    close(fd);
    return rc;
}

void pm_identity_destroy(pm_identity **self_p)
{
    if (!self_p || !*self_p)
        return;
    sodium_free((*self_p)->secret_key); /* wipes before freeing */
    free(*self_p);
    *self_p = NULL;
}

const uint8_t *pm_identity_public(const pm_identity *self)
{
    return self->public_key;
}

void pm_identity_sign(const pm_identity *self, const uint8_t *msg, size_t len,
                      uint8_t sig[PM_SIG_BYTES])
{
    crypto_sign_detached(sig, NULL, msg, len, self->secret_key);
}

int pm_identity_curve_keys(const pm_identity *self, uint8_t public_key[PM_CURVE_KEY_BYTES],
                           uint8_t secret_key[PM_CURVE_KEY_BYTES])
{
    if (crypto_sign_ed25519_pk_to_curve25519(public_key, self->public_key) != 0)
        return PM_E_KEY;
    if (crypto_sign_ed25519_sk_to_curve25519(secret_key, self->secret_key) != 0)
        return PM_E_KEY;
    return PM_OK;
}

int pm_identity_curve_public_of(const uint8_t id[PM_ID_BYTES],
                                uint8_t public_key[PM_CURVE_KEY_BYTES])
{
    return crypto_sign_ed25519_pk_to_curve25519(public_key, id) == 0 ? PM_OK : PM_E_KEY;
}
