/* The main loop's side of the lazy fetch for the DICOM edge and the web server: threads
 * ask over PM_EDGE_ENDPOINT (node/daemon/mailbox.h) to begin a fetch (PM_MAIL_FETCH_BEGIN,
 * answered at once with the job), to wait for one instance of it (PM_MAIL_AWAIT,
 * answered as soon as that instance has arrived and its hash is verified) or for all of
 * it (PM_MAIL_PREPARE, answered when the job ends). Waiting threads are answered from
 * the fetcher's callbacks, with the fetcher's code of why not. */
#include "crypto/hash.h"
#include "node/daemon/daemon.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

/* The answer (len bytes) to the request that came with routing. */
static void send_routed(daemon_state *d, zmq_msg_t *routing, const void *body, size_t len)
{
    zmq_msg_t rid;
    zmq_msg_init(&rid);
    zmq_msg_copy(&rid, routing);
    /* REQ peers expect an empty delimiter frame between routing id and body. */
    if (zmq_msg_send(&rid, d->edge_socket, ZMQ_SNDMORE) >= 0) {
        zmq_send(d->edge_socket, "", 0, ZMQ_SNDMORE);
        zmq_send(d->edge_socket, body, len, 0);
    } else {
        zmq_msg_close(&rid);
    }
}

void pm_daemon_reply_edge(daemon_state *d, zmq_msg_t *routing, json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    if (text)
        send_routed(d, routing, text, strlen(text));
    free(text);
    json_decref(reply);
}

void pm_daemon_reply_mail(daemon_state *d, zmq_msg_t *routing, int rc, uint64_t job,
                          const char *why)
{
    pm_mail_reply reply;
    memset(&reply, 0, sizeof reply);
    reply.rc = rc;
    reply.job = job;
    snprintf(reply.why, sizeof reply.why, "%s", why ? why : "");
    send_routed(d, routing, &reply, sizeof reply);
}

/* Answers and removes the waiters that match: those of job (all of them, or with hash
 * only those waiting for that instance), with rc. */
static void answer_waiters(daemon_state *d, uint64_t job, const uint8_t *hash, int rc)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->n_waiters; i++) {
        fetch_waiter *w = &d->waiters[i];
        int match = w->job == job && (!hash || (w->has_hash && !memcmp(w->hash, hash, 32)));
        if (!match) {
            d->waiters[kept++] = *w;
            continue;
        }
        /* When the whole job ends, an instance's waiter is told whether it is here. */
        int r = rc;
        if (!hash && w->has_hash)
            r = pm_blobs_has(d->blobs, w->hash) ? PM_OK : (rc ? rc : PM_E_NOTFOUND);
        pm_daemon_reply_mail(d, &w->routing, r, job, NULL);
        zmq_msg_close(&w->routing);
    }
    d->n_waiters = kept;
}

void pm_daemon_fetch_done(void *ctx, uint64_t job, int rc)
{
    daemon_state *d = ctx;
    answer_waiters(d, job, NULL, rc);
    pm_gossip_push_local(d->gossip); /* the study-accessed event */
}

void pm_daemon_instance_done(void *ctx, uint64_t job, const uint8_t hash[PM_HASH_BYTES], int rc)
{
    answer_waiters(ctx, job, hash, rc);
}

static void add_waiter(daemon_state *d, zmq_msg_t *rid, uint64_t job, const uint8_t *hash)
{
    fetch_waiter *w = &d->waiters[d->n_waiters++];
    w->job = job;
    w->has_hash = hash != NULL;
    if (hash)
        memcpy(w->hash, hash, PM_HASH_BYTES);
    zmq_msg_init(&w->routing);
    zmq_msg_copy(&w->routing, rid);
}

void pm_daemon_edge_fetch(daemon_state *d, zmq_msg_t *rid, const pm_mail_request *rq)
{
    if (d->n_waiters >= MAX_WAITERS) {
        pm_daemon_reply_mail(d, rid, PM_E_BUSY, 0, "busy: too many waiting");
        return;
    }
    pm_liveness live;
    uint64_t job = 0;
    int rc = pm_gossip_liveness(d->gossip, pm_now_ms(), &live);
    if (!rc)
        rc = pm_fetch_start(d->fetcher, rq->study, rq->reader, &live, &job);
    pm_liveness_free(&live);
    if (rc)
        pm_daemon_reply_mail(d, rid, rc, 0, rc == PM_E_NOTFOUND ? "unknown study" : NULL);
    else if (rq->kind == PM_MAIL_PREPARE) /* answered by pm_daemon_fetch_done */
        add_waiter(d, rid, job, NULL);
    else
        pm_daemon_reply_mail(d, rid, PM_OK, job, NULL);
}

void pm_daemon_edge_await(daemon_state *d, zmq_msg_t *rid, const pm_mail_request *rq)
{
    if (pm_blobs_has(d->blobs, rq->hash)) {
        pm_daemon_reply_mail(d, rid, PM_OK, rq->job, NULL);
        return;
    }
    int state = pm_fetch_instance_state(d->fetcher, rq->job, rq->hash);
    if (state == 0 && d->n_waiters < MAX_WAITERS)
        add_waiter(d, rid, rq->job, rq->hash);
    else
        pm_daemon_reply_mail(d, rid,
                             state == 0   ? PM_E_BUSY
                             : state == 1 ? PM_OK
                                          : state,
                             rq->job, NULL);
}
