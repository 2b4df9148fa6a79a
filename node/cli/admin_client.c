#include "node/cli/admin_client.h"
#include "node/daemon/run_lock.h"
#include "proto/error.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <zmq.h>

int pm_admin_node_running(const char *dir)
{
    return pm_run_lock_held(dir);
}

int pm_admin_request(const pm_node *node, json_t *request, int timeout_ms, json_t **reply)
{
    if (!pm_admin_node_running(node->dir))
        return PM_E_NOTFOUND;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_REQ) : NULL;
    int rc = PM_E_NET;
    char *text = json_dumps(request, JSON_COMPACT);
    if (!sock || !text)
        goto done;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    if (zmq_connect(sock, node->cfg->admin) != 0 || zmq_send(sock, text, strlen(text), 0) < 0)
        goto done;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
        zmq_msg_close(&msg);
        rc = PM_E_TIMEOUT;
        goto done;
    }
    json_error_t jerr;
    *reply = json_loadb(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &jerr);
    zmq_msg_close(&msg);
    rc = *reply ? PM_OK : PM_E_PARSE;
done:
    free(text);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

void pm_admin_kick(const pm_node *node)
{
    json_t *req = json_pack("{s:s}", "cmd", "kick"), *reply = NULL;
    if (req && pm_admin_request(node, req, 2000, &reply) == PM_OK)
        json_decref(reply);
    json_decref(req);
}

int pm_admin_liveness(const pm_node *node, pm_liveness *out, json_t **known_heads)
{
    out->peers = NULL;
    out->n = 0;
    if (known_heads)
        *known_heads = NULL;
    json_t *req = json_pack("{s:s}", "cmd", "peers"), *reply = NULL;
    int rc = pm_admin_request(node, req, 3000, &reply);
    json_decref(req);
    if (rc == PM_OK)
        rc = pm_liveness_from_json(json_object_get(reply, "peers"), out);
    if (rc == PM_OK && known_heads && (*known_heads = json_object_get(reply, "known_heads")))
        json_incref(*known_heads);
    json_decref(reply);
    return rc == PM_OK ? PM_OK : PM_E_NOTFOUND;
}
