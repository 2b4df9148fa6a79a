/* Taking instances in, by `import` or by C-STORE (one path for both), and announcing
 * the studies they belong to.
 *
 * An instance is durable once pm_ingest_file returns PM_OK: its blob is on disk and
 * a local record of it (study, series and instance metadata, content hash) has
 * committed, with a mark that its study needs announcing. The announcement event
 * follows when the import or association ends (pm_ingest_announce); a crash in
 * between is recovered by announcing marked studies at the next start. An announcement
 * lists what is new since the study's last one: the views take the union. */
#ifndef PM_INGEST_H
#define PM_INGEST_H

#include "crypto/identity.h"
#include "node/config/config.h"
#include "node/dicom/dicom.h"
#include "store/blobs.h"
#include "store/store.h"

/* Borrowed handles the ingest path works with. */
typedef struct {
    pm_store *store;
    pm_blobs *blobs;
    const pm_identity *id;
    const pm_config *cfg;
} pm_ingest_ctx;

/* Where an instance comes from, for checks and logs. */
typedef struct {
    const char *calling_ae;    /* NULL or "": an import */
    const char *peer_host;     /* the calling address, or NULL */
    const pm_dicom_meta *meta; /* already read from the file (the edge has), or NULL */
} pm_ingest_source;

typedef enum {
    PM_INGEST_STORED = 1,      /* a new instance (or a different data set under its UID) */
    PM_INGEST_DUPLICATE,       /* the same data set is already held: nothing changed */
    PM_INGEST_QUARANTINED,     /* patient differs from its study's: kept aside (see below) */
    PM_INGEST_REFUSED_PATIENT, /* patient differs from its study's: refused */
    PM_INGEST_REFUSED_REVOKED  /* this node has been revoked from the mesh */
} pm_ingest_outcome;

typedef struct {
    pm_ingest_outcome outcome; /* 0 when the file was not read */
    char study_uid[PM_DICOM_UID_MAX + 1];
} pm_ingest_result;

/* Ingests the DICOM file at path. take: path is the node's own spool file and is moved
 * or removed (else it is copied and left alone).
 *
 * An instance whose patient differs from its study's (node/studies/patient.h) is
 * refused, or with [dicom] patient_conflict = quarantine moved (copied) to
 * <blobs>/quarantine/ and never recorded in the study; either way it is logged with
 * src's calling AE and host and recorded for `status` (node/studies/incidents.h), and
 * PM_E_DICOM returned with res->outcome saying which. A node revoked from the mesh
 * refuses everything (PM_E_REVOKED). PM_E_DICOM with a reason in err for files that
 * are not DICOM, are refused by the scan or lack the UIDs; nothing is stored then. */
int pm_ingest_instance(const pm_ingest_ctx *ctx, const char *path, int take,
                       const pm_ingest_source *src, pm_ingest_result *res, char *err,
                       size_t errlen);

/* pm_ingest_instance for an import (no source); study_uid (PM_DICOM_UID_MAX + 1 bytes)
 * receives the instance's study. */
int pm_ingest_file(const pm_ingest_ctx *ctx, const char *path, int take, char *study_uid, char *err,
                   size_t errlen);

/* Announces every study holding instances not yet announced, listing those instances
 * (in several events if the study is too large for one; node/studies/announce.c).
 * *announced receives the number of studies. */
int pm_ingest_announce(const pm_ingest_ctx *ctx, unsigned *announced);

/* As pm_ingest_announce for the studies this node has not announced before; those it
 * has, which grew since, are left for a later pm_ingest_announce and counted in
 * *deferred. What the edge calls as an association ends: a new study reaches the
 * worklist at once, while a study sent one instance per association (as many PACS
 * forwarders do) is announced in a few events, not one per instance. */
int pm_ingest_announce_new(const pm_ingest_ctx *ctx, unsigned *announced, unsigned *deferred);

#endif
