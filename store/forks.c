/* Fork branches (store/forks.h): recording, promotion into the feed, proofs and the
 * per-origin digest gossip compares. */
#include "store/forks.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/apply.h"
#include "store/forks_internal.h"

#include <stdlib.h>
#include <string.h>

enum { FEED_KEY_LEN = PM_ID_BYTES + 8, FORK_KEY_LEN = FEED_KEY_LEN + PM_HASH_BYTES };

static void fork_key(uint8_t key[FORK_KEY_LEN], const uint8_t *origin, uint64_t seq,
                     const uint8_t *hash)
{
    memcpy(key, origin, PM_ID_BYTES);
    pm_put_be64(key + PM_ID_BYTES, seq);
    memcpy(key + FEED_KEY_LEN, hash, PM_HASH_BYTES);
}

int pm_forks_holds(MDB_txn *txn, pm_store *s, const uint8_t *origin, uint64_t seq,
                   const uint8_t hash[PM_HASH_BYTES])
{
    uint8_t key[FORK_KEY_LEN];
    fork_key(key, origin, seq, hash);
    MDB_val k = {sizeof key, key}, v;
    return mdb_get(txn, s->forks, &k, &v) == 0;
}

/* How many branch events of origin are held, counting up to limit. */
static size_t count_origin(MDB_txn *txn, pm_store *s, const uint8_t *origin, size_t limit)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, s->forks, &cur) != 0)
        return limit;
    MDB_val k = {PM_ID_BYTES, (void *)origin}, v;
    size_t n = 0;
    for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         r == 0 && n < limit && memcmp(k.mv_data, origin, PM_ID_BYTES) == 0;
         r = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        n++;
    mdb_cursor_close(cur);
    return n;
}

int pm_forks_record(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    const uint8_t *origin = ev->body->origin.data;
    uint64_t seq = ev->body->seq;
    uint8_t key[FORK_KEY_LEN];
    fork_key(key, origin, seq, ev->hash);
    MDB_val fk = {FEED_KEY_LEN, key}, fv;
    if (mdb_get(txn, s->events, &fk, &fv) == 0 && fv.mv_size == ev->raw_len &&
        memcmp(fv.mv_data, ev->raw, ev->raw_len) == 0)
        return PM_ALREADY_HELD; /* the feed's own event: not a branch */
    if (pm_forks_holds(txn, s, origin, seq, ev->hash))
        return PM_ALREADY_HELD; /* known proof: nothing new to gossip */
    /* A key that signs without end would fill the disk: past the bound its further
     * branches are refused (what is held already proves the fork). */
    if (count_origin(txn, s, origin, PM_FORKS_MAX_PER_ORIGIN) >= PM_FORKS_MAX_PER_ORIGIN)
        return PM_E_TOOBIG;
    MDB_val k = {sizeof key, key}, v = {ev->raw_len, ev->raw};
    int rc = mdb_put(txn, s->forks, &k, &v, MDB_NOOVERWRITE);
    if (rc)
        return pm_store_mdb_error(rc, "record fork");
    char hex[17];
    pm_hex_encode(origin, 8, hex);
    pm_warn("feed", "fork: origin %s signed two different events with seq %llu (or before)", hex,
            (unsigned long long)seq);
    return pm_apply_branch_event(s, txn, ev);
}

int pm_forks_promote(MDB_txn *txn, pm_store *s, const pm_event *ev)
{
    uint8_t key[FORK_KEY_LEN];
    fork_key(key, ev->body->origin.data, ev->body->seq, ev->hash);
    MDB_val k = {sizeof key, key};
    int r = mdb_del(txn, s->forks, &k, NULL);
    if (r == MDB_NOTFOUND)
        return PM_OK;
    if (r)
        return pm_store_mdb_error(r, "promote fork branch event");
    return pm_apply_branch_unindex(s, txn, ev);
}

int pm_forks_each_txn(MDB_txn *txn, pm_store *s, const uint8_t *origin, pm_feed_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->forks, &cur), "open cursor");
    if (rc)
        return rc;
    /* Copied out first: fn may write to the same transaction. */
    uint8_t **raws = NULL;
    size_t *lens = NULL, n = 0;
    MDB_val k = {origin ? PM_ID_BYTES : 0, (void *)origin}, v;
    int r = origin ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                   : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; r == 0 && !rc; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != FORK_KEY_LEN || (origin && memcmp(k.mv_data, origin, PM_ID_BYTES) != 0))
            break;
        uint8_t **gr = realloc(raws, (n + 1) * sizeof *gr);
        size_t *gl = gr ? realloc(lens, (n + 1) * sizeof *gl) : NULL;
        if (gr)
            raws = gr;
        if (gl)
            lens = gl;
        if (!gr || !gl || !(raws[n] = malloc(v.mv_size))) {
            rc = PM_E_NOMEM;
            break;
        }
        memcpy(raws[n], v.mv_data, v.mv_size);
        lens[n++] = v.mv_size;
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; i < n; i++) {
        if (!rc)
            rc = fn(ctx, raws[i], lens[i]);
        free(raws[i]);
    }
    free(raws);
    free(lens);
    return rc;
}

int pm_forks_each(pm_store *s, const uint8_t *origin, pm_feed_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    rc = pm_forks_each_txn(txn, s, origin, fn, ctx);
    mdb_txn_abort(txn);
    return rc;
}

int pm_forks_top(pm_store *s, const uint8_t origin[PM_ID_BYTES], uint64_t *top)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    *top = 0;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    if (!(rc = pm_store_mdb_error(mdb_cursor_open(txn, s->forks, &cur), "open cursor"))) {
        MDB_val k = {PM_ID_BYTES, (void *)origin}, v;
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             r == 0 && k.mv_size == FORK_KEY_LEN && memcmp(k.mv_data, origin, PM_ID_BYTES) == 0;
             r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint64_t seq = pm_get_be64((uint8_t *)k.mv_data + PM_ID_BYTES);
            if (seq > *top)
                *top = seq;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

int pm_forks_count(pm_store *s, uint64_t *count)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    MDB_stat st;
    rc = pm_store_mdb_error(mdb_stat(txn, s->forks, &st), "stat forks");
    if (!rc)
        *count = st.ms_entries;
    mdb_txn_abort(txn);
    return rc;
}

int pm_forks_floor(pm_store *s, const uint8_t origin[PM_ID_BYTES], uint64_t *floor)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    *floor = 0;
    if ((rc = pm_store_mdb_error(mdb_cursor_open(txn, s->forks, &cur), "open cursor")) == PM_OK) {
        MDB_val k = {PM_ID_BYTES, (void *)origin}, v;
        if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == FORK_KEY_LEN &&
            memcmp(k.mv_data, origin, PM_ID_BYTES) == 0)
            *floor = pm_get_be64((uint8_t *)k.mv_data + PM_ID_BYTES);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc;
}

typedef struct {
    uint8_t (*h)[PM_HASH_BYTES];
    size_t n, cap;
} hash_set;

static int hash_set_add(hash_set *hs, const void *raw, size_t len)
{
    if (hs->n == hs->cap) {
        size_t cap = hs->cap ? 2 * hs->cap : 64;
        uint8_t(*grown)[PM_HASH_BYTES] = realloc(hs->h, cap * PM_HASH_BYTES);
        if (!grown)
            return PM_E_NOMEM;
        hs->h = grown;
        hs->cap = cap;
    }
    pm_hash(raw, len, hs->h[hs->n++]);
    return PM_OK;
}

static int add_branch_hash(void *ctx, const uint8_t *raw, size_t len)
{
    return hash_set_add(ctx, raw, len);
}

static int compare_hashes(const void *a, const void *b)
{
    return memcmp(a, b, PM_HASH_BYTES);
}

int pm_forks_digest(pm_store *s, const uint8_t origin[PM_ID_BYTES], uint64_t floor,
                    uint8_t out[PM_HASH_BYTES])
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    hash_set hs = {0};
    if (!(rc = pm_store_mdb_error(mdb_cursor_open(txn, s->events, &cur), "open cursor"))) {
        uint8_t key[FEED_KEY_LEN];
        memcpy(key, origin, PM_ID_BYTES);
        pm_put_be64(key + PM_ID_BYTES, floor);
        MDB_val k = {sizeof key, key}, v;
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
             r == 0 && !rc && k.mv_size == FEED_KEY_LEN &&
             memcmp(k.mv_data, origin, PM_ID_BYTES) == 0;
             r = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            rc = hash_set_add(&hs, v.mv_data, v.mv_size);
        mdb_cursor_close(cur);
    }
    if (!rc)
        rc = pm_forks_each_txn(txn, s, origin, add_branch_hash, &hs);
    mdb_txn_abort(txn);
    if (!rc) { /* sorted: the same set gives the same digest whichever branch is the feed */
        qsort(hs.h, hs.n, PM_HASH_BYTES, compare_hashes);
        pm_hasher h;
        pm_hasher_init(&h);
        pm_hasher_update(&h, hs.h ? (const void *)hs.h : "", hs.n * PM_HASH_BYTES);
        pm_hasher_final(&h, out);
    }
    free(hs.h);
    return rc;
}

int pm_feed_record_fork_proof(pm_store *s, const uint8_t *a, size_t alen, const uint8_t *b,
                              size_t blen)
{
    pm_event *ea = NULL, *eb = NULL;
    MDB_txn *txn = NULL;
    int rc = pm_event_parse(a, alen, &ea);
    if (!rc)
        rc = pm_event_parse(b, blen, &eb);
    if (!rc && (memcmp(ea->body->origin.data, eb->body->origin.data, PM_ID_BYTES) != 0 ||
                ea->body->seq != eb->body->seq || memcmp(ea->hash, eb->hash, PM_HASH_BYTES) == 0))
        rc = PM_E_INVAL; /* not a proof: different slots, or the same event twice */
    if (!rc)
        rc = pm_store_txn_begin(s, 1, &txn);
    if (!rc)
        rc = pm_feed_check_mesh(txn, s, ea);
    if (!rc)
        rc = pm_feed_check_mesh(txn, s, eb);
    int fresh = 0;
    for (int i = 0; !rc && i < 2; i++) {
        rc = pm_forks_record(txn, s, i ? eb : ea);
        if (rc == PM_OK)
            fresh = 1;
        if (rc == PM_ALREADY_HELD || rc == PM_E_TOOBIG)
            rc = PM_OK;
    }
    if (txn) {
        if (rc)
            mdb_txn_abort(txn);
        else
            rc = pm_store_txn_commit(txn);
    }
    pm_event_destroy(&ea);
    pm_event_destroy(&eb);
    return rc ? rc : fresh ? PM_OK : PM_ALREADY_HELD;
}

int pm_feed_forks(pm_store *s, pm_fork_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(s, 0, &txn);
    if (rc)
        return rc;
    mdb_cursor_open(txn, s->forks, &cur);
    MDB_val k, v, prev_k = {0, NULL}, prev_v = {0, NULL};
    int op = MDB_FIRST;
    while (!rc && mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != FORK_KEY_LEN)
            continue;
        const uint8_t *key = k.mv_data;
        uint64_t seq = pm_get_be64(key + PM_ID_BYTES);
        MDB_val ek = {FEED_KEY_LEN, k.mv_data}, ev;
        if (mdb_get(txn, s->events, &ek, &ev) == 0) {
            /* The feed holds one side: pair every other recorded side with it. */
            rc = fn(ctx, key, seq, ev.mv_data, ev.mv_size, v.mv_data, v.mv_size);
        } else if (prev_k.mv_data && memcmp(prev_k.mv_data, key, FEED_KEY_LEN) == 0) {
            /* A proof recorded ahead of the feed: both sides are branch events. */
            rc = fn(ctx, key, seq, prev_v.mv_data, prev_v.mv_size, v.mv_data, v.mv_size);
        }
        prev_k = k;
        prev_v = v;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}
