/* The DICOM edge's server: our own listening socket on settings->bind_address (dcmtk
 * 3.6.7 can only bind all interfaces), one thread per association, presentation context
 * negotiation, and the C-ECHO and C-STORE services. C-FIND is in dicom_find.cc, C-GET
 * and C-MOVE in dicom_retrieve.cc. Every extern "C" entry catches every exception. */
#include "node/dicom/scan.h"
#include "node/dicom/shim_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
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
 * setting (dcmExternalSocketHandle, made for inetd). Receptions are serialized on this
 * lock, and the setting is only ever non-default while it is held. */
static std::mutex receive_lock;

/* How long a connected client may take to send its A-ASSOCIATE-RQ, and to deliver a
 * DIMSE message or data set once it has started (seconds). */
enum { ASSOCIATE_TIMEOUT = 10, DIMSE_TIMEOUT = 30 };

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
            pm_warn(LOG_MOD, "C-STORE from %s: %s", s->a->calling_ae.c_str(), err);
            store_fail(s, rsp, STATUS_STORE_Error_CannotUnderstand, err);
        } else if (strcmp(meta.sop_uid, req->AffectedSOPInstanceUID) != 0 ||
                   strcmp(meta.sop_class_uid, req->AffectedSOPClassUID) != 0) {
            pm_warn(LOG_MOD, "C-STORE from %s: data set UIDs differ from the request",
                    s->a->calling_ae.c_str());
            store_fail(s, rsp, STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
                       "SOP Class/Instance UID differ from the C-STORE request");
        } else {
            const pm_dicom_provider &p = s->a->srv->provider;
            err[0] = '\0';
            s->handed_over = true;
            int rc =
                p.store ? p.store(p.ctx, s->a->calling_ae.c_str(), s->path.c_str(), err, sizeof err)
                        : PM_E_INVAL;
            if (rc == PM_OK) {
                rsp->DimseStatus = STATUS_STORE_Success;
                s->a->stored++;
            } else {
                std::string why = err[0] ? err : pm_strerror(rc);
                pm_warn(LOG_MOD, "C-STORE from %s refused: %s", s->a->calling_ae.c_str(),
                        why.c_str());
                bool resources =
                    rc == PM_E_MAPFULL || rc == PM_E_NOMEM || rc == PM_E_IO || rc == PM_E_STORE;
                store_fail(s, rsp,
                           resources ? STATUS_STORE_Refused_OutOfResources
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

static OFCondition handle_store(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid,
                                T_DIMSE_C_StoreRQ *req)
{
    store_ctx s;
    s.a = &a;
    char name[64];
    snprintf(name, sizeof name, "/rx-%ld-%lu.dcm", (long)getpid(), ++spool_seq);
    s.path = a.srv->spool_dir + name;
    /* writeMetaheader: the data set bytes go to the file exactly as received, in the
     * presentation context's transfer syntax, behind a meta header made for them. */
    OFCondition c = DIMSE_storeProvider(a.assoc, pcid, req, s.path.c_str(), 1, nullptr,
                                        store_callback, &s, DIMSE_NONBLOCKING, DIMSE_TIMEOUT);
    if (!s.handed_over)
        unlink(s.path.c_str());
    delete s.detail;
    if (c.bad())
        pm_warn(LOG_MOD, "C-STORE from %s failed: %s", a.calling_ae.c_str(), c.text());
    return c;
}

/* ---- one association ---- */

static bool ae_allowed(const pm_dicom_server *srv, const char *ae)
{
    if (srv->allowed_aes.empty())
        return true;
    for (const std::string &s : srv->allowed_aes)
        if (s == ae)
            return true;
    return false;
}

static void forget_fd(pm_dicom_server *srv, pm_dicom_conn *conn)
{
    std::lock_guard<std::mutex> g(srv->mu);
    conn->fd = -1;
}

static void serve_dimse(pm_dicom_assoc &a)
{
    pm_dicom_server *srv = a.srv;
    for (;;) {
        if (srv->stopping) {
            ASC_abortAssociation(a.assoc);
            return;
        }
        T_ASC_PresentationContextID pcid = 0;
        T_DIMSE_Message msg;
        OFCondition c = DIMSE_receiveCommand(a.assoc, DIMSE_NONBLOCKING, 1, &pcid, &msg, nullptr);
        if (c == DIMSE_NODATAAVAILABLE)
            continue;
        if (c == DUL_PEERREQUESTEDRELEASE) {
            ASC_acknowledgeRelease(a.assoc);
            return;
        }
        if (c == DUL_PEERABORTEDASSOCIATION)
            return;
        if (c.bad()) {
            if (!srv->stopping)
                pm_warn(LOG_MOD, "association with %s: %s", a.calling_ae.c_str(), c.text());
            ASC_abortAssociation(a.assoc);
            return;
        }
        switch (msg.CommandField) {
        case DIMSE_C_ECHO_RQ:
            c = DIMSE_sendEchoResponse(a.assoc, pcid, &msg.msg.CEchoRQ, STATUS_Success, nullptr);
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
            pm_warn(LOG_MOD, "association with %s: unsupported DIMSE command 0x%x",
                    a.calling_ae.c_str(), (unsigned)msg.CommandField);
            c = DIMSE_BADCOMMANDTYPE;
            break;
        }
        if (c.bad()) {
            ASC_abortAssociation(a.assoc);
            return;
        }
    }
}

/* Waits (in short steps, so that stop() is prompt) for the client's first bytes. */
static bool wait_readable(pm_dicom_server *srv, int fd, int seconds)
{
    for (int waited = 0; waited < seconds * 10 && !srv->stopping; waited++) {
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
    if (!wait_readable(srv, fd, ASSOCIATE_TIMEOUT)) {
        forget_fd(srv, conn);
        close(fd);
        return;
    }
    OFCondition c;
    {
        std::lock_guard<std::mutex> g(receive_lock);
        dcmExternalSocketHandle.set(fd);
        c = ASC_receiveAssociation(srv->net, &assoc, (long)pm_dicom_edge_max_pdu(srv), nullptr,
                                   nullptr, OFFalse, DUL_NOBLOCK, ASSOCIATE_TIMEOUT);
        dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
    }
    if (c.bad() || !assoc) {
        pm_warn(LOG_MOD, "association request failed: %s", c.text());
        if (assoc) {
            ASC_dropAssociation(assoc);
            ASC_destroyAssociation(&assoc);
        } else {
            close(fd);
        }
        forget_fd(srv, conn);
        return;
    }

    pm_dicom_assoc a;
    a.srv = srv;
    a.conn = conn;
    a.assoc = assoc;
    a.calling_ae = assoc->params->DULparams.callingAPTitle;
    const char *peer = assoc->params->DULparams.callingPresentationAddress;

    if (!ae_allowed(srv, a.calling_ae.c_str())) {
        pm_warn(LOG_MOD, "association from %s (%s) refused: calling AE not allowed",
                a.calling_ae.c_str(), peer);
        T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                      ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED};
        ASC_rejectAssociation(assoc, &rej);
    } else {
        negotiate_contexts(assoc->params);
        if (ASC_countAcceptedPresentationContexts(assoc->params) == 0) {
            pm_warn(LOG_MOD, "association from %s (%s) refused: no acceptable presentation context",
                    a.calling_ae.c_str(), peer);
            T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER,
                                          ASC_REASON_SU_NOREASON};
            ASC_rejectAssociation(assoc, &rej);
        } else if ((c = ASC_acknowledgeAssociation(assoc)).bad()) {
            pm_warn(LOG_MOD, "association from %s: acknowledge failed: %s", a.calling_ae.c_str(),
                    c.text());
        } else {
            pm_debug(LOG_MOD, "association from %s (%s), max PDU %lu/%lu", a.calling_ae.c_str(),
                     peer, pm_dicom_edge_max_pdu(srv),
                     (unsigned long)assoc->params->theirMaxPDUReceiveSize);
            try {
                serve_dimse(a);
            } catch (...) {
                pm_error(LOG_MOD, "association with %s: internal error, aborting",
                         a.calling_ae.c_str());
                ASC_abortAssociation(assoc);
            }
            if (srv->provider.association_end)
                srv->provider.association_end(srv->provider.ctx, a.calling_ae.c_str(), a.stored);
        }
    }
    /* dcmtk closes the socket here; stop() must not touch the number afterwards. */
    {
        std::lock_guard<std::mutex> g(srv->mu);
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
}

static void accept_loop(pm_dicom_server *srv)
{
    while (!srv->stopping) {
        struct pollfd p = {srv->listen_fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        reap(srv);
        if (r <= 0)
            continue;
        int fd = accept4(srv->listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                pm_warn(LOG_MOD, "accept: %s", strerror(errno));
            continue;
        }
        set_nodelay_fd(fd);
        try {
            std::unique_ptr<pm_dicom_conn> conn(new pm_dicom_conn);
            conn->fd = fd;
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

static void destroy(pm_dicom_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->net)
        ASC_dropNetwork(&srv->net);
    delete srv;
}

static int start(const pm_dicom_settings *st, const pm_dicom_provider *prov, pm_dicom_server **out)
{
    std::unique_ptr<pm_dicom_server> srv(new pm_dicom_server);
    srv->ae_title = st->ae_title;
    srv->bind_address = st->bind_address;
    srv->port = st->port;
    for (const char *const *p = st->allowed_aes; p && *p; p++)
        srv->allowed_aes.push_back(*p);
    for (size_t i = 0; i < st->n_destinations; i++)
        srv->destinations.push_back(st->destinations[i]);
    srv->spool_dir = st->spool_dir ? st->spool_dir : ".";
    srv->max_pdu = st->max_pdu;
    srv->provider = *prov;
    pm_dicom_limits lim = {st->max_nesting, st->max_elements};
    pm_dicom_set_limits(&lim);

    srv->listen_fd = open_listener(srv.get());
    if (srv->listen_fd < 0)
        return PM_E_NET;
    {
        /* With an external socket handle set, dcmtk opens no listener of its own: the
         * network object is then only a holder of timeouts for our receptions. */
        std::lock_guard<std::mutex> g(receive_lock);
        dcmExternalSocketHandle.set(srv->listen_fd);
        OFCondition c =
            ASC_initializeNetwork(NET_ACCEPTORREQUESTOR, 0, ASSOCIATE_TIMEOUT, &srv->net);
        dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
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
    pm_info(LOG_MOD, "listening on %s:%d as %s (max PDU %lu)", raw->bind_address.c_str(), raw->port,
            raw->ae_title.c_str(), pm_dicom_edge_max_pdu(raw));
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
