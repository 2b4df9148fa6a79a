/* Every event about one patient's studies, in the total order (store/views.h:
 * pm_views_patient_events): the patient index names the studies, the per-key event
 * index lists each one's events under keys that end with their position, and sorting
 * those positions puts the studies' events together in order. What an auditor's "who
 * opened this patient's images" reads, without walking the log. */
#include "proto/error.h"
#include "store/apply_internal.h"
#include "store/store_internal.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char **uids;
    size_t n, cap;
    int rc;
} study_list;

static int add_study(void *ctx, const Pm__StudyView *sv)
{
    study_list *l = ctx;
    if (!sv->study)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        char **grown = realloc(l->uids, cap * sizeof *grown);
        if (!grown)
            return l->rc = PM_E_NOMEM;
        l->uids = grown;
        l->cap = cap;
    }
    if (!(l->uids[l->n] = strdup(sv->study->study_instance_uid)))
        return l->rc = PM_E_NOMEM;
    l->n++;
    return 0;
}

/* One event found: its position (the tail of its index key: lamport, origin, seq, in
 * an order memcmp keeps) and thereby its key in the events table. */
typedef struct {
    uint8_t pos[POS_LEN];
} found_event;

typedef struct {
    found_event *v;
    size_t n, cap;
} found_list;

static int add_found(found_list *l, const uint8_t *pos)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        found_event *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown)
            return PM_E_NOMEM;
        l->v = grown;
        l->cap = cap;
    }
    memcpy(l->v[l->n++].pos, pos, POS_LEN);
    return PM_OK;
}

static int by_position(const void *a, const void *b)
{
    return memcmp(((const found_event *)a)->pos, ((const found_event *)b)->pos, POS_LEN);
}

/* The positions of every event indexed under study uid, appended to out. */
static int collect_study(MDB_cursor *cur, const char *uid, found_list *out)
{
    if (strlen(uid) > PM_UID_MAX)
        return PM_OK; /* no event can be about it */
    uint8_t prefix[2 + PM_UID_MAX];
    size_t plen = pm_apply_key_prefix(prefix, KIND_STUDY, uid);
    MDB_val k = {plen, prefix}, v;
    int rc = PM_OK;
    for (int op = MDB_SET_RANGE; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size != plen + POS_LEN || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        rc = add_found(out, (const uint8_t *)k.mv_data + plen);
    }
    return rc;
}

/* Hands fn each found event's bytes, in position order, from txn. */
static int send_found(MDB_txn *txn, pm_store *s, found_list *found, pm_event_bytes_fn fn, void *ctx)
{
    qsort(found->v, found->n, sizeof *found->v, by_position);
    int rc = PM_OK;
    for (size_t i = 0; !rc && i < found->n; i++) {
        /* The events table is keyed by origin and seq: the position without its
         * lamport. */
        MDB_val ek = {PM_ID_BYTES + 8, found->v[i].pos + 8}, ev;
        if (mdb_get(txn, s->events, &ek, &ev) == 0)
            rc = fn(ctx, ev.mv_data, ev.mv_size);
    }
    return rc;
}

int pm_views_patient_events(pm_store *s, const char *patient_id, pm_event_bytes_fn fn, void *ctx)
{
    study_list studies = {NULL, 0, 0, PM_OK};
    int rc = pm_views_studies(s, NULL, patient_id, add_study, &studies);
    if (!rc)
        rc = studies.rc;
    found_list found = {NULL, 0, 0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (!rc && studies.n && !(rc = pm_store_txn_begin(s, 0, &txn)) &&
        (rc = pm_store_mdb_error(mdb_cursor_open(txn, s->bykey, &cur), "open cursor"))) {
        mdb_txn_abort(txn);
        txn = NULL;
    }
    for (size_t i = 0; !rc && txn && i < studies.n; i++)
        rc = collect_study(cur, studies.uids[i], &found);
    if (txn) {
        mdb_cursor_close(cur);
        if (!rc)
            rc = send_found(txn, s, &found, fn, ctx);
        mdb_txn_abort(txn);
    }
    for (size_t i = 0; i < studies.n; i++)
        free(studies.uids[i]);
    free(studies.uids);
    free(found.v);
    return rc;
}
