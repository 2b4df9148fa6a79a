/* The admin socket's server side: the CLI's requests to the running node
 * (node/cli/admin_client.c), small JSON objects answered in the main loop. */
#include "node/daemon/daemon.h"
#include "node/mesh/fetch.h"
#include "node/mesh/gossip.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

void pm_daemon_answer_admin(daemon_state *d)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, d->admin, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    json_error_t jerr;
    size_t size = zmq_msg_size(&msg);
    /* Every admin request is a small JSON object: a bigger one is refused unread. */
    json_t *req =
        size <= PM_ADMIN_REQUEST_MAX ? json_loadb(zmq_msg_data(&msg), size, 0, &jerr) : NULL;
    zmq_msg_close(&msg);
    const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
    json_t *reply;
    if (size > PM_ADMIN_REQUEST_MAX) {
        d->admin_oversized++;
        pm_warn("node", "refused an admin request of %zu bytes (the limit is %u)", size,
                PM_ADMIN_REQUEST_MAX);
        reply = json_pack("{s:s}", "error", "admin request too large (over 64 KiB)");
    } else if (!cmd) {
        reply = json_pack("{s:s}", "error", "malformed admin request");
    } else if (strcmp(cmd, "kick") == 0) {
        pm_gossip_push_local(d->gossip);
        reply = json_pack("{s:b}", "ok", 1);
    } else if (strcmp(cmd, "fetch") == 0 && !d->writing) {
        reply = json_pack("{s:s}", "error", PM_DAEMON_UNCONFIRMED);
    } else if (strcmp(cmd, "fetch") == 0) {
        const char *study = json_string_value(json_object_get(req, "study"));
        const char *reader = json_string_value(json_object_get(req, "reader"));
        pm_liveness live;
        uint64_t job = 0;
        int rc = pm_gossip_liveness(d->gossip, pm_now_ms(), &live);
        if (!rc)
            rc = study ? pm_fetch_start(d->fetcher, study, reader ? reader : "cli", &live, &job)
                       : PM_E_INVAL;
        pm_liveness_free(&live);
        reply = rc ? json_pack("{s:s}", "error",
                               rc == PM_E_NOTFOUND ? "unknown study" : pm_strerror(rc))
                   : json_pack("{s:I}", "job", (json_int_t)job);
    } else if (strcmp(cmd, "fetch-status") == 0) {
        json_t *st =
            pm_fetch_status(d->fetcher, (uint64_t)json_integer_value(json_object_get(req, "job")));
        reply = st ? st : json_pack("{s:s}", "error", "no such fetch job");
    } else if (strcmp(cmd, "peers") == 0) {
        pm_liveness live;
        json_t *peers = pm_gossip_liveness(d->gossip, pm_now_ms(), &live) == PM_OK
                            ? pm_liveness_to_json(&live)
                            : NULL;
        pm_liveness_free(&live);
        reply = peers ? json_pack("{s:o, s:o}", "peers", peers, "known_heads",
                                  pm_gossip_known_heads(d->gossip))
                      : json_pack("{s:s}", "error", pm_strerror(PM_E_NOMEM));
    } else {
        reply = json_pack("{s:s}", "error", "unknown admin command");
    }
    char *text = json_dumps(reply, JSON_COMPACT);
    if (text)
        zmq_send(d->admin, text, strlen(text), 0);
    free(text);
    json_decref(reply);
    json_decref(req);
}
