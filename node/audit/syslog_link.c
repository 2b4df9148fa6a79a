/* TCP or TLS to the audit record repository (node/audit/syslog_link.h). */
#include "node/audit/syslog_link.h"
#include "proto/clock.h"
#include "proto/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct pm_syslog_link {
    char host[256];
    int port, tls;
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
};

int pm_syslog_parse_url(const char *url, char *host, size_t hostlen, int *port, int *tls, char *why,
                        size_t wl)
{
    const char *rest;
    if (strncmp(url, "tcp://", 6) == 0)
        *tls = 0, rest = url + 6;
    else if (strncmp(url, "tls://", 6) == 0)
        *tls = 1, rest = url + 6;
    else {
        snprintf(why, wl, "'%s' is not tcp://host:port or tls://host:port", url);
        return PM_E_INVAL;
    }
    const char *colon, *h = rest;
    size_t hl;
    if (*rest == '[') { /* [IPv6]:port */
        const char *close = strchr(rest, ']');
        if (!close || close[1] != ':') {
            snprintf(why, wl, "'%s': an IPv6 host is written [address]:port", url);
            return PM_E_INVAL;
        }
        h = rest + 1, hl = (size_t)(close - h), colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        hl = colon ? (size_t)(colon - rest) : 0;
    }
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || hl == 0 || hl >= hostlen || memchr(h, '/', hl) || !end || *end || p < 1 ||
        p > 65535 || end == colon + 1) {
        snprintf(why, wl, "'%s' needs a host and a port from 1 to 65535", url);
        return PM_E_INVAL;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return PM_OK;
}

static void tls_error(char *why, size_t wl, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(why, wl, "%s%s%s", what, *buf ? ": " : "", buf);
    ERR_clear_error();
}

static int make_tls_context(pm_syslog_link *l, const pm_syslog_target *t, char *err, size_t el)
{
    l->ctx = SSL_CTX_new(TLS_client_method());
    if (!l->ctx || !SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION)) {
        tls_error(err, el, "cannot make a TLS context");
        return PM_E_CONFIG;
    }
    SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER, NULL);
    int ok = t->ca && *t->ca ? SSL_CTX_load_verify_locations(l->ctx, t->ca, NULL)
                             : SSL_CTX_set_default_verify_paths(l->ctx);
    if (!ok) {
        char what[4200];
        snprintf(what, sizeof what, "[audit] syslog_ca: cannot read %s", t->ca ? t->ca : "");
        tls_error(err, el, what);
        return PM_E_CONFIG;
    }
    if (t->cert && *t->cert &&
        (!SSL_CTX_use_certificate_chain_file(l->ctx, t->cert) ||
         !SSL_CTX_use_PrivateKey_file(l->ctx, t->key && *t->key ? t->key : t->cert,
                                      SSL_FILETYPE_PEM) ||
         !SSL_CTX_check_private_key(l->ctx))) {
        tls_error(err, el, "[audit] syslog_cert/syslog_key: not a usable certificate and key");
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_syslog_link_new(const pm_syslog_target *t, pm_syslog_link **out, char *err, size_t el)
{
    *out = NULL;
    pm_syslog_link *l = calloc(1, sizeof *l);
    if (!l)
        return PM_E_NOMEM;
    l->fd = -1;
    char why[256];
    if (pm_syslog_parse_url(t->url, l->host, sizeof l->host, &l->port, &l->tls, why, sizeof why) !=
        PM_OK) {
        snprintf(err, el, "[audit] syslog: %s", why);
        free(l);
        return PM_E_CONFIG;
    }
    if (l->tls && make_tls_context(l, t, err, el) != PM_OK) {
        pm_syslog_link_destroy(&l);
        return PM_E_CONFIG;
    }
    *out = l;
    return PM_OK;
}

static void disconnect(pm_syslog_link *l)
{
    if (l->ssl) {
        SSL_free(l->ssl); /* no close_notify: the link is dead or being dropped */
        l->ssl = NULL;
    }
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

void pm_syslog_link_destroy(pm_syslog_link **self_p)
{
    if (!self_p || !*self_p)
        return;
    disconnect(*self_p);
    SSL_CTX_free((*self_p)->ctx);
    free(*self_p);
    *self_p = NULL;
}

/* Waits until fd is ready for events or the deadline passes: 1 ready, 0 not. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = pm_now_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
}

static int tcp_connect(pm_syslog_link *l, uint64_t deadline, char *why, size_t wl)
{
    char port[8];
    snprintf(port, sizeof port, "%d", l->port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(l->host, port, &hints, &res);
    if (g != 0) {
        snprintf(why, wl, "cannot resolve %s: %s", l->host, gai_strerror(g));
        return PM_E_NET;
    }
    int rc = PM_E_NET;
    snprintf(why, wl, "cannot connect to %s:%d", l->host, l->port);
    for (struct addrinfo *a = res; a && rc; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int c = connect(fd, a->ai_addr, a->ai_addrlen), soerr = 0;
        socklen_t sl = sizeof soerr;
        if (c != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
            c = 0;
        else if (c != 0)
            snprintf(why, wl, "cannot connect to %s:%d: %s", l->host, l->port,
                     strerror(soerr                  ? soerr
                              : errno == EINPROGRESS ? ETIMEDOUT
                                                     : errno));
        if (c == 0) {
            l->fd = fd;
            rc = PM_OK;
        } else {
            close(fd);
        }
    }
    freeaddrinfo(res);
    return rc;
}

/* Runs an OpenSSL call on the non-blocking socket until it completes or the deadline:
 * its result > 0, or <= 0 on failure. */
static int tls_step(pm_syslog_link *l, int (*op)(SSL *, const void *, int), const void *buf,
                    int len, uint64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int rc = op(l->ssl, buf, len);
        if (rc > 0)
            return rc;
        int e = SSL_get_error(l->ssl, rc);
        if (!(e == SSL_ERROR_WANT_READ && wait_fd(l->fd, POLLIN, deadline)) &&
            !(e == SSL_ERROR_WANT_WRITE && wait_fd(l->fd, POLLOUT, deadline)))
            return rc;
    }
}

static int do_handshake(SSL *ssl, const void *buf, int len)
{
    (void)buf, (void)len;
    return SSL_connect(ssl);
}

static int do_write(SSL *ssl, const void *buf, int len)
{
    return SSL_write(ssl, buf, len);
}

static int tls_connect(pm_syslog_link *l, uint64_t deadline, char *why, size_t wl)
{
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = inet_pton(AF_INET, l->host, &a4) == 1 || inet_pton(AF_INET6, l->host, &a6) == 1;
    l->ssl = SSL_new(l->ctx);
    X509_VERIFY_PARAM *param = l->ssl ? SSL_get0_param(l->ssl) : NULL;
    if (!l->ssl || !SSL_set_fd(l->ssl, l->fd) ||
        !(is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, l->host)
                : SSL_set_tlsext_host_name(l->ssl, l->host) && SSL_set1_host(l->ssl, l->host))) {
        tls_error(why, wl, "cannot set up TLS");
        return PM_E_NET;
    }
    if (tls_step(l, do_handshake, NULL, 0, deadline) <= 0) {
        long v = SSL_get_verify_result(l->ssl);
        char what[512];
        snprintf(what, sizeof what, "TLS handshake with %s:%d failed%s%s", l->host, l->port,
                 v != X509_V_OK ? ": " : "",
                 v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
        tls_error(why, wl, what);
        return PM_E_NET;
    }
    return PM_OK;
}

/* Whether the open connection still stands: the repository sends nothing but TLS
 * records (tickets, close_notify), so anything readable is read and dropped, and an
 * end of stream means it closed. */
static int still_open(pm_syslog_link *l)
{
    char scratch[4096];
    for (int i = 0; i < 64; i++) {
        struct pollfd p = {l->fd, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            return 1;
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
            return 0;
        if (!l->ssl) {
            ssize_t n = recv(l->fd, scratch, sizeof scratch, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return 0;
            continue;
        }
        ERR_clear_error();
        int n = SSL_read(l->ssl, scratch, sizeof scratch);
        if (n <= 0)
            return SSL_get_error(l->ssl, n) == SSL_ERROR_WANT_READ;
    }
    return 1;
}

static int send_plain(pm_syslog_link *l, const char *buf, size_t len, uint64_t deadline)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(l->fd, buf + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(l->fd, POLLOUT, deadline))
            continue;
        else
            return n < 0 ? -errno : -ETIMEDOUT;
    }
    return 0;
}

int pm_syslog_link_send(pm_syslog_link *l, const void *buf, size_t len, int timeout_ms, char *why,
                        size_t wl)
{
    uint64_t deadline = pm_now_ms() + (uint64_t)timeout_ms;
    if (l->fd >= 0 && !still_open(l))
        disconnect(l);
    if (l->fd < 0) {
        int rc = tcp_connect(l, deadline, why, wl);
        if (!rc && l->tls)
            rc = tls_connect(l, deadline, why, wl);
        if (rc) {
            disconnect(l);
            return rc;
        }
    }
    int rc;
    if (l->ssl) {
        rc = tls_step(l, do_write, buf, (int)len, deadline) == (int)len ? 0 : -EIO;
        if (rc)
            tls_error(why, wl, "TLS write failed");
    } else {
        rc = send_plain(l, buf, len, deadline);
        if (rc)
            snprintf(why, wl, "write to %s:%d failed: %s", l->host, l->port, strerror(-rc));
    }
    if (rc) {
        disconnect(l);
        return rc == -ETIMEDOUT ? PM_E_TIMEOUT : PM_E_NET;
    }
    return PM_OK;
}
