/* The union of a study's announcements (see study_union.h). Sorting, not pairwise
 * comparison: a study of 100,000 instances in a dozen announcements, or 2,000
 * announcements of one instance each, is folded in O(n log n). */
#include "store/study_union.h"
#include "proto/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const Pm__Series *series; /* as announced: uid and fields */
    Pm__Instance *instance;
    size_t seq;        /* position in the announcements as given */
    size_t series_seq; /* seq of the first entry of its series: the series' rank */
    int dropped;       /* the same instance was announced earlier */
} entry;

/* An entry without an instance stands for its series (announced even if empty). */
static int instance_cmp(const Pm__Instance *x, const Pm__Instance *y)
{
    if (!x || !y)
        return (x != NULL) - (y != NULL);
    int c = strcmp(x->sop_instance_uid, y->sop_instance_uid);
    if (!c && x->hash.len != y->hash.len)
        c = x->hash.len < y->hash.len ? -1 : 1;
    if (!c)
        c = memcmp(x->hash.data, y->hash.data, x->hash.len);
    return c;
}

static int by_instance_identity(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->series->series_instance_uid, y->series->series_instance_uid);
    if (!c)
        c = instance_cmp(x->instance, y->instance);
    if (!c)
        c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

static int same_instance(const entry *x, const entry *y)
{
    return strcmp(x->series->series_instance_uid, y->series->series_instance_uid) == 0 &&
           instance_cmp(x->instance, y->instance) == 0;
}

static int in_layout_order(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->dropped != y->dropped)
        return x->dropped ? 1 : -1; /* the dropped ones last, out of the way */
    if (x->series_seq != y->series_seq)
        return x->series_seq < y->series_seq ? -1 : 1;
    if (!x->instance || !y->instance) /* the series' own entry first */
        return (x->instance != NULL) - (y->instance != NULL);
    if (x->instance->instance_number != y->instance->instance_number)
        return x->instance->instance_number < y->instance->instance_number ? -1 : 1;
    int c = strcmp(x->instance->sop_instance_uid, y->instance->sop_instance_uid);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

/* Marks repeats and gives each entry its series' rank: entries sorted by identity have
 * a series' entries together, and each instance's copies together, earliest first. */
static void rank_and_dedupe(entry *e, size_t n)
{
    qsort(e, n, sizeof *e, by_instance_identity);
    for (size_t start = 0; start < n;) {
        size_t end = start, first = start;
        while (end < n && strcmp(e[end].series->series_instance_uid,
                                 e[start].series->series_instance_uid) == 0) {
            if (e[end].seq < e[first].seq)
                first = end;
            if (end > start && same_instance(&e[end], &e[end - 1]))
                e[end].dropped = 1;
            end++;
        }
        for (size_t i = start; i < end; i++) {
            e[i].series_seq = e[first].seq;
            e[i].series = e[first].series; /* the fields as first announced */
        }
        start = end;
    }
}

static size_t count_instances(const Pm__StudyAnnounced *const *anns, size_t n)
{
    size_t total = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t s = 0; s < anns[a]->n_series; s++)
            total += 1 + anns[a]->series[s]->n_instances;
    return total;
}

/* Lays the surviving entries (sorted, first kept) out as series of instances. */
static int lay_out(pm_study_union *u, const entry *e, size_t kept)
{
    size_t n_series = 0;
    for (size_t i = 0; i < kept; i++)
        if (i == 0 || e[i].series_seq != e[i - 1].series_seq)
            n_series++;
    u->series = calloc(n_series + 1, sizeof *u->series);
    u->series_ptrs = calloc(n_series + 1, sizeof *u->series_ptrs);
    u->instances = calloc(kept + 1, sizeof *u->instances);
    if (!u->series || !u->series_ptrs || !u->instances)
        return PM_E_NOMEM;
    size_t s = 0, n_instances = 0;
    for (size_t i = 0; i < kept; i++) {
        if (i == 0 || e[i].series_seq != e[i - 1].series_seq) {
            Pm__Series *se = &u->series[s];
            *se = *e[i].series;
            se->instances = u->instances + n_instances;
            se->n_instances = 0;
            u->series_ptrs[s++] = se;
        }
        if (e[i].instance) {
            u->instances[n_instances++] = e[i].instance;
            u->series[s - 1].n_instances++;
        }
    }
    u->study.series = u->series_ptrs;
    u->study.n_series = n_series;
    return PM_OK;
}

int pm_study_union_build(pm_study_union *u, const Pm__StudyAnnounced *fields,
                         const Pm__StudyAnnounced *const *anns, size_t n)
{
    memset(u, 0, sizeof *u);
    u->study = *fields;
    u->study.series = NULL;
    u->study.n_series = 0;
    size_t total = count_instances(anns, n);
    entry *e = calloc(total + 1, sizeof *e);
    if (!e)
        return PM_E_NOMEM;
    size_t k = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t s = 0; s < anns[a]->n_series; s++) {
            const Pm__Series *se = anns[a]->series[s];
            e[k] = (entry){se, NULL, k, 0, 0};
            k++;
            for (size_t i = 0; i < se->n_instances; i++, k++)
                e[k] = (entry){se, se->instances[i], k, 0, 0};
        }
    rank_and_dedupe(e, total);
    qsort(e, total, sizeof *e, in_layout_order);
    size_t kept = 0;
    while (kept < total && !e[kept].dropped)
        kept++;
    int rc = lay_out(u, e, kept);
    free(e);
    return rc;
}

void pm_study_union_free(pm_study_union *u)
{
    free(u->series);
    free(u->series_ptrs);
    free(u->instances);
    memset(u, 0, sizeof *u);
}
