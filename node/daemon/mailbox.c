#include "node/daemon/mailbox.h"
#include "node/daemon/edge_provider.h"
#include "proto/error.h"

#include <string.h>
#include <zmq.h>

int pm_mail_ask(void *zctx, const pm_mail_request *rq, int timeout_ms, pm_mail_reply *reply)
{
    memset(reply, 0, sizeof *reply);
    reply->rc = PM_E_NET;
    void *sock = zmq_socket(zctx, ZMQ_REQ);
    if (!sock)
        return PM_E_NET;
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (zmq_connect(sock, PM_EDGE_ENDPOINT) == 0 && zmq_send(sock, rq, sizeof *rq, 0) >= 0) {
        pm_mail_reply got;
        int n = zmq_recv(sock, &got, sizeof got, 0);
        if (n < 0)
            reply->rc = PM_E_TIMEOUT;
        else if ((size_t)n == sizeof got)
            *reply = got;
        reply->why[sizeof reply->why - 1] = 0;
    }
    zmq_close(sock);
    return reply->rc;
}

int pm_mail_request_read(const void *data, size_t size, pm_mail_request *out)
{
    if (size != sizeof *out)
        return 0;
    memcpy(out, data, sizeof *out); /* zmq's buffer need not be aligned for the struct */
    out->study[sizeof out->study - 1] = 0;
    out->reader[sizeof out->reader - 1] = 0;
    return out->magic == PM_MAIL_MAGIC;
}
