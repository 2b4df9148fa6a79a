/* Prometheus metrics over HTTP/1.0 on loopback, driven by the daemon's poll loop
 * (node/daemon/metrics_http.h). One connection at a time, each answered and closed within a
 * bounded time: a scrape every few seconds from a local Prometheus is all it serves. */
#include "node/daemon/metrics_http.h"

#include "proto/error.h"
#include "proto/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct pm_metrics {
    int fd;
    int port;
};

struct pm_metrics_writer {
    char *buf;
    size_t len, cap;
    bool overflow;
    char family[128]; /* name of the family whose HELP/TYPE were written last */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Splits "host:port" / "[v6]:port" into a loopback socket address. */
static int parse_listen(const char *address, struct sockaddr_storage *ss, socklen_t *sslen)
{
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1])
        return PM_E_INVAL;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || port > 65535 || colon[1] == '-' || colon[1] == '+')
        return PM_E_INVAL;
    char host[64];
    size_t hlen = (size_t)(colon - address);
    const char *h = address;
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']')
            return PM_E_INVAL;
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return PM_E_INVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    if (address[0] != '[' && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        if ((ntohl(in4->sin_addr.s_addr) >> 24) != 127)
            return PM_E_INVAL;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *in4;
        return PM_OK;
    }
    if (address[0] == '[' && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return PM_E_INVAL;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *in6;
        return PM_OK;
    }
    return PM_E_INVAL;
}

int pm_metrics_new(const char *address, pm_metrics **out)
{
    *out = NULL;
    if (!address || !*address)
        return PM_OK; /* metrics off */
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (parse_listen(address, &ss, &sslen) != PM_OK) {
        pm_error("metrics", "[metrics] listen: \"%s\" is not a loopback host:port", address);
        return PM_E_INVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pm_error("metrics", "cannot create a socket for %s: %s", address, strerror(errno));
        return PM_E_NET;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 16) != 0) {
        pm_error("metrics", "cannot listen on %s: %s", address, strerror(errno));
        close(fd);
        return PM_E_NET;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    pm_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return PM_E_NOMEM;
    }
    m->fd = fd;
    m->port = port;
    *out = m;
    pm_info("metrics", "serving Prometheus metrics at %s (port %d), path /metrics", address, port);
    return PM_OK;
}

int pm_metrics_fd(pm_metrics *self)
{
    return self ? self->fd : -1;
}

int pm_metrics_port(pm_metrics *self)
{
    return self ? self->port : 0;
}

void pm_metrics_destroy(pm_metrics **self_p)
{
    if (!self_p || !*self_p)
        return;
    close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}

/* ---- the writer ------------------------------------------------------------------- */

static void put(pm_metrics_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(pm_metrics_writer *w, const char *fmt, ...)
{
    if (w->overflow)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(w->buf ? w->buf + w->len : NULL, w->buf ? w->cap - w->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            w->overflow = true;
            return;
        }
        if (w->buf && w->len + (size_t)n < w->cap) {
            w->len += (size_t)n;
            return;
        }
        size_t need = w->len + (size_t)n + 1;
        if (need > PM_METRICS_BODY_MAX) {
            w->overflow = true;
            return;
        }
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->overflow = true;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
}

static bool valid_name(const char *s, bool metric)
{
    if (!s || !*s || strlen(s) >= 120)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (metric && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return !metric || strncmp(s, "pacsmesh_", 9) == 0;
}

/* Writes text escaped for a HELP line (\\ and \n) or a label value (also \"). */
static void put_escaped(pm_metrics_writer *w, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            put(w, "\\\\");
        else if (*p == '\n')
            put(w, "\\n");
        else if (quote && *p == '"')
            put(w, "\\\"");
        else
            put(w, "%c", *p);
    }
}

/* HELP and TYPE once per family: when name differs from the previous sample's. */
static bool family(pm_metrics_writer *w, pm_metrics_type type, const char *name, const char *help)
{
    if (!valid_name(name, true)) {
        pm_warn("metrics", "skipping metric with an invalid name \"%s\"", name ? name : "");
        return false;
    }
    if (strcmp(w->family, name) == 0)
        return true;
    snprintf(w->family, sizeof w->family, "%s", name);
    if (help) {
        put(w, "# HELP %s ", name);
        put_escaped(w, help, false);
        put(w, "\n");
    }
    put(w, "# TYPE %s %s\n", name,
        type == PM_METRICS_COUNTER     ? "counter"
        : type == PM_METRICS_HISTOGRAM ? "histogram"
                                       : "gauge");
    return true;
}

static void put_value(pm_metrics_writer *w, double v)
{
    if (isnan(v))
        put(w, " NaN\n");
    else if (isinf(v))
        put(w, v > 0 ? " +Inf\n" : " -Inf\n");
    else
        put(w, " %.15g\n", v);
}

void pm_metrics_counter(pm_metrics_writer *w, const char *name, const char *help, uint64_t value)
{
    if (family(w, PM_METRICS_COUNTER, name, help))
        put(w, "%s %llu\n", name, (unsigned long long)value);
}

void pm_metrics_gauge(pm_metrics_writer *w, const char *name, const char *help, double value)
{
    if (!family(w, PM_METRICS_GAUGE, name, help))
        return;
    put(w, "%s", name);
    put_value(w, value);
}

void pm_metrics_labelled(pm_metrics_writer *w, pm_metrics_type type, const char *name,
                         const char *help, const char *label, const char *label_value, double value)
{
    if (!valid_name(label, false) || strncmp(label, "__", 2) == 0) {
        pm_warn("metrics", "skipping %s: invalid label name \"%s\"", name ? name : "",
                label ? label : "");
        return;
    }
    if (!family(w, type, name, help))
        return;
    put(w, "%s{%s=\"", name, label);
    put_escaped(w, label_value ? label_value : "", true);
    put(w, "\"}");
    put_value(w, value);
}

void pm_metrics_sample(pm_metrics_writer *w, pm_metrics_type type, const char *family_name,
                       const char *help, const char *name, const char *const (*labels)[2],
                       size_t n_labels, double value)
{
    for (size_t i = 0; i < n_labels; i++)
        if (!valid_name(labels[i][0], false) || strncmp(labels[i][0], "__", 2) == 0) {
            pm_warn("metrics", "skipping %s: invalid label name \"%s\"", name ? name : "",
                    labels[i][0] ? labels[i][0] : "");
            return;
        }
    if (!valid_name(name, true) || !family(w, type, family_name, help))
        return;
    put(w, "%s", name);
    for (size_t i = 0; i < n_labels; i++) {
        put(w, "%s%s=\"", i ? "," : "{", labels[i][0]);
        put_escaped(w, labels[i][1] ? labels[i][1] : "", true);
        put(w, "\"");
    }
    if (n_labels)
        put(w, "}");
    put_value(w, value);
}

/* ---- one connection ----------------------------------------------------------------- */

/* Reads until the end of the headers (an empty line). Returns the length read, or -1
 * on timeout, error, close before the end, or more than PM_METRICS_REQUEST_MAX bytes. */
static ssize_t read_request(int fd, char *buf, size_t cap)
{
    uint64_t deadline = mono_ms() + PM_METRICS_READ_MS;
    size_t len = 0;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)len;
        if (len >= cap - 1)
            return -1;
    }
}

static void write_all(int fd, const char *data, size_t len, uint64_t deadline)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return;
        uint64_t now = mono_ms();
        if (now >= deadline)
            return;
        struct pollfd p = {fd, POLLOUT, 0};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc == 0 || (rc < 0 && errno != EINTR))
            return;
    }
}

static void respond(int fd, const char *status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, len);
    uint64_t deadline = mono_ms() + PM_METRICS_WRITE_MS;
    write_all(fd, head, (size_t)n, deadline);
    write_all(fd, body, len, deadline);
}

static void respond_text(int fd, const char *status, const char *body)
{
    respond(fd, status, "text/plain; charset=utf-8", body, strlen(body));
}

void pm_metrics_handle(pm_metrics *self, pm_metrics_collect_fn fn, void *ctx)
{
    if (!self)
        return;
    int fd = accept4(self->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return; /* nothing pending, or the client gave up already */
    char req[PM_METRICS_REQUEST_MAX + 1];
    ssize_t n = read_request(fd, req, sizeof req);
    if (n < 0) {
        pm_debug("metrics", "dropped a connection: no complete request within %d ms / %d bytes",
                 PM_METRICS_READ_MS, PM_METRICS_REQUEST_MAX);
        respond_text(fd, "400 Bad Request", "bad request\n");
        goto done;
    }
    /* Request line: METHOD SP TARGET SP HTTP/x.y */
    char method[16], target[256], version[16];
    if (sscanf(req, "%15s %255s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/", 5) != 0) {
        respond_text(fd, "400 Bad Request", "bad request\n");
        goto done;
    }
    if (strcmp(method, "GET") != 0) {
        respond_text(fd, "405 Method Not Allowed", "only GET is served\n");
        goto done;
    }
    size_t plen = strcspn(target, "?");
    if (plen != 8 || strncmp(target, "/metrics", 8) != 0) {
        respond_text(fd, "404 Not Found", "not found: metrics are at /metrics\n");
        goto done;
    }
    pm_metrics_writer w;
    memset(&w, 0, sizeof w);
    if (fn)
        fn(ctx, &w);
    if (w.overflow) {
        pm_warn("metrics", "the exposition outgrew %u bytes (or memory ran out): answered 500",
                PM_METRICS_BODY_MAX);
        respond_text(fd, "500 Internal Server Error", "metrics too large\n");
    } else {
        respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", w.buf ? w.buf : "",
                w.len);
    }
    free(w.buf);
done:
    /* Unread bytes make close() send a reset, which can destroy the answer before the
     * client reads it: take what has already arrived (bounded, without waiting). */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, req, sizeof req, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}
