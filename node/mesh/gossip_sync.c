/* Anti-entropy (see gossip.h): hellos carrying this node's version vector (the head of
 * every origin, named by its hash, with fork digests), and the answer to a peer's: what
 * it lacks, streamed oldest first within a budget, and a hello back for what we lack. */
#include "crypto/hash.h"
#include "node/mesh/gossip_internal.h"
#include "node/mesh/sync_plan.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/forks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void pm_gossip_send_hello(pm_gossip *g, const pm_channel *ch, pm_peer *peer, int sync)
{
    Pm__Hello hello = PM__HELLO__INIT;
    Pm__VersionEntry *entries = NULL, **ptrs = NULL;
    uint8_t(*digests)[PM_HASH_BYTES] = NULL;
    pm_head *heads = NULL;
    size_t n = 0;
    uint8_t mesh[PM_HASH_BYTES];
    if (sync && pm_feed_heads(g->store, &heads, &n) == PM_OK && n) {
        entries = calloc(n, sizeof *entries);
        ptrs = calloc(n, sizeof *ptrs);
        if (!entries || !ptrs)
            n = 0;
        digests = calloc(n ? n : 1, PM_HASH_BYTES);
        if (!digests)
            n = 0;
        for (size_t i = 0; i < n; i++) {
            pm__version_entry__init(&entries[i]);
            entries[i].origin.data = heads[i].origin;
            entries[i].origin.len = PM_ID_BYTES;
            entries[i].seq = heads[i].seq;
            /* The head is named by its hash, so a peer holding a different event at this
             * seq sees the fork at once; a forked origin also carries what this node
             * holds of its branches, so two nodes compare the whole fork. */
            entries[i].hash.data = heads[i].hash;
            entries[i].hash.len = PM_HASH_BYTES;
            uint64_t floor = 0;
            if (pm_forks_floor(g->store, heads[i].origin, &floor) == PM_OK && floor &&
                pm_forks_digest(g->store, heads[i].origin, floor, digests[i]) == PM_OK) {
                entries[i].fork_floor = floor;
                entries[i].fork_digest.data = digests[i];
                entries[i].fork_digest.len = PM_HASH_BYTES;
            }
            ptrs[i] = &entries[i];
        }
        hello.heads = ptrs;
        hello.n_heads = n;
    }
    hello.node_id.data = (uint8_t *)pm_identity_public(g->id);
    hello.node_id.len = PM_ID_BYTES;
    if (pm_store_mesh_id(g->store, mesh) == PM_OK) {
        hello.mesh.data = mesh;
        hello.mesh.len = PM_HASH_BYTES;
    }
    hello.sync = sync;
    char digest_hex[PM_HASH_HEX];
    uint8_t digest[PM_HASH_BYTES];
    if (pm_store_digest(g->store, digest_hex) == PM_OK &&
        pm_hex_decode(digest_hex, digest, PM_HASH_BYTES) == PM_OK) {
        hello.digest.data = digest;
        hello.digest.len = PM_HASH_BYTES;
    }
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_HELLO;
    msg.hello = &hello;
    pm_gossip_send(g, ch, peer, &msg);
    free(entries);
    free(ptrs);
    free(digests);
    free(heads);
}

static const Pm__VersionEntry *their_entry(const Pm__Hello *h, const uint8_t *origin)
{
    for (size_t i = 0; i < h->n_heads; i++)
        if (h->heads[i]->origin.len == PM_ID_BYTES &&
            memcmp(h->heads[i]->origin.data, origin, PM_ID_BYTES) == 0)
            return h->heads[i];
    return NULL;
}

static uint64_t their_seq(const Pm__Hello *h, const uint8_t *origin)
{
    const Pm__VersionEntry *e = their_entry(h, origin);
    return e ? e->seq : 0;
}

static void note_known_heads(pm_gossip *g, const Pm__Hello *h)
{
    for (size_t i = 0; i < h->n_heads; i++) {
        const Pm__VersionEntry *e = h->heads[i];
        if (e->origin.len != PM_ID_BYTES)
            continue;
        size_t k;
        for (k = 0; k < g->n_known; k++)
            if (memcmp(g->known[k].origin, e->origin.data, PM_ID_BYTES) == 0)
                break;
        if (k == g->n_known) {
            if (g->n_known >= 4096) /* bounded: far more origins than any mesh has */
                continue;
            pm_head *grown = realloc(g->known, (g->n_known + 1) * sizeof *grown);
            if (!grown)
                continue;
            g->known = grown;
            memset(&g->known[k], 0, sizeof g->known[k]);
            memcpy(g->known[k].origin, e->origin.data, PM_ID_BYTES);
            g->n_known++;
        }
        if (e->seq > g->known[k].seq)
            g->known[k].seq = e->seq;
    }
}

json_t *pm_gossip_known_heads(pm_gossip *g)
{
    json_t *o = json_object();
    for (size_t i = 0; i < g->n_known; i++) {
        char hex[PM_ID_HEX];
        pm_hex_encode(g->known[i].origin, PM_ID_BYTES, hex);
        json_object_set_new(o, hex, json_integer((json_int_t)g->known[i].seq));
    }
    return o;
}

/* Appends origin's events from seq have+1 to to_seq to the batch, sending full batches;
 * stops when the budget of batches is spent. */
static void send_range(pm_gossip *g, const pm_channel *ch, pm_gossip_batch *b,
                       const uint8_t *origin, uint64_t have, uint64_t to_seq, size_t *budget)
{
    while (have < to_seq && *budget) {
        size_t before = b->n;
        pm_feed_read(g->store, origin, have + 1, b->cap - b->n, PM_GOSSIP_BATCH_BYTES,
                     pm_gossip_batch_add, b);
        size_t got = b->n - before; /* counted before a flush empties the batch */
        have += got;
        if (got == 0 || b->n == b->cap || b->bytes >= PM_GOSSIP_BATCH_BYTES / 2) {
            pm_gossip_batch_flush(g, ch, NULL, b);
            (*budget)--;
        }
        if (got == 0 && have < to_seq)
            break; /* nothing fitted: move on */
    }
}

/* One origin of an answer: what to send of it, and when its first event to send was
 * written (the Lamport time). */
typedef struct {
    const pm_head *head;
    pm_sync_plan plan;
    uint64_t first_lamport; /* UINT64_MAX: nothing to send */
} answer_origin;

static int note_lamport(void *ctx, const uint8_t *raw, size_t len)
{
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) == PM_OK) {
        *(uint64_t *)ctx = ev->body->lamport;
        pm_event_destroy(&ev);
    }
    return 0;
}

static int by_first_lamport(const void *a, const void *b)
{
    const answer_origin *x = a, *y = b;
    if (x->first_lamport != y->first_lamport)
        return x->first_lamport < y->first_lamport ? -1 : 1;
    return memcmp(x->head->origin, y->head->origin, PM_ID_BYTES);
}

/* The origins to answer from, oldest first: by the Lamport time of the first event the
 * peer lacks. A node catching up then gets a member's admission before that member's
 * events; sent in id order, a feed that came before the admissions was stored with its
 * author not yet valid, and derived all over again when the admission landed. */
static answer_origin *plan_answer(pm_gossip *g, const Pm__Hello *h, const pm_head *heads, size_t n)
{
    answer_origin *o = calloc(n ? n : 1, sizeof *o);
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        o[i].head = &heads[i];
        pm_sync_plan_origin(g->store, &heads[i], their_entry(h, heads[i].origin), &o[i].plan);
        o[i].first_lamport = UINT64_MAX;
        if (o[i].plan.from_seq <= heads[i].seq)
            pm_feed_read(g->store, heads[i].origin, o[i].plan.from_seq, 1, SIZE_MAX, note_lamport,
                         &o[i].first_lamport);
    }
    qsort(o, n, sizeof *o, by_first_lamport);
    return o;
}

void pm_gossip_handle_hello(pm_gossip *g, const pm_channel *ch, const Pm__Hello *h)
{
    if (ch->peer && h->digest.len == PM_HASH_BYTES) {
        memcpy(ch->peer->digest, h->digest.data, PM_HASH_BYTES);
        ch->peer->has_digest = 1;
    }
    if (!h->sync) {
        /* A heartbeat on our ROUTER is answered, so the sender learns that its link to
         * us works; answers (arriving on a DEALER) are not, or they would ping-pong. */
        if (ch->routing)
            pm_gossip_send_hello(g, ch, NULL, 0);
        return;
    }
    note_known_heads(g, h);
    uint64_t theirs_of_me = their_seq(h, pm_identity_public(g->id));
    if (theirs_of_me > g->self_seq_seen)
        g->self_seq_seen = theirs_of_me;
    g->heard_sync = 1;
    pm_head *heads = NULL;
    size_t n = 0;
    if (pm_feed_heads(g->store, &heads, &n) != PM_OK)
        return;
    unsigned max_batch = pm_gossip_max_batch(g);
    pm_gossip_batch b = {calloc(max_batch, sizeof(ProtobufCBinaryData)), 0, max_batch, 0};
    /* Up to PM_GOSSIP_BATCHES_PER_ANSWER batches per answer; if more remains, the answer
     * ends with our own sync hello, after which (the connection keeps order) the
     * receiver, having stored the batches, asks again from its new heads. Catch-up
     * thus streams without sending anything twice. */
    size_t budget = PM_GOSSIP_BATCHES_PER_ANSWER;
    int forked = 0;
    answer_origin *order = plan_answer(g, h, heads, n);
    for (size_t k = 0; k < n && order && b.items && budget; k++) {
        const pm_head *head = order[k].head;
        const pm_sync_plan plan = order[k].plan;
        if (plan.diverged) {
            char who[9], origin[9];
            pm_warn("gossip",
                    "peer %s holds another event of origin %s at a seq this node holds: "
                    "sending the feed from seq %llu so the fork is kept as proof",
                    pm_gossip_peer_name(ch->id, who), pm_gossip_peer_name(head->origin, origin),
                    (unsigned long long)plan.from_seq);
        }
        send_range(g, ch, &b, head->origin, plan.from_seq - 1, head->seq, &budget);
        if (plan.branches && budget) {
            pm_gossip_send_branches(g, ch, &b, head->origin, &budget);
            forked = 1;
        }
    }
    free(order);
    int more = budget == 0;
    if (b.items)
        pm_gossip_batch_flush(g, ch, NULL, &b);
    /* Fork proofs go to a peer whose fork set differs from ours: one that is behind
     * keeps them even before it can place the branches. */
    if (forked)
        pm_gossip_send_proofs(g, ch);
    free(b.items);
    /* Do they hold anything we lack? Then ask for it (fork branches at most once per
     * interval per peer: they come with every answer while the sets differ). */
    int lacking = 0, fork_news = 0;
    for (size_t i = 0; i < h->n_heads && !lacking; i++) {
        const Pm__VersionEntry *e = h->heads[i];
        if (e->origin.len != PM_ID_BYTES)
            continue;
        uint64_t mine = 0;
        for (size_t j = 0; j < n; j++)
            if (memcmp(heads[j].origin, e->origin.data, PM_ID_BYTES) == 0)
                mine = heads[j].seq;
        lacking = e->seq > mine;
        fork_news = fork_news || pm_sync_fork_news(g->store, e);
    }
    free(heads);
    uint64_t now = pm_now_ms();
    if (fork_news && !lacking && ch->peer &&
        now - ch->peer->fork_sync_ms >= g->cfg->gossip_interval_ms) {
        ch->peer->fork_sync_ms = now;
        lacking = 1;
    }
    if (lacking || more)
        pm_gossip_send_hello(g, ch, NULL, 1);
}
