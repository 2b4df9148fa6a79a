/* What the DICOM edge and the ingest path record for operators, and `status` shows:
 * instances refused or quarantined because their patient differs from their study's
 * (node/studies/patient.h), and blobs found damaged when served. These are local
 * records of this node (the store's local table, never replicated): they describe this
 * node's own inputs and disk.
 *
 * Records are JSON objects. Patient conflicts are kept under "xp/<ms>/<sop>" (at most
 * PM_INCIDENTS_MAX of them; the counters count on past that) with counters "xc/refused"
 * and "xc/quarantined"; damaged blobs under "xd/<hash hex>", one per blob, marked
 * repaired when a whole copy is held again. */
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
 * line, e.g. "hashes to 3fa2..."), that it was one of the trust's own (pinned) or not,
 * and where its file was set aside. One record per blob: a later detection counts. */
int pm_incident_damaged(pm_store *store, const uint8_t hash[32], const char *path,
                        const char *study_uid, const char *sop_uid, const char *why, int pinned,
                        const char *set_aside);

/* 0: no record of this blob; 1: recorded damaged; 2: damaged, then repaired. *pinned
 * (may be NULL) receives whether it was one of the trust's own. */
int pm_incident_damaged_state(pm_store *store, const uint8_t hash[32], int *pinned);

/* A whole copy of a damaged blob is held again (fetched from a peer and checked). */
int pm_incident_repaired(pm_store *store, const uint8_t hash[32]);

/* {"patient_conflicts": {"refused": N, "quarantined": N, "recent": [records, newest
 * first, at most max_recent]}, "damaged_blobs": [records; "state" is "damaged" or
 * "repaired"]}. NULL when out of memory. */
json_t *pm_incidents_json(pm_store *store, size_t max_recent);

/* The lines `status` prints for doc (as made by pm_incidents_json). */
void pm_incidents_print(const json_t *doc, FILE *out);

#endif
