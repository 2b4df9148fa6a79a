#include "store/feed.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/apply.h"
#include "store/forks_internal.h"
#include "store/sigcheck.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

enum { HEAD_LEN = 8 + PM_HASH_BYTES + 8, FEED_KEY_LEN = PM_ID_BYTES + 8 };

static void feed_key(uint8_t key[FEED_KEY_LEN], const uint8_t *origin, uint64_t seq)
{
    memcpy(key, origin, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, seq);
}

static int read_head(MDB_txn *txn, pm_store *s, const uint8_t *origin, pm_head *out)
{
    MDB_val k = {PM_ID_BYTES, (void *)origin}, v;
    int rc = mdb_get(txn, s->heads, &k, &v);
    if (rc)
        return pm_store_mdb_error(rc, "read head");
    if (v.mv_size != HEAD_LEN)
        return PM_E_STORE;
    memcpy(out->origin, origin, PM_ID_BYTES);
    out->seq = pm_get_be64(v.mv_data);
    memcpy(out->hash, (uint8_t *)v.mv_data + 8, PM_HASH_BYTES);
    out->lamport = pm_get_be64((uint8_t *)v.mv_data + 8 + PM_HASH_BYTES);
    return PM_OK;
}

static int read_mesh(MDB_txn *txn, pm_store *s, uint8_t out[PM_HASH_BYTES])
{
    MDB_val k = {4, "mesh"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc)
        return pm_store_mdb_error(rc, "read mesh id");
    if (v.mv_size != PM_HASH_BYTES)
        return PM_E_STORE;
    memcpy(out, v.mv_data, PM_HASH_BYTES);
    return PM_OK;
}

/* Mesh membership of the event: the genesis must be the one the mesh id names; every
 * other event must carry the mesh id. */
int pm_feed_check_mesh(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    uint8_t mesh[PM_HASH_BYTES];
    int rc = read_mesh(txn, s, mesh);
    if (rc == PM_E_NOTFOUND)
        return PM_E_MESH;
    if (rc)
        return rc;
    if (ev->body->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS)
        return memcmp(ev->hash, mesh, PM_HASH_BYTES) == 0 ? PM_OK : PM_E_MESH;
    if (ev->body->mesh.len != PM_HASH_BYTES)
        return PM_E_MESH;
    return memcmp(ev->body->mesh.data, mesh, PM_HASH_BYTES) == 0 ? PM_OK : PM_E_MESH;
}

/* An event whose author was revoked before it is refused; one that came before the
 * revocation stands. */
static int check_revoked(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    MDB_val k = {PM_ID_BYTES, ev->body->origin.data}, v;
    int rc = mdb_get(txn, s->members, &k, &v);
    if (rc == MDB_NOTFOUND)
        return PM_OK;
    if (rc)
        return pm_store_mdb_error(rc, "read member");
    Pm__MemberView *m = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
    if (!m)
        return PM_E_STORE;
    pm_position pos = pm_event_position(ev);
    rc = PM_OK;
    if (strcmp(m->state, "revoked") == 0 && !pm_apply_author_valid(m, &pos))
        rc = PM_E_REVOKED;
    pm__member_view__free_unpacked(m, NULL);
    return rc;
}

/* Checks ev against its feed and, if it extends it, stores and applies it. */
static int insert_event(MDB_txn *txn, pm_store *s, const pm_event *ev, int *membership_pending,
                        int signature_checked)
{
    const uint8_t *origin = ev->body->origin.data;
    uint64_t seq = ev->body->seq;
    int rc;
    pm_head head;
    rc = read_head(txn, s, origin, &head);
    if (rc == PM_E_NOTFOUND) {
        memset(&head, 0, sizeof head);
        rc = PM_OK;
    }
    if (rc)
        return rc;
    static const uint8_t zeros[PM_HASH_BYTES];
    int extends = seq == head.seq + 1 &&
                  memcmp(ev->body->prev.data, seq == 1 ? zeros : head.hash, PM_HASH_BYTES) == 0;
    if (seq <= head.seq) {
        uint8_t key[FEED_KEY_LEN];
        feed_key(key, origin, seq);
        MDB_val k = {sizeof key, key}, v;
        if ((rc = mdb_get(txn, s->events, &k, &v)))
            return pm_store_mdb_error(rc, "read event");
        if (v.mv_size == ev->raw_len && memcmp(v.mv_data, ev->raw, ev->raw_len) == 0)
            return PM_ALREADY_HELD; /* identical bytes to a verified event */
    }
    /* A fork branch event held already (verified when recorded) is news only when it
     * now extends the feed: it is then promoted into it. */
    int in_branch = pm_forks_holds(txn, s, origin, seq, ev->hash);
    if (in_branch && !extends)
        return PM_ALREADY_HELD;
    /* Nothing the event says is trusted before its signature is checked. */
    if ((!signature_checked && !in_branch && (rc = pm_event_verify(ev))) ||
        (rc = pm_feed_check_mesh(txn, s, ev)))
        return rc;
    if (!extends) {
        /* A different event at a held seq, or one that continues a branch held: fork
         * branch events (store/forks.h). One at the next seq whose predecessor is not
         * our head stays a broken chain until its predecessor arrives (gossip shows the
         * sender ours, and sends branches oldest first). */
        int branch = seq <= head.seq ||
                     (seq > 1 && pm_forks_holds(txn, s, origin, seq - 1, ev->body->prev.data));
        if (!branch)
            return seq > head.seq + 1 ? PM_E_GAP : PM_E_CHAIN;
        if ((rc = check_revoked(txn, s, ev)))
            return rc;
        rc = pm_forks_record(txn, s, ev);
        return rc == PM_OK ? PM_E_FORK : rc;
    }
    if ((rc = check_revoked(txn, s, ev)))
        return rc;
    /* Lamport clocks rise along a feed, by a bounded step: a decision that depends only
     * on the feed itself (so every node makes it alike), and that keeps one event from
     * pushing every clock to its limit, which would stop all nodes from writing. */
    uint64_t base = seq == 1 ? 0 : head.lamport;
    if ((seq > 1 && ev->body->lamport <= head.lamport) ||
        ev->body->lamport > base + PM_LAMPORT_STEP_MAX)
        return PM_E_TIME;

    if (in_branch && (rc = pm_forks_promote(txn, s, ev)))
        return rc;
    uint8_t key[FEED_KEY_LEN];
    feed_key(key, origin, seq);
    MDB_val k = {sizeof key, key}, v = {ev->raw_len, ev->raw};
    if ((rc = mdb_put(txn, s->events, &k, &v, 0)))
        return pm_store_mdb_error(rc, "write event");
    uint8_t hv[HEAD_LEN];
    pm_put_be64(hv, seq);
    memcpy(hv + 8, ev->hash, PM_HASH_BYTES);
    pm_put_be64(hv + 8 + PM_HASH_BYTES, ev->body->lamport);
    MDB_val hk = {PM_ID_BYTES, (void *)origin}, hval = {HEAD_LEN, hv};
    if ((rc = mdb_put(txn, s->heads, &hk, &hval, 0)))
        return pm_store_mdb_error(rc, "write head");
    uint64_t lamport;
    if ((rc = pm_meta_get_u64(txn, s, "lamport", &lamport)))
        return rc;
    if (ev->body->lamport > lamport && (rc = pm_meta_put_u64(txn, s, "lamport", ev->body->lamport)))
        return rc;
    return pm_apply_event(s, txn, ev, membership_pending);
}

int pm_feed_append(pm_store *s, const pm_identity *id, Pm__EventBody *body, pm_event **out)
{
    MDB_txn *txn = NULL;
    pm_event *ev = NULL;
    int is_genesis = body->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS;
    int rc = pm_store_txn_begin(s, 1, &txn);
    if (rc)
        return rc;
    const uint8_t *self = pm_identity_public(id);
    pm_head head;
    rc = read_head(txn, s, self, &head);
    if (rc == PM_E_NOTFOUND) {
        memset(&head, 0, sizeof head);
        rc = PM_OK;
    }
    uint8_t mesh[PM_HASH_BYTES];
    if (!rc) {
        rc = read_mesh(txn, s, mesh);
        if (is_genesis) /* a store belongs to one mesh: a second genesis is refused */
            rc = rc == PM_OK ? PM_E_EXISTS : rc == PM_E_NOTFOUND ? PM_OK : rc;
        else if (rc == PM_E_NOTFOUND)
            rc = PM_E_MESH;
    }
    uint64_t lamport = 0;
    if (!rc)
        rc = pm_meta_get_u64(txn, s, "lamport", &lamport);
    if (rc)
        goto fail;
    body->origin.data = (uint8_t *)self;
    body->origin.len = PM_ID_BYTES;
    body->seq = head.seq + 1;
    body->prev.data = head.hash; /* zeros when the feed is empty */
    body->prev.len = PM_HASH_BYTES;
    /* Above everything held, but within the step a feed may rise by (see insert_event). */
    body->lamport = lamport + 1;
    if (head.seq && body->lamport > head.lamport + PM_LAMPORT_STEP_MAX)
        body->lamport = head.lamport + PM_LAMPORT_STEP_MAX;
    body->wall_ms = pm_now_ms();
    body->mesh.data = is_genesis ? NULL : mesh;
    body->mesh.len = is_genesis ? 0 : PM_HASH_BYTES;
    if ((rc = pm_event_build(id, body, &ev)))
        goto fail;
    if (is_genesis) {
        MDB_val k = {4, "mesh"}, v = {PM_HASH_BYTES, ev->hash};
        if ((rc = pm_store_mdb_error(mdb_put(txn, s->meta, &k, &v, 0), "record mesh id")))
            goto fail;
    }
    if ((rc = insert_event(txn, s, ev, NULL, 1))) /* just built and parsed: signed by us */
        goto fail;
    if ((rc = pm_store_txn_commit(txn))) {
        pm_event_destroy(&ev);
        return rc;
    }
    if (out)
        *out = ev;
    else
        pm_event_destroy(&ev);
    return PM_OK;
fail:
    mdb_txn_abort(txn);
    pm_event_destroy(&ev);
    return rc;
}

/* checks: NULL, or the checks of the events' signatures under way on other threads
 * (store/sigcheck.h), each waited for in turn; all_checked: every one was checked. */
static int ingest_batch(pm_store *s, const uint8_t *const *bytes, const size_t *lens, size_t n,
                        int *results, int all_checked, pm_sigcheck *checks)
{
    /* Parse without the signature check first: an event already held (gossip often
     * brings the same event from several peers) is recognised by its bytes and needs
     * no verification; only new ones pay for it, inside insert_event. An event the
     * checks parsed already is taken from them. */
    pm_event **evs = calloc(n ? n : 1, sizeof *evs);
    if (!evs)
        return PM_E_NOMEM;
    MDB_txn *txn = NULL;
    int membership_pending = 0; /* membership is derived once per batch, at the end */
    int rc = pm_store_txn_begin(s, 1, &txn);
    for (size_t i = 0; !rc && i < n; i++) {
        int code = PM_OK, verdict = pm_sigcheck_wait(checks, i, &code);
        evs[i] = pm_sigcheck_take(checks, i);
        results[i] = evs[i] ? PM_OK : pm_event_parse_stored(bytes[i], lens[i], &evs[i]);
        if (verdict == PM_SIGCHECK_FAILED)
            results[i] = code;
        if (results[i] != PM_OK)
            continue;
        /* insert_event checks everything before it writes anything, so a refused event
         * leaves no trace without a nested transaction; only a store failure (which
         * aborts the whole batch) can stop it half way. Fork evidence is written on
         * purpose. */
        int r = insert_event(txn, s, evs[i], &membership_pending,
                             all_checked || verdict == PM_SIGCHECK_OK);
        if (r != PM_OK && r != PM_ALREADY_HELD && r != PM_E_MESH && r != PM_E_GAP &&
            r != PM_E_CHAIN && r != PM_E_FORK && r != PM_E_REVOKED && r != PM_E_SIG &&
            r != PM_E_TIME && r != PM_E_TOOBIG)
            rc = r; /* failed after writing: abort the batch, store nothing */
        results[i] = r;
    }
    if (!rc && membership_pending)
        rc = pm_apply_membership(s, txn);
    if (rc && txn)
        mdb_txn_abort(txn);
    else if (!rc)
        rc = pm_store_txn_commit(txn);
    for (size_t i = 0; i < n; i++)
        pm_event_destroy(&evs[i]);
    free(evs);
    return rc;
}

int pm_feed_ingest_batch(pm_store *s, const uint8_t *const *bytes, const size_t *lens, size_t n,
                         int *results)
{
    return ingest_batch(s, bytes, lens, n, results, 0, NULL);
}

int pm_feed_ingest_batch_verified(pm_store *s, const uint8_t *const *bytes, const size_t *lens,
                                  size_t n, int *results)
{
    return ingest_batch(s, bytes, lens, n, results, 1, NULL);
}

int pm_feed_ingest_batch_parallel(pm_store *s, const uint8_t *const *bytes, const size_t *lens,
                                  size_t n, int *results)
{
    pm_sigcheck *checks = NULL;
    int rc = pm_sigcheck_start(s, bytes, lens, n, &checks);
    if (!rc)
        rc = ingest_batch(s, bytes, lens, n, results, 0, checks);
    pm_sigcheck_finish(&checks);
    return rc;
}

int pm_feed_ingest(pm_store *s, const uint8_t *bytes, size_t len)
{
    int result;
    int rc = pm_feed_ingest_batch(s, &bytes, &len, 1, &result);
    return rc ? rc : result;
}

int pm_feed_head(pm_store *s, const uint8_t origin[PM_ID_BYTES], pm_head *out)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    rc = read_head(txn, s, origin, out);
    mdb_txn_abort(txn);
    return rc;
}

int pm_feed_heads(pm_store *s, pm_head **out, size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_stat st;
    mdb_stat(txn, s->heads, &st);
    pm_head *heads = calloc(st.ms_entries + 1, sizeof *heads);
    size_t count = 0;
    if (!heads) {
        mdb_txn_abort(txn);
        return PM_E_NOMEM;
    }
    mdb_cursor_open(txn, s->heads, &cur);
    MDB_val k, v;
    int op = MDB_FIRST;
    while (count < st.ms_entries && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != PM_ID_BYTES || v.mv_size != HEAD_LEN)
            continue;
        pm_head *h = &heads[count++];
        memcpy(h->origin, k.mv_data, PM_ID_BYTES);
        h->seq = pm_get_be64(v.mv_data);
        memcpy(h->hash, (uint8_t *)v.mv_data + 8, PM_HASH_BYTES);
        h->lamport = pm_get_be64((uint8_t *)v.mv_data + 8 + PM_HASH_BYTES);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    *out = heads;
    *n = count;
    return PM_OK;
}

int pm_feed_read(pm_store *s, const uint8_t origin[PM_ID_BYTES], uint64_t from_seq,
                 size_t max_events, size_t max_bytes, pm_feed_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    mdb_cursor_open(txn, s->events, &cur);
    uint8_t key[FEED_KEY_LEN];
    feed_key(key, origin, from_seq ? from_seq : 1);
    MDB_val k = {sizeof key, key}, v;
    size_t count = 0, bytes = 0;
    int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && count < max_events && bytes < max_bytes) {
        if (k.mv_size != FEED_KEY_LEN || memcmp(k.mv_data, origin, PM_ID_BYTES) != 0)
            break;
        if ((rc = fn(ctx, v.mv_data, v.mv_size)))
            break;
        count++;
        bytes += v.mv_size;
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int pm_feed_for_each(pm_store *s, pm_feed_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    mdb_cursor_open(txn, s->order, &cur);
    MDB_val k, v;
    int op = MDB_FIRST;
    while (!rc && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != 8 + FEED_KEY_LEN)
            continue;
        MDB_val ek = {FEED_KEY_LEN, (uint8_t *)k.mv_data + 8}, ev;
        if (mdb_get(txn, s->events, &ek, &ev) == 0)
            rc = fn(ctx, ev.mv_data, ev.mv_size);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}
