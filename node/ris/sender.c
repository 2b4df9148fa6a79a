/* The RIS sender actor (node/ris/sender.h). */
#include "node/ris/sender.h"
#include "crypto/hash.h"
#include "node/ris/hl7.h"
#include "node/ris/ledger.h"
#include "node/ris/mllp.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EXCHANGE_TIMEOUT_MS 10000
#define IDLE_WAKE_MS 1000
/* Reports can become final "in the past" (events from a peer that was cut off), so
 * each round walks back this far before the newest final time it has seen, and a full
 * walk runs every FULL_WALK_MS. */
#define LOOKBACK_MS (UINT64_C(24) * 3600 * 1000)
#define FULL_WALK_MS (UINT64_C(3600) * 1000)
#define ACK_MAX 4096

struct pm_ris_sender {
    pm_store *store;
    uint8_t self[PM_ID_BYTES];
    char *endpoint, *facility, *application;
    uint64_t retry_ms;
    pm_ris_ledger *ledger;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, kicked;
    uint64_t newest_final, last_full_walk;
    uint64_t not_before; /* after a failure, no exchange before this time */
};

/* The report texts a message carries: every report not submitted out of turn, in
 * order (addenda after the report they amend). */
static size_t report_texts(const Pm__StudyView *s, const char **texts, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_reports && n < max; i++)
        if (!s->reports[i]->out_of_turn)
            texts[n++] = s->reports[i]->text;
    return n;
}

static const char *principal_reporter(const Pm__StudyView *s)
{
    for (size_t i = s->n_reports; i-- > 0;)
        if (!*s->reports[i]->amends && !s->reports[i]->out_of_turn)
            return s->reports[i]->reporter;
    return "";
}

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

static int owned_final(const uint8_t *self, const Pm__StudyView *s)
{
    return s->study && s->site.len == PM_ID_BYTES && memcmp(s->site.data, self, PM_ID_BYTES) == 0 &&
           pm_wl_final_ms(s) != 0;
}

/* Sends one study's reports; 1 acknowledged, 0 not (logged). */
static int deliver(pm_ris_sender *r, const Pm__StudyView *s, const char **texts, size_t n,
                   size_t already)
{
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
                       principal_reporter(s),
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
    if (pm_ris_ledger_put(r->ledger, st->study_instance_uid, n) != PM_OK)
        return 0;
    pm_info("ris", "report of study %s delivered to %s (%s, %zu text%s)", st->study_instance_uid,
            r->endpoint, already ? "correction" : "final", n, n == 1 ? "" : "s");
    return 1;
}

typedef struct {
    pm_ris_sender *r;
    int failed; /* an exchange failed: stop this round */
} round_ctx;

static int offer(void *ctx, const Pm__StudyView *s)
{
    round_ctx *c = ctx;
    pm_ris_sender *r = c->r;
    if (!owned_final(r->self, s))
        return 0;
    uint64_t final = pm_wl_final_ms(s);
    if (final > r->newest_final)
        r->newest_final = final;
    const char *texts[64];
    size_t n = report_texts(s, texts, 64);
    size_t already = pm_ris_ledger_delivered(r->ledger, s->study->study_instance_uid);
    if (n == 0 || already >= n)
        return 0;
    if (!deliver(r, s, texts, n, already)) {
        c->failed = 1;
        return 1; /* the RIS is down or refusing: wait, then try again from here */
    }
    return 0;
}

static void one_round(pm_ris_sender *r)
{
    uint64_t now = pm_now_ms();
    if (now < r->not_before)
        return;
    int full = now - r->last_full_walk >= FULL_WALK_MS;
    uint64_t since = full || r->newest_final < LOOKBACK_MS ? 0 : r->newest_final - LOOKBACK_MS;
    round_ctx c = {r, 0};
    int rc = pm_views_studies_final_since(r->store, since, offer, &c);
    if (rc && !c.failed)
        pm_warn("ris", "cannot read the final reports: %s", pm_strerror(rc));
    if (c.failed)
        r->not_before = pm_now_ms() + r->retry_ms;
    else if (full)
        r->last_full_walk = now;
}

static void *run(void *arg)
{
    pm_ris_sender *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        r->kicked = 0;
        pthread_mutex_unlock(&r->lock);
        one_round(r);
        pthread_mutex_lock(&r->lock);
        if (r->stop || r->kicked)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_WAKE_MS / 1000;
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
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
    r->store = store;
    memcpy(r->self, self, PM_ID_BYTES);
    r->endpoint = strdup(cfg->ris_endpoint);
    r->facility = strdup(cfg->ris_sending_facility ? cfg->ris_sending_facility : "");
    r->application = strdup(cfg->ris_receiving_application ? cfg->ris_receiving_application : "");
    r->retry_ms = cfg->ris_retry_ms ? cfg->ris_retry_ms : 10000;
    int rc = r->endpoint && r->facility && r->application ? pm_ris_ledger_open(dir, &r->ledger)
                                                          : PM_E_NOMEM;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (!rc && pthread_create(&r->thread, NULL, run, r) != 0)
        rc = PM_E_NOMEM;
    if (rc) {
        pm_ris_ledger_destroy(&r->ledger);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r->endpoint);
        free(r->facility);
        free(r->application);
        free(r);
        return rc;
    }
    pm_info("ris", "sending final reports of this node's studies to %s", r->endpoint);
    *out = r;
    return PM_OK;
}

void pm_ris_sender_kick(pm_ris_sender *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->kicked = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

void pm_ris_sender_destroy(pm_ris_sender **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_ris_sender *r = *self_p;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pm_ris_ledger_destroy(&r->ledger);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->endpoint);
    free(r->facility);
    free(r->application);
    free(r);
    *self_p = NULL;
}

typedef struct {
    const uint8_t *self;
    pm_ris_ledger *ledger;
    size_t pending;
} pending_ctx;

static int count_pending(void *ctx, const Pm__StudyView *s)
{
    pending_ctx *c = ctx;
    const char *texts[64];
    if (owned_final(c->self, s) &&
        pm_ris_ledger_delivered(c->ledger, s->study->study_instance_uid) <
            report_texts(s, texts, 64))
        c->pending++;
    return 0;
}

int pm_ris_pending(const char *dir, pm_store *store, const uint8_t *self, size_t *pending)
{
    pending_ctx c = {self, NULL, 0};
    int rc = pm_ris_ledger_open(dir, &c.ledger);
    if (!rc)
        rc = pm_views_studies_final_since(store, 0, count_pending, &c);
    pm_ris_ledger_destroy(&c.ledger);
    *pending = c.pending;
    return rc;
}
