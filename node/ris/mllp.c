/* MLLP client (node/ris/mllp.h). */
#include "node/ris/mllp.h"
#include "proto/clock.h"
#include "proto/error.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MLLP_START 0x0b
#define MLLP_END 0x1c
#define MLLP_CR 0x0d

static int remaining(uint64_t deadline)
{
    uint64_t now = pm_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Waits for fd to be ready for events until deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {fd, events, 0};
    int ms;
    while ((ms = remaining(deadline)) > 0) {
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
    return 0;
}

static int connect_to(const char *hostport, uint64_t deadline, char *why, size_t whylen)
{
    char host[256], *colon;
    snprintf(host, sizeof host, "%s", hostport);
    if (!(colon = strrchr(host, ':'))) {
        snprintf(why, whylen, "%s is not host:port", hostport);
        return PM_E_INVAL;
    }
    *colon = '\0';
    const char *port = colon + 1, *name = host;
    if (host[0] == '[' && colon > host && colon[-1] == ']') {
        colon[-1] = '\0';
        name = host + 1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(name, port, &hints, &res);
    if (g) {
        snprintf(why, whylen, "cannot resolve %s: %s", name, gai_strerror(g));
        return PM_E_NET;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        socklen_t el = sizeof err;
        if ((connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
             (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline))) &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
            break;
        snprintf(why, whylen, "cannot connect to %s: %s", hostport,
                 err ? strerror(err) : "timed out");
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd < 0 ? PM_E_NET : fd;
}

static int send_all(int fd, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(fd, POLLOUT, deadline))
                return PM_E_TIMEOUT;
        } else {
            return PM_E_NET;
        }
    }
    return PM_OK;
}

/* Reads one framed message; the frame markers are dropped. */
static int read_frame(int fd, char *out, size_t outlen, size_t *len, uint64_t deadline, char *why,
                      size_t whylen)
{
    size_t n = 0;
    int started = 0;
    for (;;) {
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r == 0) {
            snprintf(why, whylen, "the RIS closed the connection without a full answer");
            return PM_E_NET;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                snprintf(why, whylen, "reading the answer: %s", strerror(errno));
                return PM_E_NET;
            }
            if (!wait_fd(fd, POLLIN, deadline)) {
                snprintf(why, whylen, "no answer from the RIS in time");
                return PM_E_TIMEOUT;
            }
            continue;
        }
        if (!started) {
            if (c != MLLP_START) {
                snprintf(why, whylen, "the answer does not start with MLLP's VT byte");
                return PM_E_PARSE;
            }
            started = 1;
        } else if (c == MLLP_END) {
            out[n] = '\0';
            *len = n;
            return PM_OK; /* the trailing CR is not waited for */
        } else if (n + 1 >= outlen) {
            snprintf(why, whylen, "the answer is longer than %zu bytes", outlen - 1);
            return PM_E_TOOBIG;
        } else {
            out[n++] = c;
        }
    }
}

int pm_mllp_exchange(const char *hostport, const char *msg, int timeout_ms, char *ack,
                     size_t acklen, size_t *ack_len, char *why, size_t whylen)
{
    uint64_t deadline = pm_now_ms() + (uint64_t)timeout_ms;
    int fd = connect_to(hostport, deadline, why, whylen);
    if (fd < 0)
        return fd;
    static const char start = MLLP_START, end[2] = {MLLP_END, MLLP_CR};
    int rc = send_all(fd, &start, 1, deadline);
    if (!rc)
        rc = send_all(fd, msg, strlen(msg), deadline);
    if (!rc)
        rc = send_all(fd, end, 2, deadline);
    if (rc)
        snprintf(why, whylen, "sending to %s: %s", hostport, pm_strerror(rc));
    else
        rc = read_frame(fd, ack, acklen, ack_len, deadline, why, whylen);
    close(fd);
    return rc;
}
