/* Walking the views for C-FIND, C-GET and C-MOVE (see query.h): the narrowest index a
 * query allows, the rows of each study, series and instance that match, and PATIENT rows
 * aggregated over studies. Matching one value is query.c. */
#include "node/dicom/query.h"
#include "node/dicom/query_internal.h"
#include "node/studies/modalities.h"
#include "store/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

typedef struct {
    const pm_dicom_query *q;
    pm_dicom_level match_level; /* keys at or above it are matched */
    pm_dicom_level emit_level;  /* rows are emitted at this level */
    pm_dicom_row_fn fn;
    void *ctx;
    /* PATIENT FIND: one record per matching study, aggregated at the end. */
    struct patient_rec *pats;
    size_t npats, cap;
    int oom;
} walk;

struct patient_rec {
    char *id, *name, *birth, *sex;
    unsigned long series, instances;
};

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int keys_match(const walk *w, const pm_dicom_row *row, pm_dicom_level level)
{
    if (level > w->match_level)
        return 1;
    for (int k = 0; k < PM_DK_COUNT; k++)
        if (pm_dicom_query_key_info(k)->level == level && w->q->value[k] &&
            !pm_dicom_query_match(pm_dicom_query_key_info(k)->kind, w->q->value[k], row->value[k]))
            return 0;
    return 1;
}

static char *dup_str(walk *w, const char *s)
{
    char *d = strdup(nz(s));
    if (!d)
        w->oom = 1;
    return d;
}

/* PATIENT FIND: keeps one record of the study's patient, aggregated by emit_patients. */
static int record_patient(walk *w, const Pm__StudyAnnounced *st, unsigned long ninst)
{
    if (w->npats == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct patient_rec *n = realloc(w->pats, cap * sizeof *n);
        if (!n)
            return PM_E_NOMEM;
        w->pats = n;
        w->cap = cap;
    }
    struct patient_rec *r = &w->pats[w->npats++];
    r->id = dup_str(w, st->patient_id);
    r->name = dup_str(w, st->patient_name);
    r->birth = dup_str(w, st->patient_birth_date);
    r->sex = dup_str(w, st->patient_sex);
    r->series = st->n_series;
    r->instances = ninst;
    return w->oom ? PM_E_NOMEM : 0;
}

/* The study keys of row; mods and nbuf hold what the row points into. */
static void study_row(pm_dicom_row *row, const Pm__StudyAnnounced *st, unsigned long ninst,
                      char mods[PM_STUDY_MODALITIES_MAX], char nbuf[2][24])
{
    row->level = PM_DICOM_LEVEL_STUDY;
    pm_study_modalities(st, mods, PM_STUDY_MODALITIES_MAX);
    snprintf(nbuf[0], sizeof nbuf[0], "%zu", st->n_series);
    snprintf(nbuf[1], sizeof nbuf[1], "%lu", ninst);
    row->value[PM_DK_STUDY_UID] = nz(st->study_instance_uid);
    row->value[PM_DK_STUDY_DATE] = nz(st->study_date);
    row->value[PM_DK_STUDY_TIME] = nz(st->study_time);
    row->value[PM_DK_ACCESSION] = nz(st->accession_number);
    row->value[PM_DK_STUDY_DESCRIPTION] = nz(st->study_description);
    row->value[PM_DK_REFERRING_PHYSICIAN] = nz(st->referring_physician);
    row->value[PM_DK_STUDY_ID] = nz(st->study_id);
    row->value[PM_DK_MODALITIES_IN_STUDY] = mods;
    row->value[PM_DK_STUDY_NSERIES] = nbuf[0];
    row->value[PM_DK_STUDY_NINSTANCES] = nbuf[1];
}

/* One series under the matching study row: its row, or the rows of its instances.
 * Returns fn's non-zero value, else 0. */
static int walk_series(walk *w, const pm_dicom_row *study, const Pm__Series *se)
{
    pm_dicom_row row = *study; /* the series and instance keys are NULL in it */
    char nbuf[3][24];
    row.level = PM_DICOM_LEVEL_SERIES;
    snprintf(nbuf[0], sizeof nbuf[0], "%d", (int)se->series_number);
    snprintf(nbuf[1], sizeof nbuf[1], "%zu", se->n_instances);
    row.value[PM_DK_SERIES_UID] = nz(se->series_instance_uid);
    row.value[PM_DK_MODALITY] = nz(se->modality);
    row.value[PM_DK_SERIES_NUMBER] = nbuf[0];
    row.value[PM_DK_SERIES_DESCRIPTION] = nz(se->description);
    row.value[PM_DK_BODY_PART] = nz(se->body_part);
    row.value[PM_DK_SERIES_NINSTANCES] = nbuf[1];
    if (!keys_match(w, &row, PM_DICOM_LEVEL_SERIES))
        return 0;
    if (w->emit_level == PM_DICOM_LEVEL_SERIES)
        return w->fn(w->ctx, &row);
    for (size_t j = 0; j < se->n_instances; j++) {
        const Pm__Instance *in = se->instances[j];
        row.level = PM_DICOM_LEVEL_IMAGE;
        row.instance = in;
        snprintf(nbuf[2], sizeof nbuf[2], "%d", (int)in->instance_number);
        row.value[PM_DK_SOP_UID] = nz(in->sop_instance_uid);
        row.value[PM_DK_SOP_CLASS_UID] = nz(in->sop_class_uid);
        row.value[PM_DK_INSTANCE_NUMBER] = nbuf[2];
        if (!keys_match(w, &row, PM_DICOM_LEVEL_IMAGE))
            continue;
        int rc = w->fn(w->ctx, &row);
        if (rc)
            return rc;
    }
    return 0;
}

static int walk_study(void *fctx, const Pm__StudyView *view)
{
    walk *w = fctx;
    const Pm__StudyAnnounced *st = view ? view->study : NULL;
    if (!st)
        return 0;
    pm_dicom_row row;
    memset(&row, 0, sizeof row);
    char nbuf[2][24], mods[PM_STUDY_MODALITIES_MAX];
    unsigned long ninst = 0;
    for (size_t i = 0; i < st->n_series; i++)
        ninst += st->series[i]->n_instances;

    row.level = PM_DICOM_LEVEL_PATIENT;
    row.value[PM_DK_PATIENT_ID] = nz(st->patient_id);
    row.value[PM_DK_PATIENT_NAME] = nz(st->patient_name);
    row.value[PM_DK_PATIENT_BIRTH_DATE] = nz(st->patient_birth_date);
    row.value[PM_DK_PATIENT_SEX] = nz(st->patient_sex);
    if (!keys_match(w, &row, PM_DICOM_LEVEL_PATIENT))
        return 0;
    if (w->emit_level == PM_DICOM_LEVEL_PATIENT)
        return record_patient(w, st, ninst);

    study_row(&row, st, ninst, mods, nbuf);
    if (!keys_match(w, &row, PM_DICOM_LEVEL_STUDY))
        return 0;
    if (w->emit_level == PM_DICOM_LEVEL_STUDY)
        return w->fn(w->ctx, &row);
    for (size_t i = 0; i < st->n_series; i++) {
        int rc = walk_series(w, &row, st->series[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* A query value usable as an index key: one value, no wildcard, not universal. */
static const char *single_value(const char *v)
{
    if (!v)
        return NULL;
    pm_dicom_slice s = pm_dicom_slice_trim(v, strlen(v));
    if (s.n == 0 || s.n != strlen(v) || pm_dicom_slice_has_wildcard(s) || memchr(s.p, '\\', s.n))
        return NULL;
    return v;
}

static int cmp_patient(const void *a, const void *b)
{
    return strcmp(((const struct patient_rec *)a)->id, ((const struct patient_rec *)b)->id);
}

static int emit_patients(walk *w)
{
    int rc = 0;
    qsort(w->pats, w->npats, sizeof *w->pats, cmp_patient);
    for (size_t i = 0; i < w->npats && rc == 0;) {
        size_t j = i;
        unsigned long series = 0, inst = 0;
        for (; j < w->npats && strcmp(w->pats[j].id, w->pats[i].id) == 0; j++) {
            series += w->pats[j].series;
            inst += w->pats[j].instances;
        }
        char n[3][24];
        snprintf(n[0], sizeof n[0], "%zu", j - i);
        snprintf(n[1], sizeof n[1], "%lu", series);
        snprintf(n[2], sizeof n[2], "%lu", inst);
        pm_dicom_row row;
        memset(&row, 0, sizeof row);
        row.level = PM_DICOM_LEVEL_PATIENT;
        row.value[PM_DK_PATIENT_ID] = w->pats[i].id;
        row.value[PM_DK_PATIENT_NAME] = w->pats[i].name;
        row.value[PM_DK_PATIENT_BIRTH_DATE] = w->pats[i].birth;
        row.value[PM_DK_PATIENT_SEX] = w->pats[i].sex;
        row.value[PM_DK_PATIENT_NSTUDIES] = n[0];
        row.value[PM_DK_PATIENT_NSERIES] = n[1];
        row.value[PM_DK_PATIENT_NINSTANCES] = n[2];
        rc = w->fn(w->ctx, &row);
        i = j;
    }
    return rc;
}

/* A StudyDate key that narrows the walk: "D", "D1-D2", "D1-" or "-D2" with 8-digit
 * dates. Returns 0 (and leaves from/to alone) for anything else, e.g. universal. */
static int date_bounds(const char *v, char from[9], char to[9])
{
    if (!v || !*v)
        return 0;
    const char *dash = strchr(v, '-');
    size_t a = dash ? (size_t)(dash - v) : strlen(v), b = dash ? strlen(dash + 1) : 0;
    if ((a != 0 && a != 8) || (dash && b != 0 && b != 8) || (!dash && a != 8) || (dash && !a && !b))
        return 0;
    for (size_t i = 0; i < a; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    for (size_t i = 0; i < b; i++)
        if (dash[1 + i] < '0' || dash[1 + i] > '9')
            return 0;
    memcpy(from, v, a);
    from[a] = 0;
    if (dash) {
        memcpy(to, dash + 1, b);
        to[b] = 0;
    } else {
        memcpy(to, v, 8);
        to[8] = 0;
    }
    return 1;
}

/* A key that narrows the walk through the attribute index: a single value whose part
 * before the first wildcard is not empty. Person names are walked by prefix even when
 * given whole: the matcher's rules for names are its own, the index only narrows. */
typedef struct {
    int key;
    char attr;
    int by_prefix;
} indexed_key;

static const indexed_key indexed_keys[] = {
    {PM_DK_ACCESSION, PM_ATTR_ACCESSION, 0},
    {PM_DK_PATIENT_ID, PM_ATTR_PATIENT_ID, 0}, /* a prefix: PatientID=P12* */
    {PM_DK_PATIENT_NAME, PM_ATTR_PATIENT_NAME, 1},
    {PM_DK_REFERRING_PHYSICIAN, PM_ATTR_REFERRER, 1},
    {PM_DK_STUDY_DESCRIPTION, PM_ATTR_DESCRIPTION, 1},
    {PM_DK_MODALITIES_IN_STUDY, PM_ATTR_MODALITY, 0},
    {PM_DK_MODALITY, PM_ATTR_MODALITY, 0},
};

/* The first indexed key of q that can narrow the walk: its attribute, the literal
 * prefix (into prefix) and whether the value must be equal. 0 when there is none. */
static char narrowing_key(const pm_dicom_query *q, char prefix[PM_ATTR_VALUE_MAX + 1], int *exact)
{
    for (size_t i = 0; i < sizeof indexed_keys / sizeof indexed_keys[0]; i++) {
        const char *v = q->value[indexed_keys[i].key];
        if (!v || strchr(v, '\\'))
            continue;
        pm_dicom_slice s = pm_dicom_slice_trim(v, strlen(v));
        size_t n = 0;
        while (n < s.n && s.p[n] != '*' && s.p[n] != '?')
            n++;
        if (n == 0 || n > PM_ATTR_VALUE_MAX)
            continue;
        memcpy(prefix, s.p, n);
        prefix[n] = '\0';
        *exact = n == s.n && !indexed_keys[i].by_prefix;
        return indexed_keys[i].attr;
    }
    return 0;
}

static int run(walk *w, const pm_dicom_provider *p)
{
    const pm_dicom_query *q = w->q;
    const char *study = single_value(q->value[PM_DK_STUDY_UID]);
    const char *patient = single_value(q->value[PM_DK_PATIENT_ID]);
    char from[9], to[9], prefix[PM_ATTR_VALUE_MAX + 1], attr = 0;
    int rc, exact = 0;
    /* The narrowest index the query allows: study UID, patient, an attribute (accession,
     * PatientID prefix, name, referrer, description, modality), a date range, else all. */
    if (!study && !patient && p->for_each_study_by_attr)
        attr = narrowing_key(q, prefix, &exact);
    if (attr)
        rc = p->for_each_study_by_attr(p->ctx, attr, prefix, exact, walk_study, w);
    else if (!study && !patient && p->for_each_study_dated &&
             date_bounds(q->value[PM_DK_STUDY_DATE], from, to))
        rc = p->for_each_study_dated(p->ctx, from, to, walk_study, w);
    else
        rc = p->for_each_study(p->ctx, study, patient, walk_study, w);
    if (rc == 0 && w->oom)
        rc = PM_E_NOMEM;
    if (rc == 0 && w->emit_level == PM_DICOM_LEVEL_PATIENT)
        rc = emit_patients(w);
    for (size_t i = 0; i < w->npats; i++) {
        free(w->pats[i].id);
        free(w->pats[i].name);
        free(w->pats[i].birth);
        free(w->pats[i].sex);
    }
    free(w->pats);
    return rc;
}

int pm_dicom_query_find(const pm_dicom_query *q, const pm_dicom_provider *p, pm_dicom_row_fn fn,
                        void *ctx)
{
    walk w = {.q = q, .match_level = q->level, .emit_level = q->level, .fn = fn, .ctx = ctx};
    return run(&w, p);
}

int pm_dicom_query_instances(const pm_dicom_query *q, const pm_dicom_provider *p,
                             pm_dicom_row_fn fn, void *ctx)
{
    walk w = {
        .q = q, .match_level = q->level, .emit_level = PM_DICOM_LEVEL_IMAGE, .fn = fn, .ctx = ctx};
    return run(&w, p);
}
