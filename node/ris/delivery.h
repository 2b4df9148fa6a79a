/* Delivering final reports home, whatever the channel: the acquiring node walks the
 * final reports of its own studies (store/views.h pm_views_studies_final_since), hands
 * each one its channel has not yet delivered to the channel's deliver(), and records
 * what was delivered in a ledger file (ledger.h), so a restart sends nothing twice
 * that was delivered and forgets nothing that was not. A failed delivery stops the
 * round; the next one starts after the channel's retry time. Two channels use it: the
 * HL7 ORU^R01 to the RIS (sender.h) and the report's SR to the PACS (sr_sender.h).
 *
 * The delivery is an actor: one thread of its own that only reads the store (LMDB
 * readers run beside the writer) and does the network I/O, so a slow peer never holds
 * up the daemon's loop. */
#ifndef PM_RIS_DELIVERY_H
#define PM_RIS_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/view.pb-c.h"
#include "store/store.h"

/* Most report texts of one study a delivery carries (report and addenda). */
#define PM_DELIVERY_TEXTS_MAX 64

typedef struct {
    const char *name;        /* log module and thread's purpose, e.g. "ris" */
    const char *ledger_file; /* under the node directory, e.g. "ris-delivered" */
    const char *target;      /* where reports go, for log lines */
    uint64_t retry_ms;       /* wait after a failure */
    /* Sends study s's n report texts (already of them were delivered before: a later
     * addendum makes a correction). Returns 1 when the peer took it, 0 when not (the
     * channel has logged why). Called on the delivery's thread; s is borrowed. */
    int (*deliver)(void *ctx, const Pm__StudyView *s, const char **texts, size_t n, size_t already);
    void *ctx; /* the channel's, outlives the delivery */
} pm_delivery_channel;

typedef struct pm_delivery pm_delivery;

/* Starts delivering for this node (self, PM_ID_BYTES) over ch (copied; its strings
 * must outlive the delivery). The store is borrowed and must outlive it. PM_E_IO if
 * the ledger cannot be opened, PM_E_NOMEM. */
int pm_delivery_new(const char *dir, pm_store *store, const uint8_t *self,
                    const pm_delivery_channel *ch, pm_delivery **out);

/* Stops the thread (a delivery under way ends within the channel's timeout), frees. */
void pm_delivery_destroy(pm_delivery **self_p);

/* Wakes the delivery: new events are in the store. */
void pm_delivery_kick(pm_delivery *self);

/* What of the running delivery is still to go, as its thread last counted it (after
 * each round that offered something, and every 30 s): cheap, for metrics. */
size_t pm_delivery_undelivered(pm_delivery *self);

/* Final reports of self's studies that ledger_file does not list as delivered (a walk
 * of every final report: for `status`, which runs beside the node). */
int pm_delivery_pending(const char *dir, const char *ledger_file, pm_store *store,
                        const uint8_t *self, size_t *pending);

/* The report texts a delivery carries: every report not submitted out of turn, in
 * order (addenda after the report they amend). Borrowed from s. */
size_t pm_delivery_report_texts(const Pm__StudyView *s, const char **texts, size_t max);

/* The reporter of the principal report (not an addendum), "" if none. */
const char *pm_delivery_principal_reporter(const Pm__StudyView *s);

/* The time of the principal report (ms), 0 if none. */
uint64_t pm_delivery_principal_time(const Pm__StudyView *s);

#endif
