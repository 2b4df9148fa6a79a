/* The secondary indexes of the study views (store/study_index.h). */
#include "store/study_index.h"
#include "crypto/hash.h"
#include "node/studies/modalities.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/event.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Secondary indexes of the study views (not part of the digest): value NUL uid. */
static int put_index(MDB_txn *txn, MDB_dbi dbi, const char *value, const char *uid, int add)
{
    size_t vlen = strlen(value), ulen = strlen(uid);
    uint8_t key[511]; /* LMDB's key limit; DICOM's LO (64) + NUL + UI (64) fit easily */
    if (vlen + ulen + 1 > sizeof key)
        return PM_OK;
    memcpy(key, value, vlen);
    key[vlen] = 0;
    memcpy(key + vlen + 1, uid, ulen);
    MDB_val k = {vlen + 1 + ulen, key}, v = {0, ""};
    int rc = add ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(rc, "study index");
}

/* A time-keyed index (time(8 BE) uid -> ""): adds or removes uid under time_ms; a zero
 * time lists nothing. */
static int put_timed(MDB_txn *txn, MDB_dbi dbi, uint64_t time_ms, const char *uid, int add,
                     const char *what)
{
    size_t ulen = strlen(uid);
    uint8_t key[8 + PM_UID_MAX];
    if (!time_ms || ulen > PM_UID_MAX)
        return PM_OK;
    pm_put_be64(key, time_ms);
    memcpy(key + 8, uid, ulen);
    MDB_val k = {8 + ulen, key}, v0 = {0, ""};
    int rc = add ? mdb_put(txn, dbi, &k, &v0, 0) : mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(rc, what);
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
static int put_due_index(MDB_txn *txn, pm_store *s, const Pm__StudyView *v, const char *uid,
                         int add)
{
    uint64_t due = pm_wl_due_ms(v);
    size_t ulen = strlen(uid);
    if ((strcmp(v->state, "unreported") != 0 && strcmp(v->state, "claimed") != 0) || !due ||
        ulen > PM_UID_MAX)
        return PM_OK;
    uint8_t key[8 + PM_UID_MAX], lease[8];
    pm_put_be64(key, due);
    memcpy(key + 8, uid, ulen);
    pm_put_be64(lease, lease_end(v));
    MDB_val k = {8 + ulen, key}, val = {sizeof lease, lease};
    int rc = add ? mdb_put(txn, s->bydue, &k, &val, 0) : mdb_del(txn, s->bydue, &k, NULL);
    return rc == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(rc, "due index");
}

void pm_study_index_lease_text(uint64_t ms, char out[17])
{
    uint8_t be[8];
    pm_put_be64(be, ms);
    pm_hex_encode(be, sizeof be, out);
}

/* The final-reports index: items whose report is final, by the time it became so, so
 * that the acquiring node's RIS sender walks only what is new. */
static int put_final_index(MDB_txn *txn, pm_store *s, const Pm__StudyView *v, const char *uid,
                           int add)
{
    return put_timed(txn, s->byfinal, pm_wl_final_ms(v), uid, add, "final index");
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

static int put_attr(MDB_txn *txn, pm_store *s, char attr, const char *value, const char *uid,
                    int add)
{
    char norm[PM_ATTR_VALUE_MAX + 1];
    pm_study_index_normalize(attr, value, norm);
    if (!*norm)
        return PM_OK; /* an empty value matches only universal queries, which scan */
    size_t vlen = strlen(norm), ulen = strlen(uid);
    uint8_t key[1 + PM_ATTR_VALUE_MAX + 1 + PM_UID_MAX];
    if (ulen > PM_UID_MAX)
        return PM_OK;
    key[0] = (uint8_t)attr;
    memcpy(key + 1, norm, vlen);
    key[1 + vlen] = 0;
    memcpy(key + 2 + vlen, uid, ulen);
    MDB_val k = {2 + vlen + ulen, key}, v = {0, ""};
    int rc = add ? mdb_put(txn, s->byattr, &k, &v, 0) : mdb_del(txn, s->byattr, &k, NULL);
    return rc == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(rc, "attribute index");
}

/* One entry per distinct modality, compared whole (node/studies/modalities.h). */
static int put_modalities(MDB_txn *txn, pm_store *s, const Pm__StudyAnnounced *st, const char *uid,
                          int add)
{
    char list[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(st, list, sizeof list);
    int rc = PM_OK;
    for (char *m = list, *next; !rc && m && *m; m = next) {
        next = strchr(m, '\\');
        if (next)
            *next++ = '\0';
        rc = put_attr(txn, s, PM_ATTR_MODALITY, m, uid, add);
    }
    return rc;
}

int pm_study_indexes_put(MDB_txn *txn, pm_store *s, const Pm__StudyView *v, const char *uid,
                         int add)
{
    const Pm__StudyAnnounced *st = v->study;
    if (!st)
        return PM_OK;
    int rc = put_index(txn, s->bypatient, st->patient_id, uid, add);
    if (!rc)
        rc = put_index(txn, s->bydate, st->study_date, uid, add);
    if (!rc)
        rc = put_due_index(txn, s, v, uid, add);
    if (!rc)
        rc = put_final_index(txn, s, v, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_ACCESSION, st->accession_number, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_PATIENT_NAME, st->patient_name, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_REFERRER, st->referring_physician, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_DESCRIPTION, st->study_description, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_STUDY_TIME, st->study_time, uid, add);
    if (!rc)
        rc = put_modalities(txn, s, st, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_STATE, v->state, uid, add);
    if (!rc)
        rc = put_attr(txn, s, PM_ATTR_PRIORITY, pm_wl_priority(v), uid, add);
    if (!rc && st->terms)
        rc = put_attr(txn, s, PM_ATTR_SUBSPECIALTY, st->terms->subspecialty, uid, add);
    char lease[17];
    if (!rc && lease_end(v) && lease_end(v) != UINT64_MAX) {
        pm_study_index_lease_text(lease_end(v), lease);
        rc = put_attr(txn, s, PM_ATTR_LEASE, lease, uid, add);
    }
    char site[2 * PM_ID_BYTES + 1];
    if (!rc && v->site.len == PM_ID_BYTES) {
        pm_hex_encode(v->site.data, PM_ID_BYTES, site);
        rc = put_attr(txn, s, PM_ATTR_SITE, site, uid, add);
    }
    return rc;
}

int pm_study_indexes_rebuild(MDB_txn *txn, pm_store *s)
{
    MDB_dbi all[] = {s->bypatient, s->bydate, s->bydue, s->byfinal, s->byattr};
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
        rc = pm_study_indexes_put(txn, s, sv, uid, 1);
        pm__study_view__free_unpacked(sv, NULL);
    }
    mdb_cursor_close(cur);
    return rc;
}
