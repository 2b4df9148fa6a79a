/* What the DICOM edge and the ingest path record for operators, and `status` shows:
 * instances refused or quarantined because their patient differs from their study's
 * (node/studies/patient.h), and blobs found damaged when served. These are local
 * records of this node (the store's local table, never replicated): they describe this
 * node's own inputs and disk.
 *
 * Records are JSON objects. Patient conflicts are kept under "xp/<ms>/<sop>" (at most
 * PM_INCIDENTS_MAX of them; the counters count on past that) with counters "xc/refused"
 * and "xc/quarantined"; damaged blobs under "xd/<hash hex>", one per blob, removed
 * when the blob is whole again. */
#ifndef PM_INCIDENTS_H
#define PM_INCIDENTS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

#define PM_INCIDENTS_MAX 10000

typedef struct {
    const char *action; /* "refused" or "quarantined" */
    const char *study_uid, *sop_uid;
    const char *calling_ae, *host;               /* who sent it ("import" and "" for imports) */
    const char *patient_id, *issuer;             /* the instance's */
    const char *known_patient_id, *known_issuer; /* the study's */
    const char *differs;                         /* which attribute, one line */
    const char *file;                            /* the quarantined file, or "" */
} pm_patient_incident;

/* Records one patient conflict and counts it. */
int pm_incident_patient(pm_store *store, const pm_patient_incident *in);

/* Records that the blob with this hash was found damaged at path when served (why: one
 * line, e.g. "hashes to 3fa2..."). Idempotent per blob (the record keeps the first time
 * and counts detections). */
int pm_incident_damaged(pm_store *store, const uint8_t hash[32], const char *path,
                        const char *study_uid, const char *sop_uid, const char *why);

/* Whether a damaged record exists for this blob; clearing it (the blob is whole again). */
int pm_incident_is_damaged(pm_store *store, const uint8_t hash[32]);
int pm_incident_damaged_clear(pm_store *store, const uint8_t hash[32]);

/* {"patient_conflicts": {"refused": N, "quarantined": N, "recent": [records, newest
 * first, at most max_recent]}, "damaged_blobs": [records]}. NULL when out of memory. */
json_t *pm_incidents_json(pm_store *store, size_t max_recent);

/* The lines `status` prints for doc (as made by pm_incidents_json). */
void pm_incidents_print(const json_t *doc, FILE *out);

#endif
