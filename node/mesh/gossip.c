/* Gossip (see gossip.h): receiving events (stored in batches, fresh ones relayed),
 * bursts, pushing our own events, ticks and liveness. Hellos and anti-entropy are
 * gossip_sync.c, fork proofs gossip_forks.c. */
#include "node/mesh/gossip.h"
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/mesh/fetch.h"
#include "node/mesh/gossip_internal.h"
#include "node/mesh/wire.h"
#include "proto/error.h"
#include "proto/log.h"
#include "proto/wire.pb-c.h"
#include "store/feed.h"
#include "store/forks.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *pm_gossip_peer_name(const uint8_t *id, char buf[9])
{
    pm_hex_encode(id, 4, buf);
    return buf;
}

/* Packs and sends msg on ch (reply) or to peer (when ch is NULL). */
int pm_gossip_send(pm_gossip *g, const pm_channel *ch, pm_peer *peer, Pm__WireMessage *msg)
{
    uint8_t *buf;
    size_t len;
    int rc = pm_wire_pack(msg, &buf, &len);
    if (rc)
        return rc;
    rc = ch ? pm_transport_reply(g->t, ch, buf, len) : pm_transport_send(g->t, peer, buf, len);
    if (rc == PM_OK)
        g->stats.sent++;
    free(buf);
    return rc;
}

int pm_gossip_batch_add(void *ctx, const uint8_t *raw, size_t len)
{
    pm_gossip_batch *b = ctx;
    if (b->n == b->cap || b->bytes + len > PM_GOSSIP_BATCH_BYTES)
        return 1;
    uint8_t *copy = malloc(len);
    if (!copy)
        return 1;
    memcpy(copy, raw, len);
    b->items[b->n].data = copy;
    b->items[b->n].len = len;
    b->n++;
    b->bytes += len;
    return 0;
}

unsigned pm_gossip_max_batch(const pm_gossip *g)
{
    return g->cfg->gossip_max_batch ? g->cfg->gossip_max_batch : 1024;
}

void pm_gossip_batch_clear(pm_gossip_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].data);
    b->n = 0;
    b->bytes = 0;
}

void pm_gossip_batch_flush(pm_gossip *g, const pm_channel *ch, pm_peer *peer, pm_gossip_batch *b)
{
    if (b->n) {
        Pm__Events ev = PM__EVENTS__INIT;
        ev.envelopes = b->items;
        ev.n_envelopes = b->n;
        Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
        msg.kind_case = PM__WIRE_MESSAGE__KIND_EVENTS;
        msg.events = &ev;
        pm_gossip_send(g, ch, peer, &msg);
    }
    pm_gossip_batch_clear(b);
}

/* Node-local: how far this node's own feed was pushed when it last stopped. */
static const char PUSHED_KEY[] = "gossip-pushed-seq";
enum { PUSH_BACKLOG = 4096 };

int pm_gossip_self_synced(pm_gossip *g)
{
    pm_head head;
    uint64_t mine =
        pm_feed_head(g->store, pm_identity_public(g->id), &head) == PM_OK ? head.seq : 0;
    uint64_t top = 0; /* a forked own feed: the longer branch is held too */
    if (pm_forks_top(g->store, pm_identity_public(g->id), &top) == PM_OK && top > mine)
        mine = top;
    return g->heard_sync && mine >= g->self_seq_seen;
}

void pm_gossip_set_fetcher(pm_gossip *g, pm_fetcher *fetcher)
{
    g->fetcher = fetcher;
}

static uint64_t up_window_ms(const pm_gossip *g)
{
    uint64_t w = 3ull * g->cfg->gossip_interval_ms;
    return w < 3000 ? 3000 : w;
}

int pm_gossip_new(pm_transport *t, pm_store *store, const pm_identity *id, const pm_config *cfg,
                  pm_gossip **out)
{
    pm_gossip *g = calloc(1, sizeof *g);
    if (!g)
        return PM_E_NOMEM;
    g->t = t;
    g->store = store;
    g->id = id;
    g->cfg = cfg;
    pm_head head;
    if (pm_feed_head(store, pm_identity_public(id), &head) == PM_OK) {
        /* From where the last run stopped pushing: events signed while the node was
         * stopped (CLI writes) are pushed now. A much older mark (a crash) is capped;
         * what lies before reaches peers by anti-entropy. */
        void *val = NULL;
        size_t len = 0;
        g->pushed_seq = head.seq;
        if (pm_store_local_get(store, PUSHED_KEY, &val, &len) == PM_OK && len == 8) {
            uint64_t mark = 0;
            for (int i = 0; i < 8; i++)
                mark = mark << 8 | ((uint8_t *)val)[i];
            if (mark < head.seq)
                g->pushed_seq = head.seq - mark > PUSH_BACKLOG ? head.seq - PUSH_BACKLOG : mark;
        }
        free(val);
    }
    *out = g;
    return PM_OK;
}

void pm_gossip_destroy(pm_gossip **self_p)
{
    if (!self_p || !*self_p)
        return;
    uint8_t mark[8];
    for (int i = 0; i < 8; i++)
        mark[i] = (uint8_t)((*self_p)->pushed_seq >> (56 - 8 * i));
    pm_store_local_put((*self_p)->store, PUSHED_KEY, mark, sizeof mark);
    for (size_t k = 0; k < (*self_p)->n_held; k++) /* a burst never outlives its drain */
        pm_wire_free(&(*self_p)->held[k]);
    free((*self_p)->known);
    free(*self_p);
    *self_p = NULL;
}

pm_gossip_stats pm_gossip_get_stats(pm_gossip *g)
{
    return g->stats;
}

static void relay(pm_gossip *g, const uint8_t *except, ProtobufCBinaryData *items, size_t n)
{
    size_t peers = pm_transport_peer_count(g->t);
    if (!peers || !n)
        return;
    pm_gossip_batch b = {items, n, n, 0};
    Pm__Events ev = PM__EVENTS__INIT;
    ev.envelopes = b.items;
    ev.n_envelopes = b.n;
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_EVENTS;
    msg.events = &ev;
    /* A random start and `fanout` consecutive peers: a random subset, cheaply. */
    size_t start = randombytes_uniform((uint32_t)peers), sent = 0;
    for (size_t k = 0; k < peers && sent < g->cfg->gossip_fanout; k++) {
        pm_peer *p = pm_transport_peer(g->t, (start + k) % peers);
        if (except && memcmp(p->id, except, PM_ID_BYTES) == 0)
            continue;
        pm_gossip_send(g, NULL, p, &msg);
        sent++;
    }
}

/* What the ingest said of one batch's events: fresh ones are relayed (one message per
 * batch as received, so relays keep the batch bounds), the rest counted or acted on. */
static void sort_results(pm_gossip *g, const pm_channel *ch, const ProtobufCBinaryData *envs,
                         const int *results, size_t n, ProtobufCBinaryData *fresh, size_t *gaps)
{
    char who[9];
    size_t n_fresh = 0;
    for (size_t i = 0; i < n; i++) {
        int r = results[i];
        if (r == PM_OK) {
            fresh[n_fresh++] = envs[i];
        } else if (r == PM_E_GAP) {
            (*gaps)++;
        } else if (r == PM_E_CHAIN) {
            /* Its predecessor differs from ours: one of us holds a forked event. Show the
             * sender ours, so whoever holds both keeps the proof and gossips it. */
            pm_gossip_show_predecessor(g, ch, envs[i].data, envs[i].len);
        } else if (r == PM_E_FORK) {
            g->stats.forks++;
            fresh[n_fresh++] = envs[i]; /* a branch event spreads like any */
            pm_gossip_fork_detected(g, envs[i].data, envs[i].len);
        } else if (r != PM_ALREADY_HELD) {
            g->stats.refused++;
            pm_warn("gossip", "refused an event from peer %s: %s", pm_gossip_peer_name(ch->id, who),
                    pm_strerror(r));
        }
    }
    g->stats.ingested += n_fresh;
    if (n_fresh) {
        pm_debug("gossip", "%zu new events from %s", n_fresh, pm_gossip_peer_name(ch->id, who));
        relay(g, ch->id, fresh, n_fresh);
    }
}

/* Stores the events of n_groups batches from ch (group_ends[k]: where batch k ends in
 * envs) in one transaction, their signatures checked on every core first. */
static void handle_envelopes(pm_gossip *g, const pm_channel *ch, const ProtobufCBinaryData *envs,
                             size_t n, const size_t *group_ends, size_t n_groups)
{
    if (!n)
        return;
    const uint8_t **bytes = calloc(n, sizeof *bytes);
    size_t *lens = calloc(n, sizeof *lens);
    int *results = calloc(n, sizeof *results);
    ProtobufCBinaryData *fresh = calloc(n, sizeof *fresh);
    if (!bytes || !lens || !results || !fresh)
        goto done;
    for (size_t i = 0; i < n; i++) {
        bytes[i] = envs[i].data;
        lens[i] = envs[i].len;
    }
    char who[9];
    int rc = pm_feed_ingest_batch_parallel(g->store, bytes, lens, n, results);
    if (rc) {
        pm_error("gossip", "cannot store events from %s: %s", pm_gossip_peer_name(ch->id, who),
                 pm_strerror(rc));
        goto done;
    }
    size_t gaps = 0;
    for (size_t k = 0, at = 0; k < n_groups; at = group_ends[k++])
        sort_results(g, ch, envs + at, results + at, group_ends[k] - at, fresh, &gaps);
    if (gaps)
        pm_debug("gossip", "%zu of %zu events from %s lie past a gap", gaps, n,
                 pm_gossip_peer_name(ch->id, who));
    /* A gap means we missed something: ask again. (More of a long catch-up is asked
     * for when the sender's closing hello arrives; see pm_gossip_handle_hello.) */
    uint64_t now = pm_now_ms();
    if (gaps && (!ch->peer || now - ch->peer->gap_sync_ms >= g->cfg->gossip_interval_ms)) {
        if (ch->peer) /* at most once per interval per peer: pushes keep coming meanwhile */
            ch->peer->gap_sync_ms = now;
        pm_gossip_send_hello(g, ch, NULL, 1);
    }
done:
    free(bytes);
    free(lens);
    free(results);
    free(fresh);
}

static void handle_events(pm_gossip *g, const pm_channel *ch, const Pm__Events *ev)
{
    size_t end = ev->n_envelopes;
    handle_envelopes(g, ch, ev->envelopes, ev->n_envelopes, &end, 1);
}

/* The batches held in a burst, stored together. */
static void flush_held(pm_gossip *g)
{
    if (!g->n_held)
        return;
    ProtobufCBinaryData *envs = calloc(g->held_events ? g->held_events : 1, sizeof *envs);
    size_t ends[PM_GOSSIP_BURST_MAX], n = 0;
    for (size_t k = 0; envs && k < g->n_held; k++) {
        const Pm__Events *ev = g->held[k]->events;
        memcpy(envs + n, ev->envelopes, ev->n_envelopes * sizeof *envs);
        n += ev->n_envelopes;
        ends[k] = n;
    }
    if (envs) {
        pm_debug("gossip", "%zu events of %zu batches in one transaction", n, g->n_held);
        handle_envelopes(g, &g->held_ch, envs, n, ends, g->n_held);
    } else {
        pm_error("gossip", "out of memory: %zu events dropped (asked again later)", g->held_events);
    }
    free(envs);
    for (size_t k = 0; k < g->n_held; k++)
        pm_wire_free(&g->held[k]);
    g->n_held = g->held_events = 0;
    if (g->held_ch.routing)
        zmq_msg_close(&g->held_routing);
    g->held_ch.routing = NULL;
}

/* The channel the held batches came on, kept for replies (a ROUTER's routing frame is
 * copied: the caller's lives only as long as its message). */
static int adopt_channel(pm_gossip *g, const pm_channel *ch)
{
    g->held_ch = *ch;
    if (!ch->routing)
        return 1;
    zmq_msg_init(&g->held_routing);
    if (zmq_msg_copy(&g->held_routing, ch->routing) != 0) {
        zmq_msg_close(&g->held_routing);
        g->held_ch.routing = NULL;
        return 0;
    }
    g->held_ch.routing = &g->held_routing;
    return 1;
}

/* In a burst, an events message is held (1: taken over); one from another channel than
 * the batches held first has them stored. */
static int hold(pm_gossip *g, const pm_channel *ch, Pm__WireMessage **msg)
{
    if (!g->burst || (*msg)->kind_case != PM__WIRE_MESSAGE__KIND_EVENTS)
        return 0;
    if (g->n_held && (memcmp(ch->id, g->held_ch.id, PM_ID_BYTES) != 0 ||
                      (ch->routing == NULL) != (g->held_ch.routing == NULL)))
        flush_held(g);
    if (g->n_held == PM_GOSSIP_BURST_MAX)
        flush_held(g);
    if (!g->n_held && !adopt_channel(g, ch))
        return 0;
    g->held[g->n_held++] = *msg;
    g->held_events += (*msg)->events->n_envelopes;
    *msg = NULL;
    return 1;
}

void pm_gossip_burst_begin(pm_gossip *g)
{
    flush_held(g);
    g->burst = 1;
}

void pm_gossip_burst_end(pm_gossip *g)
{
    flush_held(g);
    g->burst = 0;
}

void pm_gossip_handle(pm_gossip *g, const pm_channel *ch, const uint8_t *data, size_t len)
{
    char who[9];
    g->stats.received++;
    if (ch->peer) {
        ch->peer->last_seen_ms = pm_now_ms();
        if (!ch->routing)
            ch->peer->dealer_heard_ms = ch->peer->last_seen_ms;
    }
    Pm__WireMessage *msg = NULL;
    int rc = pm_wire_unpack(data, len, &msg);
    if (rc) {
        g->stats.malformed++;
        pm_warn("gossip", "dropped a message (%zu bytes) from %s: %s", len,
                pm_gossip_peer_name(ch->id, who),
                rc == PM_E_FORMAT    ? "another wire version"
                : rc == PM_E_UNKNOWN ? "a kind of message this node does not know"
                                     : pm_strerror(rc));
        return;
    }
    if (hold(g, ch, &msg))
        return;
    flush_held(g); /* whatever else arrives comes after the batches before it */
    switch (msg->kind_case) {
    case PM__WIRE_MESSAGE__KIND_HELLO: pm_gossip_handle_hello(g, ch, msg->hello); break;
    case PM__WIRE_MESSAGE__KIND_EVENTS: handle_events(g, ch, msg->events); break;
    case PM__WIRE_MESSAGE__KIND_FORK: pm_gossip_handle_fork(g, ch, msg->fork); break;
    case PM__WIRE_MESSAGE__KIND_CHUNK_REQUEST:
        if (g->fetcher)
            pm_fetch_handle_request(g->fetcher, ch, msg->chunk_request);
        break;
    case PM__WIRE_MESSAGE__KIND_CHUNK_REPLY:
        if (g->fetcher)
            pm_fetch_handle_reply(g->fetcher, ch, msg->chunk_reply);
        break;
    default: break; /* pm_wire_unpack refuses every other kind */
    }
    pm_wire_free(&msg);
}

void pm_gossip_push_local(pm_gossip *g)
{
    pm_head head;
    uint64_t now = pm_now_ms();
    if (pm_feed_head(g->store, pm_identity_public(g->id), &head) != PM_OK ||
        head.seq <= g->pushed_seq || now < g->push_retry_ms)
        return;
    unsigned max_batch = pm_gossip_max_batch(g);
    pm_gossip_batch b = {calloc(max_batch, sizeof(ProtobufCBinaryData)), 0, max_batch, 0};
    if (!b.items)
        return;
    pm_feed_read(g->store, head.origin, g->pushed_seq + 1, max_batch, PM_GOSSIP_BATCH_BYTES,
                 pm_gossip_batch_add, &b);
    Pm__Events ev = PM__EVENTS__INIT;
    ev.envelopes = b.items;
    ev.n_envelopes = b.n;
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_EVENTS;
    msg.events = &ev;
    size_t delivered = 0;
    for (size_t i = 0; i < pm_transport_peer_count(g->t); i++)
        delivered += pm_gossip_send(g, NULL, pm_transport_peer(g->t, i), &msg) == PM_OK;
    /* Pushed only once some peer took it: with no link up the events wait here (a
     * retry each second) rather than being left to anti-entropy alone. */
    if (delivered)
        g->pushed_seq += b.n;
    else
        g->push_retry_ms = now + 1000;
    pm_gossip_batch_clear(&b);
    free(b.items);
}

int pm_gossip_tick(pm_gossip *g, uint64_t now)
{
    if (now >= g->next_sync_ms) {
        pm_transport_refresh(g->t, now, up_window_ms(g));
        size_t peers = pm_transport_peer_count(g->t);
        if (peers) {
            size_t start = randombytes_uniform((uint32_t)peers);
            for (size_t k = 0; k < peers && k < g->cfg->gossip_fanout; k++)
                pm_gossip_send_hello(g, NULL, pm_transport_peer(g->t, (start + k) % peers), 1);
        }
        g->next_sync_ms = now + g->cfg->gossip_interval_ms;
    }
    if (now >= g->next_heartbeat_ms) {
        for (size_t i = 0; i < pm_transport_peer_count(g->t); i++)
            pm_gossip_send_hello(g, NULL, pm_transport_peer(g->t, i), 0);
        g->next_heartbeat_ms = now + 1000;
    }
    pm_gossip_push_local(g);
    uint64_t next = g->next_sync_ms < g->next_heartbeat_ms ? g->next_sync_ms : g->next_heartbeat_ms;
    return next > now ? (int)(next - now) : 0;
}

int pm_gossip_liveness(pm_gossip *g, uint64_t now, pm_liveness *out)
{
    size_t n = pm_transport_peer_count(g->t);
    out->n = 0;
    out->peers = calloc(n + 1, sizeof *out->peers);
    if (!out->peers)
        return PM_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const pm_peer *p = pm_transport_peer(g->t, i);
        pm_peer_liveness *l = &out->peers[out->n++];
        memcpy(l->id, p->id, PM_ID_BYTES);
        l->up = p->last_seen_ms && now - p->last_seen_ms < up_window_ms(g);
        l->last_seen_ms = p->last_seen_ms;
        l->has_digest = p->has_digest;
        if (p->has_digest)
            memcpy(l->digest, p->digest, PM_HASH_BYTES);
    }
    return PM_OK;
}
