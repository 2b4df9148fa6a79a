/* Taking instances in, by `import` or by C-STORE (one path for both), and announcing
 * the studies they belong to.
 *
 * An instance is durable once pm_ingest_file returns PM_OK: its blob is on disk and
 * a local record of it (study, series and instance metadata, content hash) has
 * committed, with a mark that its study needs announcing. The announcement event
 * follows when the import or association ends (pm_ingest_announce); a crash in
 * between is recovered by announcing marked studies at the next start. */
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

/* Ingests the DICOM file at path. take: path is the node's own spool file and is moved
 * (else it is copied and left alone). study_uid (PM_DICOM_UID_MAX + 1 bytes) receives
 * the instance's study. PM_E_DICOM with a reason in err for files that are not DICOM
 * or lack the UIDs; nothing is stored then. */
int pm_ingest_file(const pm_ingest_ctx *ctx, const char *path, int take, char *study_uid, char *err,
                   size_t errlen);

/* Announces every study holding instances not yet announced, with the full list of
 * what this node holds of it. *announced receives the number of studies. */
int pm_ingest_announce(const pm_ingest_ctx *ctx, unsigned *announced);

#endif
