/* One association of the DICOM edge, on its own thread: waiting for the client's first
 * bytes, receiving the A-ASSOCIATE-RQ through the guarded transport (conn.cc), admission
 * (admit.cc), the A-ASSOCIATE-AC, and the DIMSE loop that answers C-ECHO and hands
 * C-STORE, C-FIND, C-GET and C-MOVE to their services until release, abort, idle
 * timeout or stop. */
#include "node/dicom/shim_internal.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include <dcmtk/dcmnet/dul.h>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

static void forget_fd(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    std::lock_guard<std::mutex> g(srv->mu);
    conn->fd = -1;
}

/* Answers one DIMSE request. A bad condition means the association must be aborted. */
static OFCondition answer(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_Message &msg)
{
    switch (msg.CommandField) {
    case DIMSE_C_ECHO_RQ:
        return DIMSE_sendEchoResponse(a.assoc, pcid, &msg.msg.CEchoRQ,
                                      pm_dicom_edge_may(a, PM_ACCESS_ECHO, "C-ECHO")
                                          ? STATUS_Success
                                          : PM_DICOM_STATUS_NOT_AUTHORIZED,
                                      nullptr);
    case DIMSE_C_STORE_RQ: return pm_dicom_edge_store(a, pcid, &msg.msg.CStoreRQ);
    case DIMSE_C_FIND_RQ: pm_dicom_edge_find(a, pcid, &msg.msg.CFindRQ); return EC_Normal;
    case DIMSE_C_GET_RQ: pm_dicom_edge_get(a, pcid, &msg.msg.CGetRQ); return EC_Normal;
    case DIMSE_C_MOVE_RQ: pm_dicom_edge_move(a, pcid, &msg.msg.CMoveRQ); return EC_Normal;
    case DIMSE_C_CANCEL_RQ: return EC_Normal; /* nothing running to cancel */
    default:
        pm_warn(LOG_MOD, "association with %s: unsupported DIMSE command 0x%x", a.label.c_str(),
                (unsigned)msg.CommandField);
        return DIMSE_BADCOMMANDTYPE;
    }
}

/* The requests of an acknowledged association, until release, abort, idle timeout or
 * stop. */
static void serve_dimse(pm_dicom_assoc &a)
{
    pm_dicom_server *srv = a.srv;
    int64_t last_message = pm_dicom_edge_mono_ms();
    for (;;) {
        if (srv->stopping) {
            ASC_abortAssociation(a.assoc);
            return;
        }
        T_ASC_PresentationContextID pcid = 0;
        T_DIMSE_Message msg;
        OFCondition c = DIMSE_receiveCommand(a.assoc, DIMSE_NONBLOCKING, 1, &pcid, &msg, nullptr);
        if (c == DIMSE_NODATAAVAILABLE) {
            int64_t idle = pm_dicom_edge_mono_ms() - last_message;
            if (idle >= (int64_t)srv->idle_timeout_ms) {
                pm_info(LOG_MOD, "association with %s idle for %lld s: closed", a.label.c_str(),
                        (long long)(idle / 1000));
                {
                    std::lock_guard<std::mutex> g(srv->mu);
                    srv->idle_closed++;
                }
                ASC_abortAssociation(a.assoc);
                return;
            }
            continue;
        }
        if (c == DUL_PEERREQUESTEDRELEASE) {
            ASC_acknowledgeRelease(a.assoc);
            return;
        }
        if (c == DUL_PEERABORTEDASSOCIATION)
            return;
        if (c.bad()) {
            if (!srv->stopping)
                pm_warn(LOG_MOD, "association with %s: %s", a.label.c_str(), c.text());
            ASC_abortAssociation(a.assoc);
            return;
        }
        c = answer(a, pcid, msg);
        if (c.bad()) {
            ASC_abortAssociation(a.assoc);
            return;
        }
        last_message = pm_dicom_edge_mono_ms();
    }
}

/* An admitted association: presentation contexts, the A-ASSOCIATE-AC, its requests. */
static void serve_admitted(pm_dicom_assoc &a)
{
    pm_dicom_server *srv = a.srv;
    T_ASC_Association *assoc = a.assoc;
    OFCondition c;
    pm_dicom_edge_negotiate_contexts(assoc->params);
    if (ASC_countAcceptedPresentationContexts(assoc->params) == 0) {
        pm_warn(LOG_MOD, "association from %s refused: no acceptable presentation context",
                a.label.c_str());
        T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                      ASC_REASON_SU_NOREASON};
        ASC_rejectAssociation(assoc, &rej);
        return;
    }
    if ((c = ASC_acknowledgeAssociation(assoc)).bad()) {
        pm_warn(LOG_MOD, "association from %s: acknowledge failed: %s", a.label.c_str(), c.text());
        return;
    }
    pm_dicom_edge_guard_contexts(a.conn, assoc->params);
    pm_debug(LOG_MOD, "association from %s, max PDU %lu/%lu", a.label.c_str(),
             pm_dicom_edge_max_pdu(srv), (unsigned long)assoc->params->theirMaxPDUReceiveSize);
    try {
        serve_dimse(a);
    } catch (...) {
        pm_error(LOG_MOD, "association with %s: internal error, aborting", a.label.c_str());
        ASC_abortAssociation(assoc);
    }
    if (srv->provider.association_end)
        srv->provider.association_end(srv->provider.ctx, a.calling_ae.c_str(), a.stored);
}

/* Waits (in short steps, so that stop() is prompt) for the client's first bytes. */
static bool wait_readable(pm_dicom_server *srv, int fd, unsigned ms)
{
    for (unsigned waited = 0; waited < ms && !srv->stopping; waited += 100) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
    return false;
}

/* Receives the A-ASSOCIATE-RQ on fd through the guarded transport. dcmtk takes the socket
 * from its process-wide setting, so that is set under pm_dicom_edge_receive_lock, held
 * only until dcmtk has taken the socket (conn.cc releases it then). */
static OFCondition receive_association(pm_dicom_server *srv, pm_dicom_conn *conn, int fd,
                                       T_ASC_Association **assoc)
{
    std::unique_lock<std::mutex> hold(pm_dicom_edge_receive_lock());
    dcmExternalSocketHandle.set(fd);
    pm_dicom_edge_receiving(conn, &hold);
    OFCondition c = ASC_receiveAssociation(srv->net, assoc, (long)pm_dicom_edge_max_pdu(srv),
                                           nullptr, nullptr, srv->tls ? OFTrue : OFFalse,
                                           DUL_NOBLOCK, pm_dicom_edge_dimse_timeout(srv));
    pm_dicom_edge_receiving(nullptr, nullptr);
    if (hold.owns_lock()) {
        dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
        hold.unlock();
    }
    return c;
}

/* Destroys the association, which closes its socket: under srv->mu, as stop() must not
 * touch the number afterwards. scp: it was acknowledged or rejected by us. */
static void destroy_association(pm_dicom_server *srv, pm_dicom_conn *conn, T_ASC_Association *assoc,
                                bool scp)
{
    std::lock_guard<std::mutex> g(srv->mu);
    pm_dicom_edge_guard_detach(conn);
    conn->fd = -1;
    if (scp)
        ASC_dropSCPAssociation(assoc);
    else
        ASC_dropAssociation(assoc);
    ASC_destroyAssociation(&assoc);
}

/* A received association: admission, then (admitted) its service. */
static void admit_and_serve(pm_dicom_server *srv, pm_dicom_conn *conn, T_ASC_Association *assoc)
{
    pm_dicom_assoc a;
    a.srv = srv;
    a.conn = conn;
    a.assoc = assoc;
    a.calling_ae = assoc->params->DULparams.callingAPTitle;
    a.host = conn->host;
    a.label = a.calling_ae + " (" + conn->host + ")";
    {
        std::lock_guard<std::mutex> g(srv->mu);
        conn->label = a.label;
    }
    /* admit() answers a refusal itself (and logs why) */
    if (pm_dicom_edge_admit(a))
        serve_admitted(a);
}

static void serve_connection(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    T_ASC_Association *assoc = nullptr;
    int fd = conn->fd;
    if (!wait_readable(srv, fd, srv->read_timeout_ms)) {
        if (!srv->stopping)
            pm_info(LOG_MOD, "connection from %s sent nothing within %u s: closed",
                    conn->host.c_str(), srv->read_timeout_ms / 1000);
        forget_fd(srv, conn);
        close(fd);
        return;
    }
    OFCondition c = receive_association(srv, conn, fd, &assoc);
    if (c.bad() || !assoc || pm_dicom_edge_guard_failed(conn)) {
        if (!pm_dicom_edge_guard_failed(conn)) /* else the guard said why */
            pm_warn(LOG_MOD, "association request from %s failed: %s", conn->host.c_str(),
                    c.text());
        if (assoc) {
            destroy_association(srv, conn, assoc, false);
        } else {
            pm_dicom_edge_guard_detach(conn);
            forget_fd(srv, conn);
            close(fd);
        }
        return;
    }
    admit_and_serve(srv, conn, assoc);
    destroy_association(srv, conn, assoc, true);
}

void pm_dicom_edge_conn_main(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    try {
        serve_connection(srv, conn);
    } catch (...) {
        pm_error(LOG_MOD, "association thread: internal error");
    }
    conn->done = true;
}
