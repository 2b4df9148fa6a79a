/* Unit test of the wire codec (node/mesh/wire.c): every kind packs and unpacks to the
 * same message; and what a peer could send that is not exactly one message of this
 * wire version is refused with its own code: bytes after a valid message, a field
 * given twice, another version, no known kind, more than PM_WIRE_MAX_BYTES. */
#include "test/check.h"

#include "node/mesh/wire.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *pack(Pm__WireMessage *m, size_t *len)
{
    uint8_t *buf = NULL;
    CHECK_RC(pm_wire_pack(m, &buf, len));
    CHECK(buf != NULL && m->version == PM_WIRE_VERSION);
    return buf;
}

static void test_round_trips(void)
{
    uint8_t id[32], origin[32], hash[32];
    memset(id, 1, sizeof id);
    memset(origin, 2, sizeof origin);
    memset(hash, 3, sizeof hash);

    Pm__VersionEntry e = PM__VERSION_ENTRY__INIT, *entries[1] = {&e};
    e.origin = (ProtobufCBinaryData){32, origin};
    e.seq = 41;
    Pm__Hello h = PM__HELLO__INIT;
    h.node_id = (ProtobufCBinaryData){32, id};
    h.heads = entries;
    h.n_heads = 1;
    h.sync = 1;
    Pm__WireMessage m = PM__WIRE_MESSAGE__INIT;
    m.kind_case = PM__WIRE_MESSAGE__KIND_HELLO;
    m.hello = &h;
    size_t len;
    uint8_t *buf = pack(&m, &len);
    Pm__WireMessage *out = NULL;
    CHECK_RC(pm_wire_unpack(buf, len, &out));
    CHECK(out->kind_case == PM__WIRE_MESSAGE__KIND_HELLO && out->hello->sync);
    CHECK(out->hello->n_heads == 1 && out->hello->heads[0]->seq == 41);
    CHECK(memcmp(out->hello->heads[0]->origin.data, origin, 32) == 0);
    pm_wire_free(&out);
    pm_wire_free(&out); /* safe twice */
    CHECK(out == NULL);
    free(buf);

    ProtobufCBinaryData envs[2] = {{3, (uint8_t *)"abc"}, {2, (uint8_t *)"de"}};
    Pm__Events ev = PM__EVENTS__INIT;
    ev.envelopes = envs;
    ev.n_envelopes = 2;
    Pm__WireMessage m2 = PM__WIRE_MESSAGE__INIT;
    m2.kind_case = PM__WIRE_MESSAGE__KIND_EVENTS;
    m2.events = &ev;
    buf = pack(&m2, &len);
    CHECK_RC(pm_wire_unpack(buf, len, &out));
    CHECK(out->events->n_envelopes == 2 && out->events->envelopes[1].len == 2);
    CHECK(memcmp(out->events->envelopes[0].data, "abc", 3) == 0);
    pm_wire_free(&out);
    free(buf);

    Pm__ChunkReply rep = PM__CHUNK_REPLY__INIT;
    rep.hash = (ProtobufCBinaryData){32, hash};
    rep.offset = 1 << 20;
    rep.data = (ProtobufCBinaryData){5, (uint8_t *)"pixel"};
    rep.total = 3 << 20;
    rep.request_id = 7;
    Pm__WireMessage m3 = PM__WIRE_MESSAGE__INIT;
    m3.kind_case = PM__WIRE_MESSAGE__KIND_CHUNK_REPLY;
    m3.chunk_reply = &rep;
    buf = pack(&m3, &len);
    CHECK_RC(pm_wire_unpack(buf, len, &out));
    CHECK(out->chunk_reply->offset == 1 << 20 && out->chunk_reply->request_id == 7);
    CHECK(out->chunk_reply->data.len == 5 && !out->chunk_reply->absent);
    pm_wire_free(&out);

    /* What a peer could get wrong. */
    uint8_t *more = malloc(len + 2);
    CHECK(more);
    memcpy(more, buf, len);
    more[len] = 0x08; /* field 1 (version) again, varint 1: parses, but not all of one message */
    more[len + 1] = 0x01;
    CHECK_CODE(pm_wire_unpack(more, len + 2, &out), PM_E_PARSE);
    CHECK(out == NULL);
    /* The same message twice over: a field given twice. */
    uint8_t *twice = malloc(2 * len);
    CHECK(twice);
    memcpy(twice, buf, len);
    memcpy(twice + len, buf, len);
    CHECK_CODE(pm_wire_unpack(twice, 2 * len, &out), PM_E_PARSE);
    CHECK_CODE(pm_wire_unpack(buf, len - 1, &out), PM_E_PARSE); /* truncated */
    free(twice);
    free(more);
    free(buf);
}

static void test_refusals(void)
{
    Pm__WireMessage *out = NULL;
    size_t len;
    uint8_t *buf;
    /* No kind: a programmer error when packing, refused when unpacking. */
    Pm__WireMessage none = PM__WIRE_MESSAGE__INIT;
    CHECK_CODE(pm_wire_pack(&none, &buf, &len), PM_E_INVAL);
    CHECK(buf == NULL);
    static const uint8_t only_version[] = {0x08, 0x01};
    CHECK_CODE(pm_wire_unpack(only_version, sizeof only_version, &out), PM_E_UNKNOWN);
    /* An unknown field 15 (a kind from a later version of this wire version). */
    static const uint8_t unknown_kind[] = {0x08, 0x01, 0x7a, 0x00};
    CHECK_CODE(pm_wire_unpack(unknown_kind, sizeof unknown_kind, &out), PM_E_UNKNOWN);
    /* Another version, otherwise well formed: an empty hello of version 2. */
    static const uint8_t version2[] = {0x08, 0x02, 0x52, 0x00};
    CHECK_CODE(pm_wire_unpack(version2, sizeof version2, &out), PM_E_FORMAT);
    static const uint8_t version1[] = {0x08, 0x01, 0x52, 0x00};
    CHECK_RC(pm_wire_unpack(version1, sizeof version1, &out));
    pm_wire_free(&out);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    CHECK_CODE(pm_wire_unpack(garbage, sizeof garbage, &out), PM_E_PARSE);
    /* Over the limit: refused before parsing (the bytes are never read). */
    CHECK_CODE(pm_wire_unpack(version1, (size_t)PM_WIRE_MAX_BYTES + 1, &out), PM_E_TOOBIG);
    /* Too large to send. */
    size_t big = PM_WIRE_MAX_BYTES;
    uint8_t *blob = calloc(1, big);
    CHECK(blob);
    ProtobufCBinaryData one = {big, blob};
    Pm__Events ev = PM__EVENTS__INIT;
    ev.envelopes = &one;
    ev.n_envelopes = 1;
    Pm__WireMessage m = PM__WIRE_MESSAGE__INIT;
    m.kind_case = PM__WIRE_MESSAGE__KIND_EVENTS;
    m.events = &ev;
    CHECK_CODE(pm_wire_pack(&m, &buf, &len), PM_E_TOOBIG);
    CHECK(buf == NULL);
    free(blob);
}

int main(void)
{
    test_round_trips();
    test_refusals();
    printf("test_wire: ok\n");
    return 0;
}
