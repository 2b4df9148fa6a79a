/* Gossip: how events spread (docs/design.md, Replication).
 *
 * - Push: new local events go to every connected peer at once; events newly learned
 *   from a peer are relayed to a few random others (fanout), so nodes that never talk
 *   directly still converge quickly.
 * - Anti-entropy: every interval a node sends its version vector (highest seq held per
 *   origin) to `fanout` random peers; each side sends the other what it lacks, oldest
 *   first, in batches of at most max_batch events and PM_GOSSIP_BATCH_BYTES bytes, a
 *   few batches per answer; an answer that leaves more ends with a sync hello so the
 *   receiver asks again at once: catch-up streams without waiting for the interval.
 * - Heartbeats: a small hello to every peer each second; a peer is up while messages
 *   from it keep arriving.
 * - Forks: an event that conflicts with one held is kept as proof and the pair is sent
 *   to every peer. */
#ifndef PM_GOSSIP_H
#define PM_GOSSIP_H

#include <jansson.h>

#include "node/mesh/liveness.h"
#include "node/mesh/transport.h"

#define PM_GOSSIP_BATCH_BYTES (4u << 20)
#define PM_GOSSIP_BATCHES_PER_ANSWER 8

typedef struct pm_gossip pm_gossip;

int pm_gossip_new(pm_transport *transport, pm_store *store, const pm_identity *id,
                  const pm_config *cfg, pm_gossip **out);
void pm_gossip_destroy(pm_gossip **self_p);

/* Chunk requests and replies are handed to the fetcher (node/mesh/fetch.h). */
struct pm_fetcher;
void pm_gossip_set_fetcher(pm_gossip *self, struct pm_fetcher *fetcher);

/* One frame received on ch. Malformed frames are logged with the peer and dropped. */
void pm_gossip_handle(pm_gossip *self, const pm_channel *ch, const uint8_t *data, size_t len);

/* Most events messages a burst holds before storing them: a catch-up answer's batches
 * (PM_GOSSIP_BATCHES_PER_ANSWER) fit, with room for pushes between them. */
#define PM_GOSSIP_BURST_MAX 16

/* Frames received in a row (a socket's queue, drained at once) are a burst: from
 * burst_begin to burst_end, consecutive events messages of one channel are held and
 * stored together, in one transaction with their signatures checked on every core
 * first, when another kind of message or one from another channel arrives,
 * PM_GOSSIP_BURST_MAX are held, or the burst ends. A catch-up answer (several batches
 * and a closing hello) is thus one commit. Order is kept: anything else is handled
 * after the batches before it. */
void pm_gossip_burst_begin(pm_gossip *self);
void pm_gossip_burst_end(pm_gossip *self);

/* Periodic work: peer refresh, anti-entropy, heartbeats, pushing local events. Returns
 * the milliseconds until it wants to run again. */
int pm_gossip_tick(pm_gossip *self, uint64_t now_ms);

/* Pushes this node's events not yet pushed to every connected peer; they count as
 * pushed once a peer's link took them. */
void pm_gossip_push_local(pm_gossip *self);

/* Whether a peer has told us (in a sync hello) how far our own feed goes, and we hold
 * at least that much: a node restored from an old backup thus first recovers its own
 * later events from its peers before it signs (node/cli/feed_guard.h). Never true
 * without a peer's word. */
int pm_gossip_self_synced(pm_gossip *self);

/* Every peer's liveness at now_ms into *out (the caller's to pm_liveness_free). */
int pm_gossip_liveness(pm_gossip *self, uint64_t now_ms, pm_liveness *out);

/* {"<origin hex>": seq}: the highest sequence of each origin that any peer has said
 * it holds (from their version vectors): how far behind this node is. */
json_t *pm_gossip_known_heads(pm_gossip *self);

/* Counters for metrics. */
typedef struct {
    uint64_t received, sent, ingested, refused, malformed, forks;
} pm_gossip_stats;
pm_gossip_stats pm_gossip_get_stats(pm_gossip *self);

#endif
