/* The report's SR to the trust's PACS (node/ris/sr_sender.h). */
#include "node/ris/sr_sender.h"
#include "crypto/hash.h"
#include "node/dicom/sr.h"
#include "node/dicom/store_scu.h"
#include "node/ris/delivery.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORE_TIMEOUT_MS 30000
#define LEDGER_FILE "report-sr-delivered"
#define TEXT_MAX (1u << 20)

struct pm_sr_sender {
    char *calling_ae, *called_ae, *host, *target, *tmp_path;
    int port;
    uint64_t retry_ms;
    pm_delivery *delivery;
};

void pm_sr_uid_from(const char *text, char out[45])
{
    uint8_t h[PM_HASH_BYTES];
    pm_hash(text, strlen(text), h);
    /* Long division of the 128-bit big-endian number by 10, digit by digit. */
    uint8_t n[16];
    memcpy(n, h, sizeof n);
    char digits[40];
    size_t nd = 0;
    int zero;
    do {
        unsigned rem = 0;
        zero = 1;
        for (size_t i = 0; i < sizeof n; i++) {
            unsigned cur = rem * 256 + n[i];
            n[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            zero &= n[i] == 0;
        }
        digits[nd++] = (char)('0' + rem);
    } while (!zero && nd < sizeof digits);
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = 0;
}

/* The texts as one: the report, then each addendum under its own heading. */
static char *joined_text(const char **texts, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(texts[i]) + 16;
    if (len > TEXT_MAX)
        return NULL;
    char *out = malloc(len), *p = out;
    for (size_t i = 0; out && i < n; i++)
        p += sprintf(p, "%s%s", i ? "\n\nADDENDUM:\n" : "", texts[i]);
    return out;
}

/* Writes the SR of study s's n texts at r->tmp_path. */
static int write_sr(pm_sr_sender *r, const Pm__StudyView *s, const char **texts, size_t n,
                    char *why, size_t wl)
{
    const Pm__StudyAnnounced *st = s->study;
    char key[160], series[45], sop[45], made[65];
    snprintf(key, sizeof key, "report-sr/series/%s/%zu", st->study_instance_uid, n);
    pm_sr_uid_from(key, series);
    snprintf(key, sizeof key, "report-sr/sop/%s/%zu", st->study_instance_uid, n);
    pm_sr_uid_from(key, sop);
    char *text = joined_text(texts, n);
    if (!text) {
        snprintf(why, wl, "the report texts are too long for one SR");
        return PM_E_NOMEM;
    }
    int verified = strcmp(s->state, "verified") == 0 && *s->verified_by;
    pm_dicom_sr_content c = {st->study_instance_uid,
                             st->patient_id,
                             st->patient_name,
                             st->patient_birth_date,
                             st->patient_sex,
                             st->accession_number,
                             st->study_date,
                             st->study_time,
                             st->study_id,
                             st->referring_physician,
                             pm_delivery_principal_reporter(s),
                             text,
                             pm_delivery_principal_time(s),
                             verified ? s->verified_by : NULL,
                             NULL,
                             s->verified_ms,
                             series,
                             sop};
    int rc = pm_dicom_write_sr(r->tmp_path, &c, made, why, wl);
    free(text);
    return rc;
}

/* Sends one study's SR; 1 stored, 0 not (logged). */
static int deliver(void *ctx, const Pm__StudyView *s, const char **texts, size_t n, size_t already)
{
    pm_sr_sender *r = ctx;
    const char *uid = s->study->study_instance_uid;
    char why[512] = "";
    uint16_t status = 0;
    int rc = write_sr(r, s, texts, n, why, sizeof why);
    if (!rc)
        rc = pm_dicom_store_send(r->host, r->port, r->calling_ae, r->called_ae, r->tmp_path,
                                 STORE_TIMEOUT_MS, &status, why, sizeof why);
    unlink(r->tmp_path);
    if (rc) {
        pm_warn("report-sr",
                "SR of the report of study %s not stored at %s: %s; retrying in %llu s", uid,
                r->target, *why ? why : pm_strerror(rc), (unsigned long long)(r->retry_ms / 1000));
        return 0;
    }
    pm_info("report-sr", "SR of the report of study %s stored at %s (%s, %zu text%s)", uid,
            r->target, already ? "with addendum" : "final", n, n == 1 ? "" : "s");
    return 1;
}

static void sender_free(pm_sr_sender *r)
{
    pm_delivery_destroy(&r->delivery);
    free(r->calling_ae);
    free(r->called_ae);
    free(r->host);
    free(r->target);
    free(r->tmp_path);
    free(r);
}

int pm_sr_sender_new(const char *dir, pm_store *store, const uint8_t *self, const pm_config *cfg,
                     pm_sr_sender **out)
{
    *out = NULL;
    if (!cfg->report_destination || !*cfg->report_destination)
        return PM_OK;
    const pm_dicom_destination *d = pm_config_destination(cfg, cfg->report_destination);
    if (!d) /* the loader refuses this; a config built otherwise may not */
        return PM_E_CONFIG;
    pm_sr_sender *r = calloc(1, sizeof *r);
    if (!r)
        return PM_E_NOMEM;
    char target[320], tmp[4096];
    snprintf(target, sizeof target, "%s (%s:%d)", d->destination_ae, d->host, d->port);
    snprintf(tmp, sizeof tmp, "%s/report-sr.tmp.dcm", dir);
    r->calling_ae = strdup(cfg->ae_title ? cfg->ae_title : "PACSMESH");
    r->called_ae = strdup(d->destination_ae);
    r->host = strdup(d->host);
    r->target = strdup(target);
    r->tmp_path = strdup(tmp);
    r->port = d->port;
    r->retry_ms = cfg->report_retry_ms ? cfg->report_retry_ms : 10000;
    pm_delivery_channel ch = {"report-sr", LEDGER_FILE, r->target, r->retry_ms, deliver, r};
    int rc = r->calling_ae && r->called_ae && r->host && r->target && r->tmp_path
                 ? pm_delivery_new(dir, store, self, &ch, &r->delivery)
                 : PM_E_NOMEM;
    if (rc) {
        sender_free(r);
        return rc;
    }
    *out = r;
    return PM_OK;
}

void pm_sr_sender_destroy(pm_sr_sender **self_p)
{
    if (!self_p || !*self_p)
        return;
    sender_free(*self_p);
    *self_p = NULL;
}

size_t pm_sr_sender_undelivered(pm_sr_sender *self)
{
    return pm_delivery_undelivered(self->delivery);
}

int pm_sr_pending(const char *dir, pm_store *store, const uint8_t *self, size_t *pending)
{
    return pm_delivery_pending(dir, LEDGER_FILE, store, self, pending);
}
