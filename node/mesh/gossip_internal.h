/* Shared by the files of gossip (gossip.c: events, pushes and ticks; gossip_sync.c:
 * hellos and anti-entropy; gossip_forks.c: fork proofs and branches). Not an API: everything runs
 * in the main loop's thread. */
#ifndef PM_GOSSIP_INTERNAL_H
#define PM_GOSSIP_INTERNAL_H

#include "node/mesh/fetch.h"
#include "node/mesh/gossip.h"
#include "proto/wire.pb-c.h"
#include "store/feed.h"

struct pm_gossip {
    pm_transport *t;
    pm_store *store;
    const pm_identity *id;
    const pm_config *cfg;
    uint64_t pushed_seq; /* own events up to here were pushed */
    uint64_t next_sync_ms, next_heartbeat_ms;
    pm_gossip_stats stats;
    pm_fetcher *fetcher;
    pm_head *known; /* highest seq per origin that peers reported (seq only) */
    size_t n_known;
    int heard_sync;         /* a peer's sync hello arrived */
    uint64_t self_seq_seen; /* the highest seq of our own feed any peer holds */
    uint64_t push_retry_ms; /* a push no peer took is retried from then on */
    /* A burst (pm_gossip_burst_begin): the events messages of held_ch held so far. */
    int burst;
    pm_channel held_ch;
    zmq_msg_t held_routing; /* held_ch.routing points here when set */
    Pm__WireMessage *held[PM_GOSSIP_BURST_MAX];
    size_t n_held, held_events;
};

/* The first 8 hex digits of a node id, for log lines (buf is returned). */
const char *pm_gossip_peer_name(const uint8_t *id, char buf[9]);

/* Packs and sends msg on ch (a reply) or to peer (when ch is NULL). PM_OK if the
 * transport took it; PM_E_NET when no link to the peer is up. */
int pm_gossip_send(pm_gossip *g, const pm_channel *ch, pm_peer *peer, Pm__WireMessage *msg);

/* Envelopes collected into one Events message, within the batch bounds (owned copies). */
typedef struct {
    ProtobufCBinaryData *items;
    size_t n, cap, bytes;
} pm_gossip_batch;

/* Most events in one batch: [gossip] max_batch (1024 if unset). */
unsigned pm_gossip_max_batch(const pm_gossip *g);

/* pm_feed_fn: copies an envelope in; non-zero when the batch is full. */
int pm_gossip_batch_add(void *batch, const uint8_t *raw, size_t len);
void pm_gossip_batch_clear(pm_gossip_batch *b);
/* Sends the batch (if not empty) on ch or to peer, then clears it. */
void pm_gossip_batch_flush(pm_gossip *g, const pm_channel *ch, pm_peer *peer, pm_gossip_batch *b);

/* Sends a hello on ch (a reply) or to peer: with sync, this node's version vector
 * (asking for what the receiver holds beyond it); without, a heartbeat. */
void pm_gossip_send_hello(pm_gossip *g, const pm_channel *ch, pm_peer *peer, int sync);

/* A hello from a peer. A sync hello is answered with what the peer lacks (oldest first,
 * within a budget of batches; node/mesh/sync_plan.h decides per origin) and with a
 * hello back when the peer holds what we lack; a heartbeat on our ROUTER is answered. */
void pm_gossip_handle_hello(pm_gossip *g, const pm_channel *ch, const Pm__Hello *h);

/* A fork branch event was just recorded from a peer: the pair (the feed's event at its
 * seq and it) goes to every peer as proof. */
void pm_gossip_fork_detected(pm_gossip *g, const uint8_t *raw, size_t len);

/* A peer's event did not chain onto ours: show the sender our predecessor, so whoever
 * holds both keeps the proof. */
void pm_gossip_show_predecessor(pm_gossip *g, const pm_channel *ch, const uint8_t *raw, size_t len);

/* A fork proof message from a peer. */
void pm_gossip_handle_fork(pm_gossip *g, const pm_channel *ch, const Pm__ForkProof *f);

/* Every fork proof held, to ch. */
void pm_gossip_send_proofs(pm_gossip *g, const pm_channel *ch);

/* Adds every fork branch event of origin to the batch, flushing full ones to ch, within
 * *budget batches. */
void pm_gossip_send_branches(pm_gossip *g, const pm_channel *ch, pm_gossip_batch *b,
                             const uint8_t *origin, size_t *budget);

#endif
