/* The running node's state, shared by the daemon's own files (cmd_run.c: start-up,
 * the event loop and shutdown; daemon_metrics.c: what a metrics scrape shows). Not an
 * API: everything here lives in the main loop's thread. */
#ifndef PM_DAEMON_H
#define PM_DAEMON_H

#include <zmq.h>

#include "node/audit/atna_sender.h"
#include "node/cli/cli.h"
#include "node/daemon/edge_provider.h"
#include "node/daemon/mailbox.h"
#include "node/daemon/metrics_http.h"
#include "node/mesh/fetch.h"
#include "node/mesh/gossip.h"
#include "node/ris/sender.h"
#include "node/ris/sr_sender.h"
#include "node/worklist/present.h"
#include "store/blobs.h"

/* A DICOM or web thread waiting for a fetch job: answered when the job ends or, with
 * has_hash, as soon as that one instance of it has arrived (node/daemon/fetch_waiters.c). */
typedef struct {
    uint64_t job;
    uint8_t hash[PM_HASH_BYTES];
    int has_hash;
    zmq_msg_t routing;
} fetch_waiter;

enum { QUIET_PERIOD_MS = 1000, MAX_WAITERS = 256, MAX_RELOADS = 1024 };
/* What the edge stored is announced at the latest this long after it arrived, even
 * while senders keep storing (a forwarder's stream, an association held open). */
enum { ANNOUNCE_DELAY_MAX_MS = 5000 };

/* Worklist counts for metrics. Walking every study is O(studies), so a scrape reuses
 * counts younger than WORKLIST_COUNT_MS instead of stalling the loop on each one. */
enum { WORKLIST_COUNT_MS = 30000 };

typedef struct daemon_state {
    pm_node node;
    void *zctx;
    void *admin;
    void *edge_socket; /* ROUTER: requests from the DICOM edge's threads */
    pm_transport *transport;
    pm_gossip *gossip;
    pm_blobs *blobs;
    pm_fetcher *fetcher;
    pm_edge edge;
    pm_dicom_server *dicom;
    pm_http_auth *edge_auth;     /* the edge's users when there is no web server */
    struct pm_http_server *http; /* the web server, NULL when [http] listen is empty */
    const char *dir;
    char *spool_dir;
    fetch_waiter waiters[MAX_WAITERS];
    size_t n_waiters;
    uint64_t announced_store_ms; /* last_store_ms already covered by an announcement */
    uint64_t started_ms;
    int writing;     /* this node signs new events (its own feed is confirmed) */
    int unconfirmed; /* started with its store marked unconfirmed (node/cli/feed_guard.h) */
    uint64_t next_mark_check_ms;    /* when to look for an operator's override again */
    pm_metrics *metrics;            /* NULL when [metrics] listen is empty */
    pm_ris_sender *ris;             /* NULL when [ris] endpoint is empty */
    pm_atna_sender *atna;           /* NULL when [audit] syslog is empty */
    uint64_t admin_oversized;       /* admin requests refused for their size */
    pm_sr_sender *report_sr;        /* NULL when [dicom] report_destination is empty */
    pm_worklist_counts wl;          /* cached for metrics */
    struct pm_wl_metrics *wl_sites; /* by site and priority, cached with wl */
    uint64_t wl_counted_ms;
    uint64_t prefetch_check_ms; /* next look at the own feed for claims (prefetch.c) */
    uint64_t prefetch_seq;      /* own events looked at so far */
    int prefetch_started;
    pm_config *retired[MAX_RELOADS]; /* configurations SIGHUP replaced (node/daemon/reload.h) */
    size_t n_retired;
} daemon_state;

/* The admin socket's requests (node/cli/admin_client.c): small JSON objects; one over
 * the limit is refused unread, one over the hard limit is dropped by ZeroMQ. */
#define PM_ADMIN_REQUEST_MAX (64u * 1024)
#define PM_ADMIN_REQUEST_HARD_MAX (1 << 20)

/* Why a read of another trust's data or a write is refused while this node may not
 * sign (a restored node waiting for a peer's word on its own feed). */
extern const char PM_DAEMON_UNCONFIRMED[];

/* node/daemon/admin_server.c: answers one request on the admin socket. */
void pm_daemon_answer_admin(daemon_state *d);

/* node/daemon/edge_mailbox.c: answers one message on the edge's mailbox. */
void pm_daemon_answer_edge(daemon_state *d);

/* node/daemon/fetch_waiters.c: the lazy fetch's requests from other threads. */
/* The web server's JSON reply (consumed) to the request routed by routing. */
void pm_daemon_reply_edge(daemon_state *d, zmq_msg_t *routing, json_t *reply);
/* A typed reply (node/daemon/mailbox.h): rc, and the job for PM_MAIL_FETCH_BEGIN. */
void pm_daemon_reply_mail(daemon_state *d, zmq_msg_t *routing, int rc, uint64_t job,
                          const char *why);
/* PM_MAIL_FETCH_BEGIN (answered with the job at once) and PM_MAIL_PREPARE (answered
 * when the job ends). */
void pm_daemon_edge_fetch(daemon_state *d, zmq_msg_t *rid, const pm_mail_request *rq);
/* PM_MAIL_AWAIT: answered when that instance is here, or cannot be. */
void pm_daemon_edge_await(daemon_state *d, zmq_msg_t *rid, const pm_mail_request *rq);
/* The fetcher's callbacks (pm_fetch_done_fn, pm_fetch_instance_fn); ctx is the state. */
void pm_daemon_fetch_done(void *ctx, uint64_t job, int rc);
void pm_daemon_instance_done(void *ctx, uint64_t job, const uint8_t hash[PM_HASH_BYTES], int rc);

/* node/daemon/prefetch.c: starts fetching the studies of claims and assignments this
 * node signed since the last call (at most every 100 ms), so they are warm when opened. */
void pm_daemon_prefetch_claims(daemon_state *d, uint64_t now);

/* Writes the node's metrics (pm_metrics_collect_fn; ctx is the daemon_state). */
void pm_daemon_collect_metrics(void *ctx, pm_metrics_writer *w);

#endif
