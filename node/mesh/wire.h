/* The wire codec: a WireMessage (proto/wire.proto) to bytes and back, the one place
 * where messages between nodes are packed and checked as a whole.
 *
 * Pure: no sockets, no store, no logging; safe from any thread. Gossip and fetch build
 * and read Pm__WireMessage values; the transport moves the bytes. What a message means
 * (is this event valid, do I hold this blob) is checked by its handler, not here. */
#ifndef PM_WIRE_H
#define PM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest message, packed. The transport has ZeroMQ drop anything much larger before
 * it is read; pm_wire_unpack refuses anything larger. */
#define PM_WIRE_MAX_BYTES (16u << 20)
/* The version every message carries; another version is refused, not guessed at. */
#define PM_WIRE_VERSION 1

/* Packs msg, after setting msg->version to PM_WIRE_VERSION, into *out (malloc'ed, the
 * caller's to free) of *len bytes. Returns PM_OK; PM_E_INVAL if msg has no kind set (a
 * programmer error); PM_E_TOOBIG if it would exceed PM_WIRE_MAX_BYTES (nothing is
 * allocated then); PM_E_NOMEM. *out is NULL on failure. */
int pm_wire_pack(Pm__WireMessage *msg, uint8_t **out, size_t *len);

/* Unpacks len bytes from a peer. Returns PM_OK with *out a new message (free it with
 * pm_wire_free; it does not borrow data); PM_E_TOOBIG if len exceeds PM_WIRE_MAX_BYTES;
 * PM_E_PARSE if the bytes are not one WireMessage, or not all of them were consumed by
 * it: the message must be exactly what pm_wire_pack writes for it (each field once, no
 * bytes over), so a second copy of a field or bytes appended after a valid message are
 * refused, never silently dropped or merged; PM_E_FORMAT if its version is not
 * PM_WIRE_VERSION; PM_E_UNKNOWN if it carries no kind this node knows. *out is NULL on
 * failure. */
int pm_wire_unpack(const uint8_t *data, size_t len, Pm__WireMessage **out);

/* Frees a message from pm_wire_unpack. Accepts NULL and *msg_p == NULL; clears it. */
void pm_wire_free(Pm__WireMessage **msg_p);

#ifdef __cplusplus
}
#endif
#endif
