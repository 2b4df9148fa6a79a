/* The DICOM edge's provider (node/dicom/dicom.h) over this node: C-STORE goes through the
 * ingest path, C-FIND reads the views, C-GET/C-MOVE ask the main loop to make the
 * study local (lazy fetch) over the inproc socket PM_EDGE_ENDPOINT, and the main loop
 * answers when the fetch is done. Called from the edge's threads: everything here is
 * thread-safe (LMDB transactions per call, one ZeroMQ socket per call). */
#ifndef PM_EDGE_H
#define PM_EDGE_H

#include "node/dicom/dicom.h"
#include "node/http/auth.h"
#include "node/studies/ingest.h"

#define PM_EDGE_ENDPOINT "inproc://pacsmesh-edge"

typedef struct {
    pm_ingest_ctx ingest;
    void *zctx;
    uint64_t last_store_ms; /* atomically updated: the main loop's quiet-period check */
    /* The first store the main loop has not announced yet (0: none); set by the
     * edge's threads, cleared by the main loop, atomically. */
    uint64_t unannounced_since_ms;
    uint64_t stores, finds, retrieves;        /* counters, atomically updated */
    uint64_t refused[PM_DICOM_REFUSED_COUNT]; /* by PM_DICOM_REFUSED_*, atomically updated */
    /* User identities of associations are checked against these (the web server's, so
     * that its tokens are valid; else the edge's own over the users file). Stored
     * atomically once the web server is up (until then identities are refused); the
     * pointed-at object is thread-safe. */
    pm_http_auth *auth;
    int may_sign; /* atomically set by the main loop once this node's own feed is confirmed:
                   * before, C-STOREs are stored and their announcement waits */
} pm_edge;

/* Fills provider with callbacks whose ctx is edge. */
void pm_edge_provider(pm_edge *edge, pm_dicom_provider *provider);

/* The edge's settings from the node's config; strings, destinations and allowed AEs
 * borrowed from cfg. */
void pm_edge_settings(const pm_config *cfg, const char *spool_dir, pm_dicom_settings *out);

#endif
