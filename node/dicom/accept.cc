/* The DICOM edge's acceptor thread: polls the listening socket, applies the association
 * limits (max_associations, max_associations_per_host) by answering an A-ASSOCIATE-RJ
 * and draining the request without a thread, starts one thread per accepted connection
 * and joins the threads of finished ones. */
#include "node/dicom/shim_internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

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
    int64_t now = pm_dicom_edge_mono_ms();
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
    int64_t now = pm_dicom_edge_mono_ms();
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

void pm_dicom_edge_accept_loop(pm_dicom_server *srv)
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
        pm_dicom_edge_nodelay_fd(fd);
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
            raw->thread = std::thread(pm_dicom_edge_conn_main, srv, raw);
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
