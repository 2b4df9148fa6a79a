/* What the folds of the apply function share, below them: the per-key event index
 * (events per study, reporter and for membership, in the total order; a fork branch's
 * events with their hash), event and UID lists, positions, deleting events, and which
 * events count. Nothing here calls a fold: apply.c's entry points call the folds
 * (members.c, studies.c, roster.c), and the folds call this. */
#include "proto/error.h"
#include "store/apply_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the per-key event index ------------------------------------------------ */

size_t pm_apply_key_prefix(uint8_t *buf, char kind, const char *name)
{
    size_t len = strlen(name);
    buf[0] = (uint8_t)kind;
    memcpy(buf + 1, name, len);
    buf[1 + len] = 0;
    return len + 2;
}

void pm_apply_encode_position(uint8_t *p, const pm_position *pos)
{
    pm_put_be64(p, pos->lamport);
    memcpy(p + 8, pos->origin, PM_ID_BYTES);
    pm_put_be64(p + 8 + PM_ID_BYTES, pos->seq);
}

/* ev's key under (kind, name) in the per-key index, into key (2 + 64 + POS_LEN
 * bytes at least); its length. */
static size_t event_index_key(uint8_t *key, char kind, const char *name, const pm_event *ev)
{
    size_t plen = pm_apply_key_prefix(key, kind, name);
    pm_position pos = pm_event_position(ev);
    pm_apply_encode_position(key + plen, &pos);
    return plen + POS_LEN;
}

int pm_apply_index_event(MDB_txn *txn, pm_store *s, char kind, const char *name, const pm_event *ev)
{
    uint8_t key[2 + 64 + POS_LEN];
    MDB_val k = {event_index_key(key, kind, name, ev), key}, v = {0, ""};
    return pm_store_mdb_error(mdb_put(txn, s->bykey, &k, &v, 0), "index event");
}

int pm_apply_each_key_position(MDB_cursor *cur, char kind, const char *name,
                               int (*fn)(void *ctx, const uint8_t *pos), void *ctx)
{
    if (strlen(name) > 64)
        return PM_OK; /* no event is indexed under it */
    uint8_t prefix[2 + 64];
    size_t plen = pm_apply_key_prefix(prefix, kind, name);
    MDB_val k = {plen, prefix}, v;
    int rc = PM_OK;
    for (int op = MDB_SET_RANGE; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size != plen + POS_LEN || memcmp(k.mv_data, prefix, plen) != 0)
            break; /* past the prefix; a fork branch's keys (longer) are not listed */
        rc = fn(ctx, (const uint8_t *)k.mv_data + plen);
    }
    return rc;
}

int pm_apply_event_at(MDB_txn *txn, pm_store *s, const uint8_t *pos, MDB_val *raw)
{
    /* The events table is keyed by origin and seq: the position without its lamport. */
    MDB_val ek = {PM_ID_BYTES + 8, (uint8_t *)pos + 8};
    return mdb_get(txn, s->events, &ek, raw) == 0;
}

/* The reporter ev names, as its KIND_NAMING key, or NULL: none, or longer than any
 * reporter id (1-64 characters), so never asked for. */
static const char *naming_key(const pm_event *ev)
{
    const char *r = pm_event_reporter(ev->body);
    return r && *r && strlen(r) <= 64 ? r : NULL;
}

int pm_apply_index_naming(MDB_txn *txn, pm_store *s, const pm_event *ev, int add)
{
    const char *name = naming_key(ev);
    if (!name)
        return PM_OK;
    if (add)
        return pm_apply_index_event(txn, s, KIND_NAMING, name, ev);
    uint8_t key[2 + 64 + POS_LEN];
    MDB_val k = {event_index_key(key, KIND_NAMING, name, ev), key};
    int r = mdb_del(txn, s->bykey, &k, NULL);
    return r == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(r, "unindex event");
}

int pm_apply_index_naming_all(MDB_txn *txn, pm_store *s)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->events, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        pm_event *ev;
        if ((rc = pm_event_parse_stored(v.mv_data, v.mv_size, &ev)))
            break;
        rc = pm_apply_index_naming(txn, s, ev, 1);
        pm_event_destroy(&ev);
    }
    mdb_cursor_close(cur);
    return rc;
}

int pm_apply_index_branch_event(MDB_txn *txn, pm_store *s, char kind, const char *name,
                                const pm_event *ev, int add)
{
    uint8_t key[2 + 64 + POS_LEN + PM_HASH_BYTES];
    size_t klen = event_index_key(key, kind, name, ev);
    memcpy(key + klen, ev->hash, PM_HASH_BYTES);
    MDB_val k = {klen + PM_HASH_BYTES, key}, v = {0, ""};
    int r = add ? mdb_put(txn, s->bykey, &k, &v, 0) : mdb_del(txn, s->bykey, &k, NULL);
    return r == MDB_NOTFOUND && !add ? PM_OK : pm_store_mdb_error(r, "index fork branch event");
}

void pm_event_list_free(pm_event_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pm_event_destroy(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

int pm_event_list_push(pm_event_list *l, pm_event *ev)
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

/* The total order extended by the event hash, so that events of two fork branches at
 * one position still fold in the same order on every node. */
static int compare_events(const void *a, const void *b)
{
    const pm_event *x = *(pm_event *const *)a, *y = *(pm_event *const *)b;
    if (x->body->lamport != y->body->lamport)
        return x->body->lamport < y->body->lamport ? -1 : 1;
    int c = memcmp(x->body->origin.data, y->body->origin.data, PM_ID_BYTES);
    if (c)
        return c;
    if (x->body->seq != y->body->seq)
        return x->body->seq < y->body->seq ? -1 : 1;
    return memcmp(x->hash, y->hash, PM_HASH_BYTES);
}

/* Reads the event one index key names: from the feed, or (a key with a hash after the
 * position) from the fork branches. */
static int read_indexed(MDB_txn *txn, pm_store *s, const MDB_val *k, size_t plen, pm_event **out)
{
    const uint8_t *pos = (const uint8_t *)k->mv_data + plen;
    MDB_val ev;
    int rc;
    if (k->mv_size == plen + POS_LEN) {
        MDB_val ek = {PM_ID_BYTES + 8, (uint8_t *)pos + 8};
        rc = mdb_get(txn, s->events, &ek, &ev);
    } else {
        MDB_val fk = {PM_ID_BYTES + 8 + PM_HASH_BYTES, (uint8_t *)pos + 8};
        rc = mdb_get(txn, s->forks, &fk, &ev);
    }
    if ((rc = pm_store_mdb_error(rc, "read indexed event")))
        return rc;
    return pm_event_parse_stored(ev.mv_data, ev.mv_size, out);
}

/* Loads every event indexed under (kind, name), in the total order. */
int pm_apply_load_key_events(MDB_txn *txn, pm_store *s, char kind, const char *name,
                             pm_event_list *out)
{
    uint8_t prefix[2 + 64];
    size_t plen = pm_apply_key_prefix(prefix, kind, name);
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->bykey, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k = {plen, prefix}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE), branches = 0;
    while (r == 0 && !rc) {
        if ((k.mv_size != plen + POS_LEN && k.mv_size != plen + POS_LEN + PM_HASH_BYTES) ||
            memcmp(k.mv_data, prefix, plen) != 0)
            break;
        branches |= k.mv_size != plen + POS_LEN;
        pm_event *e;
        if ((rc = read_indexed(txn, s, &k, plen, &e)))
            break;
        if ((rc = pm_event_list_push(out, e))) {
            pm_event_destroy(&e);
            break;
        }
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (!rc && branches) /* the index orders a branch's events by position, not by hash */
        qsort(out->items, out->n, sizeof *out->items, compare_events);
    return rc;
}

Pm__Position *pm_apply_position_new(const pm_position *p, uint8_t *origin_store)
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

pm_position pm_apply_position_of(const Pm__Position *p)
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

/* Removes one event from the feed and its indexes (the revoked tail of a feed). */
int pm_apply_delete_event(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    pm_position pos = pm_event_position(ev);
    uint8_t fkey[PM_ID_BYTES + 8], okey[POS_LEN], bkey[2 + 64 + POS_LEN];
    memcpy(fkey, pos.origin, PM_ID_BYTES);
    pm_put_be64(fkey + PM_ID_BYTES, pos.seq);
    pm_apply_encode_position(okey, &pos);
    const char *name;
    char kind = pm_apply_event_key(ev, &name);
    size_t plen = pm_apply_key_prefix(bkey, kind ? kind : KIND_MEMBERSHIP, kind ? name : "");
    pm_apply_encode_position(bkey + plen, &pos);
    MDB_val fk = {sizeof fkey, fkey}, ok = {POS_LEN, okey}, bk = {plen + POS_LEN, bkey};
    int r = mdb_del(txn, s->events, &fk, NULL);
    if (!r || r == MDB_NOTFOUND)
        r = mdb_del(txn, s->order, &ok, NULL);
    if (!r || r == MDB_NOTFOUND)
        r = mdb_del(txn, s->bykey, &bk, NULL);
    if (r && r != MDB_NOTFOUND)
        return pm_store_mdb_error(r, "delete revoked event");
    return pm_apply_index_naming(txn, s, ev, 0);
}

int pm_uid_list_add(pm_uid_list *l, const char *uid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->uids, cap * sizeof *grown);
        if (!grown)
            return PM_E_NOMEM;
        l->uids = grown;
        l->cap = cap;
    }
    if (!(l->uids[l->n] = strdup(uid)))
        return PM_E_NOMEM;
    l->n++;
    return PM_OK;
}

static int compare_uids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void pm_uid_list_unique(pm_uid_list *l)
{
    if (l->n < 2)
        return;
    qsort(l->uids, l->n, sizeof *l->uids, compare_uids);
    size_t kept = 1;
    for (size_t i = 1; i < l->n; i++) {
        if (strcmp(l->uids[i], l->uids[kept - 1]) == 0)
            free(l->uids[i]);
        else
            l->uids[kept++] = l->uids[i];
    }
    l->n = kept;
}

void pm_uid_list_free(pm_uid_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->uids[i]);
    free(l->uids);
}

int pm_apply_load_feed(MDB_txn *txn, pm_store *s, const uint8_t *author, uint64_t from_seq,
                       pm_event_list *out)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->events, &cur), "open cursor");
    if (rc)
        return rc;
    uint8_t key[PM_ID_BYTES + 8];
    memcpy(key, author, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, from_seq);
    MDB_val k = {sizeof key, key}, v;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && !rc && k.mv_size == sizeof key &&
           memcmp(k.mv_data, author, PM_ID_BYTES) == 0) {
        pm_event *ev;
        if (!(rc = pm_event_parse_stored(v.mv_data, v.mv_size, &ev)) &&
            (rc = pm_event_list_push(out, ev)))
            pm_event_destroy(&ev);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur); /* closed before the caller writes to the same transaction */
    return rc;
}

char pm_apply_event_key(const pm_event *ev, const char **name)
{
    const Pm__EventBody *b = ev->body;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_GENESIS:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED:
    case PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED: *name = ""; return KIND_MEMBERSHIP;
    case PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED:
        *name = b->reporter_registered->reporter_id;
        return KIND_REPORTER;
    default: *name = pm_event_study_uid(b); return *name && **name ? KIND_STUDY : 0;
    }
}

int pm_apply_event_counts(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    const uint8_t *id = ev->body->origin.data;
    MDB_val k = {PM_ID_BYTES, (void *)id}, v;
    Pm__MemberView *m = NULL;
    if (mdb_get(txn, s->members, &k, &v) == 0)
        m = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
    pm_position pos = pm_event_position(ev);
    int counts = pm_apply_author_valid(m, &pos); /* the fork rule: branches count too */
    if (m)
        pm__member_view__free_unpacked(m, NULL);
    return counts;
}
