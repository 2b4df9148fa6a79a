/* The main loop's side of its mailbox (node/daemon/mailbox.h): the DICOM edge's typed
 * requests, and the web server's writes (JSON: claim, report ...), which sign events
 * and so are this thread's alone. */
#include "node/daemon/daemon.h"
#include "node/http/http.h"
#include "proto/error.h"

#include <string.h>

const char PM_DAEMON_UNCONFIRMED[] = "this node waits for a peer to confirm how far its own "
                                     "feed goes (it was restored from a backup); try again "
                                     "shortly";

static void answer_mail(daemon_state *d, zmq_msg_t *rid, const pm_mail_request *rq)
{
    switch (rq->kind) {
    case PM_MAIL_KICK: /* an association ended: what it announced goes out now */
        pm_gossip_push_local(d->gossip);
        pm_daemon_reply_mail(d, rid, PM_OK, 0, NULL);
        return;
    case PM_MAIL_PREPARE:
    case PM_MAIL_FETCH_BEGIN:
        /* A read of another trust's data is a signed event: refused while nothing may
         * be signed. */
        if (!d->writing)
            pm_daemon_reply_mail(d, rid, PM_E_BUSY, 0, PM_DAEMON_UNCONFIRMED);
        else
            pm_daemon_edge_fetch(d, rid, rq);
        return;
    case PM_MAIL_AWAIT: pm_daemon_edge_await(d, rid, rq); return;
    }
    pm_daemon_reply_mail(d, rid, PM_E_INVAL, 0, "unknown request");
}

static void answer_web_write(daemon_state *d, zmq_msg_t *rid, zmq_msg_t *body)
{
    json_error_t jerr;
    json_t *req = json_loadb(zmq_msg_data(body), zmq_msg_size(body), 0, &jerr);
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    if (pm_http_is_write(cmd) && !d->writing) {
        /* A web write signs an event: never before a peer confirmed the own feed. */
        pm_daemon_reply_edge(d, rid, json_pack("{s:s}", "error", PM_DAEMON_UNCONFIRMED));
    } else if (pm_http_is_write(cmd)) {
        pm_wl_node n = {d->node.store, d->blobs, d->node.id, d->node.cfg};
        pm_daemon_reply_edge(d, rid, pm_http_answer_write(&n, req));
        pm_gossip_push_local(d->gossip);
    } else {
        pm_daemon_reply_edge(
            d, rid, json_pack("{s:s}", "error", cmd ? "unknown request" : "malformed request"));
    }
    json_decref(req);
}

void pm_daemon_answer_edge(daemon_state *d)
{
    zmq_msg_t rid, empty, body;
    zmq_msg_init(&rid);
    zmq_msg_init(&empty);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&rid, d->edge_socket, ZMQ_DONTWAIT) >= 0 &&
        zmq_msg_recv(&empty, d->edge_socket, ZMQ_DONTWAIT) >= 0 &&
        zmq_msg_recv(&body, d->edge_socket, ZMQ_DONTWAIT) >= 0) {
        pm_mail_request rq;
        if (pm_mail_request_read(zmq_msg_data(&body), zmq_msg_size(&body), &rq))
            answer_mail(d, &rid, &rq);
        else
            answer_web_write(d, &rid, &body);
    }
    zmq_msg_close(&rid);
    zmq_msg_close(&empty);
    zmq_msg_close(&body);
}
