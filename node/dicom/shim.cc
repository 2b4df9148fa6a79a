/* The DICOM edge's server object: start (our own listening socket on
 * settings->bind_address, as dcmtk 3.6.7 can only bind all interfaces; the dcmtk network;
 * the acceptor thread) and stop, and the small helpers every part of the edge shares.
 * The acceptor is in accept.cc, one association in association.cc, presentation
 * contexts in contexts.cc, C-STORE in cstore.cc, C-FIND in find.cc, C-GET and C-MOVE in
 * retrieve.cc. Every extern "C" entry catches every exception. */
#include "node/dicom/scan.h"
#include "node/dicom/shim_internal.h"
#include "node/dicom/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
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
std::mutex &pm_dicom_edge_receive_lock()
{
    static std::mutex lock;
    return lock;
}

/* Seconds dcmtk's DIMSE layer waits for the next PDV of a message it is receiving, and
 * for the next message while a C-STORE sub-operation is answered (conn.cc bounds each
 * PDU by read_timeout on top of that). */
int pm_dicom_edge_dimse_timeout(const pm_dicom_server *srv)
{
    int t = (int)(srv->read_timeout_ms / 1000);
    return t < 1 ? 1 : t;
}

int64_t pm_dicom_edge_mono_ms()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

unsigned long pm_dicom_edge_max_pdu(const pm_dicom_server *srv)
{
    unsigned long pdu = srv->max_pdu ? srv->max_pdu : PM_DICOM_DEFAULT_MAX_PDU;
    if (pdu < ASC_MINIMUMPDUSIZE)
        pdu = ASC_MINIMUMPDUSIZE;
    if (pdu > ASC_MAXIMUMPDUSIZE)
        pdu = ASC_MAXIMUMPDUSIZE;
    return pdu;
}

void pm_dicom_edge_nodelay_fd(int fd)
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
    pm_dicom_edge_nodelay_fd(fd);
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
    delete srv->layer;
    pm_dicom_spool_stop(srv->spool);
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
    srv->max_find_results = st->max_find_results;
    srv->provider = *prov;
    pm_dicom_limits lim = {st->max_nesting, st->max_elements};
    pm_dicom_set_limits(&lim);
    /* Peers are named by address in logs; a reverse lookup could stall a reception. */
    dcmDisableGethostbyaddr.set(OFTrue);

    srv->listen_fd = open_listener(srv.get());
    if (srv->listen_fd < 0)
        return PM_E_NET;
    srv->spool = pm_dicom_spool_start(srv->spool_dir); /* stopped by destroy() from here */
    {
        /* With an external socket handle set, dcmtk opens no listener of its own: the
         * network object is then only a holder of timeouts for our receptions. */
        std::lock_guard<std::mutex> g(pm_dicom_edge_receive_lock());
        dcmExternalSocketHandle.set(srv->listen_fd);
        OFCondition c = ASC_initializeNetwork(NET_ACCEPTORREQUESTOR, 0,
                                              pm_dicom_edge_dimse_timeout(srv.get()), &srv->net);
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
        raw->acceptor = std::thread(pm_dicom_edge_accept_loop, raw);
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
