#include "store/verify.h"
#include "proto/error.h"
#include "store/apply.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/views.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BATCH = 256 };

struct pm_verifier {
    char *dir;
    pm_store *store;
    pm_verify_report_fn report;
    void *ctx;
    uint8_t *batch[BATCH];
    size_t lens[BATCH];
    size_t n;
    uint64_t events, problems;
    int have_mesh;
};

int pm_verifier_new(const char *dir, pm_verify_report_fn report, void *ctx, pm_verifier **out)
{
    pm_verifier *v = calloc(1, sizeof *v);
    if (!v || !(v->dir = strdup(dir))) {
        free(v);
        return PM_E_NOMEM;
    }
    int rc = pm_store_open(dir, 0, &v->store);
    if (rc) {
        free(v->dir);
        free(v);
        return rc;
    }
    pm_store_set_nosync(v->store); /* a scratch store: nothing to keep after a crash */
    v->report = report;
    v->ctx = ctx;
    *out = v;
    return PM_OK;
}

static void report_raw(pm_verifier *v, const uint8_t *raw, size_t len, const char *what)
{
    /* Name the origin and seq even of an event that does not verify, if it parses. */
    uint8_t origin[PM_ID_BYTES] = {0};
    uint64_t seq = 0;
    Pm__Envelope *env = pm__envelope__unpack(NULL, len, raw);
    Pm__EventBody *b = env ? pm__event_body__unpack(NULL, env->body.len, env->body.data) : NULL;
    if (b && b->origin.len == PM_ID_BYTES) {
        memcpy(origin, b->origin.data, PM_ID_BYTES);
        seq = b->seq;
    }
    if (b)
        pm__event_body__free_unpacked(b, NULL);
    if (env)
        pm__envelope__free_unpacked(env, NULL);
    v->problems++;
    v->report(v->ctx, origin, seq, what);
}

/* Whether the event's author is revoked and the event lies past its cut: after the
 * first such event is refused, the rest of that feed would otherwise read as gaps. */
static int revoked_after_cut(pm_verifier *v, const uint8_t *raw, size_t len)
{
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK)
        return 0;
    Pm__MemberView *m = NULL;
    int after = pm_views_member(v->store, ev->body->origin.data, &m) == PM_OK &&
                strcmp(m->state, "revoked") == 0 && ev->body->seq > m->revoked_after_seq;
    if (m)
        pm__member_view__free_unpacked(m, NULL);
    pm_event_destroy(&ev);
    return after;
}

/* Whether an event the batch stored is gone again: membership is derived at the end of
 * a batch, and a revocation there cuts the revoked feed's later events. */
static int cut_by_revocation(pm_verifier *v, const uint8_t *raw, size_t len)
{
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK)
        return 0;
    pm_head head;
    int cut =
        pm_feed_head(v->store, ev->body->origin.data, &head) != PM_OK || head.seq < ev->body->seq;
    pm_event_destroy(&ev);
    return cut;
}

/* Signature checks of a slice of the batch, on a second thread. */
typedef struct {
    pm_verifier *v;
    size_t from, to;
    int *sig;
} sig_slice;

static void *check_slice(void *arg)
{
    sig_slice *s = arg;
    for (size_t i = s->from; i < s->to; i++) {
        pm_event *ev = NULL;
        s->sig[i] = pm_event_parse(s->v->batch[i], s->v->lens[i], &ev);
        pm_event_destroy(&ev);
    }
    return NULL;
}

static int flush(pm_verifier *v)
{
    if (!v->n)
        return PM_OK;
    /* Signatures dominate the cost: both cores check them (one half each), then the
     * events that verified are ingested without checking them again. */
    int sig[BATCH], results[BATCH];
    sig_slice second = {v, v->n / 2, v->n, sig}, first = {v, 0, v->n / 2, sig};
    pthread_t t;
    int threaded = pthread_create(&t, NULL, check_slice, &second) == 0;
    check_slice(&first);
    if (threaded)
        pthread_join(t, NULL);
    else
        check_slice(&second);
    const uint8_t *ok_bytes[BATCH];
    size_t ok_lens[BATCH], ok_index[BATCH], n_ok = 0;
    for (size_t i = 0; i < v->n; i++) {
        results[i] = sig[i];
        if (sig[i] == PM_OK) {
            ok_bytes[n_ok] = v->batch[i];
            ok_lens[n_ok] = v->lens[i];
            ok_index[n_ok++] = i;
        }
    }
    int ok_results[BATCH];
    int rc = pm_feed_ingest_batch_verified(v->store, ok_bytes, ok_lens, n_ok, ok_results);
    for (size_t i = 0; !rc && i < n_ok; i++)
        results[ok_index[i]] = ok_results[i];
    for (size_t i = 0; !rc && i < v->n; i++) {
        if (results[i] == PM_OK && !cut_by_revocation(v, v->batch[i], v->lens[i]))
            continue;
        if (results[i] == PM_OK) { /* stored, then cut by a revocation in the same batch */
            report_raw(v, v->batch[i], v->lens[i], "author was revoked before this event");
            continue;
        }
        char what[128];
        snprintf(what, sizeof what, "%s",
                 results[i] == PM_ALREADY_HELD ? "event appears twice"
                 : revoked_after_cut(v, v->batch[i], v->lens[i])
                     ? "author was revoked before this event"
                     : pm_strerror(results[i]));
        report_raw(v, v->batch[i], v->lens[i], what);
    }
    for (size_t i = 0; i < v->n; i++)
        free(v->batch[i]);
    v->n = 0;
    return rc;
}

/* The mesh is the one the log's genesis founds. Parsed without the signature check:
 * ingest checks every signature once, and a bad genesis is reported there. */
static int take_mesh(pm_verifier *v, const uint8_t *raw, size_t len)
{
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK)
        return PM_OK; /* reported when ingested */
    if (ev->body->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS && pm_event_verify(ev) == PM_OK) {
        if (v->have_mesh) {
            report_raw(v, raw, len, "a second genesis");
        } else if (pm_store_set_mesh_id(v->store, ev->hash) == PM_OK) {
            v->have_mesh = 1;
        }
    }
    pm_event_destroy(&ev);
    return PM_OK;
}

int pm_verifier_add(pm_verifier *v, char kind, const uint8_t *raw, size_t len)
{
    take_mesh(v, raw, len);
    if (kind == 'E')
        v->events++;
    if (v->n == BATCH) {
        int rc = flush(v);
        if (rc)
            return rc;
    }
    if (!(v->batch[v->n] = malloc(len)))
        return PM_E_NOMEM;
    memcpy(v->batch[v->n], raw, len);
    v->lens[v->n++] = len;
    return PM_OK;
}

/* Every applied event must have an author who was a member at that position. */
static int check_author(void *ctx, const uint8_t *raw, size_t len)
{
    pm_verifier *v = ctx;
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK)
        return 0;
    if (ev->body->payload_case != PM__EVENT_BODY__PAYLOAD_GENESIS) {
        Pm__MemberView *m = NULL;
        pm_views_member(v->store, ev->body->origin.data, &m);
        pm_position pos = pm_event_position(ev);
        if (!pm_apply_author_valid(m, &pos)) {
            v->problems++;
            v->report(v->ctx, ev->body->origin.data, ev->body->seq,
                      !m || strcmp(m->state, "pending") == 0
                          ? "author was never admitted under the quorum rule"
                          : "author was revoked before this event");
        }
        if (m)
            pm__member_view__free_unpacked(m, NULL);
    }
    pm_event_destroy(&ev);
    return 0;
}

int pm_verifier_finish(pm_verifier *v, uint64_t *events, uint64_t *problems)
{
    int rc = flush(v);
    if (!rc && !v->have_mesh) {
        uint8_t none[PM_ID_BYTES] = {0};
        v->problems++;
        v->report(v->ctx, none, 0, "no genesis: the log does not say which mesh it is");
    }
    if (!rc)
        rc = pm_feed_for_each(v->store, check_author, v);
    *events = v->events;
    *problems = v->problems;
    return rc;
}

pm_store *pm_verifier_store(pm_verifier *v)
{
    return v->store;
}

void pm_verifier_destroy(pm_verifier **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_verifier *v = *self_p;
    for (size_t i = 0; i < v->n; i++)
        free(v->batch[i]);
    pm_store_close(&v->store);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", v->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", v->dir);
    unlink(path);
    rmdir(v->dir);
    free(v->dir);
    free(v);
    *self_p = NULL;
}
