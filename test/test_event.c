/* store/event: build and parse round trips for every payload type, and refusal of
 * malformed or forged envelopes, each with its own code. */
#include "test/check.h"

#include "crypto/sign.h"
#include "proto/log.h"
#include "store/event.h"

#include <sodium.h>

static uint8_t zero_hash[PM_HASH_BYTES];
static uint8_t mesh_id[PM_HASH_BYTES];

/* A body header for id's event seq with the given payload case (payload set by caller). */
static Pm__EventBody header(const pm_identity *id, uint64_t seq)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.origin.data = (uint8_t *)pm_identity_public(id);
    b.origin.len = PM_ID_BYTES;
    b.seq = seq;
    b.prev.data = zero_hash;
    b.prev.len = PM_HASH_BYTES;
    b.lamport = seq + 10;
    b.wall_ms = 1700000000000ull + seq;
    b.mesh.data = mesh_id;
    b.mesh.len = PM_HASH_BYTES;
    return b;
}

/* Serializes b, signs it under format with signer and wraps it in an envelope, with no
 * checks: the way a hostile or future peer could. *raw is the caller's. */
static void envelope(const pm_identity *signer, uint32_t format, const Pm__EventBody *b,
                     const uint8_t *extra, size_t extra_len, uint8_t **raw, size_t *len)
{
    size_t blen = pm__event_body__get_packed_size(b);
    uint8_t *body = malloc(blen + extra_len + 1);
    CHECK(body);
    pm__event_body__pack(b, body);
    if (extra_len) /* raw protobuf appended to the body: e.g. a field from the future */
        memcpy(body + blen, extra, extra_len);
    blen += extra_len;
    uint8_t sig[PM_SIG_BYTES];
    CHECK_RC(pm_sign_event(signer, format, body, blen, sig));
    Pm__Envelope env = PM__ENVELOPE__INIT;
    env.format = format;
    env.body.data = body;
    env.body.len = blen;
    env.sig.data = sig;
    env.sig.len = PM_SIG_BYTES;
    *len = pm__envelope__get_packed_size(&env);
    *raw = malloc(*len);
    CHECK(*raw);
    pm__envelope__pack(&env, *raw);
    free(body);
}

/* Builds b, then checks that parsing the bytes gives back the same event. */
static pm_event *round_trip(const pm_identity *id, const Pm__EventBody *b, const char *type)
{
    pm_event *ev = NULL, *back = NULL;
    CHECK_RC(pm_event_build(id, b, &ev));
    CHECK(ev && ev->raw && ev->raw_len > PM_SIG_BYTES);
    CHECK_EQ_INT(ev->format, PM_EVENT_FORMAT);
    CHECK(strcmp(pm_event_type(ev->body), type) == 0);
    uint8_t h[PM_HASH_BYTES];
    pm_hash(ev->raw, ev->raw_len, h);
    CHECK(memcmp(h, ev->hash, PM_HASH_BYTES) == 0);

    CHECK_RC(pm_event_parse(ev->raw, ev->raw_len, &back));
    CHECK_EQ_INT(back->raw_len, ev->raw_len);
    CHECK(memcmp(back->raw, ev->raw, ev->raw_len) == 0);
    CHECK(back->raw != ev->raw); /* the bytes were copied */
    CHECK(memcmp(back->hash, ev->hash, PM_HASH_BYTES) == 0);
    const Pm__EventBody *x = back->body;
    CHECK_EQ_INT(x->payload_case, b->payload_case);
    CHECK(x->origin.len == PM_ID_BYTES && !memcmp(x->origin.data, b->origin.data, PM_ID_BYTES));
    CHECK_EQ_INT(x->seq, b->seq);
    CHECK_EQ_INT(x->lamport, b->lamport);
    CHECK_EQ_INT(x->wall_ms, b->wall_ms);
    CHECK(x->prev.len == PM_HASH_BYTES && !memcmp(x->prev.data, b->prev.data, PM_HASH_BYTES));
    CHECK_EQ_INT(x->mesh.len, b->mesh.len);
    /* Re-serializing the parsed body gives the signed bytes back. */
    size_t len = pm__event_body__get_packed_size(x);
    CHECK_EQ_INT(len, pm__event_body__get_packed_size(b));
    pm_position p = pm_event_position(back);
    CHECK_EQ_INT(p.lamport, b->lamport);
    CHECK_EQ_INT(p.seq, b->seq);
    CHECK(!memcmp(p.origin, b->origin.data, PM_ID_BYTES));
    /* parse_stored gives the same event without the signature check. */
    pm_event *stored = NULL;
    CHECK_RC(pm_event_parse_stored(ev->raw, ev->raw_len, &stored));
    CHECK(!memcmp(stored->hash, ev->hash, PM_HASH_BYTES));
    pm_event_destroy(&stored);
    pm_event_destroy(&ev);
    return back;
}

static void test_round_trips(const pm_identity *id, const pm_identity *other)
{
    pm_event *ev;

    Pm__EventBody b = header(id, 1);
    b.mesh.data = NULL;
    b.mesh.len = 0;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "north-east imaging";
    g.quorum = 2;
    g.founder_name = "trust-a";
    g.founder_endpoint = "tcp://127.0.0.1:7400";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    ev = round_trip(id, &b, "genesis");
    CHECK_EQ_INT(ev->body->genesis->quorum, 2);
    CHECK(!strcmp(ev->body->genesis->mesh_name, g.mesh_name));
    CHECK(!strcmp(ev->body->genesis->founder_endpoint, g.founder_endpoint));
    CHECK(pm_event_study_uid(ev->body) == NULL && pm_event_reporter(ev->body) == NULL);
    pm_event_destroy(&ev);

    b = header(id, 2);
    Pm__MemberAdmitted ma = PM__MEMBER_ADMITTED__INIT;
    ma.node_id.data = (uint8_t *)pm_identity_public(other);
    ma.node_id.len = PM_ID_BYTES;
    ma.name = "trust-b";
    ma.endpoint = "tcp://127.0.0.1:7401";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
    b.member_admitted = &ma;
    ev = round_trip(id, &b, "member-admitted");
    CHECK(!memcmp(ev->body->member_admitted->node_id.data, pm_identity_public(other), PM_ID_BYTES));
    CHECK(!strcmp(ev->body->member_admitted->name, "trust-b"));
    pm_event_destroy(&ev);

    b = header(id, 3);
    Pm__MemberRevoked mr = PM__MEMBER_REVOKED__INIT;
    mr.node_id = ma.node_id;
    mr.reason = "key compromised";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED;
    b.member_revoked = &mr;
    ev = round_trip(id, &b, "member-revoked");
    CHECK(!strcmp(ev->body->member_revoked->reason, "key compromised"));
    pm_event_destroy(&ev);

    b = header(id, 4);
    Pm__StudyAnnounced sa = PM__STUDY_ANNOUNCED__INIT;
    Pm__Series se[2] = {PM__SERIES__INIT, PM__SERIES__INIT};
    Pm__Series *sep[2] = {&se[0], &se[1]};
    Pm__Instance in[3] = {PM__INSTANCE__INIT, PM__INSTANCE__INIT, PM__INSTANCE__INIT};
    Pm__Instance *inp[3] = {&in[0], &in[1], &in[2]};
    uint8_t ih[3][PM_HASH_BYTES];
    char uids[3][64];
    for (int i = 0; i < 3; i++) {
        snprintf(uids[i], sizeof uids[i], "1.2.826.0.1.3680043.2.1.3.%d", i);
        pm_hash(uids[i], strlen(uids[i]), ih[i]);
        in[i].sop_instance_uid = uids[i];
        in[i].sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
        in[i].instance_number = i + 1;
        in[i].size = 1000u * (i + 1);
        in[i].hash.data = ih[i];
        in[i].hash.len = PM_HASH_BYTES;
        in[i].transfer_syntax_uid = "1.2.840.10008.1.2.1";
    }
    se[0].series_instance_uid = "1.2.3.4.1";
    se[0].modality = "CT";
    se[0].n_instances = 2;
    se[0].instances = inp;
    se[1].series_instance_uid = "1.2.3.4.2";
    se[1].modality = "CT";
    se[1].n_instances = 1;
    se[1].instances = inp + 2;
    Pm__WorklistTerms terms = PM__WORKLIST_TERMS__INIT;
    terms.priority = "urgent";
    terms.subspecialty = "neuro";
    terms.due_ms = 1700000100000ull;
    terms.double_read = 1;
    sa.study_instance_uid = "1.2.3.4";
    sa.patient_id = "P123";
    sa.patient_name = "DOE^JANE";
    sa.n_series = 2;
    sa.series = sep;
    sa.terms = &terms;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &sa;
    ev = round_trip(id, &b, "study-announced");
    const Pm__StudyAnnounced *s = ev->body->study_announced;
    CHECK(!strcmp(pm_event_study_uid(ev->body), "1.2.3.4"));
    CHECK(!strcmp(s->patient_name, "DOE^JANE"));
    CHECK_EQ_INT(s->n_series, 2);
    CHECK_EQ_INT(s->series[0]->n_instances, 2);
    CHECK_EQ_INT(s->series[1]->instances[0]->size, 3000);
    CHECK(!memcmp(s->series[1]->instances[0]->hash.data, ih[2], PM_HASH_BYTES));
    CHECK(s->terms && s->terms->double_read && !strcmp(s->terms->priority, "urgent"));
    pm_event_destroy(&ev);

    b = header(id, 5);
    Pm__ItemClaimed ic = PM__ITEM_CLAIMED__INIT;
    ic.study_instance_uid = "1.2.3.4";
    ic.reporter = "dr.smith";
    ic.lease_until_ms = 1700000200000ull;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = &ic;
    ev = round_trip(id, &b, "item-claimed");
    CHECK(!strcmp(pm_event_reporter(ev->body), "dr.smith"));
    CHECK_EQ_INT(ev->body->item_claimed->lease_until_ms, ic.lease_until_ms);
    pm_event_destroy(&ev);

    b = header(id, 6);
    Pm__ItemReleased ir = PM__ITEM_RELEASED__INIT;
    ir.study_instance_uid = "1.2.3.4";
    ir.reporter = "dr.smith";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED;
    b.item_released = &ir;
    ev = round_trip(id, &b, "item-released");
    CHECK(!strcmp(pm_event_study_uid(ev->body), "1.2.3.4"));
    pm_event_destroy(&ev);

    b = header(id, 7);
    Pm__ReportSubmitted rs = PM__REPORT_SUBMITTED__INIT;
    rs.study_instance_uid = "1.2.3.4";
    rs.reporter = "dr.jones";
    rs.text = "No acute intracranial abnormality. \xc3\xa9";
    rs.sr_sop_instance_uid = "1.2.3.4.99";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    b.report_submitted = &rs;
    ev = round_trip(id, &b, "report-submitted");
    CHECK(!strcmp(ev->body->report_submitted->text, rs.text));
    CHECK(!strcmp(pm_event_reporter(ev->body), "dr.jones"));
    pm_event_destroy(&ev);

    b = header(id, 8);
    Pm__ReportVerified rv = PM__REPORT_VERIFIED__INIT;
    rv.study_instance_uid = "1.2.3.4";
    rv.reporter = "dr.lee";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
    b.report_verified = &rv;
    ev = round_trip(id, &b, "report-verified");
    CHECK(!strcmp(pm_event_reporter(ev->body), "dr.lee"));
    pm_event_destroy(&ev);

    b = header(id, 9);
    Pm__StudyAccessed ac = PM__STUDY_ACCESSED__INIT;
    ProtobufCBinaryData served[2] = {{PM_ID_BYTES, (uint8_t *)pm_identity_public(id)},
                                     {PM_ID_BYTES, (uint8_t *)pm_identity_public(other)}};
    ac.study_instance_uid = "1.2.3.4";
    ac.reporter = "VIEWER_AE";
    ac.n_served_by = 2;
    ac.served_by = served;
    ac.bytes = 123456789;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED;
    b.study_accessed = &ac;
    ev = round_trip(id, &b, "study-accessed");
    CHECK_EQ_INT(ev->body->study_accessed->n_served_by, 2);
    CHECK_EQ_INT(ev->body->study_accessed->bytes, 123456789);
    pm_event_destroy(&ev);
}

static Pm__EventBody claim_body(const pm_identity *id, uint64_t seq, Pm__ItemClaimed *ic)
{
    Pm__EventBody b = header(id, seq);
    pm__item_claimed__init(ic);
    ic->study_instance_uid = "1.2.3.4";
    ic->reporter = "dr.smith";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = ic;
    return b;
}

static int parse_code(const uint8_t *raw, size_t len)
{
    pm_event *ev = NULL;
    int rc = pm_event_parse(raw, len, &ev);
    CHECK((rc == PM_OK) == (ev != NULL));
    pm_event_destroy(&ev);
    return rc;
}

static void test_refusals(const pm_identity *id, const pm_identity *other)
{
    Pm__ItemClaimed ic;
    Pm__EventBody b = claim_body(id, 3, &ic);
    uint8_t *raw;
    size_t len;

    /* The reference: correctly signed, accepted. */
    envelope(id, PM_EVENT_FORMAT, &b, NULL, 0, &raw, &len);
    CHECK_RC(parse_code(raw, len));

    /* Forged: a flipped bit in the signature, in the signed body, or signed by another
     * key than the origin it names. */
    uint8_t *copy = malloc(len);
    CHECK(copy);
    memcpy(copy, raw, len);
    copy[len - 1] ^= 0x01; /* the signature is the last field */
    CHECK_CODE(parse_code(copy, len), PM_E_SIG);
    memcpy(copy, raw, len);
    /* The body's last bytes are the claim's reporter text: flip a letter's case. */
    size_t pos = len - PM_SIG_BYTES - 2 - 1;
    CHECK(copy[pos] == 'h');
    copy[pos] = 'H';
    CHECK_CODE(parse_code(copy, len), PM_E_SIG);
    free(copy);
    free(raw);
    envelope(other, PM_EVENT_FORMAT, &b, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_SIG);
    pm_event *stored = NULL; /* the stored-bytes path does not verify, by contract */
    CHECK_RC(pm_event_parse_stored(raw, len, &stored));
    pm_event_destroy(&stored);
    free(raw);

    /* Unknown format versions, signed correctly under them; format 0 is "absent". */
    uint32_t formats[] = {0, PM_EVENT_FORMAT + 1, 0xffffffffu};
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        envelope(id, formats[i], &b, NULL, 0, &raw, &len);
        CHECK_CODE(parse_code(raw, len), PM_E_FORMAT);
        free(raw);
    }

    /* Every truncation of a valid envelope is a parse error, never a crash. */
    envelope(id, PM_EVENT_FORMAT, &b, NULL, 0, &raw, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = malloc(cut ? cut : 1); /* exact-size copy so ASan sees overreads */
        CHECK(t);
        memcpy(t, raw, cut);
        CHECK_CODE(parse_code(t, cut), PM_E_PARSE);
        free(t);
    }
    free(raw);

    /* Oversized: refused by size before anything is parsed. */
    uint8_t *big = calloc(1, PM_EVENT_MAX_BYTES + 1);
    CHECK(big);
    CHECK_CODE(parse_code(big, PM_EVENT_MAX_BYTES + 1), PM_E_TOOBIG);
    free(big);
    /* and a body too large to be an event is refused by the builder. */
    char *text = malloc(PM_EVENT_MAX_BYTES + 1);
    CHECK(text);
    memset(text, 'x', PM_EVENT_MAX_BYTES);
    text[PM_EVENT_MAX_BYTES] = 0;
    Pm__EventBody rb = header(id, 4);
    Pm__ReportSubmitted rs = PM__REPORT_SUBMITTED__INIT;
    rs.study_instance_uid = "1.2.3.4";
    rs.reporter = "dr.x";
    rs.text = text;
    rb.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    rb.report_submitted = &rs;
    pm_event *ev = NULL;
    CHECK_CODE(pm_event_build(id, &rb, &ev), PM_E_TOOBIG);
    CHECK(ev == NULL);
    /* A report over its own field limit but under the message limit: a shape error. */
    text[PM_TEXT_MAX + 1] = 0;
    envelope(id, PM_EVENT_FORMAT, &rb, NULL, 0, &raw, &len);
    CHECK(len < PM_EVENT_MAX_BYTES);
    CHECK_CODE(parse_code(raw, len), PM_E_PARSE);
    free(raw);
    text[PM_TEXT_MAX] = 0; /* exactly at the limit: accepted */
    envelope(id, PM_EVENT_FORMAT, &rb, NULL, 0, &raw, &len);
    CHECK_RC(parse_code(raw, len));
    free(raw);
    free(text);

    /* Sequence zero, signed correctly. */
    b.seq = 0;
    envelope(id, PM_EVENT_FORMAT, &b, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_SEQ);
    free(raw);
    /* Shape is checked before the signature: seq 0 under a forged signature is SEQ. */
    envelope(other, PM_EVENT_FORMAT, &b, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_SEQ);
    free(raw);
    b.seq = 3;

    /* Unknown payload: no payload at all, and a payload field this build does not know
     * (field 99, length-delimited, empty), both correctly signed. */
    Pm__EventBody none = header(id, 3);
    envelope(id, PM_EVENT_FORMAT, &none, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_UNKNOWN);
    free(raw);
    /* Tag 99<<3|2 = 794 is the two-byte varint 0x9a 0x06; then length 0. */
    static const uint8_t future_field[] = {0x9a, 0x06, 0x00};
    envelope(id, PM_EVENT_FORMAT, &none, future_field, sizeof future_field, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_UNKNOWN);
    free(raw);
    /* An unknown extra field next to a known payload is ignored (forward compatible). */
    static const uint8_t extra_field[] = {0xf8, 0x06, 0x05}; /* field 111, varint 5 */
    envelope(id, PM_EVENT_FORMAT, &b, extra_field, sizeof extra_field, &raw, &len);
    CHECK_RC(parse_code(raw, len));
    free(raw);

    /* Field shapes: an origin that is not 32 bytes, a short prev hash. */
    Pm__EventBody bad = claim_body(id, 3, &ic);
    bad.origin.len = 31;
    envelope(id, PM_EVENT_FORMAT, &bad, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_PARSE);
    free(raw);
    bad = claim_body(id, 3, &ic);
    bad.prev.len = 0;
    envelope(id, PM_EVENT_FORMAT, &bad, NULL, 0, &raw, &len);
    CHECK_CODE(parse_code(raw, len), PM_E_PARSE);
    free(raw);

    /* Garbage and the empty input. */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK_CODE(parse_code(garbage, sizeof garbage), PM_E_PARSE);
    CHECK_CODE(parse_code(garbage, 0), PM_E_PARSE);
}

static void test_positions(void)
{
    pm_position a = {5, {1}, 7}, b = a;
    CHECK_EQ_INT(pm_position_cmp(&a, &b), 0);
    b.seq = 8;
    CHECK(pm_position_cmp(&a, &b) < 0 && pm_position_cmp(&b, &a) > 0);
    b = a;
    b.origin[0] = 2;
    b.seq = 1; /* origin decides before seq */
    CHECK(pm_position_cmp(&a, &b) < 0);
    b = a;
    b.lamport = 4;
    b.origin[0] = 9; /* lamport decides before origin */
    CHECK(pm_position_cmp(&a, &b) > 0);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    pm_hash("mesh", 4, mesh_id);
    pm_identity *id = NULL, *other = NULL;
    CHECK_RC(pm_identity_generate(&id));
    CHECK_RC(pm_identity_generate(&other));
    test_round_trips(id, other);
    test_refusals(id, other);
    test_positions();
    pm_event_destroy(NULL);
    pm_identity_destroy(&id);
    pm_identity_destroy(&other);
    printf("test_event: ok\n");
    return 0;
}
