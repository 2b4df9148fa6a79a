/* Gossip of forks (docs/operations.md, the fork rule): proofs to every peer when one is found, to a
 * peer whose fork set differs, and every branch event to it. */
#include "crypto/hash.h"
#include "node/mesh/gossip_internal.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/forks.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    pm_gossip *g;
    const pm_channel *ch;
} fork_answer;

/* One fork proof to one channel (ch) or peer. */
static void send_fork(pm_gossip *g, const pm_channel *ch, pm_peer *peer, const uint8_t *a,
                      size_t alen, const uint8_t *b, size_t blen)
{
    Pm__ForkProof f = PM__FORK_PROOF__INIT;
    f.a.data = (uint8_t *)a;
    f.a.len = alen;
    f.b.data = (uint8_t *)b;
    f.b.len = blen;
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_FORK;
    msg.fork = &f;
    pm_gossip_send(g, ch, peer, &msg);
}

static int send_fork_proof(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                           const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    (void)origin, (void)seq;
    fork_answer *fa = ctx;
    send_fork(fa->g, fa->ch, NULL, a, alen, b, blen);
    return 0;
}

static void broadcast_fork(pm_gossip *g, const uint8_t *a, size_t alen, const uint8_t *b,
                           size_t blen)
{
    for (size_t i = 0; i < pm_transport_peer_count(g->t); i++)
        send_fork(g, NULL, pm_transport_peer(g->t, i), a, alen, b, blen);
}

/* Finds the envelope we hold at the fork's (origin, seq) to pair with the newcomer. */
typedef struct {
    const uint8_t *raw;
    size_t len;
    uint8_t *held;
    size_t held_len;
} fork_pair;

static int take_held(void *ctx, const uint8_t *raw, size_t len)
{
    fork_pair *f = ctx;
    if ((f->held = malloc(len))) {
        memcpy(f->held, raw, len);
        f->held_len = len;
    }
    return 1;
}

void pm_gossip_show_predecessor(pm_gossip *g, const pm_channel *ch, const uint8_t *raw, size_t len)
{
    Pm__Envelope *env = pm__envelope__unpack(NULL, len, raw);
    Pm__EventBody *b = env ? pm__event_body__unpack(NULL, env->body.len, env->body.data) : NULL;
    if (b && b->origin.len == PM_ID_BYTES && b->seq > 1) {
        unsigned max_batch = 1;
        pm_gossip_batch out = {calloc(max_batch, sizeof(ProtobufCBinaryData)), 0, max_batch, 0};
        if (out.items) {
            pm_feed_read(g->store, b->origin.data, b->seq - 1, 1, PM_GOSSIP_BATCH_BYTES,
                         pm_gossip_batch_add, &out);
            pm_gossip_batch_flush(g, ch, NULL, &out);
            free(out.items);
        }
    }
    if (b)
        pm__event_body__free_unpacked(b, NULL);
    if (env)
        pm__envelope__free_unpacked(env, NULL);
}

void pm_gossip_fork_detected(pm_gossip *g, const uint8_t *raw, size_t len)
{
    Pm__Envelope *env = pm__envelope__unpack(NULL, len, raw);
    Pm__EventBody *b = env ? pm__event_body__unpack(NULL, env->body.len, env->body.data) : NULL;
    fork_pair f = {raw, len, NULL, 0};
    if (b && b->origin.len == PM_ID_BYTES)
        pm_feed_read(g->store, b->origin.data, b->seq, 1, 1, take_held, &f);
    if (f.held)
        broadcast_fork(g, f.held, f.held_len, raw, len);
    free(f.held);
    if (b)
        pm__event_body__free_unpacked(b, NULL);
    if (env)
        pm__envelope__free_unpacked(env, NULL);
}

void pm_gossip_handle_fork(pm_gossip *g, const pm_channel *ch, const Pm__ForkProof *f)
{
    char who[9];
    int rc = pm_feed_record_fork_proof(g->store, f->a.data, f->a.len, f->b.data, f->b.len);
    if (rc == PM_OK) {
        g->stats.forks++;
        pm_warn("gossip", "fork evidence received from %s", pm_gossip_peer_name(ch->id, who));
        broadcast_fork(g, f->a.data, f->a.len, f->b.data, f->b.len);
    } else if (rc != PM_ALREADY_HELD) {
        g->stats.refused++;
        pm_warn("gossip", "refused a fork proof from %s: %s", pm_gossip_peer_name(ch->id, who),
                pm_strerror(rc));
    }
}

typedef struct {
    pm_gossip *g;
    const pm_channel *ch;
    pm_gossip_batch *b;
    size_t *budget;
} branch_sender;

static int send_branch_event(void *ctx, const uint8_t *raw, size_t len)
{
    branch_sender *bs = ctx;
    if (!*bs->budget)
        return 1;
    if (pm_gossip_batch_add(bs->b, raw, len)) { /* full: send, then retry in a fresh batch */
        pm_gossip_batch_flush(bs->g, bs->ch, NULL, bs->b);
        if (!--*bs->budget || pm_gossip_batch_add(bs->b, raw, len))
            return 1;
    }
    return 0;
}

void pm_gossip_send_proofs(pm_gossip *g, const pm_channel *ch)
{
    fork_answer fa = {g, ch};
    pm_feed_forks(g->store, send_fork_proof, &fa);
}

void pm_gossip_send_branches(pm_gossip *g, const pm_channel *ch, pm_gossip_batch *b,
                             const uint8_t *origin, size_t *budget)
{
    branch_sender bs = {g, ch, b, budget};
    pm_forks_each(g->store, origin, send_branch_event, &bs);
}
