/* The route table: which method and path go to which handler, and who may use it.
 * Authentication comes first: a session cookie, a bearer token or Basic credentials;
 * without a user every route but the sign-in answers 401, and a user whose role is
 * not listed for the route gets 403. Writes are refused from another origin, and a
 * write authenticated by the session cookie must carry X-Requested-With (a header a
 * cross-site form cannot send), so the cookie alone never authorises a change. */
#include "node/http/internal.h"
#include "proto/error.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define READERS (PM_ROLE_REPORTER | PM_ROLE_COORDINATOR | PM_ROLE_ADMIN)

typedef struct {
    const char *method; /* NULL: any */
    const char *path;   /* exact, or a prefix when it ends with '/' */
    int roles;          /* 0: no user needed */
    enum MHD_Result (*handler)(pm_http_req *r);
    int page; /* a page: a browser without a user is sent to sign in first (302) */
} route;

static const route routes[] = {
    {"POST", "/api/login", 0, pm_http_api_login},
    {"POST", "/api/logout", PM_ROLE_ANY, pm_http_api_logout},
    {"POST", "/api/tokens", PM_ROLE_ANY, pm_http_api_tokens},
    {"GET", "/api/me", PM_ROLE_ANY, pm_http_api_me},
    {"GET", "/api/worklist", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/studies", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/status", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/members", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/tat", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/reports", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/reporters", PM_ROLE_ANY, pm_http_api_read},
    {"GET", "/api/next", PM_ROLE_REPORTER, pm_http_api_read},
    {"POST", "/api/claim", PM_ROLE_REPORTER, pm_http_api_write},
    {"POST", "/api/release", PM_ROLE_REPORTER, pm_http_api_write},
    {"POST", "/api/report", PM_ROLE_REPORTER, pm_http_api_write},
    {"POST", "/api/verify", PM_ROLE_REPORTER, pm_http_api_write},
    {"POST", "/api/assign", PM_ROLE_COORDINATOR | PM_ROLE_ADMIN, pm_http_api_coordinate},
    {"POST", "/api/flag", PM_ROLE_COORDINATOR | PM_ROLE_ADMIN, pm_http_api_coordinate},
    {"GET", "/api/audit", PM_ROLE_AUDITOR | PM_ROLE_ADMIN, pm_http_api_audit},
    {NULL, "/dicom-web/", READERS, pm_http_dicomweb},
    {"GET", "/viewer/", READERS, pm_http_static, 1},
    {"GET", "/", 0, pm_http_static}, /* the sign-in page */
    /* The workspace pages: the same shell for each (no data in it; it asks /api, and
     * hides what the user's role may not use). */
    {"GET", "/worklist", PM_ROLE_ANY, pm_http_static, 1},
    {"GET", "/dashboard", PM_ROLE_ANY, pm_http_static, 1},
    {"GET", "/audit", PM_ROLE_ANY, pm_http_static, 1},
    /* The pages' scripts and styles: code, no data; the sign-in page needs them. */
    {"GET", "/web/", 0, pm_http_static},
    {"GET", "/api/backlog", PM_ROLE_ANY, pm_http_api_backlog},
};

/* Rebuilds "/a/b/c" from the segments (they were split in place). */
static void path_of(const pm_http_req *r, char *out, size_t len)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < r->nseg && o + 1 < len; i++)
        o += (size_t)snprintf(out + o, len - o, "/%s", r->seg[i]);
}

static int matches(const route *rt, const char *path)
{
    size_t n = strlen(rt->path);
    if (rt->path[n - 1] == '/' && n > 1)
        return strncmp(path, rt->path, n) == 0 ||
               (strlen(path) == n - 1 && strncmp(path, rt->path, n - 1) == 0);
    return strcmp(path, rt->path) == 0;
}

/* Fills r->user from the request's credentials. 0 ok, 1 no credentials, or an HTTP
 * status already answered (negative: MHD result of that answer). */
static int authenticate(pm_http_req *r, enum MHD_Result *answered)
{
    pm_http_server *s = r->srv;
    const char *authz = pm_http_header(r, "Authorization");
    const char *cookie = pm_http_header(r, "Cookie");
    char tok[PM_HTTP_TOKEN_HEX];
    if (authz && strncasecmp(authz, "Bearer ", 7) == 0) {
        if (pm_http_bearer(authz, tok, sizeof tok) || pm_http_auth_token(s->auth, tok, &r->user)) {
            *answered = pm_http_error(r, 401, "the bearer token is unknown or has expired");
            return -1;
        }
        r->auth = AUTH_BEARER;
        snprintf(r->token, sizeof r->token, "%s", tok);
        return 0;
    }
    if (authz && strncasecmp(authz, "Basic ", 6) == 0) {
        char name[PM_USER_NAME_MAX + 2], pw[PM_USER_PASSWORD_MAX + 2];
        int retry = 0, rc = pm_http_basic_decode(authz, name, sizeof name, pw, sizeof pw);
        if (!rc)
            rc = pm_http_auth_password(s->auth, name, pw, r->ip, &r->user, &retry);
        sodium_memzero(pw, sizeof pw);
        if (rc == PM_E_BUSY) {
            *answered = pm_http_error(r, 429, "too many failed sign-ins; try again in %d s", retry);
            return -1;
        }
        if (rc) {
            *answered = pm_http_error(r, 401, "wrong user name or password");
            return -1;
        }
        r->auth = AUTH_BASIC;
        return 0;
    }
    if (authz) {
        *answered = pm_http_error(r, 401, "Authorization must be Basic or Bearer");
        return -1;
    }
    if (cookie && pm_http_cookie(cookie, "pm_session", tok, sizeof tok) == PM_OK) {
        if (pm_http_auth_token(s->auth, tok, &r->user)) {
            *answered = pm_http_error(r, 401, "the session has ended; sign in again");
            return -1;
        }
        r->auth = AUTH_COOKIE;
        snprintf(r->token, sizeof r->token, "%s", tok);
        return 0;
    }
    return 1;
}

int pm_http_peek_user(pm_http_req *r)
{
    const char *authz = pm_http_header(r, "Authorization");
    const char *cookie = pm_http_header(r, "Cookie");
    char tok[PM_HTTP_TOKEN_HEX], name[PM_USER_NAME_MAX + 2], pw[PM_USER_PASSWORD_MAX + 2];
    pm_user u;
    int retry = 0, ok = 0;
    if (authz && pm_http_bearer(authz, tok, sizeof tok) == PM_OK)
        ok = pm_http_auth_token(r->srv->auth, tok, &u) == PM_OK;
    else if (authz && pm_http_basic_decode(authz, name, sizeof name, pw, sizeof pw) == PM_OK)
        ok = pm_http_auth_password(r->srv->auth, name, pw, r->ip, &u, &retry) == PM_OK;
    else if (!authz && cookie && pm_http_cookie(cookie, "pm_session", tok, sizeof tok) == PM_OK)
        ok = pm_http_auth_token(r->srv->auth, tok, &u) == PM_OK;
    sodium_memzero(pw, sizeof pw);
    return ok && (u.role & READERS);
}

/* Writes come from this server's own pages or from scripts, never from another site. */
static const char *cross_site(pm_http_req *r)
{
    const char *origin = pm_http_header(r, "Origin");
    const char *host = pm_http_header(r, "Host");
    if (origin && strcmp(origin, "null") != 0) {
        const char *o = strstr(origin, "://");
        if (!o || !host || strcasecmp(o + 3, host) != 0)
            return "a write from another origin is refused";
    } else if (origin) {
        return "a write from an opaque origin is refused";
    }
    if (r->auth == AUTH_COOKIE && !pm_http_header(r, "X-Requested-With"))
        return "a write signed in by cookie needs the X-Requested-With header";
    return NULL;
}

/* A browser opening a page (the viewer, the worklist ...) without a session goes to
 * the sign-in page first, which comes back to it. */
static enum MHD_Result redirect_to_sign_in(pm_http_req *r, const char *path)
{
    char loc[PM_HTTP_PATH_MAX + 64];
    const char *uids = pm_http_arg(r, "StudyInstanceUIDs");
    snprintf(loc, sizeof loc, "/?next=%s%s%s", path, uids ? "%3FStudyInstanceUIDs%3D" : "",
             uids && strspn(uids, "0123456789.,") == strlen(uids) ? uids : "");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Location", loc);
    return pm_http_queue(r, 302, resp);
}

enum MHD_Result pm_http_route(pm_http_req *r)
{
    char path[PM_HTTP_PATH_MAX + 2];
    path_of(r, path, sizeof path);
    if (!*path)
        snprintf(path, sizeof path, "/");
    const route *rt = NULL;
    int path_known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !rt; i++) {
        if (!matches(&routes[i], path))
            continue;
        path_known = 1;
        if (!routes[i].method || strcmp(routes[i].method, r->method) == 0 ||
            (strcmp(routes[i].method, "GET") == 0 && strcmp(r->method, "HEAD") == 0))
            rt = &routes[i];
    }
    /* "/" is a prefix of everything: a path no other route knows is 404 after sign-in. */
    if (!rt && path_known && strcmp(path, "/") == 0)
        return pm_http_error(r, 405, "%s is not allowed here", r->method);
    enum MHD_Result answered = MHD_NO;
    int a = authenticate(r, &answered);
    if (a < 0)
        return answered;
    /* OHIF's build loads its chunks and codecs from the root ("/1673.bundle...js"). */
    if (!rt && !a && strcmp(r->method, "GET") == 0 && (r->user.role & READERS) &&
        pm_http_viewer_asset(r))
        return pm_http_static(r);
    if (!rt) {
        if (a)
            return pm_http_error(r, 401,
                                 "sign in first (POST /api/login, a bearer token or "
                                 "Basic credentials)");
        return pm_http_error(r, path_known ? 405 : 404, "%s %s: %s", r->method, path,
                             path_known ? "method not allowed" : "no such resource");
    }
    if (rt->roles) {
        if (a && rt->page && strcmp(r->method, "GET") == 0)
            return redirect_to_sign_in(r, path);
        if (a)
            return pm_http_error(r, 401,
                                 "sign in first (POST /api/login, a bearer token or "
                                 "Basic credentials)");
        if (!(rt->roles & (int)r->user.role))
            return pm_http_error(r, 403, "a user with role %s may not use %s %s",
                                 pm_users_role_name(r->user.role), r->method, path);
    }
    const char *why = NULL;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 && (why = cross_site(r)))
        return pm_http_error(r, 403, "%s", why);
    return rt->handler(r);
}
