/* store/: genesis, appending, ingesting (idempotent), refusals that store nothing,
 * fork evidence, membership with quorum, revocation, held events, and the store
 * format check. White-box where the public API has no reader yet: member and study
 * records are read straight from LMDB through store_internal.h. */
#include "test/check.h"

#include "proto/log.h"
#include "store/feed.h"
#include "store/forks.h"
#include "store/store.h"
#include "store/store_internal.h"

#include <sodium.h>

static char *tmp;

static pm_store *open_store(const char *name)
{
    char *dir = check_path(tmp, name);
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 30, &s));
    free(dir);
    return s;
}

static uint64_t count(pm_store *s)
{
    uint64_t n = 0;
    CHECK_RC(pm_store_count_events(s, &n));
    return n;
}

/* ---- appending events of each type ---------------------------------------------- */

static pm_event *genesis(pm_store *s, const pm_identity *id, unsigned quorum)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "test-mesh";
    g.quorum = quorum;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    pm_event *ev = NULL;
    CHECK_RC(pm_feed_append(s, id, &b, &ev));
    return ev;
}

static int member_event(pm_store *s, const pm_identity *id, const pm_identity *who, int admit,
                        pm_event **out)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__MemberAdmitted a = PM__MEMBER_ADMITTED__INIT;
    Pm__MemberRevoked r = PM__MEMBER_REVOKED__INIT;
    ProtobufCBinaryData node = {PM_ID_BYTES, (uint8_t *)pm_identity_public(who)};
    if (admit) {
        a.node_id = node;
        a.name = "member";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
        b.member_admitted = &a;
    } else {
        r.node_id = node;
        r.reason = "compromised";
        pm_head held; /* as the revoke command does: what this store holds of it stands */
        r.last_seq = pm_feed_head(s, pm_identity_public(who), &held) == PM_OK ? held.seq : 0;
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED;
        b.member_revoked = &r;
    }
    return pm_feed_append(s, id, &b, out);
}

static pm_event *admit_member(pm_store *s, const pm_identity *id, const pm_identity *who)
{
    pm_event *ev = NULL;
    CHECK_RC(member_event(s, id, who, 1, &ev));
    return ev;
}

static pm_event *revoke_member(pm_store *s, const pm_identity *id, const pm_identity *who)
{
    pm_event *ev = NULL;
    CHECK_RC(member_event(s, id, who, 0, &ev));
    return ev;
}

static pm_event *study(pm_store *s, const pm_identity *id, const char *uid)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    Pm__Series se = PM__SERIES__INIT, *sep = &se;
    Pm__Instance in = PM__INSTANCE__INIT, *inp = &in;
    uint8_t h[PM_HASH_BYTES];
    pm_hash(uid, strlen(uid), h);
    in.sop_instance_uid = "1.2.3.99";
    in.size = 512;
    in.hash.data = h;
    in.hash.len = PM_HASH_BYTES;
    se.series_instance_uid = "1.2.3.98";
    se.n_instances = 1;
    se.instances = &inp;
    a.study_instance_uid = (char *)uid;
    a.patient_id = "P1";
    a.n_series = 1;
    a.series = &sep;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    pm_event *ev = NULL;
    CHECK_RC(pm_feed_append(s, id, &b, &ev));
    return ev;
}

static Pm__EventBody claim_body(Pm__ItemClaimed *c, const char *uid, const char *reporter)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    pm__item_claimed__init(c);
    c->study_instance_uid = (char *)uid;
    c->reporter = (char *)reporter;
    c->lease_until_ms = 4000000000000ull;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = c;
    return b;
}

static pm_event *claim(pm_store *s, const pm_identity *id, const char *uid, const char *reporter)
{
    Pm__ItemClaimed c;
    Pm__EventBody b = claim_body(&c, uid, reporter);
    pm_event *ev = NULL;
    CHECK_RC(pm_feed_append(s, id, &b, &ev));
    return ev;
}

/* A claim by id with every header field chosen by the caller: what a broken or
 * hostile peer could send, correctly signed. */
static pm_event *crafted(const pm_identity *id, uint64_t seq, const uint8_t *prev, uint64_t lamport,
                         const uint8_t *mesh, const char *uid)
{
    Pm__ItemClaimed c;
    Pm__EventBody b = claim_body(&c, uid, "dr.crafted");
    b.origin.data = (uint8_t *)pm_identity_public(id);
    b.origin.len = PM_ID_BYTES;
    b.seq = seq;
    b.prev.data = (uint8_t *)prev;
    b.prev.len = PM_HASH_BYTES;
    b.lamport = lamport;
    b.wall_ms = 1700000000000ull;
    b.mesh.data = (uint8_t *)mesh;
    b.mesh.len = PM_HASH_BYTES;
    pm_event *ev = NULL;
    CHECK_RC(pm_event_build(id, &b, &ev));
    return ev;
}

static int ingest(pm_store *s, const pm_event *ev)
{
    return pm_feed_ingest(s, ev->raw, ev->raw_len);
}

/* ---- copying whole stores ------------------------------------------------------- */

typedef struct {
    uint8_t **raw;
    size_t *len, n;
} blobs;

static int collect(void *ctx, const uint8_t *raw, size_t len)
{
    blobs *b = ctx;
    b->raw = realloc(b->raw, (b->n + 1) * sizeof *b->raw);
    b->len = realloc(b->len, (b->n + 1) * sizeof *b->len);
    CHECK(b->raw && b->len);
    b->raw[b->n] = malloc(len);
    CHECK(b->raw[b->n]);
    memcpy(b->raw[b->n], raw, len);
    b->len[b->n++] = len;
    return 0;
}

static void blobs_free(blobs *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->raw[i]);
    free(b->raw);
    free(b->len);
    memset(b, 0, sizeof *b);
}

/* Ingests every event src holds into dst (in src's total order, which keeps each feed
 * in sequence); each is new or already held. */
static void sync_from(pm_store *dst, pm_store *src)
{
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(src, mesh));
    CHECK_RC(pm_store_set_mesh_id(dst, mesh));
    blobs b = {0};
    CHECK_RC(pm_feed_for_each(src, collect, &b));
    for (size_t i = 0; i < b.n; i++) {
        int r = pm_feed_ingest(dst, b.raw[i], b.len[i]);
        CHECK(r == PM_OK || r == PM_ALREADY_HELD);
    }
    blobs_free(&b);
}

/* ---- reading views (white-box) -------------------------------------------------- */

static int study_visible(pm_store *s, const char *uid)
{
    MDB_txn *txn;
    CHECK_RC(pm_store_txn_begin(s, 0, &txn));
    MDB_val k = {strlen(uid), (void *)uid}, v;
    int rc = mdb_get(txn, s->studies, &k, &v);
    CHECK(rc == 0 || rc == MDB_NOTFOUND);
    mdb_txn_abort(txn);
    return rc == 0;
}

/* The member's state ("pending", "member", "revoked") or "" if unknown. */
static const char *member_state(pm_store *s, const pm_identity *who)
{
    static char state[16];
    MDB_txn *txn;
    CHECK_RC(pm_store_txn_begin(s, 0, &txn));
    MDB_val k = {PM_ID_BYTES, (void *)pm_identity_public(who)}, v;
    int rc = mdb_get(txn, s->members, &k, &v);
    state[0] = 0;
    if (rc == 0) {
        Pm__MemberView *m = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
        CHECK(m);
        snprintf(state, sizeof state, "%s", m->state);
        pm__member_view__free_unpacked(m, NULL);
    } else {
        CHECK(rc == MDB_NOTFOUND);
    }
    mdb_txn_abort(txn);
    return state;
}

typedef struct {
    uint64_t events, forks;
    char digest[PM_HASH_HEX];
} snapshot;

static snapshot snap(pm_store *s)
{
    snapshot x = {0};
    x.events = count(s);
    CHECK_RC(pm_store_digest(s, x.digest));
    return x;
}

static void same(const snapshot *a, const snapshot *b)
{
    CHECK_EQ_INT(a->events, b->events);
    CHECK(strcmp(a->digest, b->digest) == 0);
}

/* ---- the tests ------------------------------------------------------------------ */

static void test_genesis_and_chain(const pm_identity *f)
{
    pm_store *a = open_store("genesis-a"), *b = open_store("genesis-b");
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_CODE(pm_store_mesh_id(a, mesh), PM_E_NOTFOUND);
    /* No mesh yet: only a genesis may be appended. */
    pm_event *ev = NULL;
    Pm__ItemClaimed c;
    Pm__EventBody cb = claim_body(&c, "1.2", "dr.a");
    CHECK_CODE(pm_feed_append(a, f, &cb, &ev), PM_E_MESH);
    CHECK(ev == NULL);

    pm_event *g = genesis(a, f, 1);
    CHECK_RC(pm_store_mesh_id(a, mesh));
    CHECK(memcmp(mesh, g->hash, PM_HASH_BYTES) == 0); /* mesh id = hash of the genesis */
    CHECK_EQ_INT(g->body->seq, 1);
    CHECK_EQ_INT(g->body->mesh.len, 0);
    uint8_t zeros[PM_HASH_BYTES] = {0};
    CHECK(memcmp(g->body->prev.data, zeros, PM_HASH_BYTES) == 0);
    /* One mesh per store. */
    Pm__EventBody gb = PM__EVENT_BODY__INIT;
    Pm__Genesis gg = PM__GENESIS__INIT;
    gg.quorum = 1;
    gb.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    gb.genesis = &gg;
    CHECK_CODE(pm_feed_append(a, f, &gb, NULL), PM_E_EXISTS);
    CHECK_RC(pm_store_set_mesh_id(a, mesh));
    uint8_t other[PM_HASH_BYTES];
    pm_hash("other mesh", 10, other);
    CHECK_CODE(pm_store_set_mesh_id(a, other), PM_E_EXISTS);

    /* A chain: seq, prev and lamport follow on. */
    pm_event *evs[6] = {g};
    evs[1] = study(a, f, "1.2.3.1");
    evs[2] = claim(a, f, "1.2.3.1", "dr.a");
    evs[3] = study(a, f, "1.2.3.2");
    evs[4] = claim(a, f, "1.2.3.2", "dr.b");
    evs[5] = claim(a, f, "1.2.3.1", "dr.a");
    for (int i = 1; i < 6; i++) {
        CHECK_EQ_INT(evs[i]->body->seq, i + 1);
        CHECK(memcmp(evs[i]->body->prev.data, evs[i - 1]->hash, PM_HASH_BYTES) == 0);
        CHECK(evs[i]->body->lamport > evs[i - 1]->body->lamport);
        CHECK(memcmp(evs[i]->body->mesh.data, mesh, PM_HASH_BYTES) == 0);
    }
    CHECK_EQ_INT(count(a), 6);
    pm_head head;
    CHECK_RC(pm_feed_head(a, pm_identity_public(f), &head));
    CHECK_EQ_INT(head.seq, 6);
    CHECK(memcmp(head.hash, evs[5]->hash, PM_HASH_BYTES) == 0);
    CHECK_EQ_INT(head.lamport, evs[5]->body->lamport);
    CHECK(study_visible(a, "1.2.3.1") && study_visible(a, "1.2.3.2"));

    /* Ingest on a second store: refused before it knows the mesh, then accepted in
     * order, then idempotent. */
    CHECK_CODE(ingest(b, g), PM_E_MESH);
    CHECK_EQ_INT(count(b), 0);
    CHECK_CODE(pm_feed_head(b, pm_identity_public(f), &head), PM_E_NOTFOUND);
    CHECK_RC(pm_store_set_mesh_id(b, mesh));
    for (int i = 0; i < 6; i++)
        CHECK_RC(ingest(b, evs[i]));
    for (int i = 0; i < 6; i++)
        CHECK_CODE(ingest(b, evs[i]), PM_ALREADY_HELD);
    snapshot sa = snap(a), sb = snap(b);
    same(&sa, &sb);
    pm_head *heads = NULL;
    size_t n = 0;
    CHECK_RC(pm_feed_heads(b, &heads, &n));
    CHECK_EQ_INT(n, 1);
    CHECK(memcmp(heads[0].origin, pm_identity_public(f), PM_ID_BYTES) == 0);
    CHECK_EQ_INT(heads[0].seq, 6);
    free(heads);

    /* Refusals on b leave nothing behind: events, digest and head unchanged. */
    const uint8_t *fid = pm_identity_public(f);
    uint8_t bogus[PM_HASH_BYTES];
    pm_hash("not the head", 12, bogus);
    uint64_t lam = evs[5]->body->lamport + 1;
    pm_event *broken = crafted(f, 7, bogus, lam, mesh, "1.2.3.1");
    pm_event *gap = crafted(f, 8, evs[5]->hash, lam, mesh, "1.2.3.1");
    pm_event *wrong_mesh = crafted(f, 7, evs[5]->hash, lam, other, "1.2.3.1");
    pm_event *good = crafted(f, 7, evs[5]->hash, lam, mesh, "1.2.3.2");
    uint8_t *forged = malloc(good->raw_len);
    CHECK(forged);
    memcpy(forged, good->raw, good->raw_len);
    forged[good->raw_len - 3] ^= 0x40; /* inside the signature */
    snapshot before = snap(b);
    CHECK_CODE(ingest(b, broken), PM_E_CHAIN);
    CHECK_CODE(ingest(b, gap), PM_E_GAP);
    CHECK_CODE(ingest(b, wrong_mesh), PM_E_MESH);
    CHECK_CODE(pm_feed_ingest(b, forged, good->raw_len), PM_E_SIG);
    CHECK_CODE(pm_feed_ingest(b, forged, 0), PM_E_PARSE);
    snapshot after = snap(b);
    same(&before, &after);
    CHECK_RC(pm_feed_head(b, fid, &head));
    CHECK_EQ_INT(head.seq, 6);
    CHECK(memcmp(head.hash, evs[5]->hash, PM_HASH_BYTES) == 0);

    /* A batch: refused members leave no trace, accepted ones commit together, and an
     * event may rely on an earlier one of the same batch. */
    pm_event *next = crafted(f, 8, good->hash, lam + 1, mesh, "1.2.3.2");
    const uint8_t *raws[5] = {gap->raw, good->raw, forged, next->raw, good->raw};
    size_t lens[5] = {gap->raw_len, good->raw_len, good->raw_len, next->raw_len, good->raw_len};
    int results[5];
    CHECK_RC(pm_feed_ingest_batch(b, raws, lens, 5, results));
    CHECK_CODE(results[0], PM_E_GAP);
    CHECK_CODE(results[1], PM_OK);
    CHECK_CODE(results[2], PM_E_SIG);
    CHECK_CODE(results[3], PM_OK);
    CHECK_CODE(results[4], PM_ALREADY_HELD);
    CHECK_EQ_INT(count(b), 8);
    CHECK_RC(pm_feed_head(b, fid, &head));
    CHECK_EQ_INT(head.seq, 8);

    /* Everything survives closing and reopening. */
    after = snap(b);
    pm_store_close(&b);
    pm_store_close(&b); /* safe twice */
    b = open_store("genesis-b");
    snapshot reopened = snap(b);
    same(&after, &reopened);

    pm_event_destroy(&broken);
    pm_event_destroy(&gap);
    pm_event_destroy(&wrong_mesh);
    pm_event_destroy(&good);
    pm_event_destroy(&next);
    free(forged);
    for (int i = 0; i < 6; i++)
        pm_event_destroy(&evs[i]);
    pm_store_close(&a);
    pm_store_close(&b);
}

typedef struct {
    int n;
    uint8_t origin[PM_ID_BYTES];
    uint64_t seq;
    uint8_t a_hash[PM_HASH_BYTES], b_hash[PM_HASH_BYTES];
} fork_seen;

static int on_fork(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq, const uint8_t *a,
                   size_t alen, const uint8_t *b, size_t blen)
{
    fork_seen *f = ctx;
    f->n++;
    memcpy(f->origin, origin, PM_ID_BYTES);
    f->seq = seq;
    pm_hash(a, alen, f->a_hash);
    pm_hash(b, blen, f->b_hash);
    return 0;
}

/* Found in review: an event without a mesh crashed check_mesh (NULL memcmp), and one
 * event with a huge Lamport clock made every later append fail. */
static void test_untrusted_fields(const pm_identity *f, const pm_identity *x)
{
    pm_store *a = open_store("fields-a");
    pm_event *g = genesis(a, f, 1);
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(a, mesh));
    /* No mesh on a non-genesis event: refused as malformed, before any store logic. */
    pm_event *nomesh = crafted(x, 1, (const uint8_t[PM_HASH_BYTES]){0}, 5, mesh, "1.9.1");
    Pm__EventBody *b = nomesh->body;
    ProtobufCBinaryData mesh_field = b->mesh; /* owned by the unpacked body: put back */
    b->mesh.len = 0;
    b->mesh.data = NULL;
    pm_event *rebuilt = NULL;
    CHECK_CODE(pm_event_build(x, b, &rebuilt), PM_E_PARSE);
    b->mesh = mesh_field;
    /* A clock that does not rise along the feed, or jumps by more than the step. */
    pm_head head;
    CHECK_RC(pm_feed_head(a, pm_identity_public(f), &head));
    pm_event *flat = crafted(f, head.seq + 1, head.hash, head.lamport, mesh, "1.9.1");
    pm_event *jump =
        crafted(f, head.seq + 1, head.hash, head.lamport + PM_LAMPORT_STEP_MAX + 1, mesh, "1.9.1");
    CHECK_CODE(ingest(a, flat), PM_E_TIME);
    CHECK_CODE(ingest(a, jump), PM_E_TIME);
    /* A non-member's first event at the step's limit is held, and appends go on. */
    pm_event *high =
        crafted(x, 1, (const uint8_t[PM_HASH_BYTES]){0}, PM_LAMPORT_STEP_MAX, mesh, "1.9.2");
    CHECK_RC(ingest(a, high));
    pm_event *next = study(a, f, "1.9.3");
    CHECK(next != NULL);
    CHECK(next->body->lamport <= head.lamport + PM_LAMPORT_STEP_MAX);
    pm_event_destroy(&next);
    pm_event_destroy(&high);
    pm_event_destroy(&flat);
    pm_event_destroy(&jump);
    pm_event_destroy(&nomesh);
    pm_event_destroy(&g);
    pm_store_close(&a);
}

static void test_fork(const pm_identity *f)
{
    pm_store *a = open_store("fork-a"), *c = open_store("fork-c");
    pm_event *g = genesis(a, f, 1);
    pm_event_destroy(&g);
    pm_event *s1 = study(a, f, "1.2.9");
    pm_event_destroy(&s1);
    sync_from(c, a);
    /* The same identity appends seq 3 on two stores: two different valid events. */
    pm_event *x = claim(a, f, "1.2.9", "dr.x");
    pm_event *y = claim(c, f, "1.2.9", "dr.y");
    CHECK_EQ_INT(x->body->seq, 3);
    CHECK_EQ_INT(y->body->seq, 3);
    CHECK(memcmp(x->hash, y->hash, PM_HASH_BYTES) != 0);

    fork_seen seen = {0};
    CHECK_RC(pm_feed_forks(a, on_fork, &seen));
    CHECK_EQ_INT(seen.n, 0);
    snapshot before = snap(a);
    CHECK_CODE(ingest(a, y), PM_E_FORK);
    CHECK_CODE(ingest(a, y), PM_ALREADY_HELD); /* kept once; a known proof is not news */
    snapshot after = snap(a);
    CHECK_EQ_INT(after.events, before.events);       /* the feed is untouched ... */
    CHECK(strcmp(after.digest, before.digest) != 0); /* ... and the branch's claim counts */
    CHECK_RC(pm_feed_forks(a, on_fork, &seen));
    CHECK_EQ_INT(seen.n, 1);
    CHECK(memcmp(seen.origin, pm_identity_public(f), PM_ID_BYTES) == 0);
    CHECK_EQ_INT(seen.seq, 3);
    CHECK(memcmp(seen.a_hash, x->hash, PM_HASH_BYTES) == 0);
    CHECK(memcmp(seen.b_hash, y->hash, PM_HASH_BYTES) == 0);
    pm_head head;
    CHECK_RC(pm_feed_head(a, pm_identity_public(f), &head));
    CHECK(memcmp(head.hash, x->hash, PM_HASH_BYTES) == 0);
    /* The mirror image on the other store. */
    CHECK_CODE(ingest(c, x), PM_E_FORK);
    memset(&seen, 0, sizeof seen);
    CHECK_RC(pm_feed_forks(c, on_fork, &seen));
    CHECK_EQ_INT(seen.n, 1);
    CHECK(memcmp(seen.a_hash, y->hash, PM_HASH_BYTES) == 0);
    CHECK(memcmp(seen.b_hash, x->hash, PM_HASH_BYTES) == 0);
    /* Each store holds a different branch in its feed, yet both derive the same views:
     * under the fork rule both forked claims count, in one order, on every node. */
    snapshot sa = snap(a), sc = snap(c);
    CHECK(strcmp(sa.digest, sc.digest) == 0);
    pm_event_destroy(&x);
    pm_event_destroy(&y);
    pm_store_close(&a);
    pm_store_close(&c);
}

/* The fork rule with branches longer than one event (store/forks.h): two stores extend
 * one identity's feed differently by two events; every store that receives both
 * branches, in any order, derives the same views, and one that was behind promotes a
 * branch event into its feed when it extends it. */
static void test_fork_branches(const pm_identity *f)
{
    pm_store *a = open_store("br-a"), *c = open_store("br-c"), *d = open_store("br-d"),
             *e = open_store("br-e");
    pm_event *g = genesis(a, f, 1);
    pm_event_destroy(&g);
    pm_event *s1 = study(a, f, "1.3.9");
    pm_event_destroy(&s1);
    sync_from(c, a);
    sync_from(d, a);
    sync_from(e, a);
    pm_event *x1 = claim(a, f, "1.3.9", "dr.x"), *x2 = study(a, f, "1.3.10");
    pm_event *y1 = claim(c, f, "1.3.9", "dr.y"), *y2 = study(c, f, "1.3.11");
    CHECK_EQ_INT(x2->body->seq, 4);
    CHECK_EQ_INT(y2->body->seq, 4);
    /* a gets c's branch oldest first; c gets a's. */
    CHECK_CODE(ingest(a, y1), PM_E_FORK);
    CHECK_CODE(ingest(a, y2), PM_E_FORK); /* continues the branch held */
    CHECK_CODE(ingest(c, x1), PM_E_FORK);
    CHECK_CODE(ingest(c, x2), PM_E_FORK);
    /* d gets y2 before its predecessor: a broken chain (not kept) until y1 came. */
    CHECK_RC(ingest(d, x1));
    CHECK_CODE(ingest(d, y2), PM_E_CHAIN);
    CHECK_CODE(ingest(d, y1), PM_E_FORK);
    CHECK_CODE(ingest(d, y2), PM_E_FORK);
    CHECK_RC(ingest(d, x2));
    snapshot sa = snap(a), sc = snap(c), sd = snap(d);
    CHECK(strcmp(sa.digest, sc.digest) == 0);
    CHECK(strcmp(sa.digest, sd.digest) == 0);
    /* Both branches' studies count everywhere. */
    CHECK(study_visible(a, "1.3.10") && study_visible(a, "1.3.11"));
    CHECK(study_visible(c, "1.3.10") && study_visible(c, "1.3.11"));
    /* e is behind: the proof arrives first (both kept as branch events ahead of its
     * feed), then the feed's events; x1 extends e's feed and is promoted. */
    CHECK_RC(pm_feed_record_fork_proof(e, x1->raw, x1->raw_len, y1->raw, y1->raw_len));
    CHECK_RC(ingest(e, x1));
    CHECK_RC(ingest(e, x2));
    CHECK_CODE(ingest(e, y2), PM_E_FORK);
    pm_head head;
    CHECK_RC(pm_feed_head(e, pm_identity_public(f), &head));
    CHECK_EQ_INT(head.seq, 4);
    CHECK(memcmp(head.hash, x2->hash, PM_HASH_BYTES) == 0);
    snapshot se = snap(e);
    CHECK(strcmp(sa.digest, se.digest) == 0);
    uint64_t floor = 0, branches = 0;
    CHECK_RC(pm_forks_floor(e, pm_identity_public(f), &floor));
    CHECK_EQ_INT(floor, 3);
    CHECK_RC(pm_forks_count(e, &branches));
    CHECK_EQ_INT(branches, 2); /* y1 and y2; x1 left the branches for the feed */
    uint8_t da[PM_HASH_BYTES], de[PM_HASH_BYTES];
    CHECK_RC(pm_forks_digest(a, pm_identity_public(f), 3, da));
    CHECK_RC(pm_forks_digest(e, pm_identity_public(f), 3, de));
    CHECK(memcmp(da, de, PM_HASH_BYTES) == 0);
    pm_event_destroy(&x1);
    pm_event_destroy(&x2);
    pm_event_destroy(&y1);
    pm_event_destroy(&y2);
    pm_store_close(&a);
    pm_store_close(&c);
    pm_store_close(&d);
    pm_store_close(&e);
}

/* K = 1: one approval admits; events of a member not yet admitted are held (stored,
 * not applied) and applied when the admission arrives; revocation refuses the
 * author's later events while earlier ones stand. */
static void test_membership_k1(const pm_identity *f, const pm_identity *m)
{
    pm_store *sf = open_store("k1-f"), *sm = open_store("k1-m");
    pm_event *g = genesis(sf, f, 1);
    pm_event_destroy(&g);
    sync_from(sm, sf);
    CHECK(strcmp(member_state(sf, f), "member") == 0);
    CHECK(strcmp(member_state(sf, m), "") == 0);

    /* m announces before anyone admitted it: f's store holds it, does not apply it. */
    pm_event *s1 = study(sm, m, "1.5.1");
    snapshot before = snap(sf);
    CHECK_RC(ingest(sf, s1));
    snapshot after = snap(sf);
    CHECK_EQ_INT(after.events, before.events + 1);
    CHECK(strcmp(after.digest, before.digest) == 0);
    CHECK(!study_visible(sf, "1.5.1"));

    /* The admission (one approval reaches K = 1) applies it. */
    pm_event *adm = admit_member(sf, f, m);
    CHECK(strcmp(member_state(sf, m), "member") == 0);
    CHECK(study_visible(sf, "1.5.1"));
    sync_from(sm, sf);
    CHECK(strcmp(member_state(sm, m), "member") == 0);
    CHECK(study_visible(sm, "1.5.1"));
    pm_event *s2 = study(sm, m, "1.5.2");
    CHECK_RC(ingest(sf, s2));
    CHECK(study_visible(sf, "1.5.2"));

    /* f revokes m (m itself does not count towards the revocation's quorum). */
    pm_event *rev = revoke_member(sf, f, m);
    CHECK(strcmp(member_state(sf, m), "revoked") == 0);
    /* m's earlier studies stand. */
    CHECK(study_visible(sf, "1.5.1") && study_visible(sf, "1.5.2"));
    /* An event m signs after the revocation (greater Lamport clock) is refused and
     * leaves nothing behind. */
    pm_head mh;
    CHECK_RC(pm_feed_head(sf, pm_identity_public(m), &mh));
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(sf, mesh));
    pm_event *late = crafted(m, mh.seq + 1, mh.hash, rev->body->lamport + 1, mesh, "1.5.1");
    before = snap(sf);
    CHECK_CODE(ingest(sf, late), PM_E_REVOKED);
    after = snap(sf);
    same(&before, &after);
    /* One m signs claiming to come before the revocation (a smaller Lamport clock,
     * which the author chooses freely) is refused too: what stands is what the
     * approvers held (its sequence numbers), so a revoked node cannot backdate. */
    CHECK(mh.lamport + 1 <= rev->body->lamport); /* so this one sorts before the revocation */
    pm_event *early = crafted(m, mh.seq + 1, mh.hash, mh.lamport + 1, mesh, "1.5.2");
    CHECK_CODE(ingest(sf, early), PM_E_REVOKED);
    CHECK_EQ_INT(count(sf), after.events);
    pm_event *late2 = crafted(m, mh.seq + 2, early->hash, rev->body->lamport + 2, mesh, "1.5.1");
    CHECK_CODE(ingest(sf, late2), PM_E_GAP);

    /* A store that took m's backdated event before it learnt of the revocation drops
     * it when the revocation arrives: every store ends with the same events. */
    pm_store *sx = open_store("k1-x");
    sync_from(sx, sm);
    CHECK(ingest(sx, adm) >= 0); /* held already if sm had it */
    CHECK_RC(ingest(sx, early));
    uint64_t with_early = count(sx);
    CHECK_RC(ingest(sx, rev));
    CHECK_EQ_INT(count(sx), with_early); /* the revocation came in, the early event went */
    CHECK_EQ_INT(count(sx), count(sf));
    snapshot xs = snap(sx), fs = snap(sf);
    CHECK(strcmp(xs.digest, fs.digest) == 0);
    pm_store_close(&sx);

    pm_event_destroy(&s1);
    pm_event_destroy(&s2);
    pm_event_destroy(&adm);
    pm_event_destroy(&rev);
    pm_event_destroy(&late);
    pm_event_destroy(&late2);
    pm_event_destroy(&early);
    pm_store_close(&sf);
    pm_store_close(&sm);
}

/* K = 2: an admission takes effect at the second distinct member's approval. */
static void test_membership_k2(const pm_identity *f, const pm_identity *b, const pm_identity *c)
{
    pm_store *sf = open_store("k2-f"), *sb = open_store("k2-b"), *sc = open_store("k2-c");
    pm_event *ev = genesis(sf, f, 2);
    pm_event_destroy(&ev);
    /* With one member, the quorum in effect is one: f alone admits b. */
    ev = admit_member(sf, f, b);
    pm_event_destroy(&ev);
    CHECK(strcmp(member_state(sf, b), "member") == 0);
    sync_from(sb, sf);
    sync_from(sc, sf);

    /* c announces a study while not yet a member: held everywhere. */
    pm_event *cs = study(sc, c, "1.6.1");
    CHECK_RC(ingest(sf, cs));
    CHECK(!study_visible(sf, "1.6.1"));

    /* f's approval, twice: one distinct approval, still pending. */
    ev = admit_member(sf, f, c);
    pm_event_destroy(&ev);
    CHECK(strcmp(member_state(sf, c), "pending") == 0);
    ev = admit_member(sf, f, c);
    pm_event_destroy(&ev);
    CHECK(strcmp(member_state(sf, c), "pending") == 0);
    CHECK(!study_visible(sf, "1.6.1"));
    /* c's approval of itself does not count: it is not a member. */
    ev = admit_member(sc, c, c);
    CHECK_RC(ingest(sf, ev));
    pm_event_destroy(&ev);
    CHECK(strcmp(member_state(sf, c), "pending") == 0);

    /* b's approval is the second: c is admitted and its held study applied. */
    sync_from(sb, sf);
    ev = admit_member(sb, b, c);
    snapshot before = snap(sf);
    CHECK_RC(ingest(sf, ev));
    pm_event_destroy(&ev);
    CHECK(strcmp(member_state(sf, c), "member") == 0);
    CHECK(study_visible(sf, "1.6.1"));
    snapshot after = snap(sf);
    CHECK(strcmp(before.digest, after.digest) != 0);

    /* All three converge. */
    sync_from(sb, sf);
    sync_from(sc, sf);
    sync_from(sf, sb);
    sync_from(sf, sc);
    snapshot x = snap(sf), y = snap(sb), z = snap(sc);
    same(&x, &y);
    same(&x, &z);
    pm_event_destroy(&cs);
    pm_store_close(&sf);
    pm_store_close(&sb);
    pm_store_close(&sc);
}

static void test_format_version(const pm_identity *f)
{
    pm_store *s = open_store("format");
    pm_event *g = genesis(s, f, 1);
    pm_event_destroy(&g);
    pm_store_close(&s);

    /* Rewrite meta "format" with plain LMDB, as a newer build would have left it. */
    char *dir = check_path(tmp, "format");
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    CHECK(mdb_env_create(&env) == 0);
    CHECK(mdb_env_set_maxdbs(env, 16) == 0);
    CHECK(mdb_env_set_mapsize(env, 1ull << 30) == 0);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
    CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    uint8_t v2[8];
    pm_put_be64(v2, PM_STORE_FORMAT + 1);
    MDB_val k = {6, "format"}, v = {8, v2};
    CHECK(mdb_put(txn, meta, &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);

    CHECK_CODE(pm_store_open(dir, 1ull << 30, &s), PM_E_FORMAT);
    CHECK(s == NULL);
    free(dir);
}

/* The parallel ingest (checks on worker threads while the batch is written) gives the
 * results and store the serial one does: a batch of 300 events with a forged signature
 * in the middle takes everything before it, refuses it (PM_E_SIG) and the rest of its
 * feed after it (PM_E_GAP); the same batch again is all already held; a store
 * ingesting it serially ends up with the same views. */
static void test_parallel_batch(const pm_identity *f)
{
    enum { N = 300, FORGED = 150 };
    pm_store *a = open_store("par-a"), *b = open_store("par-b"), *c = open_store("par-c");
    pm_event *g = genesis(a, f, 1);
    pm_event_destroy(&g);
    for (int i = 0; i < N - 1; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "1.2.840.99.%d", i);
        pm_event *ev = study(a, f, uid);
        pm_event_destroy(&ev);
    }
    blobs all = {0};
    CHECK_RC(pm_feed_for_each(a, collect, &all));
    CHECK_EQ_INT(all.n, N);
    all.raw[FORGED][all.len[FORGED] - 3] ^= 0x40; /* inside the signature */
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(a, mesh));
    CHECK_RC(pm_store_set_mesh_id(b, mesh));
    CHECK_RC(pm_store_set_mesh_id(c, mesh));
    int par[N], ser[N];
    const uint8_t **raws = (const uint8_t **)all.raw;
    CHECK_RC(pm_feed_ingest_batch_parallel(b, raws, all.len, N, par));
    CHECK_RC(pm_feed_ingest_batch(c, raws, all.len, N, ser));
    for (int i = 0; i < N; i++) {
        CHECK_CODE(par[i], i < FORGED ? PM_OK : i == FORGED ? PM_E_SIG : PM_E_GAP);
        CHECK_CODE(par[i], ser[i]);
    }
    CHECK_EQ_INT(count(b), FORGED);
    snapshot sb = snap(b), sc = snap(c);
    same(&sb, &sc);
    CHECK_RC(pm_feed_ingest_batch_parallel(b, raws, all.len, FORGED, par));
    for (int i = 0; i < FORGED; i++)
        CHECK_CODE(par[i], PM_ALREADY_HELD);
    blobs_free(&all);
    pm_store_close(&a);
    pm_store_close(&b);
    pm_store_close(&c);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    tmp = check_tmpdir("store");
    pm_identity *f = NULL, *m = NULL, *c = NULL;
    CHECK_RC(pm_identity_generate(&f));
    CHECK_RC(pm_identity_generate(&m));
    CHECK_RC(pm_identity_generate(&c));
    test_genesis_and_chain(f);
    test_fork(f);
    test_fork_branches(f);
    test_untrusted_fields(f, m);
    test_membership_k1(f, m);
    test_membership_k2(f, m, c);
    test_format_version(f);
    test_parallel_batch(f);
    pm_identity_destroy(&f);
    pm_identity_destroy(&m);
    pm_identity_destroy(&c);
    check_tmpdir_remove(&tmp);
    printf("test_store: ok\n");
    return 0;
}
