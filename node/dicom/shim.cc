/* The DICOM edge's server: our own listening socket on settings->bind_address (dcmtk
 * 3.6.7 can only bind all interfaces), one thread per association, presentation context
 * negotiation, and the C-ECHO and C-STORE services. C-FIND is in dicom_find.cc, C-GET
 * and C-MOVE in dicom_retrieve.cc. Every extern "C" entry catches every exception. */
#include "node/audit/notes.h"
#include "node/dicom/scan.h"
#include "node/dicom/shim_internal.h"
#include "node/dicom/tls.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <dcmtk/dcmnet/dcmtrans.h>
#include <dcmtk/dcmnet/dul.h>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

/* dcmtk takes the socket of the next association to receive from a process-wide
 * setting (dcmExternalSocketHandle, made for inetd). Setting it is serialized on this
 * lock, and the setting is only ever non-default while it is held; the transport layer
 * (conn.cc) releases it as soon as dcmtk has taken the socket, before any network I/O. */
static std::mutex receive_lock;

/* Seconds dcmtk's DIMSE layer waits for the next PDV of a message it is receiving, and
 * for the next message while a C-STORE sub-operation is answered (conn.cc bounds each
 * PDU by read_timeout on top of that). */
static int dimse_timeout(const pm_dicom_server *srv)
{
    int t = (int)(srv->read_timeout_ms / 1000);
    return t < 1 ? 1 : t;
}

static int64_t mono_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

unsigned long pm_dicom_edge_max_pdu(const pm_dicom_server *srv)
{
    unsigned long pdu = srv->max_pdu ? srv->max_pdu : 131072;
    if (pdu < ASC_MINIMUMPDUSIZE)
        pdu = ASC_MINIMUMPDUSIZE;
    if (pdu > ASC_MAXIMUMPDUSIZE)
        pdu = ASC_MAXIMUMPDUSIZE;
    return pdu;
}

static void set_nodelay_fd(int fd)
{
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        pm_warn(LOG_MOD, "cannot disable Nagle on socket %d: %s", fd, strerror(errno));
}

/* dcmtk keeps a connection's socket protected; a pointer to the member, taken in a
 * derived class's scope, reads it without touching dcmtk's internals otherwise. */
struct socket_peek : DcmTransportConnection {
    static int of(DcmTransportConnection *tc) { return (int)(tc->*(&socket_peek::getSocket))(); }
};

int pm_dicom_edge_nodelay(T_ASC_Association *assoc)
{
    if (!assoc || !assoc->DULassociation)
        return -1;
    DcmTransportConnection *tc = DUL_getTransportConnection(assoc->DULassociation);
    if (!tc)
        return -1;
    int fd = socket_peek::of(tc);
    set_nodelay_fd(fd);
    return fd;
}

DcmDataset *pm_dicom_edge_error_detail(const std::string &comment)
{
    if (comment.empty())
        return nullptr;
    DcmDataset *d = new DcmDataset;
    /* ErrorComment is LO: 64 characters at most. */
    d->putAndInsertString(DCM_ErrorComment, comment.substr(0, 64).c_str());
    return d;
}

/* ---- presentation contexts ---- */

static const char *const service_classes[] = {
    UID_VerificationSOPClass,
    UID_FINDPatientRootQueryRetrieveInformationModel,
    UID_FINDStudyRootQueryRetrieveInformationModel,
    UID_GETPatientRootQueryRetrieveInformationModel,
    UID_GETStudyRootQueryRetrieveInformationModel,
    UID_MOVEPatientRootQueryRetrieveInformationModel,
    UID_MOVEStudyRootQueryRetrieveInformationModel,
};

static bool is_service_class(const char *uid)
{
    for (const char *s : service_classes)
        if (strcmp(s, uid) == 0)
            return true;
    return false;
}

/* Every storage SOP class: dcmtk's list, plus any UID dcmtk does not know at all (new
 * or private storage classes), which is what "every storage SOP class" needs. */
static bool is_storage_class(const char *uid)
{
    if (dcmIsaStorageSOPClassUID(uid, ESSC_All))
        return true;
    return uid[0] != '\0' && dcmFindNameOfUID(uid) == nullptr;
}

/* The client's first proposed transfer syntax that dcmtk knows; for DIMSE commands and
 * query identifiers only uncompressed, non-deflated ones. */
static const char *choose_ts(const T_ASC_PresentationContext &pc, bool uncompressed_only)
{
    for (int i = 0; i < pc.transferSyntaxCount; i++) {
        DcmXfer x(pc.proposedTransferSyntaxes[i]);
        if (x.getXfer() == EXS_Unknown)
            continue;
        if (uncompressed_only && (x.isEncapsulated() || x.getStreamCompression() != ESC_none))
            continue;
        return pc.proposedTransferSyntaxes[i];
    }
    return nullptr;
}

static void negotiate_contexts(T_ASC_Parameters *params)
{
    int n = ASC_countPresentationContexts(params);
    for (int i = 0; i < n; i++) {
        T_ASC_PresentationContext pc;
        if (ASC_getPresentationContext(params, i, &pc).bad())
            continue;
        const char *ts = nullptr;
        if (is_service_class(pc.abstractSyntax))
            ts = choose_ts(pc, true);
        else if (is_storage_class(pc.abstractSyntax))
            ts = choose_ts(pc, false); /* stored as it arrives: any syntax will do */
        if (!ts) {
            ASC_refusePresentationContext(params, pc.presentationContextID,
                                          is_service_class(pc.abstractSyntax) ||
                                                  is_storage_class(pc.abstractSyntax)
                                              ? ASC_P_TRANSFERSYNTAXESNOTSUPPORTED
                                              : ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        /* A C-GET requester proposes the SCP role for the storage classes it wants back;
         * accepting the role it asks for is what lets us send them on this association. */
        T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT;
        if (pc.proposedRole == ASC_SC_ROLE_SCP || pc.proposedRole == ASC_SC_ROLE_SCUSCP)
            role = pc.proposedRole;
        ASC_acceptPresentationContext(params, pc.presentationContextID, ts, role);
    }
}

/* ---- C-STORE ---- */

/* Names spool files uniquely across every server of the process (they may share a
 * spool directory); the pid separates processes. */
static std::atomic<unsigned long> spool_seq{0};

struct store_ctx {
    pm_dicom_assoc *a;
    std::string path;
    bool handed_over = false;
    DcmDataset *detail = nullptr;
    Uint16 refuse_status = STATUS_STORE_Refused_OutOfResources; /* refuse_callback's */
    std::string refuse_why = "Out of resources: disk full";
};

static void store_fail(store_ctx *s, T_DIMSE_C_StoreRSP *rsp, Uint16 status, const std::string &why)
{
    rsp->DimseStatus = status;
    delete s->detail;
    s->detail = pm_dicom_edge_error_detail(why);
}

static void store_callback(void *data, T_DIMSE_StoreProgress *progress, T_DIMSE_C_StoreRQ *req,
                           char *, DcmDataset **, T_DIMSE_C_StoreRSP *rsp,
                           DcmDataset **status_detail)
{
    store_ctx *s = static_cast<store_ctx *>(data);
    if (progress->state != DIMSE_StoreEnd)
        return;
    try {
        /* The data set was written to s->path as it arrived. Check it parses and is the
         * instance announced before the provider makes it durable. */
        pm_dicom_meta meta;
        char err[256];
        if (pm_dicom_read_meta(s->path.c_str(), &meta, err, sizeof err) != PM_OK) {
            pm_warn(LOG_MOD, "C-STORE from %s: %s", s->a->label.c_str(), err);
            store_fail(s, rsp, STATUS_STORE_Error_CannotUnderstand, err);
        } else if (strcmp(meta.sop_uid, req->AffectedSOPInstanceUID) != 0 ||
                   strcmp(meta.sop_class_uid, req->AffectedSOPClassUID) != 0) {
            pm_warn(LOG_MOD, "C-STORE from %s: data set UIDs differ from the request",
                    s->a->label.c_str());
            store_fail(s, rsp, STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
                       "SOP Class/Instance UID differ from the C-STORE request");
        } else {
            const pm_dicom_provider &p = s->a->srv->provider;
            err[0] = '\0';
            s->handed_over = true;
            pm_dicom_store_rq rq = {
                s->a->calling_ae.c_str(), s->a->host.c_str(), s->path.c_str(), &meta, 0, 0};
            int rc = p.store ? p.store(p.ctx, &rq, err, sizeof err) : PM_E_INVAL;
            if (rc == PM_OK) {
                rsp->DimseStatus = STATUS_STORE_Success;
                if (!rq.quarantined)
                    s->a->stored++;
            } else {
                std::string why = err[0] ? err : pm_strerror(rc);
                pm_warn(LOG_MOD, "C-STORE from %s%s%s", s->a->label.c_str(),
                        why.compare(0, 7, "refused") == 0 ? ": " : " refused: ", why.c_str());
                bool resources =
                    rc == PM_E_MAPFULL || rc == PM_E_NOMEM || rc == PM_E_IO || rc == PM_E_STORE;
                store_fail(s, rsp,
                           rq.status   ? rq.status
                           : resources ? STATUS_STORE_Refused_OutOfResources
                                       : STATUS_STORE_Error_CannotUnderstand,
                           why);
            }
        }
    } catch (...) {
        store_fail(s, rsp, STATUS_STORE_Refused_OutOfResources, "internal error");
    }
    if (s->detail)
        *status_detail = s->detail;
}

/* Below this much free space on the spool's file system, C-STORE answers "out of
 * resources" rather than start writing an instance it may not be able to finish (a
 * write failing midway would end the association without an answer). */
enum { SPOOL_RESERVE_BYTES = 16 * 1024 * 1024 };

/* The data set of a C-STORE that cannot be stored: read to its end (so that the
 * association goes on), answered with s->refuse_status and why. */
static void refuse_callback(void *data, T_DIMSE_StoreProgress *progress, T_DIMSE_C_StoreRQ *,
                            char *, DcmDataset **, T_DIMSE_C_StoreRSP *rsp, DcmDataset **detail)
{
    store_ctx *s = static_cast<store_ctx *>(data);
    if (progress->state != DIMSE_StoreEnd)
        return;
    try {
        store_fail(s, rsp, s->refuse_status, s->refuse_why);
        *detail = s->detail;
    } catch (...) {
        rsp->DimseStatus = STATUS_STORE_Refused_OutOfResources;
    }
}

static OFCondition handle_store(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid,
                                T_DIMSE_C_StoreRQ *req)
{
    store_ctx s;
    s.a = &a;
    struct statvfs fs;
    if (!pm_dicom_edge_may(a, PM_ACCESS_STORE, "C-STORE")) {
        s.refuse_status = PM_DICOM_STATUS_NOT_AUTHORIZED;
        s.refuse_why = "Refused: not authorized (no store right for this AE)";
        OFCondition c =
            DIMSE_storeProvider(a.assoc, pcid, req, NULL_DEVICE_NAME, 0, nullptr, refuse_callback,
                                &s, DIMSE_NONBLOCKING, dimse_timeout(a.srv));
        delete s.detail;
        return c;
    }
    if (statvfs(a.srv->spool_dir.c_str(), &fs) == 0 &&
        (uint64_t)fs.f_bavail * fs.f_frsize < SPOOL_RESERVE_BYTES) {
        pm_error(LOG_MOD, "C-STORE from %s refused: the disk of %s is full (%llu KiB free)",
                 a.label.c_str(), a.srv->spool_dir.c_str(),
                 (unsigned long long)((uint64_t)fs.f_bavail * fs.f_frsize / 1024));
        OFCondition c =
            DIMSE_storeProvider(a.assoc, pcid, req, NULL_DEVICE_NAME, 0, nullptr, refuse_callback,
                                &s, DIMSE_NONBLOCKING, dimse_timeout(a.srv));
        delete s.detail;
        return c;
    }
    char name[64];
    snprintf(name, sizeof name, "/rx-%ld-%lu.dcm", (long)getpid(), ++spool_seq);
    s.path = a.srv->spool_dir + name;
    /* writeMetaheader: the data set bytes go to the file exactly as received, in the
     * presentation context's transfer syntax, behind a meta header made for them. */
    OFCondition c =
        DIMSE_storeProvider(a.assoc, pcid, req, s.path.c_str(), 1, nullptr, store_callback, &s,
                            DIMSE_NONBLOCKING, dimse_timeout(a.srv));
    if (!s.handed_over)
        unlink(s.path.c_str());
    delete s.detail;
    if (c.bad())
        pm_warn(LOG_MOD, "C-STORE from %s failed: %s%s", a.label.c_str(), c.text(),
                c == DIMSE_OUTOFRESOURCES ? "" : " (association aborted)");
    return c;
}

/* ---- one association ---- */

static void forget_fd(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    std::lock_guard<std::mutex> g(srv->mu);
    conn->fd = -1;
}

static void serve_dimse(pm_dicom_assoc &a)
{
    pm_dicom_server *srv = a.srv;
    int64_t last_message = mono_ms();
    for (;;) {
        if (srv->stopping) {
            ASC_abortAssociation(a.assoc);
            return;
        }
        T_ASC_PresentationContextID pcid = 0;
        T_DIMSE_Message msg;
        OFCondition c = DIMSE_receiveCommand(a.assoc, DIMSE_NONBLOCKING, 1, &pcid, &msg, nullptr);
        if (c == DIMSE_NODATAAVAILABLE) {
            int64_t idle = mono_ms() - last_message;
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
        switch (msg.CommandField) {
        case DIMSE_C_ECHO_RQ:
            c = DIMSE_sendEchoResponse(a.assoc, pcid, &msg.msg.CEchoRQ,
                                       pm_dicom_edge_may(a, PM_ACCESS_ECHO, "C-ECHO")
                                           ? STATUS_Success
                                           : PM_DICOM_STATUS_NOT_AUTHORIZED,
                                       nullptr);
            break;
        case DIMSE_C_STORE_RQ: c = handle_store(a, pcid, &msg.msg.CStoreRQ); break;
        case DIMSE_C_FIND_RQ:
            pm_dicom_edge_find(a, pcid, &msg.msg.CFindRQ);
            c = EC_Normal;
            break;
        case DIMSE_C_GET_RQ:
            pm_dicom_edge_get(a, pcid, &msg.msg.CGetRQ);
            c = EC_Normal;
            break;
        case DIMSE_C_MOVE_RQ:
            pm_dicom_edge_move(a, pcid, &msg.msg.CMoveRQ);
            c = EC_Normal;
            break;
        case DIMSE_C_CANCEL_RQ:
            c = EC_Normal; /* nothing running to cancel */
            break;
        default:
            pm_warn(LOG_MOD, "association with %s: unsupported DIMSE command 0x%x", a.label.c_str(),
                    (unsigned)msg.CommandField);
            c = DIMSE_BADCOMMANDTYPE;
            break;
        }
        if (c.bad()) {
            ASC_abortAssociation(a.assoc);
            return;
        }
        last_message = mono_ms();
    }
}

/* An admitted association: presentation contexts, the A-ASSOCIATE-AC, its requests. */
static void serve_admitted(pm_dicom_assoc &a)
{
    pm_dicom_server *srv = a.srv;
    T_ASC_Association *assoc = a.assoc;
    OFCondition c;
    negotiate_contexts(assoc->params);
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
    OFCondition c;
    {
        /* Held only until dcmtk has taken the socket (conn.cc releases it then). */
        std::unique_lock<std::mutex> hold(receive_lock);
        dcmExternalSocketHandle.set(fd);
        pm_dicom_edge_receiving(conn, &hold);
        c = ASC_receiveAssociation(srv->net, &assoc, (long)pm_dicom_edge_max_pdu(srv), nullptr,
                                   nullptr, srv->tls ? OFTrue : OFFalse, DUL_NOBLOCK,
                                   dimse_timeout(srv));
        pm_dicom_edge_receiving(nullptr, nullptr);
        if (hold.owns_lock()) {
            dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
            hold.unlock();
        }
    }
    if (c.bad() || !assoc || pm_dicom_edge_guard_failed(conn)) {
        if (!pm_dicom_edge_guard_failed(conn)) /* else the guard said why */
            pm_warn(LOG_MOD, "association request from %s failed: %s", conn->host.c_str(),
                    c.text());
        if (assoc) {
            std::lock_guard<std::mutex> g(srv->mu);
            pm_dicom_edge_guard_detach(conn);
            conn->fd = -1;
            ASC_dropAssociation(assoc);
            ASC_destroyAssociation(&assoc);
        } else {
            pm_dicom_edge_guard_detach(conn);
            forget_fd(srv, conn);
            close(fd);
        }
        return;
    }

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
    /* dcmtk closes the socket here; stop() must not touch the number afterwards. */
    {
        std::lock_guard<std::mutex> g(srv->mu);
        pm_dicom_edge_guard_detach(conn);
        conn->fd = -1;
        ASC_dropSCPAssociation(assoc);
        ASC_destroyAssociation(&assoc);
    }
}

static void conn_main(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    try {
        serve_connection(srv, conn);
    } catch (...) {
        pm_error(LOG_MOD, "association thread: internal error");
    }
    conn->done = true;
}

/* Joins the threads of finished associations. Called by the acceptor only. */
static void reap(pm_dicom_server *srv)
{
    std::list<std::unique_ptr<pm_dicom_conn>> finished;
    {
        std::lock_guard<std::mutex> g(srv->mu);
        for (auto it = srv->conns.begin(); it != srv->conns.end();) {
            if ((*it)->done) {
                finished.push_back(std::move(*it));
                it = srv->conns.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto &c : finished)
        c->thread.join();
    /* After a burst of associations, hand the memory their threads used back. */
    if (finished.size() >= 16)
        malloc_trim(0);
}

/* A-ASSOCIATE-RJ: rejected-transient (2), by the DICOM UL service-provider, presentation
 * related function (3), local-limit-exceeded (2) (PS3.8 9.3.4). */
static const uint8_t reject_limit_pdu[10] = {0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2};
enum { MAX_REJECTING = 256, REJECT_DRAIN_MS = 2000 };

/* Too many associations: answer with the rejection and drain the A-ASSOCIATE-RQ, in the
 * acceptor's poll loop (no thread for it). Logged at most once a second per limit. */
static void reject_connection(pm_dicom_server *srv, int fd, const std::string &host,
                              const char *why, int limit)
{
    static int64_t last_log[2];
    static unsigned long unlogged[2];
    int64_t now = mono_ms();
    {
        std::lock_guard<std::mutex> g(srv->mu);
        srv->limit_rejections++;
    }
    if (now - last_log[limit] >= 1000) {
        if (unlogged[limit])
            pm_warn(LOG_MOD,
                    "association from %s rejected: %s (and %lu more since the last "
                    "such message)",
                    host.c_str(), why, unlogged[limit]);
        else
            pm_warn(LOG_MOD, "association from %s rejected: %s", host.c_str(), why);
        last_log[limit] = now;
        unlogged[limit] = 0;
    } else {
        unlogged[limit]++;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    (void)!send(fd, reject_limit_pdu, sizeof reject_limit_pdu, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    if (srv->rejected.size() >= MAX_REJECTING) {
        close(fd);
        return;
    }
    srv->rejected.push_back({fd, now + REJECT_DRAIN_MS});
}

static void drain_rejected(pm_dicom_server *srv, const struct pollfd *p, size_t n)
{
    int64_t now = mono_ms();
    std::vector<pm_dicom_rejected> keep;
    for (size_t i = 0; i < srv->rejected.size(); i++) {
        pm_dicom_rejected &r = srv->rejected[i];
        bool gone = now >= r.deadline_ms;
        if (!gone && i < n && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[4096];
            ssize_t k = recv(r.fd, buf, sizeof buf, MSG_DONTWAIT);
            gone = k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR);
        }
        if (gone)
            close(r.fd);
        else
            keep.push_back(r);
    }
    srv->rejected.swap(keep);
}

/* Why a new association from host must be rejected now (and which limit: 0 total, 1 per
 * host), or nullptr. */
static const char *over_limit(pm_dicom_server *srv, const std::string &host, std::string &why,
                              int *limit)
{
    std::lock_guard<std::mutex> g(srv->mu);
    unsigned total = 0, same = 0;
    for (auto &c : srv->conns)
        if (!c->done) {
            total++;
            same += c->host == host;
        }
    char b[160];
    if (total >= srv->max_associations) {
        snprintf(b, sizeof b, "%u associations at once (max_associations)", total);
        why = b;
        *limit = 0;
    } else if (same >= srv->max_associations_per_host) {
        snprintf(b, sizeof b,
                 "%u associations from that address at once "
                 "(max_associations_per_host)",
                 same);
        why = b;
        *limit = 1;
    } else {
        return nullptr;
    }
    return why.c_str();
}

static void accept_loop(pm_dicom_server *srv)
{
    std::vector<struct pollfd> pfds;
    while (!srv->stopping) {
        pfds.clear();
        for (const pm_dicom_rejected &r : srv->rejected)
            pfds.push_back({r.fd, POLLIN, 0});
        pfds.push_back({srv->listen_fd, POLLIN, 0});
        int r = poll(pfds.data(), pfds.size(), 100);
        reap(srv);
        drain_rejected(srv, pfds.data(), r > 0 ? pfds.size() - 1 : 0);
        if (r <= 0 || !(pfds.back().revents & POLLIN))
            continue;
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        int fd = accept4(srv->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                pm_warn(LOG_MOD, "accept: %s", strerror(errno));
            continue;
        }
        char host[INET6_ADDRSTRLEN] = "?";
        if (sa.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof host);
        else if (sa.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof host);
        std::string why;
        int limit = 0;
        if (over_limit(srv, host, why, &limit)) {
            reject_connection(srv, fd, host, why.c_str(), limit);
            continue;
        }
        set_nodelay_fd(fd);
        /* A client that stops reading cannot hold a sending thread for longer. */
        struct timeval tv = {(time_t)(srv->read_timeout_ms / 1000),
                             (suseconds_t)(srv->read_timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        /* OpenSSL reads a TLS record to its end: bound that wait too. */
        if (srv->tls)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        try {
            std::unique_ptr<pm_dicom_conn> conn(new pm_dicom_conn);
            conn->fd = fd;
            conn->host = host;
            pm_dicom_conn *raw = conn.get();
            std::lock_guard<std::mutex> g(srv->mu);
            srv->conns.push_back(std::move(conn));
            raw->thread = std::thread(conn_main, srv, raw);
        } catch (...) {
            pm_error(LOG_MOD, "cannot start an association thread");
            std::lock_guard<std::mutex> g(srv->mu);
            if (!srv->conns.empty() && !srv->conns.back()->thread.joinable())
                srv->conns.pop_back();
            close(fd);
        }
    }
    for (const pm_dicom_rejected &r : srv->rejected)
        close(r.fd);
    srv->rejected.clear();
}

static int open_listener(const pm_dicom_server *srv)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)srv->port);
    const char *addr = srv->bind_address.empty() ? "0.0.0.0" : srv->bind_address.c_str();
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        pm_error(LOG_MOD, "bad bind address '%s'", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        pm_error(LOG_MOD, "cannot listen on %s:%d: %s", addr, srv->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Spool files of another process (rx-<pid>-<n>.dcm): left by an earlier run that
 * ended in the middle of a C-STORE (the run lock says no other node uses this
 * directory); their instances were never acknowledged. Files of this process may
 * belong to another server sharing the directory and are kept. */
static void remove_stale_spool(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());
    if (!d)
        return;
    unsigned removed = 0;
    long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        unsigned long seq;
        char tail[8];
        if (sscanf(e->d_name, "rx-%ld-%lu.%7s", &pid, &seq, tail) != 3 || strcmp(tail, "dcm") ||
            pid == self)
            continue;
        std::string p = dir + "/" + e->d_name;
        if (unlink(p.c_str()) == 0)
            removed++;
    }
    closedir(d);
    if (removed)
        pm_info(LOG_MOD, "removed %u stale spool files of an earlier run from %s", removed,
                dir.c_str());
}

static void destroy(pm_dicom_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->net)
        ASC_dropNetwork(&srv->net);
    delete srv->layer;
    pm_dicom_tls_free(srv->tls);
    delete srv;
}

static int start(const pm_dicom_settings *st, const pm_dicom_provider *prov, pm_dicom_server **out)
{
    std::unique_ptr<pm_dicom_server> srv(new pm_dicom_server);
    srv->ae_title = st->ae_title;
    srv->bind_address = st->bind_address;
    srv->port = st->port;
    if (pm_dicom_edge_set_access(srv.get(), st) != PM_OK)
        return PM_E_CONFIG;
    std::string why;
    if (pm_dicom_tls_new(st, &srv->tls, why) != PM_OK) {
        pm_error(LOG_MOD, "DICOM TLS: %s", why.c_str());
        return PM_E_CONFIG;
    }
    srv->spool_dir = st->spool_dir ? st->spool_dir : ".";
    srv->max_pdu = st->max_pdu;
    if (st->idle_timeout_ms)
        srv->idle_timeout_ms = st->idle_timeout_ms;
    if (st->read_timeout_ms)
        srv->read_timeout_ms = st->read_timeout_ms;
    if (st->max_associations)
        srv->max_associations = st->max_associations;
    if (st->max_associations_per_host)
        srv->max_associations_per_host = st->max_associations_per_host;
    srv->max_nesting = st->max_nesting;
    srv->max_elements = st->max_elements;
    srv->provider = *prov;
    pm_dicom_limits lim = {st->max_nesting, st->max_elements};
    pm_dicom_set_limits(&lim);
    /* Peers are named by address in logs; a reverse lookup could stall a reception. */
    dcmDisableGethostbyaddr.set(OFTrue);

    remove_stale_spool(srv->spool_dir);
    srv->listen_fd = open_listener(srv.get());
    if (srv->listen_fd < 0)
        return PM_E_NET;
    {
        /* With an external socket handle set, dcmtk opens no listener of its own: the
         * network object is then only a holder of timeouts for our receptions. */
        std::lock_guard<std::mutex> g(receive_lock);
        dcmExternalSocketHandle.set(srv->listen_fd);
        OFCondition c =
            ASC_initializeNetwork(NET_ACCEPTORREQUESTOR, 0, dimse_timeout(srv.get()), &srv->net);
        dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
        if (c.good()) {
            srv->layer = pm_dicom_edge_transport_new(srv.get());
            c = ASC_setTransportLayer(srv->net, srv->layer, 0);
        }
        if (c.bad()) {
            pm_error(LOG_MOD, "dcmtk network: %s", c.text());
            destroy(srv.release());
            return PM_E_NET;
        }
    }
    pm_dicom_server *raw = srv.release();
    try {
        raw->acceptor = std::thread(accept_loop, raw);
    } catch (...) {
        destroy(raw);
        return PM_E_NOMEM;
    }
    pm_info(LOG_MOD, "listening on %s:%d as %s (max PDU %lu%s)", raw->bind_address.c_str(),
            raw->port, raw->ae_title.c_str(), pm_dicom_edge_max_pdu(raw),
            raw->tls ? ", TLS only" : "");
    *out = raw;
    return PM_OK;
}

extern "C" int pm_dicom_server_start(const pm_dicom_settings *settings,
                                     const pm_dicom_provider *provider, pm_dicom_server **out)
{
    if (!settings || !provider || !out || !provider->for_each_study)
        return PM_E_INVAL;
    *out = nullptr;
    pm_dicom_edge_quiet_dcmtk();
    try {
        return start(settings, provider, out);
    } catch (const std::bad_alloc &) {
        return PM_E_NOMEM;
    } catch (...) {
        pm_error(LOG_MOD, "server start: internal error");
        return PM_E_NET;
    }
}

static void stop(pm_dicom_server *srv)
{
    srv->stopping = true;
    if (srv->acceptor.joinable())
        srv->acceptor.join();
    /* Idle associations notice the flag within their 1 s receive poll; shutting their
     * sockets down after a short grace period makes every blocked read return now. */
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    for (;;) {
        bool all_done = true;
        {
            std::lock_guard<std::mutex> g(srv->mu);
            for (auto &c : srv->conns)
                all_done = all_done && c->done;
        }
        if (all_done || std::chrono::steady_clock::now() >= deadline)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    {
        std::lock_guard<std::mutex> g(srv->mu);
        for (auto &c : srv->conns) {
            if (c->done)
                continue;
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
            if (c->sub_fd >= 0)
                shutdown(c->sub_fd, SHUT_RDWR);
        }
    }
    for (auto &c : srv->conns)
        if (c->thread.joinable())
            c->thread.join();
    srv->conns.clear();
    destroy(srv);
}

extern "C" void pm_dicom_server_stop(pm_dicom_server **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_dicom_server *srv = *self_p;
    *self_p = nullptr;
    try {
        stop(srv);
    } catch (...) {
        pm_error(LOG_MOD, "server stop: internal error");
    }
}
