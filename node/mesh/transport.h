/* The mesh transport: ZeroMQ with CURVE on every socket.
 *
 * One ROUTER socket, bound to [node] listen, accepts peers; a ZAP handler on the same
 * context admits a CURVE client only if its key belongs to a current member in the
 * membership view (revoked and pending nodes are refused) and names it by its node id
 * (the connection's User-Id). One DEALER per peer connects out, as a CURVE client
 * that knows the peer's key, so a node talks only to the node it meant to. ZeroMQ
 * does the reconnecting. DEALERs are IMMEDIATE: nothing queues for a peer that is
 * down, so a dead peer costs no memory.
 *
 * Every message is one frame of at most PM_WIRE_MAX_BYTES; larger ones are dropped
 * by ZeroMQ before they reach us. */
#ifndef PM_TRANSPORT_H
#define PM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "crypto/identity.h"
#include "node/config/config.h"
#include "node/mesh/refusals.h"
#include "node/mesh/wire.h"
#include "store/store.h"

typedef struct {
    uint8_t id[PM_ID_BYTES];
    char endpoint[256];
    void *dealer;                  /* outbound socket, NULL until connected */
    uint64_t last_seen_ms;         /* last message received from this peer, either direction */
    uint64_t connected_ms;         /* when the DEALER was (re)made */
    uint64_t dealer_heard_ms;      /* last message received on our DEALER (our link works) */
    uint64_t gap_sync_ms;          /* last sync hello sent because its events had a gap */
    uint64_t fork_sync_ms;         /* last sync hello sent because its fork branches differ */
    int in_view;                   /* seen in the latest refresh */
    uint8_t digest[PM_HASH_BYTES]; /* its view digest, as its last hello said */
    int has_digest;
} pm_peer;

typedef struct pm_transport pm_transport;

/* Binds the ROUTER and the ZAP handler. PM_E_NET with a logged reason on failure. */
int pm_transport_new(void *zctx, const pm_identity *id, pm_store *store, const pm_config *cfg,
                     pm_transport **out);
void pm_transport_destroy(pm_transport **self_p);

void *pm_transport_router(pm_transport *self);
void *pm_transport_zap(pm_transport *self);

/* Answers one pending ZAP request (call when the ZAP socket is readable). A refusal is
 * counted and logged within a rate limit (node/mesh/refusals.h). */
void pm_transport_handle_zap(pm_transport *self);

/* Reads the mesh port's failed handshakes (garbage, other protocols) from its socket
 * monitor, and ends rate-limit windows; call every turn of the event loop. */
void pm_transport_watch(pm_transport *self, uint64_t now_ms);

/* What the mesh port refused since start (for the metrics). */
pm_refusal_counts pm_transport_refusals(pm_transport *self);

/* Re-reads the membership view and the bootstrap peers: connects DEALERs to new
 * members, closes those of revoked ones, and remakes a DEALER that has heard nothing
 * (not even the answer to a heartbeat) for silent_ms. (libzmq does not reconnect after a refused
 * CURVE handshake, and a node refuses peers it does not yet know to be members: without this a link
 * refused once at start-up would stay down for good.) */
int pm_transport_refresh(pm_transport *self, uint64_t now_ms, uint64_t silent_ms);

size_t pm_transport_peer_count(pm_transport *self);
pm_peer *pm_transport_peer(pm_transport *self, size_t i);
pm_peer *pm_transport_find(pm_transport *self, const uint8_t id[PM_ID_BYTES]);

/* Where a message came from and how to answer it: the ROUTER with a routing id, or
 * the DEALER of a peer. */
typedef struct {
    pm_peer *peer; /* the sender; NULL if not (or no longer) known */
    uint8_t id[PM_ID_BYTES];
    zmq_msg_t *routing; /* ROUTER replies: the routing id frame; NULL for DEALER */
} pm_channel;

/* Sends len bytes on the channel (non-blocking: dropped if the peer cannot take it). */
int pm_transport_reply(pm_transport *self, const pm_channel *ch, const void *buf, size_t len);

/* Sends len bytes to peer over its DEALER (non-blocking; dropped if not connected). */
int pm_transport_send(pm_transport *self, pm_peer *peer, const void *buf, size_t len);

#endif
