/* libFuzzer target for the bytes a peer sends us as events: pm_event_parse, then
 * pm_feed_ingest_batch into one store created at the first input (so state builds up
 * across inputs, as on a running node).
 *
 * Input format. The first byte picks a mode; the rest is a list of records, each a
 * 2-byte big-endian length and that many bytes (a length running past the end takes
 * what is left):
 *   mode byte even: each record is a serialized Envelope, parsed and then ingested as
 *                   one batch. Only correctly signed events get past the signature,
 *                   so the seed corpus holds a valid chain of a fixed mesh (see
 *                   fixture below) to take the fuzzer deep.
 *   mode byte odd:  each record is a serialized EventBody. The harness overwrites its
 *                   origin, seq, prev and mesh so that it extends the feed of one of
 *                   three fixed identities (founder, admitted member, outsider; chosen
 *                   by mode >> 1), signs it and ingests it: this drives arbitrary
 *                   payloads through the chain, membership and view code (apply.c).
 *
 * Built with gcc by `make check` as test/fuzz_event_replay (with test/fuzz_replay.c),
 * which replays the seed corpus test/corpus/event/. The real fuzzer, with clang:
 *
 *   cd build-fuzz && ../configure CC=clang CXX=clang++ --enable-asan --enable-ubsan \
 *       && make libpmcore.a proto/event.pb-c.h proto/view.pb-c.h
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iproto -I.. \
 *       ../test/fuzz_event.c -o fuzz_event libpmcore.a -lsodium -lzmq -llmdb \
 *       -lprotobuf-c -lpthread -lstdc++   # plus $(DCMTK_LIBS) once dcmtk is in libpmcore
 *   mkdir -p corpus && TMPDIR=/dev/shm ./fuzz_event -max_total_time=600 \
 *       -max_len=65536 corpus ../test/corpus/event
 *
 * (TMPDIR on a tmpfs keeps LMDB's fsyncs cheap.) A crash leaves crash-<sha1>; replay
 * it with ./test/fuzz_event_replay crash-<sha1>. test/gen_event_corpus DIR regenerates
 * the seed corpus (deterministic: fixed keys and clocks). */
#include "test/check.h"

#include "crypto/sign.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_event_write_corpus(const char *dir);

enum { F_FOUNDER, F_MEMBER, F_OUTSIDER, F_IDS, MAX_RECORDS = 64 };

static pm_identity *ids[F_IDS];
static pm_store *store;
static uint8_t mesh[PM_HASH_BYTES];
static char *tmp;

static void cleanup(void)
{
    pm_store_close(&store);
    for (int i = 0; i < F_IDS; i++)
        pm_identity_destroy(&ids[i]);
    check_tmpdir_remove(&tmp);
}

/* Fixed identities: seeds 0x01.., 0x02.., 0x03.. written as key files and loaded. */
static void load_identities(void)
{
    for (int i = 0; i < F_IDS; i++) {
        char name[16], hex[2 * 32 + 2];
        snprintf(name, sizeof name, "id%d.key", i);
        char *path = check_path(tmp, name);
        for (int j = 0; j < 32; j++)
            snprintf(hex + 2 * j, 3, "%02x", i + 1);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs(hex, f) >= 0 && fclose(f) == 0);
        CHECK(chmod(path, 0600) == 0);
        CHECK_RC(pm_identity_load(path, &ids[i]));
        free(path);
    }
}

/* ---- the fixture: a small valid history with every payload type ------------------ */

enum { FIX_EVENTS = 11 };

typedef struct {
    pm_event *ev[FIX_EVENTS];
    uint8_t heads[F_IDS][PM_HASH_BYTES];
    uint64_t seqs[F_IDS];
} fixture;

static void fix_add(fixture *fx, int n, int who, Pm__EventBody *b)
{
    static const uint8_t zeros[PM_HASH_BYTES];
    b->origin.data = (uint8_t *)pm_identity_public(ids[who]);
    b->origin.len = PM_ID_BYTES;
    b->seq = ++fx->seqs[who];
    b->prev.data = b->seq == 1 ? (uint8_t *)zeros : fx->heads[who];
    b->prev.len = PM_HASH_BYTES;
    b->lamport = (uint64_t)n + 1;
    b->wall_ms = 1700000000000ull + (uint64_t)n * 1000;
    int genesis = b->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS;
    b->mesh.data = genesis ? NULL : mesh;
    b->mesh.len = genesis ? 0 : PM_HASH_BYTES;
    CHECK_RC(pm_event_build(ids[who], b, &fx->ev[n]));
    memcpy(fx->heads[who], fx->ev[n]->hash, PM_HASH_BYTES);
    if (genesis)
        memcpy(mesh, fx->ev[n]->hash, PM_HASH_BYTES);
}

static void build_fixture(fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    Pm__EventBody b;
    int n = 0;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "fuzz";
    g.quorum = 1;
    g.founder_name = "founder";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    fix_add(fx, n++, F_FOUNDER, &b);

    Pm__MemberAdmitted ma = PM__MEMBER_ADMITTED__INIT;
    ma.node_id.data = (uint8_t *)pm_identity_public(ids[F_MEMBER]);
    ma.node_id.len = PM_ID_BYTES;
    ma.name = "member";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
    b.member_admitted = &ma;
    fix_add(fx, n++, F_FOUNDER, &b);

    uint8_t h[PM_HASH_BYTES];
    pm_hash("pixels", 6, h);
    Pm__Instance in = PM__INSTANCE__INIT, *inp = &in;
    in.sop_instance_uid = "1.2.3.1.1";
    in.size = 4096;
    in.hash.data = h;
    in.hash.len = PM_HASH_BYTES;
    Pm__Series se = PM__SERIES__INIT, *sep = &se;
    se.series_instance_uid = "1.2.3.1";
    se.modality = "CT";
    se.n_instances = 1;
    se.instances = &inp;
    Pm__WorklistTerms terms = PM__WORKLIST_TERMS__INIT;
    terms.priority = "urgent";
    Pm__StudyAnnounced sa = PM__STUDY_ANNOUNCED__INIT;
    sa.study_instance_uid = "1.2.3";
    sa.patient_id = "P1";
    sa.n_series = 1;
    sa.series = &sep;
    sa.terms = &terms;
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &sa;
    fix_add(fx, n++, F_MEMBER, &b);

    Pm__ItemClaimed ic = PM__ITEM_CLAIMED__INIT;
    ic.study_instance_uid = "1.2.3";
    ic.reporter = "dr.a";
    ic.lease_until_ms = 1700000100000ull;
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = &ic;
    fix_add(fx, n++, F_FOUNDER, &b);

    Pm__ItemReleased ir = PM__ITEM_RELEASED__INIT;
    ir.study_instance_uid = "1.2.3";
    ir.reporter = "dr.a";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED;
    b.item_released = &ir;
    fix_add(fx, n++, F_FOUNDER, &b);

    ic.reporter = "dr.b";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = &ic;
    fix_add(fx, n++, F_MEMBER, &b);

    Pm__ReportSubmitted rs = PM__REPORT_SUBMITTED__INIT;
    rs.study_instance_uid = "1.2.3";
    rs.reporter = "dr.b";
    rs.text = "Normal.";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    b.report_submitted = &rs;
    fix_add(fx, n++, F_MEMBER, &b);

    Pm__ReportVerified rv = PM__REPORT_VERIFIED__INIT;
    rv.study_instance_uid = "1.2.3";
    rv.reporter = "dr.c";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
    b.report_verified = &rv;
    fix_add(fx, n++, F_FOUNDER, &b);

    ProtobufCBinaryData served = {PM_ID_BYTES, (uint8_t *)pm_identity_public(ids[F_MEMBER])};
    Pm__StudyAccessed ac = PM__STUDY_ACCESSED__INIT;
    ac.study_instance_uid = "1.2.3";
    ac.reporter = "VIEWER";
    ac.n_served_by = 1;
    ac.served_by = &served;
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED;
    b.study_accessed = &ac;
    fix_add(fx, n++, F_FOUNDER, &b);

    /* An outsider's study (held, never applied), and the member's revocation. */
    sa.study_instance_uid = "1.2.4";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &sa;
    fix_add(fx, n++, F_OUTSIDER, &b);

    Pm__MemberRevoked mr = PM__MEMBER_REVOKED__INIT;
    mr.node_id = ma.node_id;
    mr.reason = "fuzz";
    b = (Pm__EventBody)PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED;
    b.member_revoked = &mr;
    fix_add(fx, n++, F_FOUNDER, &b);
    CHECK_EQ_INT(n, FIX_EVENTS);
}

static void fixture_free(fixture *fx)
{
    for (int i = 0; i < FIX_EVENTS; i++)
        pm_event_destroy(&fx->ev[i]);
}

static void init(void)
{
    pm_log_set_level(PM_LOG_OFF);
    CHECK(sodium_init() >= 0);
    tmp = check_tmpdir("fuzz-event");
    load_identities();
    fixture fx;
    build_fixture(&fx);
    char *dir = check_path(tmp, "store");
    CHECK_RC(pm_store_open(dir, 1ull << 32, &store));
    free(dir);
    pm_store_set_nosync(store);
    CHECK_RC(pm_store_set_mesh_id(store, mesh));
    CHECK_RC(pm_feed_ingest(store, fx.ev[0]->raw, fx.ev[0]->raw_len));
    fixture_free(&fx);
    atexit(cleanup);
}

/* ---- the target ------------------------------------------------------------------ */

static size_t split(const uint8_t *data, size_t size, const uint8_t **recs, size_t *lens)
{
    size_t n = 0;
    while (size > 0 && n < MAX_RECORDS) {
        size_t len = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
        size_t hdr = size >= 2 ? 2 : size;
        data += hdr;
        size -= hdr;
        if (len > size)
            len = size;
        recs[n] = data;
        lens[n++] = len;
        data += len;
        size -= len;
    }
    return n;
}

static void envelopes(const uint8_t **recs, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pm_event *ev = NULL;
        int rc = pm_event_parse(recs[i], lens[i], &ev);
        CHECK((rc == PM_OK) == (ev != NULL));
        if (rc == PM_OK) {
            /* What parsed is what we would store and relay: it parses again, the same. */
            pm_event *again = NULL;
            CHECK_RC(pm_event_parse_stored(ev->raw, ev->raw_len, &again));
            CHECK(memcmp(again->hash, ev->hash, PM_HASH_BYTES) == 0);
            CHECK(pm_event_type(ev->body) != NULL);
            pm_event_destroy(&again);
        }
        pm_event_destroy(&ev);
    }
    int results[MAX_RECORDS];
    CHECK_RC(pm_feed_ingest_batch(store, recs, lens, n, results));
    for (size_t i = 0; i < n; i++)
        CHECK(results[i] <= PM_ALREADY_HELD && results[i] != PM_E_STORE &&
              results[i] != PM_E_NOMEM);
}

static void bodies(int who, const uint8_t **recs, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Pm__EventBody *b = pm__event_body__unpack(NULL, lens[i], recs[i]);
        if (!b)
            continue;
        pm_head head;
        int rc = pm_feed_head(store, pm_identity_public(ids[who]), &head);
        CHECK(rc == PM_OK || rc == PM_E_NOTFOUND);
        if (rc)
            memset(&head, 0, sizeof head);
        /* Fill the header so the event extends the chain; keep the fuzzer's payload,
         * Lamport clock (clamped) and wall clock. Restore the pointers protobuf-c owns
         * before freeing. */
        ProtobufCBinaryData origin = b->origin, prev = b->prev, m = b->mesh;
        b->origin.data = (uint8_t *)pm_identity_public(ids[who]);
        b->origin.len = PM_ID_BYTES;
        b->seq = head.seq + 1;
        b->prev.data = head.hash;
        b->prev.len = PM_HASH_BYTES;
        b->lamport = b->lamport % (1ull << 40) + 1;
        int genesis = b->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS;
        b->mesh.data = genesis ? NULL : mesh;
        b->mesh.len = genesis ? 0 : PM_HASH_BYTES;
        pm_event *ev = NULL;
        if (pm_event_build(ids[who], b, &ev) == PM_OK) {
            int r = pm_feed_ingest(store, ev->raw, ev->raw_len);
            CHECK(r <= PM_ALREADY_HELD && r != PM_E_STORE && r != PM_E_NOMEM && r != PM_E_SIG &&
                  r != PM_E_CHAIN && r != PM_E_GAP);
            pm_event_destroy(&ev);
        }
        b->origin = origin;
        b->prev = prev;
        b->mesh = m;
        pm__event_body__free_unpacked(b, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        init();
    if (size == 0)
        return 0;
    const uint8_t *recs[MAX_RECORDS];
    size_t lens[MAX_RECORDS];
    size_t n = split(data + 1, size - 1, recs, lens);
    if (data[0] & 1)
        bodies((data[0] >> 1) % F_IDS, recs, lens, n);
    else
        envelopes(recs, lens, n);
    /* The store still answers consistently. */
    char digest[PM_HASH_HEX];
    CHECK_RC(pm_store_digest(store, digest));
    uint64_t events;
    CHECK_RC(pm_store_count_events(store, &events));
    CHECK(events >= 1);
    return 0;
}

/* ---- the seed corpus --------------------------------------------------------------- */

typedef struct {
    uint8_t buf[1 << 16];
    size_t len;
} input;

static void in_record(input *in, const uint8_t *p, size_t len)
{
    CHECK(in->len + 2 + len <= sizeof in->buf && len < 65536);
    in->buf[in->len++] = (uint8_t)(len >> 8);
    in->buf[in->len++] = (uint8_t)len;
    memcpy(in->buf + in->len, p, len);
    in->len += len;
}

static void in_write(const char *dir, const char *name, const input *in)
{
    char *path = check_path(dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(in->buf, 1, in->len, f) == in->len && fclose(f) == 0);
    free(path);
}

/* Body bytes of ev (what the author signed). */
static void body_record(input *in, const pm_event *ev)
{
    size_t len = pm__event_body__get_packed_size(ev->body);
    uint8_t *p = malloc(len + 1);
    CHECK(p);
    pm__event_body__pack(ev->body, p);
    in_record(in, p, len);
    free(p);
}

int fuzz_event_write_corpus(const char *dir)
{
    if (!store)
        init();
    fixture fx;
    build_fixture(&fx);
    input *in = calloc(1, sizeof *in);
    CHECK(in);
    char name[64];

    /* The whole valid chain as one batch, and each event on its own. */
    in->len = 0;
    in->buf[in->len++] = 0;
    for (int i = 0; i < FIX_EVENTS; i++)
        in_record(in, fx.ev[i]->raw, fx.ev[i]->raw_len);
    in_write(dir, "env-chain", in);
    for (int i = 0; i < FIX_EVENTS; i++) {
        in->len = 0;
        in->buf[in->len++] = 0;
        in_record(in, fx.ev[i]->raw, fx.ev[i]->raw_len);
        snprintf(name, sizeof name, "env-%02d-%s", i, pm_event_type(fx.ev[i]->body));
        in_write(dir, name, in);
    }
    /* Broken ones: truncated, a flipped signature bit, garbage, empty record. */
    const pm_event *st = fx.ev[2];
    size_t cuts[] = {1, 2, 10, st->raw_len / 2, st->raw_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        in->len = 0;
        in->buf[in->len++] = 0;
        in_record(in, st->raw, cuts[i]);
        snprintf(name, sizeof name, "env-truncated-%zu", cuts[i]);
        in_write(dir, name, in);
    }
    in->len = 0;
    in->buf[in->len++] = 0;
    in_record(in, fx.ev[0]->raw, fx.ev[0]->raw_len);
    in_record(in, fx.ev[1]->raw, fx.ev[1]->raw_len);
    in->buf[in->len - 5] ^= 0x10;
    in_write(dir, "env-badsig", in);
    static const uint8_t garbage[] = {0x08, 0x01, 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x1a, 0x40};
    in->len = 0;
    in->buf[in->len++] = 0;
    in_record(in, garbage, sizeof garbage);
    in_record(in, garbage, 0);
    in_write(dir, "env-garbage", in);

    /* Bodies for the signing mode, by each identity. */
    for (int who = 0; who < F_IDS; who++) {
        in->len = 0;
        in->buf[in->len++] = (uint8_t)(who << 1 | 1);
        for (int i = 1; i < FIX_EVENTS; i++)
            body_record(in, fx.ev[i]);
        snprintf(name, sizeof name, "body-all-by-%d", who);
        in_write(dir, name, in);
    }
    in->len = 0;
    in->buf[in->len++] = 1;
    body_record(in, fx.ev[0]); /* a second genesis */
    in_write(dir, "body-genesis", in);

    free(in);
    fixture_free(&fx);
    return 0;
}
