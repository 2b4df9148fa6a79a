#include "node/mesh/transport.h"
#include "crypto/hash.h"
#include "node/mesh/refusals.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct pm_transport {
    void *zctx;
    const pm_identity *id;
    pm_store *store;
    const pm_config *cfg;
    void *router, *zap;
    uint8_t curve_public[PM_CURVE_KEY_BYTES];
    uint8_t *curve_secret; /* sodium_malloc */
    pm_peer *peers;
    size_t n_peers;
    pm_refusals refusals; /* refused handshakes and garbage, rate-limited in the log */
    void *monitor;        /* the ROUTER's socket monitor (NULL if it could not be made) */
};

static void set_int(void *sock, int opt, int value)
{
    zmq_setsockopt(sock, opt, &value, sizeof value);
}

/* How long a dropped (revoked) peer's queued messages may still be sent. */
#define REVOKED_LINGER_MS 2000

static void set_common(void *sock)
{
    /* ZeroMQ cuts a connection whose frame passes twice our limit (bounding memory);
     * frames between the two reach pm_gossip_handle, which logs the peer and drops them
     * while the connection goes on. */
    int64_t max = 2 * (int64_t)PM_WIRE_MAX_BYTES;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    set_int(sock, ZMQ_LINGER, 0);
    /* Few messages queue per connection (a batch is at most a few MiB; a fetch keeps at
     * most PM_FETCH_WINDOW chunks in flight): memory stays bounded, and what cannot be
     * sent now is sent again by anti-entropy. */
    set_int(sock, ZMQ_SNDHWM, 32);
    set_int(sock, ZMQ_RCVHWM, 32);
    /* Heartbeats on the ZMTP level find dead TCP connections. */
    set_int(sock, ZMQ_HEARTBEAT_IVL, 1000);
    set_int(sock, ZMQ_HEARTBEAT_TIMEOUT, 3000);
    set_int(sock, ZMQ_RECONNECT_IVL, 200);
    set_int(sock, ZMQ_RECONNECT_IVL_MAX, 2000);
}

int pm_transport_new(void *zctx, const pm_identity *id, pm_store *store, const pm_config *cfg,
                     pm_transport **out)
{
    pm_transport *t = calloc(1, sizeof *t);
    if (!t || !(t->curve_secret = sodium_malloc(PM_CURVE_KEY_BYTES))) {
        free(t);
        return PM_E_NOMEM;
    }
    t->zctx = zctx;
    t->id = id;
    t->store = store;
    t->cfg = cfg;
    int rc = pm_identity_curve_keys(id, t->curve_public, t->curve_secret);
    if (rc)
        goto fail;
    /* The ZAP handler must be bound before any CURVE server socket binds. */
    t->zap = zmq_socket(zctx, ZMQ_REP);
    if (!t->zap || zmq_bind(t->zap, "inproc://zeromq.zap.01") != 0) {
        pm_error("transport", "cannot bind the ZAP handler: %s", zmq_strerror(errno));
        rc = PM_E_NET;
        goto fail;
    }
    set_int(t->zap, ZMQ_LINGER, 0);
    t->router = zmq_socket(zctx, ZMQ_ROUTER);
    set_common(t->router);
    set_int(t->router, ZMQ_CURVE_SERVER, 1);
    zmq_setsockopt(t->router, ZMQ_CURVE_SECRETKEY, t->curve_secret, PM_CURVE_KEY_BYTES);
    zmq_setsockopt(t->router, ZMQ_ZAP_DOMAIN, "pacsmesh", 8);
    set_int(t->router, ZMQ_ROUTER_MANDATORY, 0);
    pm_refusals_monitor_start(zctx, t->router, &t->monitor);
    if (zmq_bind(t->router, cfg->listen) != 0) {
        pm_error("transport", "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
        rc = PM_E_NET;
        goto fail;
    }
    pm_info("transport", "listening on %s (CURVE)", cfg->listen);
    *out = t;
    return PM_OK;
fail:
    pm_transport_destroy(&t);
    return rc;
}

void pm_transport_destroy(pm_transport **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_transport *t = *self_p;
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i].dealer)
            zmq_close(t->peers[i].dealer);
    free(t->peers);
    if (t->monitor) {
        zmq_socket_monitor(t->router, NULL, 0);
        zmq_close(t->monitor);
    }
    if (t->router)
        zmq_close(t->router);
    if (t->zap)
        zmq_close(t->zap);
    sodium_free(t->curve_secret);
    free(t);
    *self_p = NULL;
}

void *pm_transport_router(pm_transport *t)
{
    return t->router;
}
void *pm_transport_zap(pm_transport *t)
{
    return t->zap;
}
size_t pm_transport_peer_count(pm_transport *t)
{
    return t->n_peers;
}
pm_peer *pm_transport_peer(pm_transport *t, size_t i)
{
    return &t->peers[i];
}

pm_peer *pm_transport_find(pm_transport *t, const uint8_t id[PM_ID_BYTES])
{
    for (size_t i = 0; i < t->n_peers; i++)
        if (memcmp(t->peers[i].id, id, PM_ID_BYTES) == 0)
            return &t->peers[i];
    return NULL;
}

/* ---- ZAP: only current members may connect ------------------------------------- */

typedef struct {
    const uint8_t *client_curve;
    uint8_t member[PM_ID_BYTES];
    int found; /* the key is a known node's: found, in state (member, pending, revoked) */
    char state[16], name[64];
} zap_search;

/* Every known node is searched, not only members, so that a refusal names the node
 * (id, name, state) instead of a bare CURVE key. */
static int match_curve_key(void *ctx, const Pm__MemberView *m)
{
    zap_search *z = ctx;
    uint8_t curve[PM_CURVE_KEY_BYTES];
    if (m->id.len != PM_ID_BYTES || pm_identity_curve_public_of(m->id.data, curve) != PM_OK)
        return 0;
    if (sodium_memcmp(curve, z->client_curve, PM_CURVE_KEY_BYTES) == 0) {
        memcpy(z->member, m->id.data, PM_ID_BYTES);
        z->found = 1;
        snprintf(z->state, sizeof z->state, "%s", m->state);
        snprintf(z->name, sizeof z->name, "%s", m->name);
        return 1;
    }
    return 0;
}

void pm_transport_handle_zap(pm_transport *t)
{
    /* Request: version, request id, domain, address, identity, mechanism, credentials. */
    zmq_msg_t frames[8];
    int n = 0, more = 1;
    while (more && n < 8) {
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], t->zap, 0) < 0) {
            zmq_msg_close(&frames[n]);
            break;
        }
        more = zmq_msg_more(&frames[n]);
        n++;
    }
    while (more) { /* drain anything unexpected */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, t->zap, 0) < 0)
            more = 0;
        else
            more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    const char *status = "400", *text = "not a member";
    char user[PM_ID_HEX] = "";
    char address[64] = "?";
    if (n >= 4) {
        size_t alen = zmq_msg_size(&frames[3]) < sizeof address - 1 ? zmq_msg_size(&frames[3])
                                                                    : sizeof address - 1;
        memcpy(address, zmq_msg_data(&frames[3]), alen);
        address[alen] = 0;
    }
    if (n >= 7 && zmq_msg_size(&frames[6]) == PM_CURVE_KEY_BYTES && zmq_msg_size(&frames[5]) == 5 &&
        memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0) {
        zap_search z = {zmq_msg_data(&frames[6]), {0}, 0, "", ""};
        pm_views_members(t->store, match_curve_key, &z);
        if (z.found && strcmp(z.state, "member") == 0) {
            status = "200";
            text = "OK";
            pm_hex_encode(z.member, PM_ID_BYTES, user);
        } else if (z.found) {
            char id[PM_ID_HEX], what[256];
            pm_hex_encode(z.member, PM_ID_BYTES, id);
            snprintf(what, sizeof what, "node %s '%s' is %s", id, z.name,
                     *z.state ? z.state : "not admitted");
            pm_refusals_note(&t->refusals,
                             strcmp(z.state, "revoked") == 0 ? PM_REFUSED_REVOKED
                                                             : PM_REFUSED_NOT_MEMBER,
                             address, id, what, pm_now_ms());
        } else {
            char key[17], what[128];
            pm_hex_encode(zmq_msg_data(&frames[6]), 8, key);
            snprintf(what, sizeof what, "CURVE key %s... is not a member", key);
            pm_refusals_note(&t->refusals, PM_REFUSED_UNKNOWN_KEY, address, key, what, pm_now_ms());
        }
    } else {
        pm_refusals_note(&t->refusals, PM_REFUSED_MECHANISM, address, NULL, "not a CURVE handshake",
                         pm_now_ms());
    }
    /* Reply: version, request id, status code, status text, user id, metadata. */
    zmq_send(t->zap, "1.0", 3, ZMQ_SNDMORE);
    if (n >= 2)
        zmq_send(t->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), ZMQ_SNDMORE);
    else
        zmq_send(t->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(t->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(t->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(t->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(t->zap, "", 0, 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

void pm_transport_watch(pm_transport *t, uint64_t now_ms)
{
    pm_refusals_monitor_drain(&t->refusals, t->monitor, now_ms);
}

pm_refusal_counts pm_transport_refusals(pm_transport *t)
{
    return t->refusals.counts;
}

/* ---- peers -------------------------------------------------------------------- */

static pm_peer *add_peer(pm_transport *t, const uint8_t id[PM_ID_BYTES], const char *endpoint)
{
    pm_peer *p = pm_transport_find(t, id);
    if (!p) {
        pm_peer *grown = realloc(t->peers, (t->n_peers + 1) * sizeof *grown);
        if (!grown)
            return NULL;
        t->peers = grown;
        p = &t->peers[t->n_peers++];
        memset(p, 0, sizeof *p);
        memcpy(p->id, id, PM_ID_BYTES);
    }
    if (endpoint && *endpoint && strcmp(p->endpoint, endpoint) != 0) {
        if (p->dealer) { /* the member moved: reconnect */
            zmq_close(p->dealer);
            p->dealer = NULL;
        }
        snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    }
    p->in_view = 1;
    return p;
}

static int connect_peer(pm_transport *t, pm_peer *p)
{
    uint8_t server[PM_CURVE_KEY_BYTES];
    if (!*p->endpoint || pm_identity_curve_public_of(p->id, server) != PM_OK)
        return PM_E_KEY;
    void *d = zmq_socket(t->zctx, ZMQ_DEALER);
    if (!d)
        return PM_E_NET;
    set_common(d);
    set_int(d, ZMQ_IMMEDIATE, 1);
    zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server, PM_CURVE_KEY_BYTES);
    zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, t->curve_public, PM_CURVE_KEY_BYTES);
    zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, t->curve_secret, PM_CURVE_KEY_BYTES);
    if (zmq_connect(d, p->endpoint) != 0) {
        char hex[9];
        pm_hex_encode(p->id, 4, hex);
        pm_warn("transport", "cannot connect to peer %s at %s: %s", hex, p->endpoint,
                zmq_strerror(errno));
        zmq_close(d);
        return PM_E_NET;
    }
    p->dealer = d;
    return PM_OK;
}

typedef struct {
    pm_transport *t;
    const uint8_t *self;
} refresh_ctx;

static int refresh_member(void *vctx, const Pm__MemberView *m)
{
    refresh_ctx *c = vctx;
    if (strcmp(m->state, "member") != 0 || memcmp(m->id.data, c->self, PM_ID_BYTES) == 0)
        return 0;
    add_peer(c->t, m->id.data, m->endpoint);
    return 0;
}

int pm_transport_refresh(pm_transport *t, uint64_t now, uint64_t silent_ms)
{
    for (size_t i = 0; i < t->n_peers; i++)
        t->peers[i].in_view = 0;
    refresh_ctx c = {t, pm_identity_public(t->id)};
    int rc = pm_views_members(t->store, refresh_member, &c);
    /* Bootstrap peers from node.conf, whose keys `join` recorded. They stay until
     * the membership view knows them. */
    for (size_t i = 0; i < t->cfg->n_peers; i++) {
        char key[600];
        void *id = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "peer:%s", t->cfg->peers[i]);
        if (pm_store_local_get(t->store, key, &id, &len) == PM_OK && len == PM_ID_BYTES) {
            Pm__MemberView *m = NULL;
            int revoked =
                pm_views_member(t->store, id, &m) == PM_OK && strcmp(m->state, "revoked") == 0;
            if (m)
                pm__member_view__free_unpacked(m, NULL);
            pm_peer *p = pm_transport_find(t, id);
            if (!revoked && (!p || !p->in_view))
                add_peer(t, id, t->cfg->peers[i]);
        }
        free(id);
    }
    /* Close and drop peers no longer members (revoked). */
    size_t kept = 0;
    for (size_t i = 0; i < t->n_peers; i++) {
        if (!t->peers[i].in_view) {
            char hex[9];
            pm_hex_encode(t->peers[i].id, 4, hex);
            pm_info("transport", "peer %s is no longer a member: disconnecting", hex);
            if (t->peers[i].dealer) {
                /* What is queued to it still goes (the revocation itself, pushed just
                 * before: the revoked node hears of it from no one else once every
                 * member has dropped it), for a bounded time. */
                set_int(t->peers[i].dealer, ZMQ_LINGER, REVOKED_LINGER_MS);
                zmq_close(t->peers[i].dealer);
            }
            continue;
        }
        t->peers[kept++] = t->peers[i];
    }
    t->n_peers = kept;
    for (size_t i = 0; i < t->n_peers; i++) {
        pm_peer *p = &t->peers[i];
        uint64_t heard =
            p->dealer_heard_ms > p->connected_ms ? p->dealer_heard_ms : p->connected_ms;
        if (p->dealer && now - heard > silent_ms) {
            zmq_close(p->dealer); /* remade below: a fresh handshake */
            p->dealer = NULL;
        }
        if (!p->dealer && connect_peer(t, p) == PM_OK)
            p->connected_ms = now;
    }
    return rc;
}

int pm_transport_send(pm_transport *t, pm_peer *p, const void *buf, size_t len)
{
    (void)t;
    if (!p->dealer)
        return PM_E_NET;
    return zmq_send(p->dealer, buf, len, ZMQ_DONTWAIT) < 0 ? PM_E_NET : PM_OK;
}

int pm_transport_reply(pm_transport *t, const pm_channel *ch, const void *buf, size_t len)
{
    if (!ch->routing)
        return ch->peer ? pm_transport_send(t, ch->peer, buf, len) : PM_E_NET;
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    zmq_msg_copy(&rid, ch->routing);
    if (zmq_msg_send(&rid, t->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid);
        return PM_E_NET;
    }
    return zmq_send(t->router, buf, len, ZMQ_DONTWAIT) < 0 ? PM_E_NET : PM_OK;
}
