/* The report's way home: the acquiring node sends each final report of its own studies
 * to the trust's RIS ([ris] endpoint) as an HL7 v2.5 ORU^R01 over MLLP, and retries
 * until the RIS acknowledges it with AA; an addendum that comes later is sent again as
 * a correction. What was acknowledged is kept in DIR/ris-delivered (ledger.h), so a
 * restart sends nothing twice that was acknowledged and forgets nothing that was not.
 * The walk, the ledger and the thread are a delivery's (delivery.h); this file is the
 * HL7 channel. */
#ifndef PM_RIS_SENDER_H
#define PM_RIS_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "node/config/config.h"
#include "store/store.h"

typedef struct pm_ris_sender pm_ris_sender;

/* Starts the sender for this node (self, PM_ID_BYTES) when cfg has [ris] endpoint set;
 * *out is NULL (and PM_OK returned) when it does not. The store is borrowed and must
 * outlive the sender; cfg's values are copied. */
int pm_ris_sender_new(const char *dir, pm_store *store, const uint8_t *self, const pm_config *cfg,
                      pm_ris_sender **out);

/* Stops the thread (an exchange under way ends within its timeout) and frees. */
void pm_ris_sender_destroy(pm_ris_sender **self_p);

/* Wakes the sender: new events are in the store. */
void pm_ris_sender_kick(pm_ris_sender *self);

/* What the running sender has still to send, as its thread last counted it (metrics). */
size_t pm_ris_sender_undelivered(pm_ris_sender *self);

/* Final reports of self's studies the RIS has not acknowledged (for status). */
int pm_ris_pending(const char *dir, pm_store *store, const uint8_t *self, size_t *pending);

#endif
