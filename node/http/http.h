/* The node's web server: signed-in users, the REST API (/api), DICOMweb (/dicom-web),
 * the OHIF viewer (/viewer/) and the workspace pages (/), on libmicrohttpd with one
 * thread per connection, bounded in connections, header and body sizes and time.
 *
 * Reads go straight to the views (LMDB read transactions, any thread) or, for the
 * JSON the CLI prints, to the CLI itself; writes (claim, release, report, verify) and
 * lazy fetches are handed to the main loop over its mailbox (PM_EDGE_ENDPOINT), whose
 * thread alone writes events (pm_http_answer_write). */
#ifndef PM_HTTP_H
#define PM_HTTP_H

#include <jansson.h>
#include <stdint.h>

#include "node/config/config.h"
#include "node/dicom/dicom.h"
#include "node/worklist/actions.h"
#include "store/blobs.h"
#include "store/store.h"

typedef struct pm_http_server pm_http_server;

typedef struct {
    const char *dir;            /* the node directory (CLI calls, default users file) */
    const pm_config *cfg;       /* [http] keys; borrowed for the server's life */
    pm_store *store;            /* read transactions only */
    pm_blobs *blobs;            /* cached pixel data */
    const uint8_t *self;        /* this node's id (PM_ID_BYTES) */
    pm_dicom_provider provider; /* the DICOM edge's: views, lazy fetch, blob paths */
    void *zctx;                 /* for the main loop's mailbox */
    const char *mailbox;        /* its endpoint */
} pm_http_settings;

/* Starts serving on [http] listen (nothing if it is empty: *out stays NULL).
 * PM_OK; PM_E_CONFIG (bad listen address, unreadable tls_cert/tls_key; logged);
 * PM_E_NET (the address cannot be bound). */
int pm_http_start(const pm_http_settings *settings, pm_http_server **out);

/* Stops accepting, ends connections, joins the threads, frees. Accepts NULL. */
void pm_http_stop(pm_http_server **self_p);

/* The server's users, sessions and tokens (node/http/auth.h), borrowed for the life of
 * the server: the DICOM edge checks user identities against them. */
struct pm_http_auth *pm_http_server_auth(pm_http_server *self);

/* 1 if the mailbox request cmd is one of the web server's writes ("http-..."). */
int pm_http_is_write(const char *cmd);

/* In the main loop's thread: applies one write the web server asked for
 * ({"cmd":"http-claim"|"http-release"|"http-verify"|"http-report", "study", "reporter",
 * "text"}) and returns the reply ({"ok":true,"message"} or {"error","code"}). */
json_t *pm_http_answer_write(const pm_wl_node *node, const json_t *request);

#endif
