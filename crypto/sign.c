#include "crypto/sign.h"
#include "proto/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char DOMAIN[] = "pacsmesh-event"; /* sizeof includes the NUL we sign */
enum { PREFIX_LEN = sizeof DOMAIN + 4 };

/* Builds DOMAIN NUL format(be32) body into a fresh buffer. */
static uint8_t *signed_message(uint32_t format, const uint8_t *body, size_t len, size_t *out_len)
{
    uint8_t *msg = malloc(PREFIX_LEN + len);
    if (!msg)
        return NULL;
    memcpy(msg, DOMAIN, sizeof DOMAIN);
    msg[sizeof DOMAIN + 0] = (uint8_t)(format >> 24);
    msg[sizeof DOMAIN + 1] = (uint8_t)(format >> 16);
    msg[sizeof DOMAIN + 2] = (uint8_t)(format >> 8);
    msg[sizeof DOMAIN + 3] = (uint8_t)format;
    if (len)
        memcpy(msg + PREFIX_LEN, body, len);
    *out_len = PREFIX_LEN + len;
    return msg;
}

int pm_sign_event(const pm_identity *id, uint32_t format, const uint8_t *body, size_t len,
                  uint8_t sig[PM_SIG_BYTES])
{
    size_t mlen;
    uint8_t *msg = signed_message(format, body, len, &mlen);
    if (!msg)
        return PM_E_NOMEM;
    pm_identity_sign(id, msg, mlen, sig);
    free(msg);
    return PM_OK;
}

int pm_verify_event(const uint8_t origin[PM_ID_BYTES], uint32_t format, const uint8_t *body,
                    size_t len, const uint8_t sig[PM_SIG_BYTES])
{
    size_t mlen;
    uint8_t *msg = signed_message(format, body, len, &mlen);
    if (!msg)
        return PM_E_NOMEM;
    int ok = crypto_sign_verify_detached(sig, msg, mlen, origin) == 0;
    free(msg);
    return ok ? PM_OK : PM_E_SIG;
}
