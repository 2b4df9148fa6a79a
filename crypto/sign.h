/* Event signatures: Ed25519 over domain-separated bytes.
 *
 * The signed message is  "pacsmesh-event" NUL, the 4-byte big-endian format number,
 * then the body bytes exactly as the author serialized them. The domain string keeps
 * an event signature from ever being valid as any other kind of signature, and the
 * format number binds the body to the schema it was written in. */
#ifndef PM_SIGN_H
#define PM_SIGN_H

#include "crypto/identity.h"

#include <stddef.h>
#include <stdint.h>

/* Signs body under format with the identity. PM_E_NOMEM if the message buffer cannot
 * be allocated. */
int pm_sign_event(const pm_identity *id, uint32_t format, const uint8_t *body, size_t len,
                  uint8_t sig[PM_SIG_BYTES]);

/* PM_OK if sig is origin's signature of body under format, else PM_E_SIG
 * (PM_E_NOMEM on allocation failure). */
int pm_verify_event(const uint8_t origin[PM_ID_BYTES], uint32_t format, const uint8_t *body,
                    size_t len, const uint8_t sig[PM_SIG_BYTES])
    __attribute__((warn_unused_result));

#endif
