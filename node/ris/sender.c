/* The RIS sender (node/ris/sender.h): the HL7 channel of a delivery (delivery.h). */
#include "node/ris/sender.h"
#include "crypto/hash.h"
#include "node/ris/delivery.h"
#include "node/ris/hl7.h"
#include "node/ris/mllp.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

#define EXCHANGE_TIMEOUT_MS 10000
#define ACK_MAX 4096
#define LEDGER_FILE "ris-delivered"

struct pm_ris_sender {
    char *endpoint, *facility, *application;
    uint64_t retry_ms;
    pm_delivery *delivery;
};

/* MSH-10: the same for the same study and report count, so a message sent again
 * after a crash is recognisably the same one. */
static void control_id(const char *uid, size_t n, char out[21])
{
    uint8_t h[PM_HASH_BYTES];
    char text[128], hex[PM_HASH_BYTES * 2 + 1];
    snprintf(text, sizeof text, "%s/%zu", uid, n);
    pm_hash(text, strlen(text), h);
    pm_hex_encode(h, 9, hex);
    snprintf(out, 21, "PM%.18s", hex);
}

/* Sends one study's reports; 1 acknowledged, 0 not (logged). */
static int deliver(void *ctx, const Pm__StudyView *s, const char **texts, size_t n, size_t already)
{
    pm_ris_sender *r = ctx;
    const Pm__StudyAnnounced *st = s->study;
    char id[21];
    control_id(st->study_instance_uid, n, id);
    pm_hl7_report m = {r->facility,
                       r->application,
                       id,
                       pm_wl_final_ms(s),
                       st->patient_id,
                       st->patient_name,
                       st->patient_birth_date,
                       st->patient_sex,
                       st->accession_number,
                       st->study_instance_uid,
                       st->study_description,
                       st->study_date,
                       pm_delivery_principal_reporter(s),
                       already > 0,
                       texts,
                       n};
    char *msg = pm_hl7_oru(&m), ack[ACK_MAX], why[256] = "";
    size_t ack_len = 0;
    int rc = msg ? pm_mllp_exchange(r->endpoint, msg, EXCHANGE_TIMEOUT_MS, ack, sizeof ack,
                                    &ack_len, why, sizeof why)
                 : PM_E_NOMEM;
    int ok = !rc && pm_hl7_ack_accepted(ack, ack_len, id, why, sizeof why) == 1;
    free(msg);
    if (!ok) {
        pm_warn("ris", "report of study %s not delivered to %s: %s; retrying in %llu s",
                st->study_instance_uid, r->endpoint, *why ? why : pm_strerror(rc),
                (unsigned long long)(r->retry_ms / 1000));
        return 0;
    }
    pm_info("ris", "report of study %s delivered to %s (%s, %zu text%s)", st->study_instance_uid,
            r->endpoint, already ? "correction" : "final", n, n == 1 ? "" : "s");
    return 1;
}

static void sender_free(pm_ris_sender *r)
{
    pm_delivery_destroy(&r->delivery);
    free(r->endpoint);
    free(r->facility);
    free(r->application);
    free(r);
}

int pm_ris_sender_new(const char *dir, pm_store *store, const uint8_t *self, const pm_config *cfg,
                      pm_ris_sender **out)
{
    *out = NULL;
    if (!cfg->ris_endpoint || !*cfg->ris_endpoint)
        return PM_OK;
    pm_ris_sender *r = calloc(1, sizeof *r);
    if (!r)
        return PM_E_NOMEM;
    r->endpoint = strdup(cfg->ris_endpoint);
    r->facility = strdup(cfg->ris_sending_facility ? cfg->ris_sending_facility : "");
    r->application = strdup(cfg->ris_receiving_application ? cfg->ris_receiving_application : "");
    r->retry_ms = cfg->ris_retry_ms ? cfg->ris_retry_ms : 10000;
    pm_delivery_channel ch = {"ris", LEDGER_FILE, r->endpoint, r->retry_ms, deliver, r};
    int rc = r->endpoint && r->facility && r->application
                 ? pm_delivery_new(dir, store, self, &ch, &r->delivery)
                 : PM_E_NOMEM;
    if (rc) {
        sender_free(r);
        return rc;
    }
    *out = r;
    return PM_OK;
}

void pm_ris_sender_kick(pm_ris_sender *self)
{
    if (self)
        pm_delivery_kick(self->delivery);
}

void pm_ris_sender_destroy(pm_ris_sender **self_p)
{
    if (!self_p || !*self_p)
        return;
    sender_free(*self_p);
    *self_p = NULL;
}

size_t pm_ris_sender_undelivered(pm_ris_sender *self)
{
    return pm_delivery_undelivered(self->delivery);
}

int pm_ris_pending(const char *dir, pm_store *store, const uint8_t *self, size_t *pending)
{
    return pm_delivery_pending(dir, LEDGER_FILE, store, self, pending);
}
