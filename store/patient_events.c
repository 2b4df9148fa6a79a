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
    pm_uid_list uids;
    int rc;
} study_list;

static int add_study(void *ctx, const Pm__StudyView *sv)
{
    study_list *l = ctx;
    if (sv->study && (l->rc = pm_uid_list_add(&l->uids, sv->study->study_instance_uid)))
        return l->rc;
    return 0;
}

/* One event found: its position (the tail of its index key: lamport, origin, seq, in
 * an order memcmp keeps). */
typedef struct {
    uint8_t pos[POS_LEN];
} found_event;

typedef struct {
    found_event *v;
    size_t n, cap;
} found_list;

static int add_found(void *ctx, const uint8_t *pos)
{
    found_list *l = ctx;
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

/* Hands fn each found event's bytes, in position order, from txn. */
static int send_found(MDB_txn *txn, pm_store *s, found_list *found, pm_event_bytes_fn fn, void *ctx)
{
    qsort(found->v, found->n, sizeof *found->v, by_position);
    int rc = PM_OK;
    MDB_val raw;
    for (size_t i = 0; !rc && i < found->n; i++)
        if (pm_apply_event_at(txn, s, found->v[i].pos, &raw))
            rc = fn(ctx, raw.mv_data, raw.mv_size);
    return rc;
}

int pm_views_patient_events(pm_store *s, const char *patient_id, pm_event_bytes_fn fn, void *ctx)
{
    study_list studies = {{NULL, 0, 0}, PM_OK};
    int rc = pm_views_studies(s, NULL, patient_id, add_study, &studies);
    if (!rc)
        rc = studies.rc;
    found_list found = {NULL, 0, 0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    if (!rc && studies.uids.n && !(rc = pm_store_txn_begin(s, 0, &txn)) &&
        (rc = pm_store_mdb_error(mdb_cursor_open(txn, s->bykey, &cur), "open cursor"))) {
        mdb_txn_abort(txn);
        txn = NULL;
    }
    for (size_t i = 0; !rc && txn && i < studies.uids.n; i++)
        rc = pm_apply_each_key_position(cur, KIND_STUDY, studies.uids.uids[i], add_found, &found);
    if (txn) {
        mdb_cursor_close(cur);
        if (!rc)
            rc = send_found(txn, s, &found, fn, ctx);
        mdb_txn_abort(txn);
    }
    pm_uid_list_free(&studies.uids);
    free(found.v);
    return rc;
}
