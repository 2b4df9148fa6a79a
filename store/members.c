/* The membership fold: genesis, admissions and revocations under the quorum rule, in
 * the total order; a revocation cuts the revoked member's feed by sequence number. */
#include "proto/error.h"
#include "proto/log.h"
#include "store/apply_internal.h"
#include "store/forks_internal.h"

#include <stdlib.h>
#include <string.h>

enum { M_NONE, M_PENDING, M_MEMBER, M_REVOKED };

typedef struct {
    uint8_t id[PM_ID_BYTES];
    const char *name, *endpoint, *reason; /* borrowed from the loaded events */
    int state, founder;
    uint8_t (*admit)[PM_ID_BYTES];
    size_t n_admit;
    uint8_t (*revoke)[PM_ID_BYTES];
    size_t n_revoke;
    pm_position admitted_at, revoked_at;
    uint64_t revoke_last_seq; /* largest last_seq among the counted revocation approvals */
} member_fold;

typedef struct {
    member_fold *m;
    size_t n;
    unsigned quorum;
} membership;

static member_fold *member_find(membership *ms, const uint8_t *id, int create)
{
    for (size_t i = 0; i < ms->n; i++)
        if (memcmp(ms->m[i].id, id, PM_ID_BYTES) == 0)
            return &ms->m[i];
    if (!create)
        return NULL;
    member_fold *grown = realloc(ms->m, (ms->n + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    ms->m = grown;
    member_fold *f = &ms->m[ms->n++];
    memset(f, 0, sizeof *f);
    memcpy(f->id, id, PM_ID_BYTES);
    f->name = f->endpoint = f->reason = "";
    return f;
}

static int add_approval(uint8_t (**set)[PM_ID_BYTES], size_t *n, const uint8_t *who)
{
    for (size_t i = 0; i < *n; i++)
        if (memcmp((*set)[i], who, PM_ID_BYTES) == 0)
            return PM_OK;
    uint8_t(*grown)[PM_ID_BYTES] = realloc(*set, (*n + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    memcpy(grown[*n], who, PM_ID_BYTES);
    *set = grown;
    (*n)++;
    return PM_OK;
}

static size_t count_members(const membership *ms)
{
    size_t n = 0;
    for (size_t i = 0; i < ms->n; i++)
        n += ms->m[i].state == M_MEMBER;
    return n;
}

/* The quorum in effect: the genesis' K, but never more than could approve. */
static size_t quorum_for(const membership *ms, size_t excluded)
{
    size_t eligible = count_members(ms) - excluded;
    size_t k = ms->quorum < eligible ? ms->quorum : eligible;
    return k ? k : 1;
}

static int fold_membership_event(membership *ms, const pm_event *ev)
{
    const Pm__EventBody *b = ev->body;
    pm_position pos = pm_event_position(ev);
    if (b->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS) {
        if (ms->quorum) /* one genesis per mesh; the mesh check keeps others out */
            return PM_OK;
        ms->quorum = b->genesis->quorum;
        member_fold *f = member_find(ms, b->origin.data, 1);
        if (!f)
            return PM_E_NOMEM;
        f->state = M_MEMBER;
        f->founder = 1;
        f->name = b->genesis->founder_name;
        f->endpoint = b->genesis->founder_endpoint;
        return PM_OK;
    }
    member_fold *author = member_find(ms, b->origin.data, 0);
    /* Only members approve; a revoked member's events up to its cut still stand. */
    if (!author || !(author->state == M_MEMBER ||
                     (author->state == M_REVOKED && b->seq <= author->revoke_last_seq)))
        return PM_OK;
    if (b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED) {
        const Pm__MemberAdmitted *a = b->member_admitted;
        member_fold *f = member_find(ms, a->node_id.data, 1);
        if (!f)
            return PM_E_NOMEM;
        if (f->state == M_MEMBER || f->state == M_REVOKED)
            return PM_OK;
        f->state = M_PENDING;
        f->name = a->name;
        f->endpoint = a->endpoint;
        if (add_approval(&f->admit, &f->n_admit, b->origin.data))
            return PM_E_NOMEM;
        if (f->n_admit >= quorum_for(ms, 0)) {
            f->state = M_MEMBER;
            f->admitted_at = pos;
        }
    } else if (b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED) {
        const Pm__MemberRevoked *r = b->member_revoked;
        member_fold *f = member_find(ms, r->node_id.data, 0);
        if (!f || f->state != M_MEMBER)
            return PM_OK;
        size_t before = f->n_revoke;
        if (add_approval(&f->revoke, &f->n_revoke, b->origin.data))
            return PM_E_NOMEM;
        if (f->n_revoke > before && r->last_seq > f->revoke_last_seq)
            f->revoke_last_seq = r->last_seq;
        f->reason = r->reason;
        /* The member being revoked does not count towards the quorum's size. */
        if (f->n_revoke >= quorum_for(ms, 1)) {
            f->state = M_REVOKED;
            f->revoked_at = pos;
        }
    }
    return PM_OK;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, PM_ID_BYTES);
}

static ProtobufCBinaryData *id_list(uint8_t (*ids)[PM_ID_BYTES], size_t n)
{
    if (n > 1) /* qsort's base may not be NULL; the founder has no approvals */
        qsort(ids, n, PM_ID_BYTES, id_cmp); /* sorted, so the record is order-independent */
    ProtobufCBinaryData *list = calloc(n ? n : 1, sizeof *list);
    for (size_t i = 0; list && i < n; i++) {
        list[i].data = ids[i];
        list[i].len = PM_ID_BYTES;
    }
    return list;
}

static const char *state_name(int state)
{
    return state == M_MEMBER ? "member" : state == M_REVOKED ? "revoked" : "pending";
}

/* Writes one member's view; sets *validity_changed if what the member may author changed. */
static int write_member(MDB_txn *txn, pm_store *s, member_fold *f, int *validity_changed)
{
    Pm__MemberView mv = PM__MEMBER_VIEW__INIT;
    uint8_t admitted_origin[PM_ID_BYTES], revoked_origin[PM_ID_BYTES];
    mv.id.data = f->id;
    mv.id.len = PM_ID_BYTES;
    mv.name = (char *)f->name;
    mv.endpoint = (char *)f->endpoint;
    mv.state = (char *)state_name(f->state);
    mv.founder = f->founder;
    mv.revoke_reason = f->state == M_REVOKED ? (char *)f->reason : "";
    mv.admit_approvals = id_list(f->admit, f->n_admit);
    mv.n_admit_approvals = f->n_admit;
    mv.revoke_approvals = id_list(f->revoke, f->n_revoke);
    mv.n_revoke_approvals = f->n_revoke;
    if (f->state == M_MEMBER || f->state == M_REVOKED)
        if (!f->founder)
            mv.admitted_at = pm_apply_position_new(&f->admitted_at, admitted_origin);
    if (f->state == M_REVOKED) {
        mv.revoked_at = pm_apply_position_new(&f->revoked_at, revoked_origin);
        mv.revoked_after_seq = f->revoke_last_seq;
    }
    int rc = PM_OK;
    size_t len = pm__member_view__get_packed_size(&mv);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || !mv.admit_approvals || !mv.revoke_approvals) {
        rc = PM_E_NOMEM;
        goto done;
    }
    pm__member_view__pack(&mv, buf);

    /* Validity is what changes which events count: state and the two positions. */
    MDB_val k = {PM_ID_BYTES, f->id}, old;
    int r = mdb_get(txn, s->members, &k, &old);
    *validity_changed = 1;
    if (r == 0) {
        Pm__MemberView *prev = pm__member_view__unpack(NULL, old.mv_size, old.mv_data);
        if (prev) {
            pm_position pa = pm_apply_position_of(prev->admitted_at),
                        pr = pm_apply_position_of(prev->revoked_at);
            pm_position na = pm_apply_position_of(mv.admitted_at),
                        nr = pm_apply_position_of(mv.revoked_at);
            *validity_changed = strcmp(prev->state, mv.state) != 0 ||
                                pm_position_cmp(&pa, &na) != 0 || pm_position_cmp(&pr, &nr) != 0 ||
                                prev->revoked_after_seq != mv.revoked_after_seq;
            pm__member_view__free_unpacked(prev, NULL);
        }
    } else if (f->state == M_PENDING) {
        *validity_changed = 0; /* pending authors' events are not applied either way */
    }
    rc = pm_view_write(txn, s, s->members, 'm', f->id, PM_ID_BYTES, buf, len);
done:
    free(buf);
    free(mv.admit_approvals);
    free(mv.revoke_approvals);
    free(mv.admitted_at);
    free(mv.revoked_at);
    return rc;
}

/* Points the author's head at its last remaining event (after a cut). */
static int reset_head(MDB_txn *txn, pm_store *s, const uint8_t *author, const pm_event *last)
{
    MDB_val hk = {PM_ID_BYTES, (void *)author};
    if (!last) {
        int r = mdb_del(txn, s->heads, &hk, NULL);
        return r == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(r, "delete head");
    }
    uint8_t hv[8 + PM_HASH_BYTES + 8];
    pm_put_be64(hv, last->body->seq);
    memcpy(hv + 8, last->hash, PM_HASH_BYTES);
    pm_put_be64(hv + 8 + PM_HASH_BYTES, last->body->lamport);
    MDB_val v = {sizeof hv, hv};
    return pm_store_mdb_error(mdb_put(txn, s->heads, &hk, &v, 0), "write head");
}

/* Removes a revoked member's events after its cut (the feed's tail) from the store,
 * remembering the studies they touched and whether membership events went. Every store
 * then holds the same events of a revoked member whatever order they arrived in, and
 * later ones are refused at ingest (PM_E_REVOKED). */
static int truncate_revoked(MDB_txn *txn, pm_store *s, const uint8_t *author, uint64_t cut,
                            pm_uid_list *touched, int *membership_cut)
{
    uint8_t key[PM_ID_BYTES + 8]; /* (author, seq): to read the new head below */
    memcpy(key, author, PM_ID_BYTES);
    pm_event_list tail = {0};
    int rc = pm_apply_load_feed(txn, s, author, cut + 1, &tail);
    for (size_t i = 0; !rc && i < tail.n; i++) {
        const char *uid = pm_event_study_uid(tail.items[i]->body);
        if (uid && *uid)
            rc = pm_uid_list_add(touched, uid);
        else
            *membership_cut = 1;
        if (!rc)
            rc = pm_apply_delete_event(txn, s, tail.items[i]);
    }
    if (!rc && tail.n) {
        /* The new head is the event at the cut, if the author has one. */
        pm_event *last = NULL;
        pm_put_be64(key + PM_ID_BYTES, cut);
        MDB_val hk = {sizeof key, key}, hv;
        if (cut && mdb_get(txn, s->events, &hk, &hv) == 0)
            rc = pm_event_parse_stored(hv.mv_data, hv.mv_size, &last);
        if (!rc)
            rc = reset_head(txn, s, author, last);
        pm_event_destroy(&last);
    }
    pm_event_list_free(&tail);
    return rc;
}

static void membership_free(membership *ms)
{
    for (size_t i = 0; i < ms->n; i++) {
        free(ms->m[i].admit);
        free(ms->m[i].revoke);
    }
    free(ms->m);
    memset(ms, 0, sizeof *ms);
}

/* Folds every membership event. A revocation cuts the revoked member's feed; if the
 * cut removes membership events (approvals it signed after its cut), the fold runs
 * again without them, until nothing more is cut. */
static int fold_all_membership(MDB_txn *txn, pm_store *s, pm_event_list *evs, membership *ms,
                               pm_uid_list *touched)
{
    for (int round = 0; round < 64; round++) {
        int rc = pm_apply_load_key_events(txn, s, KIND_MEMBERSHIP, "", evs);
        for (size_t i = 0; !rc && i < evs->n; i++)
            rc = fold_membership_event(ms, evs->items[i]);
        if (rc)
            return rc;
        int membership_cut = 0;
        for (size_t i = 0; !rc && i < ms->n; i++)
            if (ms->m[i].state == M_REVOKED)
                rc = truncate_revoked(txn, s, ms->m[i].id, ms->m[i].revoke_last_seq, touched,
                                      &membership_cut);
        if (rc || !membership_cut)
            return rc;
        pm_event_list_free(evs);
        membership_free(ms);
    }
    return PM_E_STORE; /* cannot happen: each round removes events */
}

static int collect_alt_uid(void *ctx, const uint8_t *raw, size_t len)
{
    pm_event *ev;
    int rc = pm_event_parse_stored(raw, len, &ev);
    if (rc)
        return rc;
    const char *name;
    pm_uid_list *const *lists = ctx;
    char kind = pm_apply_event_key(ev, &name);
    if (kind == KIND_STUDY)
        rc = pm_uid_list_add(lists[0], name);
    else if (kind == KIND_REPORTER)
        rc = pm_uid_list_add(lists[1], name);
    pm_event_destroy(&ev);
    return rc;
}

/* Re-derives every study and roster view the author's events touch (its validity
 * changed), its fork branches' included. */
static int rederive_author(MDB_txn *txn, pm_store *s, const uint8_t *author)
{
    pm_event_list feed = {0};
    int rc = pm_apply_load_feed(txn, s, author, 1, &feed);
    /* The cursor is closed before deriving: pm_apply_derive_study writes to the same txn. Each
     * study once, however many of the author's events touch it. */
    pm_uid_list uids = {0}, reporters = {0};
    for (size_t i = 0; !rc && i < feed.n; i++) {
        const char *name;
        char kind = pm_apply_event_key(feed.items[i], &name);
        if (kind == KIND_STUDY)
            rc = pm_uid_list_add(&uids, name);
        else if (kind == KIND_REPORTER)
            rc = pm_uid_list_add(&reporters, name);
    }
    pm_uid_list *lists[2] = {&uids, &reporters};
    if (!rc)
        rc = pm_forks_each_txn(txn, s, author, collect_alt_uid, lists);
    pm_uid_list_unique(&uids);
    pm_uid_list_unique(&reporters);
    for (size_t i = 0; !rc && i < uids.n; i++)
        rc = pm_apply_derive_study(txn, s, uids.uids[i]);
    for (size_t i = 0; !rc && i < reporters.n; i++)
        rc = pm_apply_derive_reporter(txn, s, reporters.uids[i]);
    pm_uid_list_free(&uids);
    pm_uid_list_free(&reporters);
    pm_event_list_free(&feed);
    return rc;
}

static int drop_unfolded_members(MDB_txn *txn, pm_store *s, membership *ms)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->members, &cur), "open cursor");
    if (rc)
        return rc;
    uint8_t(*gone)[PM_ID_BYTES] = NULL;
    size_t n_gone = 0;
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size != PM_ID_BYTES || member_find(ms, k.mv_data, 0))
            continue;
        uint8_t(*grown)[PM_ID_BYTES] = realloc(gone, (n_gone + 1) * PM_ID_BYTES);
        if (!grown) {
            rc = PM_E_NOMEM;
            break;
        }
        gone = grown;
        memcpy(gone[n_gone++], k.mv_data, PM_ID_BYTES);
    }
    mdb_cursor_close(cur); /* closed before writing to the same table */
    for (size_t i = 0; !rc && i < n_gone; i++)
        if (!(rc = pm_view_write(txn, s, s->members, 'm', gone[i], PM_ID_BYTES, NULL, 0)))
            rc = rederive_author(txn, s, gone[i]);
    free(gone);
    return rc;
}

int pm_apply_derive_membership(MDB_txn *txn, pm_store *s)
{
    pm_event_list evs = {0};
    membership ms = {0};
    pm_uid_list touched = {0};
    int rc = fold_all_membership(txn, s, &evs, &ms, &touched);
    uint8_t(*changed)[PM_ID_BYTES] = calloc(ms.n + 1, PM_ID_BYTES);
    size_t n_changed = 0;
    if (!changed && !rc)
        rc = PM_E_NOMEM;
    for (size_t i = 0; !rc && i < ms.n; i++) {
        int validity_changed = 0;
        rc = write_member(txn, s, &ms.m[i], &validity_changed);
        if (validity_changed)
            memcpy(changed[n_changed++], ms.m[i].id, PM_ID_BYTES);
    }
    /* A member record the fold no longer produces (its only admission was cut with a
     * revoked approver's feed) goes, and what its author wrote is derived again. */
    if (!rc)
        rc = drop_unfolded_members(txn, s, &ms);
    for (size_t i = 0; !rc && i < n_changed; i++)
        rc = rederive_author(txn, s, changed[i]);
    /* Studies touched by events the cut removed. */
    pm_uid_list_unique(&touched);
    for (size_t i = 0; !rc && i < touched.n; i++)
        rc = pm_apply_derive_study(txn, s, touched.uids[i]);
    membership_free(&ms);
    pm_uid_list_free(&touched);
    free(changed);
    pm_event_list_free(&evs);
    return rc;
}
