#include "store/views.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/apply_internal.h"
#include "store/store_internal.h"
#include "store/study_index.h"

#include <jansson.h>

#include <stdlib.h>
#include <string.h>

int pm_views_members(pm_store *s, pm_member_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    mdb_cursor_open(txn, s->members, &cur);
    MDB_val k, v;
    int op = MDB_FIRST;
    while (!rc && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        Pm__MemberView *m = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
        if (!m) {
            rc = PM_E_STORE;
            break;
        }
        rc = fn(ctx, m);
        pm__member_view__free_unpacked(m, NULL);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int pm_views_member(pm_store *s, const uint8_t id[PM_ID_BYTES], Pm__MemberView **out)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {PM_ID_BYTES, (void *)id}, v;
    rc = pm_store_mdb_error(mdb_get(txn, s->members, &k, &v), "read member");
    if (!rc && !(*out = pm__member_view__unpack(NULL, v.mv_size, v.mv_data)))
        rc = PM_E_STORE;
    mdb_txn_abort(txn);
    return rc;
}

int pm_views_is_member(pm_store *s, const uint8_t id[PM_ID_BYTES])
{
    Pm__MemberView *m;
    if (pm_views_member(s, id, &m) != PM_OK)
        return 0;
    int yes = strcmp(m->state, "member") == 0;
    pm__member_view__free_unpacked(m, NULL);
    return yes;
}

static int call_study(MDB_val *v, pm_study_fn fn, void *ctx)
{
    Pm__StudyView *sv = pm__study_view__unpack(NULL, v->mv_size, v->mv_data);
    if (!sv)
        return PM_E_STORE;
    int rc = fn(ctx, sv);
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

int pm_views_studies(pm_store *s, const char *study_uid, const char *patient_id, pm_study_fn fn,
                     void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_val k, v;
    if (study_uid) {
        k.mv_size = strlen(study_uid);
        k.mv_data = (void *)study_uid;
        if (mdb_get(txn, s->studies, &k, &v) == 0)
            rc = call_study(&v, fn, ctx);
    } else if (patient_id) {
        size_t plen = strlen(patient_id);
        mdb_cursor_open(txn, s->bypatient, &cur);
        k.mv_size = plen + 1;
        char *prefix = malloc(plen + 1);
        if (!prefix) {
            mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            return PM_E_NOMEM;
        }
        memcpy(prefix, patient_id, plen + 1); /* includes the NUL separator */
        k.mv_data = prefix;
        int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (!rc && r == 0 && k.mv_size > plen + 1 && memcmp(k.mv_data, prefix, plen + 1) == 0) {
            MDB_val sk = {k.mv_size - plen - 1, (char *)k.mv_data + plen + 1}, sv;
            if (mdb_get(txn, s->studies, &sk, &sv) == 0)
                rc = call_study(&sv, fn, ctx);
            r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        free(prefix);
        mdb_cursor_close(cur);
    } else {
        mdb_cursor_open(txn, s->studies, &cur);
        int op = MDB_FIRST;
        while (!rc && mdb_cursor_get(cur, &k, &v, op) == 0) {
            op = MDB_NEXT;
            rc = call_study(&v, fn, ctx);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

/* Walks the date index from key start while dates are at most to (8 digits; "" no
 * bound); stop_at_dated ends the walk at the first dated key. */
static int walk_dates(MDB_txn *txn, pm_store *s, const char *start, const char *to,
                      int stop_at_dated, pm_study_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->bydate, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k = {strlen(start), (void *)start}, v;
    int r = mdb_cursor_get(cur, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
    while (!rc && r == 0) {
        const char *key = k.mv_data, *nul = memchr(key, 0, k.mv_size);
        if (!nul)
            break;
        size_t dlen = (size_t)(nul - key);
        if ((dlen && stop_at_dated) || (dlen && *to && memcmp(key, to, dlen < 8 ? dlen : 8) > 0))
            break; /* keys sort by date: past the bound, the walk is over */
        MDB_val sk = {k.mv_size - dlen - 1, (char *)nul + 1}, sv;
        if (mdb_get(txn, s->studies, &sk, &sv) == 0)
            rc = call_study(&sv, fn, ctx);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc;
}

int pm_views_studies_dated(pm_store *s, const char *from, const char *to, pm_study_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    /* Studies without a date come first in the index; whether they match a date key is
     * the matcher's call, so they are walked too. */
    rc = walk_dates(txn, s, "", "", 1, fn, ctx);
    if (!rc && from && *from)
        rc = walk_dates(txn, s, from, to ? to : "", 0, fn, ctx);
    else if (!rc)
        rc = walk_dates(txn, s, "0", to ? to : "", 0, fn, ctx); /* dated keys start with a digit */
    mdb_txn_abort(txn);
    return rc;
}

/* A read transaction with a cursor on dbi, for one walk; end_walk closes both. */
static int begin_walk(pm_store *s, MDB_dbi dbi, const char *what, MDB_txn **txn, MDB_cursor **cur)
{
    int rc = pm_store_txn_begin(s, 0, txn);
    if (!rc && (rc = pm_store_mdb_error(mdb_cursor_open(*txn, dbi, cur), what)))
        mdb_txn_abort(*txn);
    return rc;
}

static void end_walk(MDB_txn *txn, MDB_cursor *cur)
{
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
}

/* One entry of a time-keyed index: its UID (the key after the time) and its value. */
typedef int (*timed_entry_fn)(MDB_txn *txn, pm_store *s, MDB_val *uid, MDB_val *value, void *ctx);

/* Walks a time-keyed index (time(8 BE) uid) from from_ms while times are below
 * until_ms, handing each entry to each. */
static int walk_timed(pm_store *s, MDB_dbi dbi, uint64_t from_ms, uint64_t until_ms,
                      timed_entry_fn each, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, dbi, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    uint8_t from[8];
    pm_put_be64(from, from_ms);
    MDB_val k = {8, from}, v;
    for (int op = MDB_SET_RANGE; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size <= 8)
            continue;
        if (pm_get_be64(k.mv_data) >= until_ms)
            break; /* keys sort by time */
        MDB_val uid = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
        rc = each(txn, s, &uid, &v, ctx);
    }
    end_walk(txn, cur);
    return rc;
}

typedef struct {
    pm_study_fn fn;
    void *ctx;
} study_call;

/* Reads the study an entry lists. */
static int each_study(MDB_txn *txn, pm_store *s, MDB_val *uid, MDB_val *value, void *vctx)
{
    (void)value;
    study_call *c = vctx;
    MDB_val sv;
    return mdb_get(txn, s->studies, uid, &sv) == 0 ? call_study(&sv, c->fn, c->ctx) : PM_OK;
}

static int walk_timed_studies(pm_store *s, MDB_dbi dbi, uint64_t from_ms, uint64_t until_ms,
                              pm_study_fn fn, void *ctx)
{
    study_call c = {fn, ctx};
    return walk_timed(s, dbi, from_ms, until_ms, each_study, &c);
}

int pm_views_studies_due_before(pm_store *s, uint64_t before_ms, pm_study_fn fn, void *ctx)
{
    return walk_timed_studies(s, s->bydue, 0, before_ms, fn, ctx);
}

int pm_views_open_items(pm_store *s, pm_study_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->open, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT)
        rc = call_study(&v, fn, ctx);
    end_walk(txn, cur);
    return rc;
}

int pm_views_count_overdue(pm_store *s, uint64_t now_ms, uint64_t *overdue, uint64_t *orphans)
{
    *overdue = *orphans = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->bydue, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    uint8_t from[8] = {0};
    MDB_val k = {8, from}, v;
    for (int op = MDB_SET_RANGE; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size <= 8)
            continue;
        if (pm_get_be64(k.mv_data) >= now_ms)
            break; /* keys sort by due time */
        (*overdue)++;
        /* The value: the lease end of a claimed item, 0 for an unreported one. */
        uint64_t lease = v.mv_size == 8 ? pm_get_be64(v.mv_data) : 0;
        *orphans += lease <= now_ms;
    }
    end_walk(txn, cur);
    return PM_OK;
}

int pm_views_count_lapsed(pm_store *s, uint64_t now_ms, uint64_t *count)
{
    *count = 0;
    char now_hex[17];
    pm_study_index_lease_text(now_ms, now_hex);
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->byattr, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    uint8_t first = PM_ATTR_LEASE;
    MDB_val k = {1, &first}, v;
    for (int op = MDB_SET_RANGE; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size < 18 || ((uint8_t *)k.mv_data)[0] != PM_ATTR_LEASE)
            break;
        if (memcmp((uint8_t *)k.mv_data + 1, now_hex, 16) > 0)
            break; /* keys sort by lease end; a lease ending at now has ended */
        (*count)++;
    }
    end_walk(txn, cur);
    return PM_OK;
}

int pm_views_studies_final_since(pm_store *s, uint64_t since_ms, pm_study_fn fn, void *ctx)
{
    return walk_timed_studies(s, s->byfinal, since_ms, UINT64_MAX, fn, ctx);
}

typedef struct {
    pm_turnaround_fn fn;
    void *ctx;
} turnaround_call;

/* Reads the turnaround record an entry of the final-reports index carries. */
static int each_turnaround(MDB_txn *txn, pm_store *s, MDB_val *uid, MDB_val *value, void *vctx)
{
    (void)txn, (void)s, (void)uid;
    turnaround_call *c = vctx;
    pm_turnaround t;
    int rc = pm_turnaround_decode(value->mv_data, value->mv_size, &t);
    return rc ? rc : c->fn(c->ctx, &t);
}

int pm_views_turnarounds_between(pm_store *s, uint64_t from_ms, uint64_t until_ms,
                                 pm_turnaround_fn fn, void *ctx)
{
    turnaround_call c = {fn, ctx};
    return walk_timed(s, s->byfinal, from_ms, until_ms, each_turnaround, &c);
}

int pm_views_studies_by_attr(pm_store *s, char attr, const char *value, int exact, pm_study_fn fn,
                             void *ctx)
{
    /* PatientID has an index of its own, keyed "ID NUL UID" without the attribute byte. */
    int by_patient = attr == PM_ATTR_PATIENT_ID;
    size_t off = by_patient ? 0 : 1;
    char norm[PM_ATTR_VALUE_MAX + 1];
    if (by_patient)
        snprintf(norm, sizeof norm, "%s", value);
    else
        pm_study_index_normalize(attr, value, norm);
    size_t vlen = strlen(norm);
    /* A study with several modalities has an entry for each: a prefix walk over the
     * modality index could meet it twice, so the UIDs met are remembered. */
    json_t *seen = attr == PM_ATTR_MODALITY && !exact ? json_object() : NULL;
    uint8_t key[1 + PM_ATTR_VALUE_MAX + 1];
    key[0] = (uint8_t)attr;
    memcpy(key + off, norm, vlen + 1);
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, by_patient ? s->bypatient : s->byattr, "open cursor", &txn, &cur);
    if (rc) {
        json_decref(seen);
        return rc;
    }
    size_t plen = off + vlen + (exact ? 1 : 0); /* exact: the NUL after the value too */
    MDB_val k = {plen, key}, v;
    for (int op = plen ? MDB_SET_RANGE : MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0)
            break; /* keys sort by value: past the prefix, the walk is over */
        const char *nul = memchr((const char *)k.mv_data + off, 0, k.mv_size - off);
        if (!nul)
            continue;
        size_t ulen = k.mv_size - (size_t)(nul + 1 - (const char *)k.mv_data);
        char uid[PM_UID_MAX + 1];
        if (ulen > PM_UID_MAX)
            continue;
        memcpy(uid, nul + 1, ulen);
        uid[ulen] = '\0';
        if (seen) {
            if (json_object_get(seen, uid))
                continue;
            json_object_set_new(seen, uid, json_true());
        }
        MDB_val sk = {ulen, uid}, sv;
        if (mdb_get(txn, s->studies, &sk, &sv) == 0)
            rc = call_study(&sv, fn, ctx);
    }
    end_walk(txn, cur);
    json_decref(seen);
    return rc;
}

int pm_views_count_by_attr(pm_store *s, char attr, const char *value, int exact, uint64_t *count)
{
    char norm[PM_ATTR_VALUE_MAX + 1];
    pm_study_index_normalize(attr, value, norm);
    size_t vlen = strlen(norm), plen = 1 + vlen + (exact ? 1 : 0);
    uint8_t key[1 + PM_ATTR_VALUE_MAX + 1];
    key[0] = (uint8_t)attr;
    memcpy(key + 1, norm, vlen + 1);
    *count = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->byattr, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    MDB_val k = {plen, key}, v;
    for (int op = MDB_SET_RANGE; mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0)
            break;
        (*count)++;
    }
    end_walk(txn, cur);
    return PM_OK;
}

typedef struct {
    MDB_txn *txn;
    pm_store *s;
    pm_event_bytes_fn fn;
    void *ctx;
} event_sink;

static int send_event_at(void *vctx, const uint8_t *pos)
{
    event_sink *e = vctx;
    MDB_val raw;
    return pm_apply_event_at(e->txn, e->s, pos, &raw) ? e->fn(e->ctx, raw.mv_data, raw.mv_size)
                                                      : PM_OK;
}

/* The events the per-key index lists under (kind, name), in the total order. */
static int key_events(pm_store *s, char kind, const char *name, pm_event_bytes_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->bykey, "open cursor", &txn, &cur);
    if (rc)
        return rc;
    event_sink sink = {txn, s, fn, ctx};
    rc = pm_apply_each_key_position(cur, kind, name, send_event_at, &sink);
    end_walk(txn, cur);
    return rc;
}

int pm_views_study_events(pm_store *s, const char *study_uid, pm_event_bytes_fn fn, void *ctx)
{
    return key_events(s, KIND_STUDY, study_uid, fn, ctx);
}

int pm_views_reporter_events(pm_store *s, const char *reporter, pm_event_bytes_fn fn, void *ctx)
{
    return key_events(s, KIND_NAMING, reporter, fn, ctx);
}

int pm_views_study(pm_store *s, const char *study_uid, Pm__StudyView **out)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(study_uid), (void *)study_uid}, v;
    rc = pm_store_mdb_error(mdb_get(txn, s->studies, &k, &v), "read study");
    if (!rc && !(*out = pm__study_view__unpack(NULL, v.mv_size, v.mv_data)))
        rc = PM_E_STORE;
    mdb_txn_abort(txn);
    return rc;
}

const char *pm_views_item_state(const Pm__StudyView *s, uint64_t now_ms)
{
    return pm_wl_state(s, now_ms);
}

int pm_views_reporters(pm_store *s, pm_reporter_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_walk(s, s->reporters, "roster cursor", &txn, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (!rc && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        Pm__ReporterView *r = pm__reporter_view__unpack(NULL, v.mv_size, v.mv_data);
        if (!r) {
            rc = PM_E_STORE;
            break;
        }
        rc = fn(ctx, r);
        pm__reporter_view__free_unpacked(r, NULL);
    }
    end_walk(txn, cur);
    return rc;
}

int pm_views_reporter(pm_store *s, const char *id, Pm__ReporterView **out)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(id), (void *)id}, v;
    int r = mdb_get(txn, s->reporters, &k, &v);
    if (r == MDB_NOTFOUND || k.mv_size == 0)
        rc = PM_E_NOTFOUND;
    else if (r)
        rc = pm_store_mdb_error(r, "read reporter");
    else if (!(*out = pm__reporter_view__unpack(NULL, v.mv_size, v.mv_data)))
        rc = PM_E_STORE;
    mdb_txn_abort(txn);
    return rc;
}
