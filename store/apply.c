#include "apply.h"
#include "store_internal.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

enum { POS_LEN = 8 + PM_ID_BYTES + 8 };
enum { KIND_MEMBERSHIP = 'M', KIND_STUDY = 'S' };

/* ---- the per-key event index ------------------------------------------------ */

static size_t key_prefix(uint8_t *buf, char kind, const char *name)
{
    size_t len = strlen(name);
    buf[0] = (uint8_t)kind;
    memcpy(buf + 1, name, len);
    buf[1 + len] = 0;
    return len + 2;
}

static void encode_position(uint8_t *p, const pm_position *pos)
{
    pm_put_be64(p, pos->lamport);
    memcpy(p + 8, pos->origin, PM_ID_BYTES);
    pm_put_be64(p + 8 + PM_ID_BYTES, pos->seq);
}

static int index_event(MDB_txn *txn, pm_store *s, char kind, const char *name, const pm_event *ev)
{
    uint8_t key[2 + 64 + POS_LEN];
    size_t plen = key_prefix(key, kind, name);
    pm_position pos = pm_event_position(ev);
    encode_position(key + plen, &pos);
    MDB_val k = {plen + POS_LEN, key}, v = {0, ""};
    return pm_store_mdb_error(mdb_put(txn, s->bykey, &k, &v, 0), "index event");
}

/* The lowest sequence of origin at which a fork is held, or UINT64_MAX. A forked
 * origin's events from there on do not count in any view. */
static uint64_t fork_floor(MDB_txn *txn, pm_store *s, const uint8_t *origin)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, s->forks, &cur) != 0)
        return UINT64_MAX;
    uint8_t key[PM_ID_BYTES + 8];
    memcpy(key, origin, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, 0);
    MDB_val k = {sizeof key, key}, v;
    uint64_t floor = UINT64_MAX;
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size >= sizeof key &&
        memcmp(k.mv_data, origin, PM_ID_BYTES) == 0)
        floor = pm_get_be64((uint8_t *)k.mv_data + PM_ID_BYTES);
    mdb_cursor_close(cur);
    return floor;
}

typedef struct {
    pm_event **items;
    size_t n, cap;
} event_list;

static void event_list_free(event_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pm_event_destroy(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int event_list_push(event_list *l, pm_event *ev)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        pm_event **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return PM_E_NOMEM;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = ev;
    return PM_OK;
}

/* Loads every event indexed under (kind, name), in the total order. */
static int load_key_events(MDB_txn *txn, pm_store *s, char kind, const char *name, event_list *out)
{
    uint8_t prefix[2 + 64];
    size_t plen = key_prefix(prefix, kind, name);
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->bykey, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k = {plen, prefix}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && !rc) {
        if (k.mv_size != plen + POS_LEN || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        MDB_val ek = {PM_ID_BYTES + 8, (uint8_t *)k.mv_data + plen + 8}, ev;
        if ((rc = pm_store_mdb_error(mdb_get(txn, s->events, &ek, &ev), "read indexed event")))
            break;
        pm_event *e;
        if ((rc = pm_event_parse_stored(ev.mv_data, ev.mv_size, &e)))
            break;
        if ((rc = event_list_push(out, e))) {
            pm_event_destroy(&e);
            break;
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc;
}

/* ---- membership --------------------------------------------------------------- */

static Pm__Position *position_new(const pm_position *p, uint8_t *origin_store)
{
    Pm__Position *pos = malloc(sizeof *pos);
    if (!pos)
        return NULL;
    pm__position__init(pos);
    pos->lamport = p->lamport;
    memcpy(origin_store, p->origin, PM_ID_BYTES);
    pos->origin.data = origin_store;
    pos->origin.len = PM_ID_BYTES;
    pos->seq = p->seq;
    return pos;
}

static pm_position position_of(const Pm__Position *p)
{
    pm_position pos = {0};
    if (p) {
        pos.lamport = p->lamport;
        if (p->origin.len == PM_ID_BYTES)
            memcpy(pos.origin, p->origin.data, PM_ID_BYTES);
        pos.seq = p->seq;
    }
    return pos;
}

int pm_apply_author_valid(const Pm__MemberView *m, const pm_position *pos)
{
    if (!m || strcmp(m->state, "pending") == 0 || !m->state[0])
        return 0;
    if (strcmp(m->state, "revoked") == 0)
        return pos->seq <= m->revoked_after_seq;
    return 1;
}

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

static int id_cmp(const void *a, const void *b) { return memcmp(a, b, PM_ID_BYTES); }

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
            mv.admitted_at = position_new(&f->admitted_at, admitted_origin);
    if (f->state == M_REVOKED) {
        mv.revoked_at = position_new(&f->revoked_at, revoked_origin);
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
            pm_position pa = position_of(prev->admitted_at), pr = position_of(prev->revoked_at);
            pm_position na = position_of(mv.admitted_at), nr = position_of(mv.revoked_at);
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

static int derive_study(MDB_txn *txn, pm_store *s, const char *uid);

/* Removes one event from the feed and its indexes (the revoked tail of a feed). */
static int delete_event(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    pm_position pos = pm_event_position(ev);
    uint8_t fkey[PM_ID_BYTES + 8], okey[POS_LEN], bkey[2 + 64 + POS_LEN];
    memcpy(fkey, pos.origin, PM_ID_BYTES);
    pm_put_be64(fkey + PM_ID_BYTES, pos.seq);
    encode_position(okey, &pos);
    const char *uid = pm_event_study_uid(ev->body);
    size_t plen = key_prefix(bkey, uid ? KIND_STUDY : KIND_MEMBERSHIP, uid ? uid : "");
    encode_position(bkey + plen, &pos);
    MDB_val fk = {sizeof fkey, fkey}, ok = {POS_LEN, okey}, bk = {plen + POS_LEN, bkey};
    int r = mdb_del(txn, s->events, &fk, NULL);
    if (!r || r == MDB_NOTFOUND)
        r = mdb_del(txn, s->order, &ok, NULL);
    if (!r || r == MDB_NOTFOUND)
        r = mdb_del(txn, s->bykey, &bk, NULL);
    return r == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(r, "delete revoked event");
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

typedef struct {
    char **uids;
    size_t n;
} uid_list;

static int uid_list_add(uid_list *l, const char *uid)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->uids[i], uid) == 0)
            return PM_OK;
    char **grown = realloc(l->uids, (l->n + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    l->uids = grown;
    if (!(l->uids[l->n] = strdup(uid)))
        return PM_E_NOMEM;
    l->n++;
    return PM_OK;
}

static void uid_list_free(uid_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->uids[i]);
    free(l->uids);
}

/* Re-derives every study view the author's events touch (its validity changed). */
static int rederive_author(MDB_txn *txn, pm_store *s, const uint8_t *author)
{
    event_list feed = {0};
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->events, &cur), "open cursor");
    if (rc)
        return rc;
    uint8_t key[PM_ID_BYTES + 8];
    memcpy(key, author, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, 1);
    MDB_val k = {sizeof key, key}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && !rc && k.mv_size == sizeof key && memcmp(k.mv_data, author, PM_ID_BYTES) == 0) {
        pm_event *ev;
        if (!(rc = pm_event_parse_stored(v.mv_data, v.mv_size, &ev)) &&
            (rc = event_list_push(&feed, ev)))
            pm_event_destroy(&ev);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    /* The cursor is closed before deriving: derive_study writes to the same txn. Each
     * study once, however many of the author's events touch it. */
    uid_list uids = {0};
    for (size_t i = 0; !rc && i < feed.n; i++) {
        const char *uid = pm_event_study_uid(feed.items[i]->body);
        if (uid && *uid)
            rc = uid_list_add(&uids, uid);
    }
    for (size_t i = 0; !rc && i < uids.n; i++)
        rc = derive_study(txn, s, uids.uids[i]);
    uid_list_free(&uids);
    event_list_free(&feed);
    return rc;
}

/* Removes a revoked member's events after its cut (the feed's tail) from the store,
 * remembering the studies they touched and whether membership events went. Every store
 * then holds the same events of a revoked member whatever order they arrived in, and
 * later ones are refused at ingest (PM_E_REVOKED). */
static int truncate_revoked(MDB_txn *txn, pm_store *s, const uint8_t *author, uint64_t cut,
                            uid_list *touched, int *membership_cut)
{
    uint8_t key[PM_ID_BYTES + 8];
    memcpy(key, author, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, cut + 1);
    event_list tail = {0};
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->events, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k = {sizeof key, key}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && !rc && k.mv_size == sizeof key && memcmp(k.mv_data, author, PM_ID_BYTES) == 0) {
        pm_event *ev;
        if (!(rc = pm_event_parse_stored(v.mv_data, v.mv_size, &ev)) &&
            (rc = event_list_push(&tail, ev)))
            pm_event_destroy(&ev);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; !rc && i < tail.n; i++) {
        const char *uid = pm_event_study_uid(tail.items[i]->body);
        if (uid && *uid)
            rc = uid_list_add(touched, uid);
        else
            *membership_cut = 1;
        if (!rc)
            rc = delete_event(txn, s, tail.items[i]);
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
    event_list_free(&tail);
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
static int fold_all_membership(MDB_txn *txn, pm_store *s, event_list *evs, membership *ms,
                               uid_list *touched)
{
    for (int round = 0; round < 64; round++) {
        int rc = load_key_events(txn, s, KIND_MEMBERSHIP, "", evs);
        for (size_t i = 0; !rc && i < evs->n; i++)
            if (evs->items[i]->body->seq < fork_floor(txn, s, evs->items[i]->body->origin.data))
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
        event_list_free(evs);
        membership_free(ms);
    }
    return PM_E_STORE; /* cannot happen: each round removes events */
}

static int drop_unfolded_members(MDB_txn *txn, pm_store *s, membership *ms)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->members, &cur), "open cursor");
    if (rc)
        return rc;
    uint8_t (*gone)[PM_ID_BYTES] = NULL;
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

static int derive_membership(MDB_txn *txn, pm_store *s)
{
    event_list evs = {0};
    membership ms = {0};
    uid_list touched = {0};
    int rc = fold_all_membership(txn, s, &evs, &ms, &touched);
    uint8_t (*changed)[PM_ID_BYTES] = calloc(ms.n + 1, PM_ID_BYTES);
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
    for (size_t i = 0; !rc && i < touched.n; i++)
        rc = derive_study(txn, s, touched.uids[i]);
    membership_free(&ms);
    uid_list_free(&touched);
    free(changed);
    event_list_free(&evs);
    return rc;
}

/* ---- studies and their worklist items ------------------------------------------ */

typedef struct {
    uint8_t id[PM_ID_BYTES];
    Pm__MemberView *view; /* NULL: not a known member */
    uint64_t fork_floor;  /* its events from this seq on do not count */
} author_cache_entry;

typedef struct {
    author_cache_entry *e;
    size_t n;
} author_cache;

static int author_valid(MDB_txn *txn, pm_store *s, author_cache *c, const pm_event *ev)
{
    const uint8_t *id = ev->body->origin.data;
    author_cache_entry *hit = NULL;
    for (size_t i = 0; i < c->n && !hit; i++)
        if (memcmp(c->e[i].id, id, PM_ID_BYTES) == 0)
            hit = &c->e[i];
    if (!hit) {
        author_cache_entry *grown = realloc(c->e, (c->n + 1) * sizeof *grown);
        if (!grown)
            return 0;
        c->e = grown;
        hit = &c->e[c->n++];
        memcpy(hit->id, id, PM_ID_BYTES);
        hit->view = NULL;
        MDB_val k = {PM_ID_BYTES, (void *)id}, v;
        if (mdb_get(txn, s->members, &k, &v) == 0)
            hit->view = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
        hit->fork_floor = fork_floor(txn, s, id);
    }
    pm_position pos = pm_event_position(ev);
    return pm_apply_author_valid(hit->view, &pos) && ev->body->seq < hit->fork_floor;
}

static void author_cache_free(author_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].view)
            pm__member_view__free_unpacked(c->e[i].view, NULL);
    free(c->e);
}

/* Everything a study view points into while it is being built. */
typedef struct {
    Pm__StudyView sv;
    Pm__ClaimView claim;
    Pm__ClaimView **lost;
    Pm__ReportView **reports;
    ProtobufCBinaryData *holders;
    size_t n_holders;
    Pm__Position *positions[64];
    size_t n_positions;
    uint8_t origins[64][PM_ID_BYTES];
    /* Each origin's latest announcement, in the order the origins first announced. */
    const Pm__StudyAnnounced **latest;
    const uint8_t **latest_origin;
    size_t n_latest;
    /* The union of those, when more than one origin announced (owned). */
    Pm__StudyAnnounced merged;
    Pm__Series *merged_series;
    Pm__Series **merged_series_ptrs;
    size_t n_merged;
} study_fold;

/* Remembers the origin's latest announcement. */
static void note_announcement(study_fold *f, const uint8_t *origin, const Pm__StudyAnnounced *a)
{
    for (size_t i = 0; i < f->n_latest; i++)
        if (memcmp(f->latest_origin[i], origin, PM_ID_BYTES) == 0) {
            f->latest[i] = a;
            return;
        }
    const Pm__StudyAnnounced **l = realloc(f->latest, (f->n_latest + 1) * sizeof *l);
    if (l)
        f->latest = l;
    const uint8_t **o = realloc(f->latest_origin, (f->n_latest + 1) * sizeof *o);
    if (o)
        f->latest_origin = o;
    if (!l || !o)
        return;
    f->latest[f->n_latest] = a;
    f->latest_origin[f->n_latest++] = origin;
}

static int add_instance(Pm__Series *se, Pm__Instance *in)
{
    for (size_t i = 0; i < se->n_instances; i++)
        if (strcmp(se->instances[i]->sop_instance_uid, in->sop_instance_uid) == 0)
            return PM_OK;
    Pm__Instance **grown = realloc(se->instances, (se->n_instances + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    se->instances = grown;
    se->instances[se->n_instances++] = in;
    return PM_OK;
}

/* The study as the mesh holds it: the acquiring site's latest announcement for the
 * patient and study fields, and every instance any origin announced (a report SR
 * added at another trust, instances sent to two trusts), each once. Origins are
 * taken in the order they first announced, so the result does not depend on
 * arrival order. */
static int merge_announcements(study_fold *f)
{
    if (f->n_latest <= 1) {
        f->sv.study = f->n_latest ? (Pm__StudyAnnounced *)f->latest[0] : NULL;
        return PM_OK;
    }
    size_t max_series = 0;
    for (size_t i = 0; i < f->n_latest; i++)
        max_series += f->latest[i]->n_series;
    f->merged_series = calloc(max_series + 1, sizeof *f->merged_series);
    f->merged_series_ptrs = calloc(max_series + 1, sizeof *f->merged_series_ptrs);
    if (!f->merged_series || !f->merged_series_ptrs)
        return PM_E_NOMEM;
    f->merged = *f->latest[0]; /* the site announced first */
    for (size_t i = 0; i < f->n_latest; i++)
        for (size_t s = 0; s < f->latest[i]->n_series; s++) {
            const Pm__Series *se = f->latest[i]->series[s];
            size_t k;
            for (k = 0; k < f->n_merged; k++)
                if (strcmp(f->merged_series[k].series_instance_uid, se->series_instance_uid) == 0)
                    break;
            if (k == f->n_merged) {
                f->merged_series[k] = *se;
                f->merged_series[k].instances = NULL;
                f->merged_series[k].n_instances = 0;
                f->merged_series_ptrs[k] = &f->merged_series[k];
                f->n_merged++;
            }
            for (size_t j = 0; j < se->n_instances; j++)
                if (add_instance(&f->merged_series[k], se->instances[j]))
                    return PM_E_NOMEM;
        }
    f->merged.series = f->merged_series_ptrs;
    f->merged.n_series = f->n_merged;
    f->sv.study = &f->merged;
    return PM_OK;
}

static Pm__Position *fold_position(study_fold *f, const pm_event *ev)
{
    if (f->n_positions == 64)
        return NULL; /* positions beyond 64 claims/reports are left out of the record */
    pm_position p = pm_event_position(ev);
    size_t i = f->n_positions;
    Pm__Position *pos = position_new(&p, f->origins[i]);
    if (pos)
        f->positions[f->n_positions++] = pos;
    return pos;
}

static int add_holder(study_fold *f, const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < f->n_holders; i++)
        if (memcmp(f->holders[i].data, id->data, PM_ID_BYTES) == 0)
            return PM_OK;
    ProtobufCBinaryData *grown = realloc(f->holders, (f->n_holders + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    f->holders = grown;
    f->holders[f->n_holders++] = *id;
    return PM_OK;
}

static int holder_cmp(const void *a, const void *b)
{
    return memcmp(((const ProtobufCBinaryData *)a)->data, ((const ProtobufCBinaryData *)b)->data,
                  PM_ID_BYTES);
}

static int claim_holds(const Pm__StudyView *sv, const Pm__ClaimView *claim, const char *reporter,
                       uint64_t at_ms)
{
    if (strcmp(sv->state, "claimed") != 0)
        return 0;
    return strcmp(claim->reporter, reporter) != 0 && claim->lease_until_ms > at_ms;
}

static void fold_claim(study_fold *f, const pm_event *ev)
{
    const Pm__ItemClaimed *c = ev->body->item_claimed;
    Pm__StudyView *sv = &f->sv;
    int free_item = strcmp(sv->state, "unreported") == 0;
    int renewable = strcmp(sv->state, "claimed") == 0 &&
                    !claim_holds(sv, &f->claim, c->reporter, ev->body->wall_ms);
    if (free_item || renewable) {
        pm__claim_view__init(&f->claim);
        f->claim.reporter = c->reporter;
        f->claim.node = ev->body->origin;
        f->claim.time_ms = ev->body->wall_ms;
        f->claim.lease_until_ms = c->lease_until_ms;
        f->claim.at = fold_position(f, ev);
        sv->claim = &f->claim;
        sv->state = "claimed";
        return;
    }
    /* Lost: someone else holds the item, or it is already reported. Kept so the loser
     * can be told. */
    Pm__ClaimView *lost = calloc(1, sizeof *lost);
    Pm__ClaimView **grown = lost ? realloc(f->lost, (sv->n_lost_claims + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(lost);
        return;
    }
    pm__claim_view__init(lost);
    lost->reporter = c->reporter;
    lost->node = ev->body->origin;
    lost->time_ms = ev->body->wall_ms;
    lost->lease_until_ms = c->lease_until_ms;
    lost->at = fold_position(f, ev);
    f->lost = grown;
    f->lost[sv->n_lost_claims++] = lost;
    sv->lost_claims = f->lost;
}

static void fold_report(study_fold *f, const pm_event *ev)
{
    const Pm__ReportSubmitted *r = ev->body->report_submitted;
    Pm__StudyView *sv = &f->sv;
    Pm__ReportView *rv = calloc(1, sizeof *rv);
    Pm__ReportView **grown = rv ? realloc(f->reports, (sv->n_reports + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(rv);
        return;
    }
    pm__report_view__init(rv);
    rv->reporter = r->reporter;
    rv->node = ev->body->origin;
    rv->time_ms = ev->body->wall_ms;
    rv->text = r->text;
    rv->sr_sop_instance_uid = r->sr_sop_instance_uid;
    rv->at = fold_position(f, ev);
    f->reports = grown;
    f->reports[sv->n_reports++] = rv;
    sv->reports = f->reports;
    if (sv->n_reports == 1)
        sv->reported_ms = ev->body->wall_ms;
    /* A report is never lost: a second report by someone else is kept and flagged
     * until a verification reconciles them. */
    for (size_t i = 0; i + 1 < sv->n_reports; i++)
        if (strcmp(sv->reports[i]->reporter, r->reporter) != 0)
            sv->conflict = 1;
    if (strcmp(sv->state, "verified") != 0)
        sv->state = "reported";
}

static int verifier_is_second_reader(const Pm__StudyView *sv, const char *verifier)
{
    for (size_t i = 0; i < sv->n_reports; i++)
        if (strcmp(sv->reports[i]->reporter, verifier) != 0)
            return 1;
    return 0;
}

static void fold_study_event(study_fold *f, const pm_event *ev)
{
    const Pm__EventBody *b = ev->body;
    Pm__StudyView *sv = &f->sv;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED:
        if (!sv->study) {
            sv->site = b->origin;
            sv->announced_ms = b->wall_ms;
        }
        /* Each origin's latest announcement lists all it holds; merged after the fold. */
        note_announcement(f, b->origin.data, b->study_announced);
        sv->study = b->study_announced;
        add_holder(f, &b->origin);
        break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED:
        fold_claim(f, ev);
        break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED:
        if (strcmp(sv->state, "claimed") == 0 &&
            strcmp(f->claim.reporter, b->item_released->reporter) == 0) {
            sv->state = "unreported";
            sv->claim = NULL;
        }
        break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED:
        fold_report(f, ev);
        break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED:
        /* A second reader verifies: someone other than the author of a report. */
        if (strcmp(sv->state, "reported") == 0 &&
            verifier_is_second_reader(sv, b->report_verified->reporter)) {
            sv->state = "verified";
            sv->verified_by = b->report_verified->reporter;
            sv->verified_ms = b->wall_ms;
            sv->conflict = 0;
        }
        break;
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED:
        /* The reader's node now caches the study and can serve it. */
        add_holder(f, &b->origin);
        sv->access_count++;
        break;
    default:
        break;
    }
}

static void study_fold_free(study_fold *f)
{
    for (size_t i = 0; i < f->sv.n_lost_claims; i++)
        free(f->lost[i]);
    for (size_t i = 0; i < f->sv.n_reports; i++)
        free(f->reports[i]);
    for (size_t i = 0; i < f->n_positions; i++)
        free(f->positions[i]);
    free(f->lost);
    free(f->reports);
    free(f->holders);
    for (size_t i = 0; i < f->n_merged; i++)
        free(f->merged_series[i].instances);
    free(f->merged_series);
    free(f->merged_series_ptrs);
    free(f->latest);
    free(f->latest_origin);
}

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

static int derive_study(MDB_txn *txn, pm_store *s, const char *uid)
{
    event_list evs = {0};
    author_cache authors = {0};
    study_fold f;
    memset(&f, 0, sizeof f);
    pm__study_view__init(&f.sv);
    f.sv.state = "unreported";
    uint8_t *buf = NULL;
    int rc = load_key_events(txn, s, KIND_STUDY, uid, &evs);
    for (size_t i = 0; !rc && i < evs.n; i++)
        if (author_valid(txn, s, &authors, evs.items[i]))
            fold_study_event(&f, evs.items[i]);
    if (!rc)
        rc = merge_announcements(&f);
    if (rc)
        goto done;

    /* The old record's patient, to keep the patient index in step. */
    MDB_val k = {strlen(uid), (void *)uid}, old;
    if (mdb_get(txn, s->studies, &k, &old) == 0) {
        Pm__StudyView *prev = pm__study_view__unpack(NULL, old.mv_size, old.mv_data);
        if (prev && prev->study) {
            rc = put_index(txn, s->bypatient, prev->study->patient_id, uid, 0);
            if (!rc)
                rc = put_index(txn, s->bydate, prev->study->study_date, uid, 0);
        }
        if (prev)
            pm__study_view__free_unpacked(prev, NULL);
    }
    if (rc)
        goto done;
    if (!f.sv.study) { /* nothing valid announces it (yet): no view */
        rc = pm_view_write(txn, s, s->studies, 's', uid, strlen(uid), NULL, 0);
        goto done;
    }
    if (f.n_holders > 1)
        qsort(f.holders, f.n_holders, sizeof *f.holders, holder_cmp);
    f.sv.holders = f.holders;
    f.sv.n_holders = f.n_holders;
    for (size_t i = 0; i < f.sv.study->n_series; i++) {
        const Pm__Series *se = f.sv.study->series[i];
        f.sv.instance_count += se->n_instances;
        for (size_t j = 0; j < se->n_instances; j++)
            f.sv.total_bytes += se->instances[j]->size;
    }
    size_t len = pm__study_view__get_packed_size(&f.sv);
    if (!(buf = malloc(len))) {
        rc = PM_E_NOMEM;
        goto done;
    }
    pm__study_view__pack(&f.sv, buf);
    rc = pm_view_write(txn, s, s->studies, 's', uid, strlen(uid), buf, len);
    if (!rc)
        rc = put_index(txn, s->bypatient, f.sv.study->patient_id, uid, 1);
    if (!rc)
        rc = put_index(txn, s->bydate, f.sv.study->study_date, uid, 1);
done:
    free(buf);
    study_fold_free(&f);
    author_cache_free(&authors);
    event_list_free(&evs);
    return rc;
}

/* ---- the entry points ----------------------------------------------------------- */

int pm_apply_fork(pm_store *s, MDB_txn *txn, const uint8_t origin[PM_ID_BYTES])
{
    int rc = derive_membership(txn, s);
    return rc ? rc : rederive_author(txn, s, origin);
}

int pm_apply_membership(pm_store *s, MDB_txn *txn) { return derive_membership(txn, s); }

int pm_apply_event(pm_store *s, MDB_txn *txn, const pm_event *ev, int *membership_pending)
{
    uint8_t okey[POS_LEN];
    pm_position pos = pm_event_position(ev);
    encode_position(okey, &pos);
    MDB_val k = {POS_LEN, okey}, v = {0, ""};
    int rc = pm_store_mdb_error(mdb_put(txn, s->order, &k, &v, 0), "order index");
    if (rc)
        return rc;
    switch (ev->body->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_GENESIS:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED:
        if ((rc = index_event(txn, s, KIND_MEMBERSHIP, "", ev)))
            return rc;
        if (membership_pending) {
            *membership_pending = 1;
            return PM_OK;
        }
        return derive_membership(txn, s);
    default: {
        const char *uid = pm_event_study_uid(ev->body);
        if (!uid || !*uid)
            return PM_OK;
        if ((rc = index_event(txn, s, KIND_STUDY, uid, ev)))
            return rc;
        return derive_study(txn, s, uid);
    }
    }
}
