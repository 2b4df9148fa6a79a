/* libmicrohttpd's daemon and the per-request plumbing: limits, the body, the answer. */
#include "node/http/internal.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *pm_http_arg(pm_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *pm_http_header(pm_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

enum MHD_Result pm_http_queue(pm_http_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"pacsmesh\"");
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

enum MHD_Result pm_http_send(pm_http_req *r, unsigned status, const char *ctype, const void *body,
                             size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp && ctype)
        MHD_add_response_header(resp, "Content-Type", ctype);
    return pm_http_queue(r, status, resp);
}

enum MHD_Result pm_http_json(pm_http_req *r, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return pm_http_send(r, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp)
        MHD_add_response_header(resp, "Content-Type", "application/json");
    else
        free(text);
    return pm_http_queue(r, status, resp);
}

enum MHD_Result pm_http_error(pm_http_req *r, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status >= 500)
        pm_warn("http", "%s %s: %u %s", r->method, r->pathbuf, status, msg);
    return pm_http_json(r, status, json_pack("{s:s}", "error", msg));
}

static void client_ip(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, len, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
}

/* The first call for a request: checks what can be checked before the body. */
static enum MHD_Result begin(pm_http_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, void **con_cls)
{
    pm_http_req *r = calloc(1, sizeof *r);
    if (!r)
        return MHD_NO;
    r->srv = s;
    r->conn = c;
    r->method = method;
    r->started_ms = pm_now_ms();
    client_ip(c, r->ip, sizeof r->ip);
    *con_cls = r;
    snprintf(r->pathbuf, sizeof r->pathbuf, "%s", url);
    r->spool_fd = -1;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    int stow = strcmp(method, "POST") == 0 && strncmp(url, "/dicom-web/studies", 18) == 0;
    if (stow && !pm_http_peek_user(r))
        stow = 0; /* the body is not kept; the route answers 401 or 403 */
    if (stow) {
        char tmp[4096];
        if (pm_blobs_temp_path(s->s.blobs, tmp, sizeof tmp) == PM_OK &&
            (r->spool_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) >= 0)
            unlink(tmp); /* gone when closed, whatever happens */
    }
    if (cl && strtoull(cl, NULL, 10) > (stow ? PM_HTTP_STOW_MAX : PM_HTTP_BODY_MAX))
        r->too_big = 1;
    return MHD_YES;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    pm_http_server *s = cls;
    if (!*con_cls)
        return begin(s, c, url, method, con_cls);
    pm_http_req *r = *con_cls;
    if (*upload_size) {
        if (pm_now_ms() - r->started_ms > PM_HTTP_REQUEST_S * 1000ull)
            return MHD_NO;      /* a client trickling its body is cut off */
        if (r->spool_fd >= 0) { /* STOW-RS: to the spool file */
            if (r->spool_len + *upload_size > PM_HTTP_STOW_MAX)
                r->too_big = 1;
            else if (write(r->spool_fd, upload, *upload_size) != (ssize_t)*upload_size)
                return MHD_NO;
            r->spool_len += *upload_size;
            *upload_size = 0;
            return MHD_YES;
        }
        if (!r->too_big && r->body_len + *upload_size > PM_HTTP_BODY_MAX)
            r->too_big = 1;
        if (!r->too_big) {
            if (r->body_len + *upload_size + 1 > r->body_cap) {
                size_t cap = (r->body_len + *upload_size + 1) * 2;
                char *grown =
                    realloc(r->body, cap > PM_HTTP_BODY_MAX + 1 ? PM_HTTP_BODY_MAX + 1 : cap);
                if (!grown)
                    return MHD_NO;
                r->body = grown;
                r->body_cap = cap > PM_HTTP_BODY_MAX + 1 ? PM_HTTP_BODY_MAX + 1 : cap;
            }
            memcpy(r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
            r->body[r->body_len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return pm_http_error(
            r, 413, "the request body is larger than %llu bytes",
            (unsigned long long)(r->spool_fd >= 0 ? PM_HTTP_STOW_MAX : PM_HTTP_BODY_MAX));
    int rc = pm_http_path_split(url, r->pathbuf, sizeof r->pathbuf, r->seg, &r->nseg);
    if (rc == PM_E_TOOBIG)
        return pm_http_error(r, 414, "the path is longer than %d bytes", PM_HTTP_PATH_MAX);
    if (rc)
        return pm_http_error(r, 400,
                             "malformed path (no '.', '..', '//', '\\\\' or control "
                             "characters)");
    return pm_http_route(r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    pm_http_req *r = *con_cls;
    if (!r)
        return;
    if (r->spool_fd >= 0)
        close(r->spool_fd);
    if (r->body)
        sodium_memzero(r->body, r->body_len);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    pm_debug("http", "%s", msg);
}

/* "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *text, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof host)
        return PM_E_CONFIG;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return PM_E_CONFIG;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    size_t hl = strlen(host);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return PM_OK;
    }
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            return PM_OK;
        }
    }
    return PM_E_CONFIG;
}

static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    if (buf && !strstr(buf, "-----BEGIN")) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Where the OHIF viewer was installed (examples/install-deps.sh), if anywhere. */
static char *find_viewer(void)
{
    const char *env = getenv("PACSMESH_VIEWER_DIR");
    const char *dirs[] = {env, PM_VIEWER_DIR, NULL};
    for (int i = 0; i < 2; i++) {
        char probe[4096];
        struct stat st;
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(probe, sizeof probe, "%s/index.html", dirs[i]);
        if (stat(probe, &st) == 0)
            return strdup(dirs[i]);
    }
    return NULL;
}

static void server_free(pm_http_server *s)
{
    pm_http_auth_destroy(&s->auth);
    free(s->exe);
    free(s->viewer_dir);
    free(s->cert);
    free(s->key);
    free(s);
}

int pm_http_start(const pm_http_settings *settings, pm_http_server **out)
{
    *out = NULL;
    const pm_config *cfg = settings->cfg;
    if (!cfg->http_listen || !*cfg->http_listen)
        return PM_OK;
    struct sockaddr_storage ss;
    if (parse_listen(cfg->http_listen, &ss)) {
        pm_error("http", "[http] listen: \"%s\" is not host:port (e.g. 127.0.0.1:8042)",
                 cfg->http_listen);
        return PM_E_CONFIG;
    }
    pm_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return PM_E_NOMEM;
    s->s = *settings;
    char users[4096], exe[4096];
    if (cfg->http_users && *cfg->http_users)
        snprintf(users, sizeof users, "%s", cfg->http_users);
    else
        snprintf(users, sizeof users, "%s/users", settings->dir);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    s->exe = strdup(exe);
    s->viewer_dir = find_viewer();
    int has_cert = cfg->http_tls_cert && *cfg->http_tls_cert;
    int has_key = cfg->http_tls_key && *cfg->http_tls_key;
    if (has_cert != has_key || (has_cert && (!(s->cert = read_pem(cfg->http_tls_cert)) ||
                                             !(s->key = read_pem(cfg->http_tls_key))))) {
        pm_error("http", "[http] tls_cert and tls_key must both name readable PEM files");
        server_free(s);
        return PM_E_CONFIG;
    }
    s->tls = has_cert;
    if (pm_http_auth_new(users, &s->auth)) {
        server_free(s);
        return PM_E_NOMEM;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                     (s->tls ? MHD_USE_TLS : 0);
    /* TLS 1.2 or later only (BCP 195), as the DICOM edge and the ATNA link. */
    static const char TLS_PRIORITIES[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    struct MHD_OptionItem tls_opts[] = {
        {s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, s->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL}};
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)PM_HTTP_CONNECTIONS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PM_HTTP_PER_IP_MAX,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PM_HTTP_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)PM_HTTP_HEADERS_MAX, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!s->mhd) {
        if (s->tls)
            pm_error("http",
                     "cannot start HTTPS on %s: check that [http] tls_cert and tls_key "
                     "are a matching PEM certificate and key, and the address is free",
                     cfg->http_listen);
        else
            pm_error("http", "cannot listen on %s: %s", cfg->http_listen, strerror(errno));
        server_free(s);
        return PM_E_NET;
    }
    pm_info("http", "web server on %s://%s (viewer %s)", s->tls ? "https" : "http",
            cfg->http_listen, s->viewer_dir ? "installed" : "not installed");
    *out = s;
    return PM_OK;
}

void pm_http_stop(pm_http_server **self_p)
{
    if (!self_p || !*self_p)
        return;
    MHD_stop_daemon((*self_p)->mhd);
    server_free(*self_p);
    *self_p = NULL;
}

struct pm_http_auth *pm_http_server_auth(pm_http_server *self)
{
    return self ? self->auth : NULL;
}
