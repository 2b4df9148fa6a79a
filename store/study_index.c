/* The secondary indexes of the study views (store/study_index.h). */
#include "store/study_index.h"
#include "crypto/hash.h"
#include "node/studies/modalities.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/turnaround.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* LMDB's key limit; every key below fits: DICOM's LO (64) + NUL + UI (64), or an
 * attribute (1 + PM_ATTR_VALUE_MAX + 1 + PM_UID_MAX), or a time and a UID. */
enum { ENTRY_KEY_MAX = 511, ENTRY_VAL_MAX = 8 };

/* One entry a view is listed under: its table, key and value (the due index's lease
 * end in val; the open-items table's packed fields in blob, owned). */
typedef struct {
    MDB_dbi dbi;
    const char *what; /* for errors */
    size_t klen, vlen;
    uint8_t key[ENTRY_KEY_MAX];
    uint8_t val[ENTRY_VAL_MAX];
    uint8_t *blob;
} index_entry;

static const uint8_t *entry_value(const index_entry *e)
{
    return e->blob ? e->blob : e->val;
}

/* Every entry of one view: computed once, then written, removed, or compared with the
 * entries of the view it replaces. */
typedef struct {
    index_entry *e;
    size_t n, cap;
    int failed; /* out of memory */
} entry_list;

static index_entry *entry_add(entry_list *l, MDB_dbi dbi, const char *what)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 24;
        index_entry *grown = realloc(l->e, cap * sizeof *grown);
        if (!grown) {
            l->failed = 1;
            return NULL;
        }
        l->e = grown;
        l->cap = cap;
    }
    index_entry *e = &l->e[l->n++];
    e->dbi = dbi;
    e->what = what;
    e->klen = e->vlen = 0;
    e->blob = NULL;
    return e;
}

static void entry_list_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->e[i].blob);
    free(l->e);
}

/* The patient and date indexes: value NUL uid. */
static void list_index(entry_list *l, MDB_dbi dbi, const char *value, const char *uid,
                       const char *what)
{
    size_t vlen = strlen(value), ulen = strlen(uid);
    if (vlen + ulen + 1 > ENTRY_KEY_MAX)
        return;
    index_entry *e = entry_add(l, dbi, what);
    if (!e)
        return;
    memcpy(e->key, value, vlen);
    e->key[vlen] = 0;
    memcpy(e->key + vlen + 1, uid, ulen);
    e->klen = vlen + 1 + ulen;
}

/* A time-keyed index (time(8 BE) uid), with an optional 8-byte value; a zero time
 * lists nothing. */
static void list_timed(entry_list *l, MDB_dbi dbi, uint64_t time_ms, const char *uid,
                       const uint8_t *val, const char *what)
{
    size_t ulen = strlen(uid);
    if (!time_ms || ulen > PM_UID_MAX)
        return;
    index_entry *e = entry_add(l, dbi, what);
    if (!e)
        return;
    pm_put_be64(e->key, time_ms);
    memcpy(e->key + 8, uid, ulen);
    e->klen = 8 + ulen;
    if (val) {
        memcpy(e->val, val, 8);
        e->vlen = 8;
    }
}

/* The lease end a claimed item's entries carry (0: not claimed; a claim without a
 * lease record never lapses). */
static uint64_t lease_end(const Pm__StudyView *v)
{
    if (strcmp(v->state, "claimed") != 0)
        return 0;
    return v->claim ? v->claim->lease_until_ms : UINT64_MAX;
}

/* The open-items index: an item that is unreported or claimed (a lapsed lease still
 * reads as open) and has a due time is listed by due time, so `worklist --overdue`
 * walks only what is due before now; its value is the item's lease end, so `status`
 * counts the overdue and the orphans from the index alone. A function of the view. */
static void list_due(entry_list *l, pm_store *s, const Pm__StudyView *v, const char *uid)
{
    if (!pm_wl_state_open(v->state))
        return;
    uint8_t lease[8];
    pm_put_be64(lease, lease_end(v));
    list_timed(l, s->bydue, pm_wl_due_ms(v), uid, lease, "due index");
}

void pm_study_index_lease_text(uint64_t ms, char out[17])
{
    uint8_t be[8];
    pm_put_be64(be, ms);
    pm_hex_encode(be, sizeof be, out);
}

void pm_study_index_normalize(char attr, const char *value, char *out)
{
    size_t n = strlen(value);
    while (n && value[n - 1] == ' ')
        n--;
    if (n > PM_ATTR_VALUE_MAX)
        n = PM_ATTR_VALUE_MAX;
    int fold = attr == PM_ATTR_PATIENT_NAME || attr == PM_ATTR_DESCRIPTION ||
               attr == PM_ATTR_REFERRER || attr == PM_ATTR_SUBSPECIALTY || attr == PM_ATTR_SITE;
    for (size_t i = 0; i < n; i++)
        out[i] = fold ? (char)toupper((unsigned char)value[i]) : value[i];
    out[n] = '\0';
}

/* The attribute index: attr value NUL uid. */
static void list_attr(entry_list *l, pm_store *s, char attr, const char *value, const char *uid)
{
    char norm[PM_ATTR_VALUE_MAX + 1];
    pm_study_index_normalize(attr, value, norm);
    size_t vlen = strlen(norm), ulen = strlen(uid);
    if (!vlen || ulen > PM_UID_MAX)
        return; /* an empty value matches only universal queries, which scan */
    index_entry *e = entry_add(l, s->byattr, "attribute index");
    if (!e)
        return;
    e->key[0] = (uint8_t)attr;
    memcpy(e->key + 1, norm, vlen);
    e->key[1 + vlen] = 0;
    memcpy(e->key + 2 + vlen, uid, ulen);
    e->klen = 2 + vlen + ulen;
}

/* One entry per distinct modality, compared whole (node/studies/modalities.h). */
static void list_modalities(entry_list *l, pm_store *s, const Pm__StudyAnnounced *st,
                            const char *uid)
{
    char list[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(st, list, sizeof list);
    for (char *m = list, *next; m && *m; m = next) {
        next = strchr(m, '\\');
        if (next)
            *next++ = '\0';
        list_attr(l, s, PM_ATTR_MODALITY, m, uid);
    }
}

/* The open-items table: each open item (unreported or claimed: a lapsed lease still
 * reads as open) under its UID, with only the fields that ranking it for `next` reads
 * (node/worklist/next.h, node/worklist/states.h), packed as a StudyView: a few
 * thousand pages to walk for every open item of a decade, where their views are spread
 * over the whole study table. */
static void list_open(entry_list *l, pm_store *s, const Pm__StudyView *v, const char *uid)
{
    size_t ulen = strlen(uid);
    if (!pm_wl_state_open(v->state) || ulen > PM_UID_MAX)
        return;
    Pm__StudyAnnounced study = PM__STUDY_ANNOUNCED__INIT;
    study.study_instance_uid = v->study->study_instance_uid;
    study.terms = v->study->terms;
    Pm__StudyView item = PM__STUDY_VIEW__INIT;
    item.study = &study;
    item.site = v->site;
    item.announced_ms = v->announced_ms;
    item.state = v->state;
    item.claim = v->claim;
    item.priority = v->priority;
    item.due_ms = v->due_ms;
    item.withdrawn = v->withdrawn;
    item.reported_ms = v->reported_ms;
    item.verified_ms = v->verified_ms;
    size_t len = pm__study_view__get_packed_size(&item);
    uint8_t *blob = malloc(len ? len : 1);
    index_entry *e = blob ? entry_add(l, s->open, "open items") : NULL;
    if (!e) {
        free(blob);
        l->failed = 1;
        return;
    }
    pm__study_view__pack(&item, blob);
    memcpy(e->key, uid, ulen);
    e->klen = ulen;
    e->blob = blob;
    e->vlen = len;
}

/* The final-reports index: items whose report is final, by the time it became so (so
 * that the acquiring node's RIS sender walks only what is new), each with its
 * turnaround record (store/turnaround.h). */
static void list_final(entry_list *l, pm_store *s, const Pm__StudyView *v, const char *uid)
{
    uint64_t final_ms = pm_wl_final_ms(v);
    size_t ulen = strlen(uid), len;
    uint8_t *blob;
    if (!final_ms || ulen > PM_UID_MAX)
        return;
    if (pm_turnaround_encode(v, final_ms, &blob, &len)) {
        l->failed = 1;
        return;
    }
    index_entry *e = entry_add(l, s->byfinal, "final index");
    if (!e) {
        free(blob);
        return;
    }
    pm_put_be64(e->key, final_ms);
    memcpy(e->key + 8, uid, ulen);
    e->klen = 8 + ulen;
    e->blob = blob;
    e->vlen = len;
}

/* Every index entry of view v of study uid: the one rule of what is indexed. */
static void list_entries(entry_list *l, pm_store *s, const Pm__StudyView *v, const char *uid)
{
    const Pm__StudyAnnounced *st = v->study;
    if (!st)
        return;
    list_index(l, s->bypatient, st->patient_id, uid, "patient index");
    list_index(l, s->bydate, st->study_date, uid, "date index");
    list_due(l, s, v, uid);
    list_open(l, s, v, uid);
    list_final(l, s, v, uid);
    list_attr(l, s, PM_ATTR_ACCESSION, st->accession_number, uid);
    list_attr(l, s, PM_ATTR_PATIENT_NAME, st->patient_name, uid);
    list_attr(l, s, PM_ATTR_REFERRER, st->referring_physician, uid);
    list_attr(l, s, PM_ATTR_DESCRIPTION, st->study_description, uid);
    list_attr(l, s, PM_ATTR_STUDY_TIME, st->study_time, uid);
    list_modalities(l, s, st, uid);
    list_attr(l, s, PM_ATTR_STATE, v->state, uid);
    list_attr(l, s, PM_ATTR_PRIORITY, pm_wl_priority(v), uid);
    if (st->terms)
        list_attr(l, s, PM_ATTR_SUBSPECIALTY, st->terms->subspecialty, uid);
    char lease[17];
    if (lease_end(v) && lease_end(v) != UINT64_MAX) {
        pm_study_index_lease_text(lease_end(v), lease);
        list_attr(l, s, PM_ATTR_LEASE, lease, uid);
    }
    char site[2 * PM_ID_BYTES + 1];
    if (v->site.len == PM_ID_BYTES) {
        pm_hex_encode(v->site.data, PM_ID_BYTES, site);
        list_attr(l, s, PM_ATTR_SITE, site, uid);
    }
}

static int entry_write(MDB_txn *txn, const index_entry *e, int add)
{
    MDB_val k = {e->klen, (void *)e->key}, v = {e->vlen, e->vlen ? (void *)entry_value(e) : ""};
    int rc = add ? mdb_put(txn, e->dbi, &k, &v, 0) : mdb_del(txn, e->dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(rc, e->what);
}

/* Whether l holds an entry with e's table and key (and, with_value, its value). */
static int entry_listed(const entry_list *l, const index_entry *e, int with_value)
{
    for (size_t i = 0; i < l->n; i++) {
        const index_entry *o = &l->e[i];
        if (o->dbi == e->dbi && o->klen == e->klen && memcmp(o->key, e->key, e->klen) == 0)
            return !with_value ||
                   (o->vlen == e->vlen && memcmp(entry_value(o), entry_value(e), e->vlen) == 0);
    }
    return 0;
}

int pm_study_indexes_update(MDB_txn *txn, pm_store *s, const Pm__StudyView *prev,
                            const Pm__StudyView *next, const char *uid)
{
    entry_list before = {0}, after = {0};
    if (prev)
        list_entries(&before, s, prev, uid);
    if (next)
        list_entries(&after, s, next, uid);
    int rc = before.failed || after.failed ? PM_E_NOMEM : PM_OK;
    /* Most of a study's entries (patient, date, accession, names) outlive a claim or a
     * report: only those that change are written, which is most of the apply's cost. */
    for (size_t i = 0; !rc && i < before.n; i++)
        if (!entry_listed(&after, &before.e[i], 0))
            rc = entry_write(txn, &before.e[i], 0);
    for (size_t i = 0; !rc && i < after.n; i++)
        if (!entry_listed(&before, &after.e[i], 1))
            rc = entry_write(txn, &after.e[i], 1);
    entry_list_free(&before);
    entry_list_free(&after);
    return rc;
}

int pm_study_indexes_rebuild(MDB_txn *txn, pm_store *s)
{
    MDB_dbi all[] = {s->bypatient, s->bydate, s->bydue, s->byfinal, s->byattr, s->open};
    int rc = PM_OK;
    for (size_t i = 0; !rc && i < sizeof all / sizeof all[0]; i++)
        rc = pm_store_mdb_error(mdb_drop(txn, all[i], 0), "empty an index");
    MDB_cursor *cur;
    if (rc || (rc = pm_store_mdb_error(mdb_cursor_open(txn, s->studies, &cur), "open cursor")))
        return rc;
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        Pm__StudyView *sv = pm__study_view__unpack(NULL, v.mv_size, v.mv_data);
        char uid[PM_UID_MAX + 1];
        if (!sv || k.mv_size > PM_UID_MAX) {
            if (sv)
                pm__study_view__free_unpacked(sv, NULL);
            continue;
        }
        memcpy(uid, k.mv_data, k.mv_size);
        uid[k.mv_size] = '\0';
        rc = pm_study_indexes_update(txn, s, NULL, sv, uid);
        pm__study_view__free_unpacked(sv, NULL);
    }
    mdb_cursor_close(cur);
    return rc;
}
