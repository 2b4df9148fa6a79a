/* A node's identity: one Ed25519 key pair. The node id is the 32-byte public key
 * (printed as 64 hex digits). The CURVE transport keys are derived from it, so a node
 * has exactly one identity.
 *
 * The secret key lives in sodium_malloc memory (guarded, locked, wiped on destroy).
 * On disk it is the 32-byte seed in hex, in a file of mode 0600; a key file readable
 * by group or others is refused, as ssh does. */
#ifndef PM_IDENTITY_H
#define PM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define PM_ID_BYTES 32
#define PM_ID_HEX 65
#define PM_SIG_BYTES 64
#define PM_CURVE_KEY_BYTES 32

typedef struct pm_identity pm_identity;

/* Creates a fresh random identity. Returns PM_OK or PM_E_NOMEM. The caller owns *out. */
int pm_identity_generate(pm_identity **out);

/* Writes the key file at path with mode 0600, refusing to overwrite (PM_E_EXISTS).
 * PM_E_IO on any write failure (the partial file is removed). */
int pm_identity_save(const pm_identity *self, const char *path);

/* Reads the key file. PM_E_KEY if missing, malformed or readable by group/others
 * (a message naming the file is logged). The caller owns *out. */
int pm_identity_load(const char *path, pm_identity **out);

/* Wipes and frees; accepts NULL and a NULL *self_p; clears the pointer. */
void pm_identity_destroy(pm_identity **self_p);

/* The node id (public key), borrowed for the identity's lifetime. */
const uint8_t *pm_identity_public(const pm_identity *self);

/* Signs len bytes with the identity key (raw Ed25519, detached). */
void pm_identity_sign(const pm_identity *self, const uint8_t *msg, size_t len,
                      uint8_t sig[PM_SIG_BYTES]);

/* CURVE (X25519) key pair derived from the Ed25519 identity, for ZeroMQ's CURVE
 * mechanism. secret must point to PM_CURVE_KEY_BYTES of memory the caller wipes
 * (sodium_memzero) after handing it to ZeroMQ. */
int pm_identity_curve_keys(const pm_identity *self, uint8_t public_key[PM_CURVE_KEY_BYTES],
                           uint8_t secret_key[PM_CURVE_KEY_BYTES]);

/* The CURVE public key of any node id; PM_E_KEY if id is not a valid Ed25519 point. */
int pm_identity_curve_public_of(const uint8_t id[PM_ID_BYTES],
                                uint8_t public_key[PM_CURVE_KEY_BYTES]);

#endif
