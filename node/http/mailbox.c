/* The web server's writes, handed to the main loop: the HTTP thread asks over the
 * loop's inproc mailbox (pm_http_ask_loop); the loop's thread applies the worklist
 * action (node/worklist/actions.h) and pushes the event (pm_http_answer_write). */
#include "node/http/internal.h"
#include "proto/error.h"
#include "proto/log.h"

#include <string.h>
#include <zmq.h>

int pm_http_ask_loop(pm_http_server *s, json_t *request, int timeout_ms, json_t **reply)
{
    return pm_http_ask(s, s->s.mailbox, request, timeout_ms, reply);
}

int pm_http_ask(pm_http_server *s, const char *endpoint, json_t *request, int timeout_ms,
                json_t **reply)
{
    *reply = NULL;
    void *sock = zmq_socket(s->s.zctx, ZMQ_REQ);
    if (!sock)
        return PM_E_NET;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    char *text = json_dumps(request, JSON_COMPACT);
    int rc = PM_E_NET;
    if (text && zmq_connect(sock, endpoint) == 0 && zmq_send(sock, text, strlen(text), 0) >= 0) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, 0) < 0) {
            rc = PM_E_TIMEOUT;
        } else {
            json_error_t jerr;
            *reply = json_loadb(zmq_msg_data(&msg), zmq_msg_size(&msg), 0, &jerr);
            rc = *reply ? PM_OK : PM_E_PARSE;
        }
        zmq_msg_close(&msg);
    }
    free(text);
    zmq_close(sock);
    return rc;
}

int pm_http_is_write(const char *cmd)
{
    return cmd && strncmp(cmd, "http-", 5) == 0;
}

json_t *pm_http_answer_write(const pm_wl_node *n, const json_t *req)
{
    const char *cmd = json_string_value(json_object_get(req, "cmd"));
    const char *uid = json_string_value(json_object_get(req, "study"));
    const char *rep = json_string_value(json_object_get(req, "reporter"));
    const char *text = json_string_value(json_object_get(req, "text"));
    const char *by = json_string_value(json_object_get(req, "by"));
    char msg[1024] = "", note[512] = "";
    int rc = PM_E_INVAL;
    int is_flag = cmd && strcmp(cmd, "http-flag") == 0;
    if (!uid || (!rep && !is_flag) || (!by && (is_flag || strcmp(cmd, "http-assign") == 0)))
        snprintf(msg, sizeof msg, "malformed request");
    else if (is_flag)
        rc = pm_wl_flag(n, uid, json_string_value(json_object_get(req, "priority")),
                        json_string_value(json_object_get(req, "reason")), by, msg, sizeof msg);
    else if (strcmp(cmd, "http-assign") == 0)
        rc = pm_wl_assign(n, uid, rep, by, msg, sizeof msg);
    else if (strcmp(cmd, "http-claim") == 0)
        rc = pm_wl_claim(n, uid, rep, msg, sizeof msg);
    else if (strcmp(cmd, "http-release") == 0)
        rc = pm_wl_release(n, uid, rep, msg, sizeof msg);
    else if (strcmp(cmd, "http-verify") == 0)
        rc = pm_wl_verify(n, uid, rep, msg, sizeof msg);
    else if (strcmp(cmd, "http-report") == 0)
        rc = pm_wl_report(n, uid, rep, text, json_is_true(json_object_get(req, "addendum")), msg,
                          sizeof msg, note, sizeof note);
    else
        snprintf(msg, sizeof msg, "unknown request %s", cmd);
    if (rc)
        return json_pack("{s:s, s:i}", "error", msg, "code", rc);
    pm_info("http", "%s", msg);
    return json_pack("{s:b, s:s, s:s?}", "ok", 1, "message", msg, "note", *note ? note : NULL);
}
