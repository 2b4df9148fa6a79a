/* pacsmesh run: the node in the foreground. main reads top to bottom: config, log,
 * identity and store, run lock, sockets (ZAP, mesh, admin), the event loop, then
 * shutdown in reverse order. */
#include "crypto/hash.h"
#include "node/audit/atna_sender.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/daemon/daemon.h"
#include "node/daemon/edge_provider.h"
#include "node/daemon/metrics_http.h"
#include "node/daemon/metrics_worklist.h"
#include "node/daemon/reload.h"
#include "node/daemon/run_lock.h"
#include "node/http/http.h"
#include "node/mesh/fetch.h"
#include "node/mesh/gossip.h"
#include "node/mesh/transport.h"
#include "node/studies/ingest.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/views.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_hangup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Receives one message from the ROUTER: [routing id][payload]; the sender's node id
 * is the User-Id the ZAP handler gave its connection. */
static void receive_router(daemon_state *d)
{
    void *router = pm_transport_router(d->transport);
    zmq_msg_t rid, body;
    zmq_msg_init(&rid);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&rid, router, ZMQ_DONTWAIT) < 0 || !zmq_msg_more(&rid) ||
        zmq_msg_recv(&body, router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        return;
    }
    while (zmq_msg_more(&body)) { /* a peer must send single frames: drop the rest */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        int more = zmq_msg_recv(&extra, router, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (!more)
            break;
    }
    pm_channel ch = {NULL, {0}, &rid};
    const char *user = zmq_msg_gets(&body, "User-Id");
    if (user && pm_hex_decode(user, ch.id, PM_ID_BYTES) == PM_OK) {
        ch.peer = pm_transport_find(d->transport, ch.id);
        /* ZAP checked membership at the handshake; a member revoked since then keeps
         * its connection but is heard no more. */
        if (ch.peer || pm_views_is_member(d->node.store, ch.id))
            pm_gossip_handle(d->gossip, &ch, zmq_msg_data(&body), zmq_msg_size(&body));
        else
            pm_debug("node", "dropped a message from %.8s, no longer a member", user);
    }
    zmq_msg_close(&rid);
    zmq_msg_close(&body);
}

/* What a DEALER holds is drained as one burst (bounded), as the ROUTER's is: a catch-up
 * answer's batches are then stored in one transaction, verified on every core
 * (node/mesh/gossip.h). */
#define DEALER_BURST_FRAMES 32

static void receive_dealer(daemon_state *d, pm_peer *peer)
{
    pm_channel ch = {peer, {0}, NULL};
    memcpy(ch.id, peer->id, PM_ID_BYTES);
    pm_gossip_burst_begin(d->gossip);
    for (int k = 0; k < DEALER_BURST_FRAMES; k++) {
        zmq_msg_t body;
        zmq_msg_init(&body);
        int got = zmq_msg_recv(&body, peer->dealer, ZMQ_DONTWAIT) >= 0;
        if (got)
            pm_gossip_handle(d->gossip, &ch, zmq_msg_data(&body), zmq_msg_size(&body));
        zmq_msg_close(&body);
        if (!got)
            break;
        if (pm_fetch_adopted_waiting(d->fetcher)) /* a burst of chunk replies */
            pm_fetch_handle_adopted(d->fetcher);
    }
    pm_gossip_burst_end(d->gossip);
}

/* What the edge stored and did not announce as its association ended (a study that
 * grew; an association held open) is announced once the senders have been quiet for a
 * moment, or ANNOUNCE_DELAY_MAX_MS after it arrived if they are not. */
static void announce_quiet_studies(daemon_state *d, uint64_t now)
{
    uint64_t last = __atomic_load_n(&d->edge.last_store_ms, __ATOMIC_RELAXED);
    uint64_t since = __atomic_load_n(&d->edge.unannounced_since_ms, __ATOMIC_RELAXED);
    int quiet = last > d->announced_store_ms && now - last >= QUIET_PERIOD_MS;
    int overdue = since && now - since >= ANNOUNCE_DELAY_MAX_MS;
    if (!quiet && !overdue)
        return;
    d->announced_store_ms = last;
    __atomic_store_n(&d->edge.unannounced_since_ms, 0, __ATOMIC_RELAXED);
    unsigned announced = 0;
    if (pm_ingest_announce(&d->edge.ingest, &announced) == PM_OK && announced)
        pm_gossip_push_local(d->gossip);
}

static void start_writing(daemon_state *d);

/* Whether this node may sign new events now: its store was never restored, or a peer
 * has confirmed how far its own feed goes (and it holds that much), or an operator
 * cleared the mark by hand (`confirm --force`). There is no timeout: a restored node
 * that reaches no peer stores what it receives and signs nothing. */
static int may_sign(daemon_state *d, uint64_t now)
{
    if (!d->unconfirmed)
        return 1;
    if (pm_gossip_self_synced(d->gossip)) {
        pm_head head;
        uint64_t seq = pm_feed_head(d->node.store, pm_identity_public(d->node.id), &head) == PM_OK
                           ? head.seq
                           : 0;
        int rc = pm_feed_guard_clear(d->node.store);
        if (rc) {
            pm_error("node", "cannot record that the own feed is confirmed: %s", pm_strerror(rc));
            return 0;
        }
        pm_info("node", "a peer confirmed this node's own feed up to seq %llu",
                (unsigned long long)seq);
        return 1;
    }
    if (now < d->next_mark_check_ms)
        return 0;
    d->next_mark_check_ms = now + 500;
    if (pm_feed_guard_unconfirmed(d->node.store, NULL))
        return 0;
    pm_warn("node", "the own feed was confirmed by hand (confirm --force), not by a peer");
    return 1;
}

static int event_loop(daemon_state *d)
{
    enum { FIXED = 6, MAX_PEERS = 1024 };
    zmq_pollitem_t items[FIXED + MAX_PEERS];
    pm_peer *owners[MAX_PEERS];
    int timeout = 0;
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            pm_daemon_reload(d);
        }
        items[0] = (zmq_pollitem_t){pm_transport_router(d->transport), 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t){pm_transport_zap(d->transport), 0, ZMQ_POLLIN, 0};
        items[2] = (zmq_pollitem_t){d->admin, 0, ZMQ_POLLIN, 0};
        items[3] = (zmq_pollitem_t){d->edge_socket, 0, ZMQ_POLLIN, 0};
        /* The metrics socket is a plain fd; when metrics are off (-1) it asks for nothing. */
        items[4] =
            (zmq_pollitem_t){NULL, pm_metrics_fd(d->metrics), d->metrics ? ZMQ_POLLIN : 0, 0};
        /* Fetched instances adopted off this thread (node/mesh/fetch_adopt.h). */
        items[5] = (zmq_pollitem_t){NULL, pm_fetch_wake_fd(d->fetcher), ZMQ_POLLIN, 0};
        int n = FIXED;
        for (size_t i = 0; i < pm_transport_peer_count(d->transport) && n < FIXED + MAX_PEERS;
             i++) {
            pm_peer *p = pm_transport_peer(d->transport, i);
            if (!p->dealer)
                continue;
            owners[n - FIXED] = p;
            items[n++] = (zmq_pollitem_t){p->dealer, 0, ZMQ_POLLIN, 0};
        }
        int rc = zmq_poll(items, n, timeout);
        if (rc < 0 && errno != EINTR) {
            pm_error("node", "poll failed: %s", zmq_strerror(errno));
            return PM_E_NET;
        }
        if (rc > 0) {
            /* Bounded work per socket per turn, so no peer starves the others. */
            if (items[1].revents & ZMQ_POLLIN)
                pm_transport_handle_zap(d->transport);
            if (items[2].revents & ZMQ_POLLIN)
                pm_daemon_answer_admin(d);
            if (items[3].revents & ZMQ_POLLIN)
                pm_daemon_answer_edge(d);
            if (items[4].revents & ZMQ_POLLIN)
                pm_metrics_handle(d->metrics, pm_daemon_collect_metrics, d);
            if (items[5].revents & ZMQ_POLLIN)
                pm_fetch_handle_adopted(d->fetcher);
            pm_gossip_burst_begin(d->gossip); /* batches in a row from one peer: one commit */
            for (int k = 0; k < 64 && (items[0].revents & ZMQ_POLLIN); k++) {
                int events = 0;
                size_t sz = sizeof events;
                receive_router(d);
                zmq_getsockopt(pm_transport_router(d->transport), ZMQ_EVENTS, &events, &sz);
                if (!(events & ZMQ_POLLIN))
                    break;
            }
            pm_gossip_burst_end(d->gossip);
            /* Dealers may be replaced by the tick below; handle them before it runs. */
            for (int i = FIXED; i < n; i++)
                if (items[i].revents & ZMQ_POLLIN)
                    receive_dealer(d, owners[i - FIXED]);
        }
        uint64_t now = pm_now_ms();
        pm_transport_watch(d->transport, now); /* refused handshakes, garbage on the port */
        timeout = pm_gossip_tick(d->gossip, now);
        int fetch_wait = pm_fetch_tick(d->fetcher, now);
        if (fetch_wait >= 0 && fetch_wait < timeout)
            timeout = fetch_wait;
        if (!d->writing && may_sign(d, now)) {
            start_writing(d);
            d->writing = 1;
        }
        if (d->writing) {
            announce_quiet_studies(d, now);
            pm_daemon_prefetch_claims(d, now);
        }
    }
    return PM_OK;
}

static int bind_admin(daemon_state *d)
{
    const char *ep = d->node.cfg->admin;
    if (strncmp(ep, "ipc://", 6) == 0)
        unlink(ep + 6); /* a stale socket file from a crash; the run lock says we own it */
    d->admin = zmq_socket(d->zctx, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt(d->admin, ZMQ_LINGER, &linger, sizeof linger);
    /* Past this ZeroMQ drops the connection before the request is read into memory;
     * between PM_ADMIN_REQUEST_MAX and it, the client is told (pm_daemon_answer_admin). */
    int64_t hard_max = PM_ADMIN_REQUEST_HARD_MAX;
    zmq_setsockopt(d->admin, ZMQ_MAXMSGSIZE, &hard_max, sizeof hard_max);
    if (zmq_bind(d->admin, ep) != 0) {
        pm_error("node", "cannot bind the admin socket %s: %s", ep, zmq_strerror(errno));
        return PM_E_NET;
    }
    return PM_OK;
}

/* Blob store, fetcher and the edge's inproc socket. */
static int start_edge(daemon_state *d, const char *dir)
{
    /* A node directory made before it was created 0700, or opened up since: close it. */
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 077) && chmod(dir, 0700) == 0)
        pm_warn("node", "%s was open to other users (mode %03o); now 0700 (it holds patient data)",
                dir, (unsigned)(st.st_mode & 0777));
    char *blob_dir = pm_node_path(dir, "blobs");
    int rc = pm_blobs_open(d->node.store, blob_dir, &d->blobs);
    free(blob_dir);
    if (rc)
        return rc;
    d->spool_dir = pm_node_path(dir, "blobs/spool");
    if (!d->spool_dir || (mkdir(d->spool_dir, 0700) != 0 && errno != EEXIST))
        return PM_E_IO;
    if ((rc = pm_fetcher_new(d->transport, d->node.store, d->blobs, d->node.id, d->node.cfg,
                             pm_daemon_fetch_done, d, &d->fetcher)))
        return rc;
    pm_fetcher_on_instance(d->fetcher, pm_daemon_instance_done, d);
    pm_gossip_set_fetcher(d->gossip, d->fetcher);
    d->edge_socket = zmq_socket(d->zctx, ZMQ_ROUTER);
    if (!d->edge_socket || zmq_bind(d->edge_socket, PM_EDGE_ENDPOINT) != 0)
        return PM_E_NET;
    return PM_OK;
}

/* The users DICOM user identities are checked against: the web server's (its tokens
 * are valid then), else the edge's own over the same users file. */
static int start_dicom_auth(daemon_state *d)
{
    pm_http_auth *auth = pm_http_server_auth(d->http);
    if (!auth) {
        const pm_config *cfg = d->node.cfg;
        char *users = cfg->http_users && *cfg->http_users ? strdup(cfg->http_users)
                                                          : pm_node_path(d->dir, "users");
        int rc = users ? pm_http_auth_new(users, &d->edge_auth) : PM_E_NOMEM;
        free(users);
        if (rc)
            return rc;
        auth = d->edge_auth;
    }
    __atomic_store_n(&d->edge.auth, auth, __ATOMIC_RELEASE);
    return PM_OK;
}

/* The DICOM edge opens at once: a C-STORE is stored durably whether or not the node
 * may sign yet (its announcement waits, see start_writing). */
static int start_dicom(daemon_state *d)
{
    d->edge.ingest = (pm_ingest_ctx){d->node.store, d->blobs, d->node.id, d->node.cfg};
    d->edge.zctx = d->zctx;
    pm_dicom_settings settings;
    pm_dicom_provider provider;
    pm_edge_settings(d->node.cfg, d->spool_dir, &settings);
    pm_edge_provider(&d->edge, &provider);
    int rc = pm_dicom_server_start(&settings, &provider, &d->dicom);
    if (rc) {
        pm_error("node", "cannot start the DICOM edge on port %d: %s", d->node.cfg->dicom_port,
                 pm_strerror(rc));
        return rc;
    }
    pm_info("node", "DICOM edge: AE %s on %s:%d", d->node.cfg->ae_title, d->node.cfg->dicom_bind,
            d->node.cfg->dicom_port);
    pm_http_settings web = {
        d->dir,   d->node.cfg, d->node.store,   d->blobs, pm_identity_public(d->node.id),
        provider, d->zctx,     PM_EDGE_ENDPOINT};
    rc = pm_http_start(&web, &d->http);
    if (rc)
        return rc;
    return start_dicom_auth(d);
}

/* Once this node knows it cannot fork its own feed (may_sign): announce what arrived
 * before (a crash, or while it waited), and let the edge announce as it goes. */
static void start_writing(daemon_state *d)
{
    pm_head head;
    if (pm_feed_head(d->node.store, pm_identity_public(d->node.id), &head) == PM_OK)
        pm_info("node", "own feed at seq %llu; accepting new work", (unsigned long long)head.seq);
    __atomic_store_n(&d->edge.may_sign, 1, __ATOMIC_RELEASE);
    unsigned announced = 0;
    if (pm_ingest_announce(&d->edge.ingest, &announced) == PM_OK && announced) {
        pm_info("node", "announced %u studies received before this node could sign", announced);
        pm_gossip_push_local(d->gossip);
    }
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hangup; /* reload node.conf; never the default (which ends the node) */
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Everything the loop needs, in dependency order; the first failure stops start-up. */
static int start_parts(daemon_state *d)
{
    const uint8_t *self = pm_identity_public(d->node.id);
    d->zctx = zmq_ctx_new();
    int r = d->zctx ? PM_OK : PM_E_NET;
    if (!r)
        r = pm_transport_new(d->zctx, d->node.id, d->node.store, d->node.cfg, &d->transport);
    if (!r)
        r = pm_gossip_new(d->transport, d->node.store, d->node.id, d->node.cfg, &d->gossip);
    if (!r)
        r = bind_admin(d);
    if (!r) /* a taken or refused metrics address stops start-up, like any bad config */
        r = pm_metrics_new(d->node.cfg->metrics_listen, &d->metrics);
    if (!r)
        r = start_edge(d, d->dir);
    if (!r) /* a thread of its own: a slow RIS never holds up the loop */
        r = pm_ris_sender_new(d->dir, d->node.store, self, d->node.cfg, &d->ris);
    if (!r) /* IHE ATNA: its own thread too, and installed before the edge can audit */
        r = pm_atna_sender_new(d->dir, d->node.store, self, d->node.cfg, &d->atna);
    if (!r)
        r = pm_sr_sender_new(d->dir, d->node.store, self, d->node.cfg, &d->report_sr);
    if (!r)
        r = start_dicom(d);
    return r;
}

/* The reverse of start_parts (each part accepts never having started). */
static void stop_parts(daemon_state *d)
{
    pm_ris_sender_destroy(&d->ris);
    pm_sr_sender_destroy(&d->report_sr);
    pm_metrics_destroy(&d->metrics);
    pm_http_stop(&d->http);
    pm_wl_metrics_destroy(&d->wl_sites);
    pm_dicom_server_stop(&d->dicom);
    pm_http_auth_destroy(&d->edge_auth);
    pm_daemon_reload_cleanup(d);
    for (size_t i = 0; i < d->n_waiters; i++)
        zmq_msg_close(&d->waiters[i].routing);
    if (d->edge_socket)
        zmq_close(d->edge_socket);
    pm_fetcher_destroy(&d->fetcher);
    pm_atna_sender_destroy(&d->atna);
    pm_gossip_destroy(&d->gossip);
    pm_transport_destroy(&d->transport);
    pm_blobs_close(&d->blobs);
    free(d->spool_dir);
    if (d->admin)
        zmq_close(d->admin);
    if (d->zctx)
        zmq_ctx_term(d->zctx);
    if (strncmp(d->node.cfg->admin, "ipc://", 6) == 0)
        unlink(d->node.cfg->admin + 6);
}

int pm_cmd_run(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    daemon_state d;
    memset(&d, 0, sizeof d);
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL, &d.node))) {
        return rc;
    }
    if (!getenv("PACSMESH_LOG")) /* the environment overrides node.conf, as documented */
        pm_log_set_level((pm_log_level)d.node.cfg->log_level);
    int lock = pm_run_lock_take(a.dir);
    if (lock < 0) {
        pm_node_close(&d.node);
        if (lock == PM_E_BUSY)
            return pm_cli_fail("a node is already running on %s", a.dir);
        return pm_cli_fail("cannot open %s/run.lock: %s", a.dir, strerror(errno));
    }
    install_signal_handlers();

    char id[PM_ID_HEX];
    pm_hex_encode(pm_identity_public(d.node.id), PM_ID_BYTES, id);
    pm_info("node", "starting %s (%s) in %s", d.node.cfg->name, id, a.dir);
    d.started_ms = pm_now_ms();
    d.dir = a.dir;
    int r = start_parts(&d);
    if (!r && (d.unconfirmed = pm_feed_guard_unconfirmed(d.node.store, NULL)))
        pm_warn("node", "this node's store was restored: nothing is signed until a peer "
                        "confirms how far its own feed goes (C-STOREs are kept meanwhile)");
    if (!r) {
        pm_info("node", "running; mesh %s", *d.node.cfg->mesh_id ? d.node.cfg->mesh_id : "(none)");
        r = event_loop(&d);
        pm_info("node", "shutting down");
    }
    stop_parts(&d);
    pm_node_close(&d.node);
    close(lock);
    if (r)
        return pm_cli_fail("the node stopped: %s", pm_strerror(r));
    pm_info("node", "stopped cleanly");
    return PM_EXIT_OK;
}
