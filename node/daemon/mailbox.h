/* The main loop's mailbox for the DICOM edge's threads (and the web server's, which
 * serves DICOMweb through the edge's provider): typed requests and replies, copied
 * byte for byte over the inproc socket PM_EDGE_ENDPOINT (one process, so no encoding
 * is needed). A reply carries a real error code, so a retrieve can tell an unknown
 * study (PM_E_NOTFOUND) from a holder that cannot be reached (PM_E_NET), a damaged
 * copy everywhere (PM_E_HASH), this node's full disk (PM_E_NOSPACE) and a node that
 * may not sign yet (PM_E_BUSY). The web server's writes (JSON from HTTP bodies) share
 * the socket: a message that is not a pm_mail_request is theirs (node/http/mailbox.c). */
#ifndef PM_DAEMON_MAILBOX_H
#define PM_DAEMON_MAILBOX_H

#include "crypto/hash.h"
#include "store/event.h"

#include <stddef.h>
#include <stdint.h>

#define PM_MAIL_MAGIC 0x4c49414d /* "MAIL": never the first bytes of a JSON object */

typedef enum {
    PM_MAIL_KICK = 1,    /* new local events: push them (announcements after a C-STORE) */
    PM_MAIL_PREPARE,     /* make study local; answered when the fetch ends */
    PM_MAIL_FETCH_BEGIN, /* begin making study local; answered at once with the job */
    PM_MAIL_AWAIT        /* wait for instance hash of job; answered once it is here */
} pm_mail_kind;

typedef struct {
    uint32_t magic; /* PM_MAIL_MAGIC */
    pm_mail_kind kind;
    char study[PM_UID_MAX + 1];
    char reader[128]; /* who reads: a user's reporter id, else "AE@host" */
    uint64_t job;
    uint8_t hash[PM_HASH_BYTES];
} pm_mail_request;

typedef struct {
    int rc;       /* PM_OK or the PM_E_* code of why not */
    uint64_t job; /* PM_MAIL_FETCH_BEGIN: the fetch job */
    char why[192];
} pm_mail_reply;

/* Sends request to the main loop and waits up to timeout_ms for its reply: the reply's
 * rc (PM_E_TIMEOUT if none came, PM_E_NET if the socket failed). */
int pm_mail_ask(void *zctx, const pm_mail_request *request, int timeout_ms, pm_mail_reply *reply);

/* Whether a message of size bytes is a request; if so it is copied into *out. A message
 * that is not one is the web server's JSON. */
int pm_mail_request_read(const void *data, size_t size, pm_mail_request *out);

#endif
