/* The report's SR home to the trust's PACS: when a report of one of this node's studies
 * is final (verified, or reported where no second read is required), the node writes
 * it as a DICOM Basic Text SR (node/dicom/sr.h; VERIFIED with the verifier when there
 * was a second read; an addendum is added to the text) and C-STOREs it to [dicom]
 * report_destination, an AE of [dicom.destinations], retrying every [dicom]
 * report_retry until the PACS stores it. What was stored is kept in
 * DIR/report-sr-delivered (ledger.h), so a restart sends nothing twice that was stored.
 *
 * The SR's Series and SOP Instance UIDs are derived from the study UID and how many
 * report texts it carries (2.25 UIDs from a hash), so sending again after a crash
 * between the store and the ledger line sends the same instance, and an addendum
 * that comes later is a new instance. The walk, the ledger and the thread are a
 * delivery's (delivery.h); this file is the DICOM channel. */
#ifndef PM_RIS_SR_SENDER_H
#define PM_RIS_SR_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "node/config/config.h"
#include "store/store.h"

typedef struct pm_sr_sender pm_sr_sender;

/* Starts the sender for this node (self, PM_ID_BYTES) when cfg has [dicom]
 * report_destination set; *out is NULL (and PM_OK returned) when it does not. The
 * store is borrowed and must outlive the sender; cfg's values are copied. */
int pm_sr_sender_new(const char *dir, pm_store *store, const uint8_t *self, const pm_config *cfg,
                     pm_sr_sender **out);

/* Stops the thread (a C-STORE under way ends within its timeout) and frees. */
void pm_sr_sender_destroy(pm_sr_sender **self_p);

/* What the running sender has still to store, as its thread last counted it (metrics). */
size_t pm_sr_sender_undelivered(pm_sr_sender *self);

/* Final reports of self's studies whose SR the PACS has not stored (for status). */
int pm_sr_pending(const char *dir, pm_store *store, const uint8_t *self, size_t *pending);

/* Writes "2.25." and the decimal value of the first 16 bytes of the BLAKE2b hash of
 * text into out (at least 45 bytes): a UID of its own for each text. */
void pm_sr_uid_from(const char *text, char out[45]);

#endif
