/* node/metrics: the Prometheus endpoint alone. Starts it on an ephemeral loopback
 * port, talks HTTP to it with a plain socket from this same thread (the request waits
 * in the socket buffer until pm_metrics_handle accepts it, as in the daemon's loop),
 * and checks the exposition format and the bounds. */
#include "node/daemon/metrics_http.h"
#include "test/check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    return fd;
}

/* Reads the whole answer (the server closes the connection); the caller frees it. */
static char *read_all(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    CHECK(buf);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        CHECK(poll(&p, 1, 2000) == 1);
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        CHECK(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        CHECK(len < cap - 1);
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

/* Sends raw request bytes, lets the server handle them, returns the answer. */
static char *exchange(pm_metrics *m, const char *request, pm_metrics_collect_fn fn, void *ctx)
{
    int fd = connect_to(pm_metrics_port(m));
    size_t len = strlen(request);
    CHECK(send(fd, request, len, 0) == (ssize_t)len);
    struct pollfd p = {pm_metrics_fd(m), POLLIN, 0};
    CHECK(poll(&p, 1, 2000) == 1); /* the listening socket reports the connection */
    pm_metrics_handle(m, fn, ctx);
    return read_all(fd);
}

typedef struct {
    int calls;
} collect_ctx;

static void collect(void *ctx, pm_metrics_writer *w)
{
    collect_ctx *c = ctx;
    c->calls++;
    pm_metrics_counter(w, "pacsmesh_dicom_stores_total", "C-STORE requests answered.", 42);
    pm_metrics_gauge(w, "pacsmesh_peers_up", "Peers up now.", 2);
    pm_metrics_gauge(w, "pacsmesh_fetch_last_seconds", NULL, 0.25);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", "Items by state.", "state",
                        "unreported", 3);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", "Items by state.", "state",
                        "claimed", 1);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_member_up", "Help with \\ and\nnewline.",
                        "name", "St \"Elsewhere\" \\ A\nB", 1);
    pm_metrics_gauge(w, "not_ours", "wrong prefix: skipped", 1);
    pm_metrics_gauge(w, "pacsmesh_bad-name", "invalid character: skipped", 1);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_bad_label", "skipped", "1x", "v", 1);
    pm_metrics_counter(w, "pacsmesh_big_total", "Exact 64-bit counter.",
                       UINT64_C(18446744073709551615));
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_off_and_refused(void)
{
    pm_metrics *m = (pm_metrics *)1;
    CHECK_RC(pm_metrics_new(NULL, &m));
    CHECK(m == NULL);
    CHECK_RC(pm_metrics_new("", &m));
    CHECK(m == NULL);
    CHECK_EQ_INT(pm_metrics_fd(NULL), -1);
    CHECK_EQ_INT(pm_metrics_port(NULL), 0);
    pm_metrics_handle(NULL, collect, NULL);
    pm_metrics_destroy(NULL);
    pm_metrics_destroy(&m);

    const char *bad[] = {
        "0.0.0.0:9464",     "10.1.2.3:9464", "192.168.0.1:1", "[::]:9464",       "[fd00::5]:9464",
        "example.org:9464", "127.0.0.1",     "127.0.0.1:",    "127.0.0.1:70000", "127.0.0.1:-1",
        "127.0.0.1:9x",     ":9464",         "::1:9464",      "[::1:9464",       "*:9464"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (pm_metrics *)1;
        int rc = pm_metrics_new(bad[i], &m);
        if (rc != PM_E_INVAL || m != NULL) {
            fprintf(stderr, "%s: accepted or wrong code %d\n", bad[i], rc);
            exit(1);
        }
    }
}

static void test_scrape(void)
{
    pm_metrics *m = NULL;
    CHECK_RC(pm_metrics_new("127.0.0.1:0", &m));
    CHECK(m && pm_metrics_fd(m) >= 0 && pm_metrics_port(m) > 0);

    /* Nothing pending: returns at once. */
    uint64_t t0 = mono_ms();
    pm_metrics_handle(m, collect, NULL);
    CHECK(mono_ms() - t0 < 100);

    collect_ctx c = {0};
    char *r = exchange(m, "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n", collect, &c);
    CHECK_EQ_INT(c.calls, 1);
    CHECK(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    CHECK(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    const char *body = strstr(r, "\r\n\r\n");
    CHECK(body);
    body += 4;
    char want_len[64];
    snprintf(want_len, sizeof want_len, "\r\nContent-Length: %zu\r\n", strlen(body));
    CHECK(strstr(r, want_len));

    CHECK(strstr(body, "# HELP pacsmesh_dicom_stores_total C-STORE requests answered.\n"
                       "# TYPE pacsmesh_dicom_stores_total counter\n"
                       "pacsmesh_dicom_stores_total 42\n"));
    CHECK(strstr(body, "# HELP pacsmesh_peers_up Peers up now.\n# TYPE pacsmesh_peers_up gauge\n"
                       "pacsmesh_peers_up 2\n"));
    /* No help: no HELP line, still a TYPE line. */
    CHECK(!strstr(body, "# HELP pacsmesh_fetch_last_seconds"));
    CHECK(strstr(body,
                 "# TYPE pacsmesh_fetch_last_seconds gauge\npacsmesh_fetch_last_seconds 0.25\n"));
    /* One family, its header once, then every labelled sample. */
    CHECK(strstr(body, "# HELP pacsmesh_worklist_items Items by state.\n"
                       "# TYPE pacsmesh_worklist_items gauge\n"
                       "pacsmesh_worklist_items{state=\"unreported\"} 3\n"
                       "pacsmesh_worklist_items{state=\"claimed\"} 1\n"));
    CHECK_EQ_INT(count(body, "# TYPE pacsmesh_worklist_items "), 1);
    /* Escaping: HELP escapes \ and newline; label values also ". */
    CHECK(strstr(body, "# HELP pacsmesh_member_up Help with \\\\ and\\nnewline.\n"));
    CHECK(strstr(body, "pacsmesh_member_up{name=\"St \\\"Elsewhere\\\" \\\\ A\\nB\"} 1\n"));
    /* Invalid names are skipped, the rest still served. */
    CHECK(!strstr(body, "not_ours"));
    CHECK(!strstr(body, "bad-name"));
    CHECK(!strstr(body, "pacsmesh_bad_label"));
    CHECK(strstr(body, "pacsmesh_big_total 18446744073709551615\n"));
    /* Every line is a comment or "name[{...}] value". */
    CHECK(body[strlen(body) - 1] == '\n');
    for (const char *line = body; *line;) {
        const char *nl = strchr(line, '\n');
        CHECK(nl);
        CHECK(line[0] == '#' || strncmp(line, "pacsmesh_", 9) == 0);
        CHECK(memchr(line, ' ', (size_t)(nl - line)));
        line = nl + 1;
    }
    free(r);

    /* HTTP/1.0, a query string, bare LF line ends. */
    r = exchange(m, "GET /metrics?x=1 HTTP/1.0\n\n", collect, &c);
    CHECK_EQ_INT(c.calls, 2);
    CHECK(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    free(r);

    /* No collect function: an empty exposition. */
    r = exchange(m, "GET /metrics HTTP/1.0\r\n\r\n", NULL, NULL);
    CHECK(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    CHECK(strstr(r, "Content-Length: 0\r\n"));
    free(r);

    /* Other paths, methods, garbage: no collect call. */
    r = exchange(m, "GET / HTTP/1.0\r\n\r\n", collect, &c);
    CHECK(strncmp(r, "HTTP/1.0 404 ", 13) == 0);
    free(r);
    r = exchange(m, "GET /metricsx HTTP/1.0\r\n\r\n", collect, &c);
    CHECK(strncmp(r, "HTTP/1.0 404 ", 13) == 0);
    free(r);
    r = exchange(m, "POST /metrics HTTP/1.0\r\n\r\n", collect, &c);
    CHECK(strncmp(r, "HTTP/1.0 405 ", 13) == 0);
    free(r);
    r = exchange(m, "hello\r\n\r\n", collect, &c);
    CHECK(strncmp(r, "HTTP/1.0 400 ", 13) == 0);
    free(r);
    CHECK_EQ_INT(c.calls, 2);

    /* A request larger than the bound is refused without waiting for more. */
    char *big = malloc(PM_METRICS_REQUEST_MAX + 100);
    CHECK(big);
    memset(big, 'a', PM_METRICS_REQUEST_MAX + 99);
    memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
    big[PM_METRICS_REQUEST_MAX + 99] = '\0';
    t0 = mono_ms();
    r = exchange(m, big, collect, &c);
    CHECK(mono_ms() - t0 < PM_METRICS_READ_MS);
    CHECK(strncmp(r, "HTTP/1.0 400 ", 13) == 0);
    free(r);
    free(big);

    /* A client that connects and says nothing stalls the loop only for the read bound. */
    t0 = mono_ms();
    r = exchange(m, "GET /metrics HTTP/1.0\r\n", collect, &c); /* no blank line */
    uint64_t took = mono_ms() - t0;
    CHECK(took >= PM_METRICS_READ_MS - 10 && took < PM_METRICS_READ_MS + 500);
    CHECK(strncmp(r, "HTTP/1.0 400 ", 13) == 0);
    free(r);
    CHECK_EQ_INT(c.calls, 2);

    /* A client that went away before being accepted costs nothing. */
    int fd = connect_to(pm_metrics_port(m));
    close(fd);
    pm_metrics_handle(m, collect, &c);

    /* The port is taken while the server lives. */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", pm_metrics_port(m));
    pm_metrics *m2 = NULL;
    CHECK_CODE(pm_metrics_new(addr, &m2), PM_E_NET);
    CHECK(m2 == NULL);

    pm_metrics_destroy(&m);
    CHECK(m == NULL);
    pm_metrics_destroy(&m);
    /* ...and free again once it is gone. */
    CHECK_RC(pm_metrics_new(addr, &m2));
    pm_metrics_destroy(&m2);
}

static void test_other_loopbacks(void)
{
    pm_metrics *m = NULL;
    CHECK_RC(pm_metrics_new("localhost:0", &m));
    CHECK(pm_metrics_port(m) > 0);
    pm_metrics_destroy(&m);
    CHECK_RC(pm_metrics_new("127.0.0.2:0", &m));
    pm_metrics_destroy(&m);
    int rc = pm_metrics_new("[::1]:0", &m);
    CHECK(rc == PM_OK || rc == PM_E_NET); /* PM_E_NET: no IPv6 on this host */
    pm_metrics_destroy(&m);
}

int main(void)
{
    test_off_and_refused();
    test_scrape();
    test_other_loopbacks();
    printf("test_metrics_unit: ok\n");
    return 0;
}
