/* Announcing the studies whose instances were taken in (pm_ingest_announce, see
 * ingest.h): one StudyAnnounced event per study, with the full list of what this node
 * holds of it, built from the local records ingest.c wrote. */
#include "node/studies/ingest.h"
#include "node/studies/ingest_internal.h"
#include "node/studies/modalities.h"
#include "node/worklist/ai_triage.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/views.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Pm__StudyAnnounced *study; /* the first record, whose study fields are used */
    Pm__StudyAnnounced **records;
    size_t n;
    int failed;
} study_records;

static int collect_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen;
    study_records *s = ctx;
    Pm__StudyAnnounced *r = pm__study_announced__unpack(NULL, vlen, val);
    Pm__StudyAnnounced **grown = r ? realloc(s->records, (s->n + 1) * sizeof *grown) : NULL;
    if (!grown) {
        if (r)
            pm__study_announced__free_unpacked(r, NULL);
        s->failed = 1;
        return 0;
    }
    s->records = grown;
    s->records[s->n++] = r;
    return 0;
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

/* Builds and appends the announcement of one study from its local records. */
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
    char prefix[2 + PM_DICOM_UID_MAX + 2];
    size_t plen =
        (size_t)snprintf(prefix, sizeof prefix, "%s%s", PM_INGEST_INSTANCE_PREFIX, uid) + 1;
    study_records recs = {0};
    int rc = pm_store_local_each(c->store, prefix, plen, collect_record, &recs);
    if (!rc && (recs.failed || !recs.n))
        rc = recs.failed ? PM_E_NOMEM : PM_E_NOTFOUND;
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

    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    body.study_announced = &st;
    if ((rc = pm_feed_append(c->store, c->id, &body, NULL)) == PM_OK) {
        rc = pm_store_local_delete_if(c->store, akey, (size_t)alen, mark, mark_len);
        pm_info("ingest", "announced study %s: %zu series, %zu instances, priority %s", uid,
                l.n_series, recs.n, priority);
        /* An AI result among what was announced may raise the item (ai_triage.h). */
        pm_wl_node wl = {c->store, c->blobs, c->id, c->cfg};
        pm_ai_triage_study(&wl, uid);
    }
done:
    free(mark);
    for (size_t i = 0; i < recs.n; i++)
        pm__study_announced__free_unpacked(recs.records[i], NULL);
    free(recs.records);
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

/* One announcer at a time in this process (DICOM threads ending associations, the
 * main loop's quiet-period check): no study is announced twice at once. */
static pthread_mutex_t announce_lock = PTHREAD_MUTEX_INITIALIZER;

int pm_ingest_announce(const pm_ingest_ctx *c, unsigned *announced)
{
    dirty_list d = {0};
    *announced = 0;
    pthread_mutex_lock(&announce_lock);
    int rc = pm_store_local_each(c->store, PM_INGEST_MARK_PREFIX, 2, collect_dirty, &d);
    for (size_t i = 0; !rc && i < d.n; i++) {
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
