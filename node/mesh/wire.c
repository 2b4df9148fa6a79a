/* The wire codec (node/mesh/wire.h). */
#include "node/mesh/wire.h"
#include "proto/error.h"

#include <stdlib.h>

static int kind_known(Pm__WireMessage__KindCase k)
{
    switch (k) {
    case PM__WIRE_MESSAGE__KIND_HELLO:
    case PM__WIRE_MESSAGE__KIND_EVENTS:
    case PM__WIRE_MESSAGE__KIND_FORK:
    case PM__WIRE_MESSAGE__KIND_CHUNK_REQUEST:
    case PM__WIRE_MESSAGE__KIND_CHUNK_REPLY: return 1;
    default: return 0;
    }
}

int pm_wire_pack(Pm__WireMessage *msg, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!kind_known(msg->kind_case))
        return PM_E_INVAL;
    msg->version = PM_WIRE_VERSION;
    size_t n = pm__wire_message__get_packed_size(msg);
    if (n > PM_WIRE_MAX_BYTES)
        return PM_E_TOOBIG;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return PM_E_NOMEM;
    if (pm__wire_message__pack(msg, buf) != n) {
        free(buf); /* cannot happen: the size was just computed from the same message */
        return PM_E_INVAL;
    }
    *out = buf;
    *len = n;
    return PM_OK;
}

int pm_wire_unpack(const uint8_t *data, size_t len, Pm__WireMessage **out)
{
    *out = NULL;
    if (len > PM_WIRE_MAX_BYTES)
        return PM_E_TOOBIG;
    Pm__WireMessage *msg = pm__wire_message__unpack(NULL, len, data);
    if (!msg)
        return PM_E_PARSE;
    /* protobuf accepts a field given twice (the last wins, or repeated ones merge) and
     * so parses a valid message followed by more fields: packing it again tells. */
    int rc = PM_OK;
    if (pm__wire_message__get_packed_size(msg) != len)
        rc = PM_E_PARSE;
    else if (msg->version != PM_WIRE_VERSION)
        rc = PM_E_FORMAT;
    else if (!kind_known(msg->kind_case))
        rc = PM_E_UNKNOWN;
    if (rc) {
        pm__wire_message__free_unpacked(msg, NULL);
        return rc;
    }
    *out = msg;
    return PM_OK;
}

void pm_wire_free(Pm__WireMessage **msg_p)
{
    if (!msg_p || !*msg_p)
        return;
    pm__wire_message__free_unpacked(*msg_p, NULL);
    *msg_p = NULL;
}
