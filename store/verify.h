/* Offline verification of an event log: the records of an export file or of a store
 * are re-ingested, in the total order, into a scratch store, so exactly the checks a
 * node makes on events from the network (signature, chain, sequence, mesh, fork,
 * revocation) apply; then membership at each event is checked against the views the
 * log itself produces. */
#ifndef PM_VERIFY_H
#define PM_VERIFY_H

#include "store/store.h"

typedef struct pm_verifier pm_verifier;

/* One problem found: origin and seq of the event, and what failed. */
typedef void (*pm_verify_report_fn)(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                                    const char *what);

/* scratch_dir must not exist; it is created and removed by destroy. */
int pm_verifier_new(const char *scratch_dir, pm_verify_report_fn report, void *ctx,
                    pm_verifier **out);

/* Adds a record: kind 'E' (event, in the total order) or 'F' (fork evidence). */
int pm_verifier_add(pm_verifier *self, char kind, const uint8_t *raw, size_t len);

/* Finishes the checks. *events and *problems receive the totals. The scratch store
 * stays open for the caller (pm_verifier_store) until destroy. */
int pm_verifier_finish(pm_verifier *self, uint64_t *events, uint64_t *problems);

/* The scratch store the log was replayed into (borrowed). */
pm_store *pm_verifier_store(pm_verifier *self);

void pm_verifier_destroy(pm_verifier **self_p);

#endif
