#include "node/daemon/edge_provider.h"
#include "crypto/hash.h"
#include "node/audit/notes.h"
#include "node/daemon/mailbox.h"
#include "node/studies/incidents.h"
#include "node/studies/verify.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A request of kind to the main loop for study (as reader), job and hash as the kind
 * needs them. */
static pm_mail_request mail_request(pm_mail_kind kind, const char *study, const char *reader)
{
    pm_mail_request rq;
    memset(&rq, 0, sizeof rq);
    rq.magic = PM_MAIL_MAGIC;
    rq.kind = kind;
    snprintf(rq.study, sizeof rq.study, "%s", study ? study : "");
    snprintf(rq.reader, sizeof rq.reader, "%s", reader ? reader : "");
    return rq;
}

/* Logs why study could not be made available for reader (nothing when it could). */
static void warn_unavailable(const char *study_uid, const char *reader, const pm_mail_reply *r)
{
    if (r->rc)
        pm_warn("dicom", "cannot make study %s available for %s: %s", study_uid, reader,
                *r->why ? r->why : pm_strerror(r->rc));
}

static int edge_store(void *ctx, pm_dicom_store_rq *rq, char *err, size_t errlen)
{
    pm_edge *e = ctx;
    pm_ingest_source src = {rq->calling_ae, rq->peer_host, rq->meta};
    pm_ingest_result res;
    int rc = pm_ingest_instance(&e->ingest, rq->tmp_path, 1, &src, &res, err, errlen);
    uint64_t now = pm_now_ms(), none = 0;
    __atomic_store_n(&e->last_store_ms, now, __ATOMIC_RELAXED);
    __atomic_compare_exchange_n(&e->unannounced_since_ms, &none, now, 0, __ATOMIC_RELAXED,
                                __ATOMIC_RELAXED);
    __atomic_add_fetch(&e->stores, 1, __ATOMIC_RELAXED);
    if (res.outcome == PM_INGEST_QUARANTINED) {
        rq->quarantined = 1; /* kept aside: the sender need not send it again */
        return PM_OK;
    }
    if (res.outcome == PM_INGEST_REFUSED_PATIENT)
        rq->status = 0xA900; /* Error: data set does not match (its study's patient) */
    return rc;
}

static void edge_association_end(void *ctx, const char *calling_ae, unsigned stored)
{
    pm_edge *e = ctx;
    if (!stored || !__atomic_load_n(&e->may_sign, __ATOMIC_ACQUIRE))
        return; /* stored durably; announced once the node may sign (run.c) */
    unsigned announced = 0, deferred = 0;
    /* A study that grew is left to the main loop (run.c), which announces it once the
     * senders pause or within ANNOUNCE_DELAY_MAX_MS. */
    int rc = pm_ingest_announce_new(&e->ingest, &announced, &deferred);
    if (rc)
        pm_error("dicom", "cannot announce what %s stored: %s", calling_ae, pm_strerror(rc));
    pm_mail_request rq = mail_request(PM_MAIL_KICK, NULL, NULL);
    pm_mail_reply reply;
    pm_mail_ask(e->zctx, &rq, 5000, &reply);
}

static int edge_for_each_study(void *ctx, const char *study_uid, const char *patient_id,
                               int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx)
{
    pm_edge *e = ctx;
    __atomic_add_fetch(&e->finds, 1, __ATOMIC_RELAXED);
    return pm_views_studies(e->ingest.store, study_uid, patient_id, fn, fctx);
}

static int edge_for_each_study_dated(void *ctx, const char *from, const char *to,
                                     int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx)
{
    pm_edge *e = ctx;
    __atomic_add_fetch(&e->finds, 1, __ATOMIC_RELAXED);
    return pm_views_studies_dated(e->ingest.store, from, to, fn, fctx);
}

static int edge_for_each_study_by_attr(void *ctx, char attr, const char *value, int exact,
                                       int (*fn)(void *fctx, const Pm__StudyView *study),
                                       void *fctx)
{
    pm_edge *e = ctx;
    __atomic_add_fetch(&e->finds, 1, __ATOMIC_RELAXED);
    return pm_views_studies_by_attr(e->ingest.store, attr, value, exact, fn, fctx);
}

/* reader: the user of the association's identity, else "AE@host". */
static int edge_prepare_study(void *ctx, const char *reader, const char *study_uid)
{
    pm_edge *e = ctx;
    __atomic_add_fetch(&e->retrieves, 1, __ATOMIC_RELAXED);
    pm_mail_request rq = mail_request(PM_MAIL_PREPARE, study_uid, reader);
    pm_mail_reply reply;
    /* A large study from a slow peer may take minutes; the viewer waits meanwhile. */
    int rc = pm_mail_ask(e->zctx, &rq, 600000, &reply);
    warn_unavailable(study_uid, reader, &reply);
    pm_audit_note_retrieve(reader, study_uid, rc != PM_OK);
    return rc;
}

/* reader: as for edge_prepare_study. */
static int edge_begin_study(void *ctx, const char *reader, const char *study_uid, uint64_t *fetch)
{
    pm_edge *e = ctx;
    __atomic_add_fetch(&e->retrieves, 1, __ATOMIC_RELAXED);
    pm_mail_request rq = mail_request(PM_MAIL_FETCH_BEGIN, study_uid, reader);
    pm_mail_reply reply;
    int rc = pm_mail_ask(e->zctx, &rq, 10000, &reply);
    if (!rc)
        *fetch = reply.job;
    warn_unavailable(study_uid, reader, &reply);
    pm_audit_note_retrieve(reader, study_uid, rc != PM_OK);
    return rc;
}

static int edge_await_blob(void *ctx, uint64_t fetch, const uint8_t hash[32])
{
    pm_edge *e = ctx;
    pm_mail_request rq = mail_request(PM_MAIL_AWAIT, NULL, NULL);
    rq.job = fetch;
    memcpy(rq.hash, hash, PM_HASH_BYTES);
    pm_mail_reply reply;
    /* One instance from a slow peer may take a while; the viewer waits meanwhile. */
    return pm_mail_ask(e->zctx, &rq, 600000, &reply);
}

static int edge_blob_path(void *ctx, const uint8_t hash[32], char *path, size_t pathlen)
{
    pm_edge *e = ctx;
    return pm_blobs_path(e->ingest.blobs, hash, path, pathlen);
}

/* Serving only what was signed (node/studies/verify.h). A damaged copy is logged,
 * recorded for `status`, set aside (no longer held: peers asking for it are told so,
 * and the next prepare_study fetches it from another holder); a copy that checks out
 * after that repair is one of the trust's own again if it was before. */
static int edge_verify_blob(void *ctx, const uint8_t hash[32], const char *path,
                            const char *study_uid, const char *sop_uid, char *why, size_t wl)
{
    pm_edge *e = ctx;
    pm_store *store = e->ingest.store;
    char hex[PM_HASH_HEX];
    pm_hex_encode(hash, PM_HASH_BYTES, hex);
    int rc = pm_blob_verify(hash, path, why, wl);
    if (rc == PM_OK) {
        int pinned = 0;
        if (pm_incident_damaged_state(store, hash, &pinned) == 1) {
            if (pinned)
                pm_blobs_pin(e->ingest.blobs, hash);
            pm_incident_repaired(store, hash);
            pm_info("dicom",
                    "blob %.16s (instance %s of study %s) repaired: a whole copy came "
                    "from a peer",
                    hex, sop_uid, study_uid);
        }
        return PM_OK;
    }
    if (rc == PM_E_HASH) {
        char aside[4200] = "";
        int pinned = 0;
        pm_blobs_set_aside(e->ingest.blobs, hash, aside, sizeof aside, &pinned);
        pm_blob_verify_forget(hash);
        pm_incident_damaged(store, hash, path, study_uid, sop_uid, why, pinned, aside);
        pm_error("dicom",
                 "blob %.16s at %s (instance %s of study %s) %s: damaged, not served; set aside "
                 "as %s",
                 hex, path, sop_uid, study_uid, why, aside[0] ? aside : "(gone)");
    } else {
        pm_error("dicom", "blob %.16s at %s (instance %s of study %s) cannot be served: %s", hex,
                 path, sop_uid, study_uid, why);
    }
    return rc;
}

static void edge_refused(void *ctx, int why)
{
    pm_edge *e = ctx;
    if (why >= 0 && why < PM_DICOM_REFUSED_COUNT)
        __atomic_add_fetch(&e->refused[why], 1, __ATOMIC_RELAXED);
}

/* A user identity from an association: the name of a user of the node (its reporter id
 * when it has one, as the web server records readers). */
static int edge_authenticate(void *ctx, const char *host, const char *user, const char *password,
                             const char *token, char *name, size_t namelen)
{
    pm_edge *e = ctx;
    pm_http_auth *auth = __atomic_load_n(&e->auth, __ATOMIC_ACQUIRE);
    if (!auth)
        return PM_E_SIG;
    pm_user u;
    int retry_s = 0, rc;
    if (token)
        rc = pm_http_auth_token(auth, token, &u);
    else /* sign-in failures count against the name and address, as on the web */
        rc = pm_http_auth_password(auth, user, password, host, &u, &retry_s);
    if (rc != PM_OK)
        return PM_E_SIG;
    snprintf(name, namelen, "%s", *u.reporter ? u.reporter : u.name);
    sodium_memzero(u.hash, sizeof u.hash);
    return PM_OK;
}

void pm_edge_provider(pm_edge *e, pm_dicom_provider *p)
{
    memset(p, 0, sizeof *p);
    p->ctx = e;
    p->store = edge_store;
    p->association_end = edge_association_end;
    p->for_each_study = edge_for_each_study;
    p->for_each_study_dated = edge_for_each_study_dated;
    p->for_each_study_by_attr = edge_for_each_study_by_attr;
    p->prepare_study = edge_prepare_study;
    p->begin_study = edge_begin_study;
    p->await_blob = edge_await_blob;
    p->blob_path = edge_blob_path;
    p->verify_blob = edge_verify_blob;
    p->refused = edge_refused;
    p->authenticate = edge_authenticate;
}

void pm_edge_settings(const pm_config *cfg, const char *spool_dir, pm_dicom_settings *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->ae_title, sizeof out->ae_title, "%s", cfg->ae_title);
    snprintf(out->bind_address, sizeof out->bind_address, "%s", cfg->dicom_bind);
    out->port = cfg->dicom_port;
    out->allowed_aes = (const char *const *)cfg->allowed_aes;
    out->store_from_any = cfg->allow_store_from_any;
    out->tls_cert = cfg->dicom_tls_cert;
    out->tls_key = cfg->dicom_tls_key;
    out->tls_ca = cfg->dicom_tls_ca;
    out->require_client_cert = cfg->dicom_require_client_cert;
    out->destinations = cfg->destinations;
    out->n_destinations = cfg->n_destinations;
    out->spool_dir = spool_dir;
    out->max_pdu = cfg->max_pdu;
    out->idle_timeout_ms = (unsigned)cfg->dicom_idle_timeout_ms;
    out->read_timeout_ms = (unsigned)cfg->dicom_read_timeout_ms;
    out->max_associations = cfg->dicom_max_associations;
    out->max_associations_per_host = cfg->dicom_max_associations_per_host;
    out->max_nesting = cfg->dicom_max_nesting;
    out->max_elements = cfg->dicom_max_elements;
    out->max_find_results = cfg->dicom_max_find_results;
}
