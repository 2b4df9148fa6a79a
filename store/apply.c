/* The apply function's entry points (store/apply.h): an event is indexed under its view
 * key (store/keys.c) and the fold of that key (members.c, studies.c, roster.c) derives
 * its view again. */
#include "proto/error.h"
#include "store/apply_internal.h"

/* An event of a fork branch counts like any other (docs/operations.md, the fork rule):
 * indexed under its key and the views it touches derived again. */
int pm_apply_branch_event(pm_store *s, MDB_txn *txn, const pm_event *ev)
{
    const char *name;
    char kind = pm_apply_event_key(ev, &name);
    if (!kind)
        return PM_OK;
    int rc = pm_apply_index_branch_event(txn, s, kind, name, ev, 1);
    if (rc)
        return rc;
    return kind == KIND_MEMBERSHIP ? pm_apply_derive_membership(txn, s)
           : kind == KIND_REPORTER ? pm_apply_derive_reporter(txn, s, name)
                                   : pm_apply_derive_study(txn, s, name);
}

int pm_apply_branch_unindex(pm_store *s, MDB_txn *txn, const pm_event *ev)
{
    const char *name;
    char kind = pm_apply_event_key(ev, &name);
    return kind ? pm_apply_index_branch_event(txn, s, kind, name, ev, 0) : PM_OK;
}

int pm_apply_membership(pm_store *s, MDB_txn *txn)
{
    return pm_apply_derive_membership(txn, s);
}

int pm_apply_event(pm_store *s, MDB_txn *txn, const pm_event *ev, int *membership_pending)
{
    uint8_t okey[POS_LEN];
    pm_position pos = pm_event_position(ev);
    pm_apply_encode_position(okey, &pos);
    MDB_val k = {POS_LEN, okey}, v = {0, ""};
    int rc = pm_store_mdb_error(mdb_put(txn, s->order, &k, &v, 0), "order index");
    if (!rc)
        rc = pm_apply_index_naming(txn, s, ev, 1);
    if (rc)
        return rc;
    switch (ev->body->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_GENESIS:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED:
        if ((rc = pm_apply_index_event(txn, s, KIND_MEMBERSHIP, "", ev)))
            return rc;
        if (membership_pending) {
            *membership_pending = 1;
            return PM_OK;
        }
        return pm_apply_derive_membership(txn, s);
    case PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED: {
        const char *id = ev->body->reporter_registered->reporter_id;
        if ((rc = pm_apply_index_event(txn, s, KIND_REPORTER, id, ev)))
            return rc;
        return pm_apply_derive_reporter(txn, s, id);
    }
    default: {
        const char *uid = pm_event_study_uid(ev->body);
        if (!uid || !*uid)
            return PM_OK;
        if ((rc = pm_apply_index_event(txn, s, KIND_STUDY, uid, ev)))
            return rc;
        return pm_apply_derive_study(txn, s, uid);
    }
    }
}
