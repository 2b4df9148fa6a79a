/* What the web server's files share (not an API): the server, one request being
 * answered, and the helpers that answer it. Everything here runs in the connection's
 * own thread. */
#ifndef PM_HTTP_INTERNAL_H
#define PM_HTTP_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdint.h>

#include "node/http/auth.h"
#include "node/http/http.h"
#include "node/http/parse.h"

#define PM_HTTP_BODY_MAX (2u << 20)     /* JSON bodies of the API */
#define PM_HTTP_STOW_MAX (1ull << 30)   /* a STOW-RS body, spooled to a file */
#define PM_HTTP_CONNECTIONS_MAX 64      /* at once, each with its own thread */
#define PM_HTTP_PER_IP_MAX 32           /* at once from one address */
#define PM_HTTP_IDLE_S 30               /* a connection silent this long is closed */
#define PM_HTTP_REQUEST_S 120           /* a request body must arrive within this */
#define PM_HTTP_HEADERS_MAX (32u << 10) /* request line and headers (libmicrohttpd pool) */

struct pm_http_server {
    struct MHD_Daemon *mhd;
    pm_http_settings s;
    pm_http_auth *auth;
    char *exe;        /* this program, for the CLI's own JSON */
    char *viewer_dir; /* OHIF's dist/, or NULL when not installed */
    int tls;
    char *cert, *key; /* PEM text when tls */
};

typedef enum { AUTH_NONE = 0, AUTH_COOKIE, AUTH_BEARER, AUTH_BASIC } auth_kind;

typedef struct {
    pm_http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char pathbuf[PM_HTTP_PATH_MAX + 2];
    char *seg[PM_HTTP_SEGS_MAX];
    int nseg;
    char *body;
    size_t body_len, body_cap;
    int too_big;
    int spool_fd; /* STOW-RS: the body goes to this file (unlinked), or -1 */
    uint64_t spool_len;
    uint64_t started_ms;
    pm_user user; /* valid when auth != AUTH_NONE */
    auth_kind auth;
    char token[PM_HTTP_TOKEN_HEX]; /* the session or bearer token used, if any */
    char ip[64];
} pm_http_req;

/* Answers with body (len bytes, copied) and the given content type. */
enum MHD_Result pm_http_send(pm_http_req *r, unsigned status, const char *ctype, const void *body,
                             size_t len);
/* Answers with a JSON document (consumed). */
enum MHD_Result pm_http_json(pm_http_req *r, unsigned status, json_t *doc);
/* Answers {"error": message} with status. */
enum MHD_Result pm_http_error(pm_http_req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Queues a prepared response, adding the headers every answer carries. */
enum MHD_Result pm_http_queue(pm_http_req *r, unsigned status, struct MHD_Response *resp);

/* A query parameter, header or NULL. */
const char *pm_http_arg(pm_http_req *r, const char *name);
const char *pm_http_header(pm_http_req *r, const char *name);

/* 1 if the request's credentials name a user who may send pixel data (before its
 * body is read: a large upload from nobody is never spooled). Answers nothing. */
int pm_http_peek_user(pm_http_req *r);

/* The route table (router.c): answers the request once its body is complete. */
enum MHD_Result pm_http_route(pm_http_req *r);

/* Handlers. */
enum MHD_Result pm_http_api_login(pm_http_req *r);
enum MHD_Result pm_http_api_logout(pm_http_req *r);
enum MHD_Result pm_http_api_tokens(pm_http_req *r);
enum MHD_Result pm_http_api_me(pm_http_req *r);
enum MHD_Result pm_http_api_read(pm_http_req *r);       /* worklist, studies, status, ... */
enum MHD_Result pm_http_api_write(pm_http_req *r);      /* claim, release, report, verify */
enum MHD_Result pm_http_api_coordinate(pm_http_req *r); /* assign, flag */
enum MHD_Result pm_http_api_audit(pm_http_req *r);
enum MHD_Result pm_http_api_backlog(pm_http_req *r); /* the dashboard's counts */
enum MHD_Result pm_http_dicomweb(pm_http_req *r);
enum MHD_Result pm_http_static(pm_http_req *r); /* /viewer/ and the pages */
/* 1 if the path (one segment) names a file of the viewer's build. */
int pm_http_viewer_asset(pm_http_req *r);

/* Runs this program as `pacsmesh ARGS... --dir DIR` and captures stdout (at most
 * max bytes; *out is the caller's) and the last line of stderr. Returns its exit
 * status, or -1 when it could not be run or outlived timeout_ms (then it is killed). */
int pm_http_run_cli(pm_http_server *s, const char *const *args, size_t max, int timeout_ms,
                    char **out, size_t *outlen, char *err, size_t errlen);

/* One request to the main loop over its mailbox; *reply is the caller's. PM_OK,
 * PM_E_TIMEOUT, PM_E_NET. */
int pm_http_ask_loop(pm_http_server *s, json_t *request, int timeout_ms, json_t **reply);
/* The same over another of the loop's sockets (the admin endpoint). */
int pm_http_ask(pm_http_server *s, const char *endpoint, json_t *request, int timeout_ms,
                json_t **reply);

#endif
