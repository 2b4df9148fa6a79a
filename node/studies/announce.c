/* Announcing the studies whose instances were taken in (pm_ingest_announce, see
 * ingest.h): StudyAnnounced events listing what this node newly holds of each study,
 * built from the pending records ingest.c wrote. The views take the union of a
 * study's announcements (store/study_union.h), so the log grows with the number of
 * instances, however they were sent, and no study is too large to announce. */
#include "node/studies/ingest.h"
#include "node/studies/ingest_internal.h"
#include "node/studies/modalities.h"
#include "node/worklist/ai_triage.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/views.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Pm__StudyAnnounced **records;
    char **keys; /* each record's key, with its pending prefix when pending */
    size_t *klens;
    size_t n;
    int pending; /* the records are pending marks, to be cleared once announced */
    int failed;
} study_records;

static int collect_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    study_records *s = ctx;
    Pm__StudyAnnounced *r = pm__study_announced__unpack(NULL, vlen, val);
    char *k = malloc(klen ? klen : 1);
    Pm__StudyAnnounced **grown = r ? realloc(s->records, (s->n + 1) * sizeof *grown) : NULL;
    if (grown)
        s->records = grown;
    char **gkeys = realloc(s->keys, (s->n + 1) * sizeof *gkeys);
    if (gkeys)
        s->keys = gkeys;
    size_t *glens = realloc(s->klens, (s->n + 1) * sizeof *glens);
    if (glens)
        s->klens = glens;
    if (!r || !k || !grown || !gkeys || !glens) {
        if (r)
            pm__study_announced__free_unpacked(r, NULL);
        free(k);
        s->failed = 1;
        return PM_E_NOMEM;
    }
    memcpy(k, key, klen);
    s->records[s->n] = r;
    s->keys[s->n] = k;
    s->klens[s->n++] = klen;
    return 0;
}

/* The records of one study under prefix (pending marks or all instance records). */
static int collect_study(const pm_ingest_ctx *c, const char *uid, const char *kind,
                         study_records *recs)
{
    char prefix[2 + PM_DICOM_UID_MAX + 2];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%s%s", kind, uid) + 1;
    recs->pending = strcmp(kind, PM_INGEST_PENDING_PREFIX) == 0;
    int rc = pm_store_local_each(c->store, prefix, plen, collect_record, recs);
    return rc ? rc : recs->failed ? PM_E_NOMEM : PM_OK;
}

static void study_records_free(study_records *recs)
{
    for (size_t i = 0; i < recs->n; i++) {
        pm__study_announced__free_unpacked(recs->records[i], NULL);
        free(recs->keys[i]);
    }
    free(recs->records);
    free(recs->keys);
    free(recs->klens);
    memset(recs, 0, sizeof *recs);
}

static int by_instance_number(const void *a, const void *b)
{
    const Pm__Instance *x = *(Pm__Instance *const *)a, *y = *(Pm__Instance *const *)b;
    if (x->instance_number != y->instance_number)
        return x->instance_number < y->instance_number ? -1 : 1;
    return strcmp(x->sop_instance_uid, y->sop_instance_uid);
}

/* The study's instances grouped by series, in the order series were first seen, and
 * laid out contiguously per series in instance number order. Borrows the records. */
typedef struct {
    Pm__Series *series, **series_ptrs;
    Pm__Instance **instances;
    size_t n_series;
    const char *body_part; /* of the first series that has one */
} study_layout;

static void free_layout(study_layout *l)
{
    free(l->series);
    free(l->series_ptrs);
    free(l->instances);
}

static int lay_out(const study_records *recs, study_layout *l)
{
    memset(l, 0, sizeof *l);
    l->body_part = "";
    l->series = calloc(recs->n, sizeof *l->series);
    l->series_ptrs = calloc(recs->n, sizeof *l->series_ptrs);
    l->instances = calloc(recs->n, sizeof *l->instances);
    if (!l->series || !l->series_ptrs || !l->instances)
        return PM_E_NOMEM;
    Pm__Series *series = l->series;
    for (size_t i = 0; i < recs->n; i++) {
        Pm__Series *rs = recs->records[i]->n_series ? recs->records[i]->series[0] : NULL;
        if (!rs || !rs->n_instances)
            continue;
        size_t s;
        for (s = 0; s < l->n_series; s++)
            if (strcmp(series[s].series_instance_uid, rs->series_instance_uid) == 0)
                break;
        if (s == l->n_series) {
            series[s] = *rs;
            series[s].instances = NULL;
            series[s].n_instances = 0;
            l->series_ptrs[l->n_series++] = &series[s];
            if (!l->body_part[0])
                l->body_part = rs->body_part;
        }
        series[s].n_instances++;
    }
    size_t at = 0;
    for (size_t s = 0; s < l->n_series; s++) {
        series[s].instances = l->instances + at;
        size_t k = 0;
        for (size_t i = 0; i < recs->n; i++) {
            Pm__Series *rs = recs->records[i]->n_series ? recs->records[i]->series[0] : NULL;
            if (rs && rs->n_instances &&
                strcmp(rs->series_instance_uid, series[s].series_instance_uid) == 0)
                series[s].instances[k++] = rs->instances[0];
        }
        qsort(series[s].instances, k, sizeof *series[s].instances, by_instance_number);
        at += k;
    }
    return PM_OK;
}

/* Worklist terms: kept from our earlier announcement so a growing study keeps its due
 * time; else from this node's [worklist] rules. terms points into priority and
 * subspecialty. */
static void study_terms(const pm_ingest_ctx *c, const char *uid, const Pm__StudyAnnounced *st,
                        const char *modalities, const char *body_part, Pm__WorklistTerms *terms,
                        char priority[PM_WORKLIST_PRIORITY_MAX],
                        char subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX])
{
    int double_read = 0;
    Pm__StudyView *prev = NULL;
    if (pm_views_study(c->store, uid, &prev) == PM_OK && prev->study && prev->study->terms &&
        memcmp(prev->site.data, pm_identity_public(c->id), PM_ID_BYTES) == 0) {
        snprintf(priority, PM_WORKLIST_PRIORITY_MAX, "%s", prev->study->terms->priority);
        snprintf(subspecialty, PM_WORKLIST_SUBSPECIALTY_MAX, "%s",
                 prev->study->terms->subspecialty);
        double_read = prev->study->terms->double_read;
        terms->due_ms = prev->study->terms->due_ms;
    } else {
        pm_worklist_terms(c->cfg, modalities, body_part, st->study_description, pm_now_ms(),
                          priority, subspecialty, &double_read, &terms->due_ms);
    }
    if (prev)
        pm__study_view__free_unpacked(prev, NULL);
    terms->priority = priority;
    terms->subspecialty = subspecialty;
    terms->double_read = double_read;
}

/* An announcement is kept well under the event limit (store/event.h): a study too
 * large for one event is announced in several, each a part of its series. */
#define ANNOUNCE_EVENT_BUDGET (PM_EVENT_MAX_BYTES / 2)

/* Protobuf's tag and length prefix of an embedded message, at most. */
#define FIELD_OVERHEAD 8

typedef struct {
    const pm_ingest_ctx *ctx;
    Pm__StudyAnnounced *st; /* study fields and terms; its series are set per event */
    Pm__Series *parts;      /* the series of the event being filled */
    Pm__Series **part_ptrs;
    size_t n_parts, n_instances, bytes, base_bytes;
    size_t events;
} chunker;

static int flush_chunk(chunker *k)
{
    if (k->n_parts && !k->parts[k->n_parts - 1].n_instances)
        k->n_parts--; /* a series opened for an instance that did not fit */
    if (!k->n_instances)
        return PM_OK;
    k->st->series = k->part_ptrs;
    k->st->n_series = k->n_parts;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    body.study_announced = k->st;
    int rc = pm_feed_append(k->ctx->store, k->ctx->id, &body, NULL);
    if (rc == PM_OK)
        k->events++;
    k->n_parts = k->n_instances = 0;
    k->bytes = k->base_bytes;
    return rc;
}

static void open_part(chunker *k, const Pm__Series *se, size_t from)
{
    Pm__Series *p = &k->parts[k->n_parts];
    *p = *se;
    p->instances = se->instances + from;
    p->n_instances = 0;
    k->part_ptrs[k->n_parts++] = p;
    Pm__Series header = *se;
    header.n_instances = 0;
    k->bytes += pm__series__get_packed_size(&header) + FIELD_OVERHEAD;
}

/* Appends the study's announcement: one event, or as many as its size needs. */
static int append_announcement(const pm_ingest_ctx *c, Pm__StudyAnnounced *st,
                               const study_layout *l, size_t *events)
{
    chunker k = {c, st, calloc(l->n_series + 1, sizeof *k.parts),
                 calloc(l->n_series + 1, sizeof *k.part_ptrs)};
    int rc = k.parts && k.part_ptrs ? PM_OK : PM_E_NOMEM;
    st->n_series = 0;
    k.base_bytes = k.bytes = pm__study_announced__get_packed_size(st);
    for (size_t s = 0; !rc && s < l->n_series; s++) {
        const Pm__Series *se = l->series_ptrs[s];
        open_part(&k, se, 0);
        for (size_t i = 0; !rc && i < se->n_instances; i++) {
            size_t add = pm__instance__get_packed_size(se->instances[i]) + FIELD_OVERHEAD;
            if (k.n_instances && k.bytes + add > ANNOUNCE_EVENT_BUDGET) {
                if ((rc = flush_chunk(&k)))
                    break;
                open_part(&k, se, i);
            }
            k.parts[k.n_parts - 1].n_instances++;
            k.n_instances++;
            k.bytes += add;
        }
    }
    if (!rc)
        rc = flush_chunk(&k);
    *events = k.events;
    free(k.parts);
    free(k.part_ptrs);
    return rc;
}

/* Takes out the pending marks of the instances just announced, in one transaction. An
 * instance's mark is written once, with its record, so none can have changed since. */
static int clear_pending(const pm_ingest_ctx *c, const study_records *recs)
{
    if (!recs->pending || !recs->n)
        return PM_OK;
    const void **vals = calloc(recs->n, sizeof *vals);
    size_t *vlens = calloc(recs->n, sizeof *vlens);
    int rc = vals && vlens ? pm_store_local_write(c->store, (const char *const *)recs->keys,
                                                  recs->klens, vals, vlens, recs->n)
                           : PM_E_NOMEM;
    free(vals);
    free(vlens);
    return rc;
}

/* Builds and appends the announcement of what this node newly holds of one study:
 * the instances recorded since its last announcement (or, in a store written before
 * those were marked, everything it holds of the study: also what a crash between
 * clearing the pending marks and the study's mark leads to, which repeats instances
 * already announced; the union takes each once). */
static int announce_study(const pm_ingest_ctx *c, const char *uid)
{
    /* The mark's value before the records are read: an instance ingested after this
     * point changes it, so the mark survives and the study is announced again. */
    char akey[2 + PM_DICOM_UID_MAX + 1];
    int alen = snprintf(akey, sizeof akey, "%s%s", PM_INGEST_MARK_PREFIX, uid);
    void *mark = NULL;
    size_t mark_len = 0;
    if (pm_store_local_get(c->store, akey, &mark, &mark_len) != PM_OK)
        return PM_OK; /* announced meanwhile by another announcer */
    study_records recs = {0};
    int rc = collect_study(c, uid, PM_INGEST_PENDING_PREFIX, &recs);
    if (!rc && !recs.n) {
        recs.pending = 0;
        rc = collect_study(c, uid, PM_INGEST_INSTANCE_PREFIX, &recs);
    }
    if (!rc && !recs.n)
        rc = PM_E_NOTFOUND;
    study_layout l = {0};
    if (rc || (rc = lay_out(&recs, &l)))
        goto done;
    Pm__StudyAnnounced st = *recs.records[0];
    st.series = l.series_ptrs;
    st.n_series = l.n_series;
    char modalities[PM_STUDY_MODALITIES_MAX] = "";
    pm_study_modalities(&st, modalities, sizeof modalities);
    Pm__WorklistTerms terms = PM__WORKLIST_TERMS__INIT;
    char priority[PM_WORKLIST_PRIORITY_MAX], subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX];
    study_terms(c, uid, &st, modalities, l.body_part, &terms, priority, subspecialty);
    st.terms = &terms;

    size_t events = 0;
    if ((rc = append_announcement(c, &st, &l, &events)) == PM_OK &&
        (rc = clear_pending(c, &recs)) == PM_OK) {
        rc = pm_store_local_delete_if(c->store, akey, (size_t)alen, mark, mark_len);
        pm_info("ingest",
                "announced study %s: %zu new instance%s in %zu series (%zu event%s), "
                "priority %s",
                uid, recs.n, recs.n == 1 ? "" : "s", l.n_series, events, events == 1 ? "" : "s",
                priority);
        /* An AI result among what was announced may raise the item (ai_triage.h). */
        pm_wl_node wl = {c->store, c->blobs, c->id, c->cfg};
        pm_ai_triage_study(&wl, uid);
    }
done:
    free(mark);
    study_records_free(&recs);
    free_layout(&l);
    return rc;
}

typedef struct {
    char (*uids)[PM_DICOM_UID_MAX + 1];
    size_t n;
} dirty_list;

static int collect_dirty(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    dirty_list *d = ctx;
    if (klen < 3 || klen - 2 > PM_DICOM_UID_MAX)
        return 0;
    char(*grown)[PM_DICOM_UID_MAX + 1] = realloc(d->uids, (d->n + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    d->uids = grown;
    memcpy(d->uids[d->n], (const char *)key + 2, klen - 2);
    d->uids[d->n][klen - 2] = 0;
    d->n++;
    return 0;
}

/* Whether this node has announced the study before (it holds it, in the view). */
static int announced_here(const pm_ingest_ctx *c, const char *uid)
{
    Pm__StudyView *sv = NULL;
    if (pm_views_study(c->store, uid, &sv) != PM_OK)
        return 0;
    int here = 0;
    for (size_t i = 0; i < sv->n_holders && !here; i++)
        here = sv->holders[i].len == PM_ID_BYTES &&
               memcmp(sv->holders[i].data, pm_identity_public(c->id), PM_ID_BYTES) == 0;
    pm__study_view__free_unpacked(sv, NULL);
    return here;
}

/* One announcer at a time in this process (DICOM threads ending associations, the
 * main loop's quiet-period check): no study is announced twice at once. */
static pthread_mutex_t announce_lock = PTHREAD_MUTEX_INITIALIZER;

/* Announces the marked studies; growing: also those this node announced before (else
 * they are left marked and counted in *deferred). */
static int announce_marked(const pm_ingest_ctx *c, int growing, unsigned *announced,
                           unsigned *deferred)
{
    dirty_list d = {0};
    *announced = 0;
    if (deferred)
        *deferred = 0;
    pthread_mutex_lock(&announce_lock);
    int rc = pm_store_local_each(c->store, PM_INGEST_MARK_PREFIX, 2, collect_dirty, &d);
    for (size_t i = 0; !rc && i < d.n; i++) {
        if (!growing && announced_here(c, d.uids[i])) {
            (*deferred)++;
            continue;
        }
        int r = announce_study(c, d.uids[i]);
        if (r == PM_OK)
            (*announced)++;
        else
            pm_error("ingest", "cannot announce study %s: %s", d.uids[i], pm_strerror(r));
        if (r == PM_E_MESH) {
            rc = r;
        }
    }
    pthread_mutex_unlock(&announce_lock);
    free(d.uids);
    return rc;
}

int pm_ingest_announce(const pm_ingest_ctx *c, unsigned *announced)
{
    return announce_marked(c, 1, announced, NULL);
}

int pm_ingest_announce_new(const pm_ingest_ctx *c, unsigned *announced, unsigned *deferred)
{
    return announce_marked(c, 0, announced, deferred);
}
