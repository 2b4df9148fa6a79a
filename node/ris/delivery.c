/* The delivery actor (node/ris/delivery.h). */
#include "node/ris/delivery.h"
#include "node/ris/ledger.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_WAKE_MS 1000
/* Reports can become final "in the past" (events from a peer that was cut off), so
 * each round walks back this far before the newest final time it has seen, and a full
 * walk runs every FULL_WALK_MS. */
#define LOOKBACK_MS (UINT64_C(24) * 3600 * 1000)
#define FULL_WALK_MS (UINT64_C(3600) * 1000)
/* The count of what is still to go (pm_delivery_undelivered) is taken again after a
 * round that offered something, and at least this often. */
#define COUNT_MS (UINT64_C(30) * 1000)

struct pm_delivery {
    pm_store *store;
    uint8_t self[PM_ID_BYTES];
    pm_delivery_channel ch;
    pm_ris_ledger *ledger;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, kicked;
    uint64_t newest_final, last_full_walk;
    uint64_t not_before; /* after a failure, no delivery before this time */
    uint64_t counted_ms; /* when undelivered was last counted */
    size_t undelivered;  /* final reports still to go; atomically written and read */
};

size_t pm_delivery_report_texts(const Pm__StudyView *s, const char **texts, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_reports && n < max; i++)
        if (!s->reports[i]->out_of_turn)
            texts[n++] = s->reports[i]->text;
    return n;
}

static const Pm__ReportView *principal(const Pm__StudyView *s)
{
    for (size_t i = s->n_reports; i-- > 0;)
        if (!*s->reports[i]->amends && !s->reports[i]->out_of_turn)
            return s->reports[i];
    return NULL;
}

const char *pm_delivery_principal_reporter(const Pm__StudyView *s)
{
    const Pm__ReportView *r = principal(s);
    return r ? r->reporter : "";
}

uint64_t pm_delivery_principal_time(const Pm__StudyView *s)
{
    const Pm__ReportView *r = principal(s);
    return r ? r->time_ms : 0;
}

static int owned_final(const uint8_t *self, const Pm__StudyView *s)
{
    return s->study && s->site.len == PM_ID_BYTES && memcmp(s->site.data, self, PM_ID_BYTES) == 0 &&
           pm_wl_final_ms(s) != 0;
}

typedef struct {
    pm_delivery *d;
    int failed;  /* a delivery failed: stop this round */
    int offered; /* something was due: what is still to go may have changed */
} round_ctx;

static int offer(void *ctx, const Pm__StudyView *s)
{
    round_ctx *c = ctx;
    pm_delivery *d = c->d;
    if (!owned_final(d->self, s))
        return 0;
    uint64_t final = pm_wl_final_ms(s);
    if (final > d->newest_final)
        d->newest_final = final;
    const char *texts[PM_DELIVERY_TEXTS_MAX];
    size_t n = pm_delivery_report_texts(s, texts, PM_DELIVERY_TEXTS_MAX);
    size_t already = pm_ris_ledger_delivered(d->ledger, s->study->study_instance_uid);
    if (n == 0 || already >= n)
        return 0;
    c->offered = 1;
    if (!d->ch.deliver(d->ch.ctx, s, texts, n, already) ||
        pm_ris_ledger_put(d->ledger, s->study->study_instance_uid, n) != PM_OK) {
        c->failed = 1;
        return 1; /* the peer is down or refusing: wait, then try again from here */
    }
    return 0;
}

static int count_undelivered(pm_store *store, const uint8_t *self, pm_ris_ledger *ledger,
                             size_t *pending);

/* Counts what is still to go, on this thread (the walk is over every final report). */
static void recount(pm_delivery *d, uint64_t now)
{
    size_t n = 0;
    if (count_undelivered(d->store, d->self, d->ledger, &n) == PM_OK)
        __atomic_store_n(&d->undelivered, n, __ATOMIC_RELAXED);
    d->counted_ms = now;
}

/* Returns whether the round offered something. */
static int one_round(pm_delivery *d)
{
    uint64_t now = pm_now_ms();
    if (now < d->not_before)
        return 0;
    int full = now - d->last_full_walk >= FULL_WALK_MS;
    uint64_t since = full || d->newest_final < LOOKBACK_MS ? 0 : d->newest_final - LOOKBACK_MS;
    round_ctx c = {d, 0, 0};
    int rc = pm_views_studies_final_since(d->store, since, offer, &c);
    if (rc && !c.failed)
        pm_warn(d->ch.name, "cannot read the final reports: %s", pm_strerror(rc));
    if (c.failed)
        d->not_before = pm_now_ms() + d->ch.retry_ms;
    else if (full)
        d->last_full_walk = now;
    return c.offered;
}

static void *run(void *arg)
{
    pm_delivery *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        d->kicked = 0;
        pthread_mutex_unlock(&d->lock);
        uint64_t now = pm_now_ms();
        if (one_round(d) || !d->counted_ms || now - d->counted_ms >= COUNT_MS)
            recount(d, now);
        pthread_mutex_lock(&d->lock);
        if (d->stop || d->kicked)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_WAKE_MS / 1000;
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int pm_delivery_new(const char *dir, pm_store *store, const uint8_t *self,
                    const pm_delivery_channel *ch, pm_delivery **out)
{
    *out = NULL;
    pm_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return PM_E_NOMEM;
    d->store = store;
    memcpy(d->self, self, PM_ID_BYTES);
    d->ch = *ch;
    int rc = pm_ris_ledger_open(dir, ch->ledger_file, &d->ledger);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (!rc && pthread_create(&d->thread, NULL, run, d) != 0)
        rc = PM_E_NOMEM;
    if (rc) {
        pm_ris_ledger_destroy(&d->ledger);
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return rc;
    }
    pm_info(ch->name, "sending final reports of this node's studies to %s", ch->target);
    *out = d;
    return PM_OK;
}

void pm_delivery_kick(pm_delivery *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->kicked = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

void pm_delivery_destroy(pm_delivery **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_delivery *d = *self_p;
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    pm_ris_ledger_destroy(&d->ledger);
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
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
    const char *texts[PM_DELIVERY_TEXTS_MAX];
    if (owned_final(c->self, s) &&
        pm_ris_ledger_delivered(c->ledger, s->study->study_instance_uid) <
            pm_delivery_report_texts(s, texts, PM_DELIVERY_TEXTS_MAX))
        c->pending++;
    return 0;
}

static int count_undelivered(pm_store *store, const uint8_t *self, pm_ris_ledger *ledger,
                             size_t *pending)
{
    pending_ctx c = {self, ledger, 0};
    int rc = pm_views_studies_final_since(store, 0, count_pending, &c);
    *pending = c.pending;
    return rc;
}

int pm_delivery_pending(const char *dir, const char *ledger_file, pm_store *store,
                        const uint8_t *self, size_t *pending)
{
    pm_ris_ledger *ledger = NULL;
    *pending = 0;
    int rc = pm_ris_ledger_open(dir, ledger_file, &ledger);
    if (!rc)
        rc = count_undelivered(store, self, ledger, pending);
    pm_ris_ledger_destroy(&ledger);
    return rc;
}

size_t pm_delivery_undelivered(pm_delivery *d)
{
    return __atomic_load_n(&d->undelivered, __ATOMIC_RELAXED);
}
