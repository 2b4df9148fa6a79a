/* IHE ATNA: every audit event of this node goes to the trust's audit record repository
 * ([audit] syslog) as an RFC 5424 syslog message (syslog_frame.h) carrying a DICOM
 * audit message (atna_message.h): the events of this node's own signed feed, from its
 * first on (atna_events.h), and the node-local records of DIR/atna-journal (queries,
 * sign-ins, refusals, pixel data served to peers; journal.h).
 *
 * How far both have been sent is kept in DIR/atna-sent ("feed SEQ" and "journal
 * OFFSET" lines, replaced atomically after each batch), so nothing is lost across a
 * restart or a kill -9, and at worst a batch is sent again: syslog over TCP has no
 * acknowledgement, and a repository takes a message again rather than miss one.
 *
 * The sender is an actor with its own thread (like the RIS sender): it reads the store
 * beside the writer and does the network I/O, so a slow or absent repository never
 * holds up the node; it retries every [audit] syslog_retry until it is heard. */
#ifndef PM_AUDIT_ATNA_SENDER_H
#define PM_AUDIT_ATNA_SENDER_H

#include <stdint.h>

#include "crypto/identity.h"
#include "node/config/config.h"
#include "store/store.h"

typedef struct pm_atna_sender pm_atna_sender;

/* Starts the sender when cfg has [audit] syslog set (else *out is NULL and PM_OK is
 * returned) and installs the journal as the process-wide audit sink. The store is
 * borrowed and must outlive the sender; cfg's values are copied. PM_E_CONFIG (a bad
 * syslog URL or TLS file; logged with the key), PM_E_IO, PM_E_NOMEM. */
int pm_atna_sender_new(const char *dir, pm_store *store, const uint8_t self[PM_ID_BYTES],
                       const pm_config *cfg, pm_atna_sender **out);

/* Uninstalls the sink, stops the thread (a send under way ends within its timeout) and
 * frees. Accepts NULL; clears the pointer. */
void pm_atna_sender_destroy(pm_atna_sender **self_p);

/* Wakes the sender: something new may be waiting. */
void pm_atna_sender_kick(pm_atna_sender *self);

/* Messages sent since start, failed attempts, and records dropped because the journal
 * was full (for the metrics). Accepts NULL (all 0). */
void pm_atna_sender_counts(pm_atna_sender *self, uint64_t *sent, uint64_t *failures,
                           uint64_t *dropped);

/* How many audit messages wait to be sent, from DIR/atna-sent, the own feed's head
 * and DIR/atna-journal (for status; the node may be running). */
int pm_atna_pending(const char *dir, pm_store *store, const uint8_t self[PM_ID_BYTES],
                    uint64_t *events, uint64_t *records);

#endif
