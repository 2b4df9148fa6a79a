/* /api: sign-in, tokens, and the REST API. Reads answer with exactly the JSON the CLI
 * prints with --json, by running the CLI (one implementation of each listing); writes
 * are handed to the main loop (pm_http_answer_write) with the reporter id of the
 * signed-in user, never one from the request. */
#include "node/http/internal.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_OUT_MAX (256u << 20)
#define CLI_TIMEOUT_MS 60000

static json_t *body_json(pm_http_req *r, const char **why)
{
    const char *ct = pm_http_header(r, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
        *why = "the body must be JSON (Content-Type: application/json)";
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = r->body ? json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        *why = "the body is not a JSON object";
        return NULL;
    }
    return doc;
}

static json_t *user_json(const pm_user *u)
{
    return json_pack("{s:s, s:s, s:s?}", "user", u->name, "role", pm_users_role_name(u->role),
                     "reporter", *u->reporter ? u->reporter : NULL);
}

enum MHD_Result pm_http_api_login(pm_http_req *r)
{
    const char *why = NULL;
    const char *origin = pm_http_header(r, "Origin"), *host = pm_http_header(r, "Host");
    if (origin && (!host || !strstr(origin, "://") || strcasecmp(strstr(origin, "://") + 3, host)))
        return pm_http_error(r, 403, "a sign-in from another origin is refused");
    json_t *doc = body_json(r, &why);
    if (!doc)
        return pm_http_error(r, strstr(why, "Content-Type") ? 415 : 400, "%s", why);
    const char *name = json_string_value(json_object_get(doc, "user"));
    const char *pw = json_string_value(json_object_get(doc, "password"));
    if (!name || !pw) {
        json_decref(doc);
        return pm_http_error(r, 400, "give {\"user\": NAME, \"password\": PASSWORD}");
    }
    pm_user u;
    int retry = 0;
    int rc = pm_http_auth_password(r->srv->auth, name, pw, r->ip, &u, &retry);
    json_decref(doc);
    sodium_memzero(r->body, r->body_len);
    if (rc == PM_E_BUSY)
        return pm_http_error(r, 429, "too many failed sign-ins; try again in %d s", retry);
    if (rc == PM_E_CONFIG)
        return pm_http_error(r, 500, "the users file cannot be read");
    if (rc)
        return pm_http_error(r, 401, "wrong user name or password");
    char tok[PM_HTTP_TOKEN_HEX], cookie[256];
    if (pm_http_auth_issue(r->srv->auth, &u, PM_HTTP_SESSION_S, tok))
        return pm_http_error(r, 500, "out of memory");
    snprintf(cookie, sizeof cookie,
             "pm_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", tok,
             PM_HTTP_SESSION_S, r->srv->tls ? "; Secure" : "");
    json_t *who = user_json(&u);
    char *text = json_dumps(who, JSON_COMPACT);
    json_decref(who);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Set-Cookie", cookie);
    pm_info("http", "user %s signed in from %s", u.name, r->ip);
    return pm_http_queue(r, 200, resp);
}

enum MHD_Result pm_http_api_logout(pm_http_req *r)
{
    if (*r->token)
        pm_http_auth_revoke(r->srv->auth, r->token);
    struct MHD_Response *resp = MHD_create_response_from_buffer(2, "{}", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Set-Cookie",
                            "pm_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    return pm_http_queue(r, 200, resp);
}

enum MHD_Result pm_http_api_tokens(pm_http_req *r)
{
    json_int_t ttl = 24 * 3600;
    if (r->body_len) {
        const char *why = NULL;
        json_t *doc = body_json(r, &why);
        if (!doc)
            return pm_http_error(r, strstr(why, "Content-Type") ? 415 : 400, "%s", why);
        json_t *e = json_object_get(doc, "expires_in");
        if (e && !json_is_integer(e)) {
            json_decref(doc);
            return pm_http_error(r, 400, "expires_in is a number of seconds");
        }
        if (e)
            ttl = json_integer_value(e);
        json_decref(doc);
    }
    if (ttl < 1 || ttl > PM_HTTP_TOKEN_MAX_S)
        return pm_http_error(r, 400, "expires_in must be 1..%d seconds", PM_HTTP_TOKEN_MAX_S);
    char tok[PM_HTTP_TOKEN_HEX];
    if (pm_http_auth_issue(r->srv->auth, &r->user, (int)ttl, tok))
        return pm_http_error(r, 500, "out of memory");
    json_t *doc = user_json(&r->user);
    json_object_set_new(doc, "token", json_string(tok));
    json_object_set_new(doc, "expires_in", json_integer(ttl));
    return pm_http_json(r, 201, doc);
}

enum MHD_Result pm_http_api_me(pm_http_req *r)
{
    return pm_http_json(r, 200, user_json(&r->user));
}

/* The query parameters each listing accepts, as the CLI's options. */
typedef struct {
    const char *endpoint, *command;
    const char *params[8];  /* query name = CLI option name; NULL-terminated */
    const char *flags[2];   /* parameters that are flags (value true/1/yes) */
    const char *positional; /* a parameter given as the command's argument */
    const char *verb;       /* a fixed first argument ("list"), or NULL */
    int as_reporter;        /* --reporter <the signed-in user's reporter id> */
} listing;

static const listing listings[] = {
    {"worklist",
     "worklist",
     {"state", "site", "subspecialty", "priority", "limit", "offset", NULL},
     {"overdue", "mine"},
     NULL},
    {"studies",
     "studies",
     {"patient-id", "name", "accession", "modality", "site", "since", NULL},
     {NULL, NULL},
     NULL},
    {"status", "status", {NULL}, {NULL, NULL}, NULL},
    {"members", "members", {NULL}, {NULL, NULL}, NULL},
    {"tat", "tat", {"site", "from", "to", "by", NULL}, {NULL, NULL}, NULL},
    {"reports", "reports", {NULL}, {NULL, NULL}, "study"},
    {"reporters", "reporter", {NULL}, {NULL, NULL}, NULL, "list", 0},
    {"next", "next", {NULL}, {NULL, NULL}, NULL, NULL, 1},
};

static int value_ok(const char *v)
{
    if (!v || strlen(v) > 256 || v[0] == '-')
        return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

typedef struct {
    const listing *l;
    const char *bad;
} arg_check;

static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    (void)value;
    arg_check *c = cls;
    for (int i = 0; c->l->params[i]; i++)
        if (strcmp(key, c->l->params[i]) == 0)
            return MHD_YES;
    if ((c->l->flags[0] && strcmp(key, c->l->flags[0]) == 0) ||
        (c->l->flags[1] && strcmp(key, c->l->flags[1]) == 0) ||
        (c->l->positional && strcmp(key, c->l->positional) == 0))
        return MHD_YES;
    c->bad = key;
    return MHD_NO;
}

/* Runs the CLI and answers with its JSON. */
static enum MHD_Result answer_cli(pm_http_req *r, const char *const *args)
{
    char *out = NULL, err[512] = "";
    size_t len = 0;
    int st =
        pm_http_run_cli(r->srv, args, CLI_OUT_MAX, CLI_TIMEOUT_MS, &out, &len, err, sizeof err);
    enum MHD_Result res;
    if (st == 0)
        res = pm_http_send(r, 200, "application/json", out, len);
    else if (st == 2)
        res = pm_http_error(r, 400, "%s", *err ? err : "bad request");
    else if (st == 1 && strstr(err, "unknown study"))
        res = pm_http_error(r, 404, "%s", err);
    else if (st == 1 && strcmp(args[0], "next") == 0)
        res = pm_http_error(r, 404, "%s", *err ? err : "nothing for you to take now");
    else
        res = pm_http_error(r, 500, "%s", *err ? err : "the listing failed");
    free(out);
    return res;
}

enum MHD_Result pm_http_api_read(pm_http_req *r)
{
    const char *name = r->seg[1];
    const listing *l = NULL;
    for (size_t i = 0; i < sizeof listings / sizeof listings[0]; i++)
        if (strcmp(listings[i].endpoint, name) == 0)
            l = &listings[i];
    if (!l)
        return pm_http_error(r, 404, "no such listing");
    arg_check c = {l, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, &c);
    if (c.bad)
        return pm_http_error(r, 400, "/api/%s takes no parameter '%.64s'", name, c.bad);
    const char *args[32];
    char opt[8][40];
    int n = 0;
    args[n++] = l->command;
    if (l->verb)
        args[n++] = l->verb;
    if (l->as_reporter) {
        if (!*r->user.reporter)
            return pm_http_error(r, 403, "user %s is bound to no reporter id", r->user.name);
        args[n++] = "--reporter";
        args[n++] = r->user.reporter;
    }
    if (l->positional) {
        const char *v = pm_http_arg(r, l->positional);
        if (!value_ok(v))
            return pm_http_error(r, 400, "/api/%s needs ?%s=", name, l->positional);
        args[n++] = v;
    }
    for (int i = 0; l->params[i]; i++) {
        const char *v = pm_http_arg(r, l->params[i]);
        if (!v)
            continue;
        if (!value_ok(v))
            return pm_http_error(r, 400, "%s: not a value", l->params[i]);
        snprintf(opt[i], sizeof opt[i], "--%s", l->params[i]);
        args[n++] = opt[i];
        args[n++] = v;
    }
    const char *flag = l->flags[0] ? pm_http_arg(r, l->flags[0]) : NULL;
    if (flag && (strcmp(flag, "true") == 0 || strcmp(flag, "1") == 0 || strcmp(flag, "yes") == 0))
        args[n++] = "--overdue";
    else if (flag && strcmp(flag, "false") && strcmp(flag, "0") && strcmp(flag, "no"))
        return pm_http_error(r, 400, "%s is true or false", l->flags[0]);
    /* mine=true: the items the signed-in reporter holds. */
    const char *mine = l->flags[1] ? pm_http_arg(r, l->flags[1]) : NULL;
    if (mine && (strcmp(mine, "true") == 0 || strcmp(mine, "1") == 0)) {
        if (!*r->user.reporter)
            return pm_http_error(r, 403, "user %s is bound to no reporter id", r->user.name);
        args[n++] = "--claimed-by";
        args[n++] = r->user.reporter;
    } else if (mine && strcmp(mine, "false") && strcmp(mine, "0")) {
        return pm_http_error(r, 400, "%s is true or false", l->flags[1]);
    }
    args[n++] = "--json";
    args[n] = NULL;
    return answer_cli(r, args);
}

static int add_study(void *ctx, const Pm__StudyView *s)
{
    if (s->study)
        json_object_set_new(ctx, s->study->study_instance_uid, json_true());
    return 0;
}

/* {"UID": true} for every study of the patient. */
static json_t *patient_studies(pm_http_server *s, const char *patient)
{
    json_t *set = json_object();
    pm_views_studies(s->s.store, NULL, patient, add_study, set);
    return set;
}

/* Appends to into the events `audit log` lists with args (ending in --json): PM_OK,
 * else the CLI's exit status (2: a usage error) with why in err. */
static int audit_events(pm_http_req *r, const char *const *args, json_t *into, char *err,
                        size_t errlen)
{
    char *out = NULL;
    size_t len = 0;
    int st = pm_http_run_cli(r->srv, args, CLI_OUT_MAX, CLI_TIMEOUT_MS, &out, &len, err, errlen);
    json_error_t jerr;
    json_t *events = st == 0 ? json_loadb(out, len, 0, &jerr) : NULL;
    free(out);
    if (!json_is_array(events) || json_array_extend(into, events) != 0)
        st = st ? st : 1;
    json_decref(events);
    return st;
}

/* audit_events for the events of args (n of them, with room for three more) that name
 * reporter, through the naming index (`audit log --reporter`). */
static int audit_naming(pm_http_req *r, const char **args, int n, const char *reporter,
                        json_t *into, char *err, size_t errlen)
{
    if (strlen(reporter) > 64)
        return PM_OK; /* longer than any reporter id: no event names it */
    args[n] = "--reporter";
    args[n + 1] = reporter;
    args[n + 2] = NULL;
    int st = audit_events(r, args, into, err, errlen);
    args[n] = NULL;
    return st;
}

/* The log's total order (lamport, origin, seq), fork evidence last, as `audit log`
 * lists it. */
static int in_log_order(const void *x, const void *y)
{
    json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    int fa = json_is_true(json_object_get(a, "fork")),
        fb = json_is_true(json_object_get(b, "fork"));
    json_int_t la = json_integer_value(json_object_get(a, "lamport")),
               lb = json_integer_value(json_object_get(b, "lamport"));
    const char *oa = json_string_value(json_object_get(a, "origin")),
               *ob = json_string_value(json_object_get(b, "origin"));
    int by_origin = strcmp(oa ? oa : "", ob ? ob : "");
    json_int_t sa = json_integer_value(json_object_get(a, "seq")),
               sb = json_integer_value(json_object_get(b, "seq"));
    return fa != fb    ? fa - fb
           : la != lb  ? (la > lb) - (la < lb)
           : by_origin ? by_origin
                       : (sa > sb) - (sa < sb);
}

/* events (taken), sorted into the log's order; NULL when out of memory. */
static json_t *sorted_in_log_order(json_t *events)
{
    size_t n = json_array_size(events);
    json_t **all = malloc((n + 1) * sizeof *all), *sorted = all ? json_array() : NULL;
    for (size_t i = 0; sorted && i < n; i++)
        all[i] = json_array_get(events, i);
    if (sorted)
        qsort(all, n, sizeof *all, in_log_order);
    for (size_t i = 0; sorted && i < n; i++)
        json_array_append(sorted, all[i]);
    free(all);
    json_decref(events);
    return sorted;
}

enum MHD_Result pm_http_api_audit(pm_http_req *r)
{
    const char *study = pm_http_arg(r, "study"), *patient = pm_http_arg(r, "patient");
    const char *user = pm_http_arg(r, "user"), *origin = pm_http_arg(r, "origin");
    if ((study && !value_ok(study)) || (patient && !value_ok(patient)) ||
        (user && !value_ok(user)) || (origin && !value_ok(origin)))
        return pm_http_error(r, 400, "study, patient, user and origin are plain values");
    const char *args[14];
    int n = 0;
    args[n++] = "audit";
    args[n++] = "log";
    if (study) {
        args[n++] = "--study";
        args[n++] = study;
    }
    if (patient && !study) { /* the patient index, then each study's events */
        args[n++] = "--patient";
        args[n++] = patient;
    }
    if (origin) {
        args[n++] = "--origin";
        args[n++] = origin;
    }
    args[n++] = "--json";
    args[n] = NULL;
    if (!user && !(patient && study))
        return answer_cli(r, args);
    /* user=: the events naming the user, and those naming the reporter id bound to
     * them, each through the naming index (`audit log --reporter`), merged into the
     * log's order. patient= with study= keeps the study's events if it is the
     * patient's. */
    char bound[PM_USER_NAME_MAX + 1] = "", err[512] = "";
    pm_user who;
    if (user && pm_http_auth_lookup(r->srv->auth, user, &who) == PM_OK)
        snprintf(bound, sizeof bound, "%s", who.reporter);
    json_t *all = json_array();
    int st = user ? audit_naming(r, args, n, user, all, err, sizeof err)
                  : audit_events(r, args, all, err, sizeof err);
    if (!st && user && *bound && strcmp(bound, user) != 0 &&
        !(st = audit_naming(r, args, n, bound, all, err, sizeof err)))
        all = sorted_in_log_order(all);
    if (st || !all) {
        json_decref(all);
        return st == 2 ? pm_http_error(r, 400, "%s", *err ? err : "bad request")
                       : pm_http_error(r, 500, "%s", *err ? err : "the audit log cannot be read");
    }
    if (!patient || !study)
        return pm_http_json(r, 200, all);
    json_t *studies = patient_studies(r->srv, patient), *kept = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        const char *uid = json_string_value(json_object_get(e, "study_uid"));
        if (uid && json_object_get(studies, uid))
            json_array_append(kept, e);
    }
    json_decref(all);
    json_decref(studies);
    return pm_http_json(r, 200, kept);
}

/* The main loop's answer to a write, as HTTP: 200, or the refusal's status. */
static enum MHD_Result answer_of_loop(pm_http_req *r, json_t *reply)
{
    json_int_t code = json_integer_value(json_object_get(reply, "code"));
    unsigned status = !json_object_get(reply, "error") ? 200
                      : code == PM_E_NOTFOUND          ? 404
                      : code > 0                       ? 409 /* a pm_wl_verdict: the rules refuse */
                      : code == PM_E_INVAL             ? 400
                      : code == PM_E_MESH              ? 503
                                                       : 500;
    json_object_del(reply, "code");
    return pm_http_json(r, status, reply);
}

enum MHD_Result pm_http_api_write(pm_http_req *r)
{
    const char *what = r->seg[1];
    if (!*r->user.reporter)
        return pm_http_error(r, 403, "user %s is bound to no reporter id", r->user.name);
    const char *why = NULL;
    json_t *doc = body_json(r, &why);
    if (!doc)
        return pm_http_error(r, strstr(why, "Content-Type") ? 415 : 400, "%s", why);
    const char *uid = json_string_value(json_object_get(doc, "study_uid"));
    const char *text = json_string_value(json_object_get(doc, "text"));
    if (json_object_get(doc, "reporter")) {
        json_decref(doc);
        return pm_http_error(r, 400, "the reporter is the signed-in user; give no \"reporter\"");
    }
    if (!uid || !value_ok(uid) || strlen(uid) > 64) {
        json_decref(doc);
        return pm_http_error(r, 400, "give \"study_uid\"");
    }
    if (strcmp(what, "report") == 0 && !text) {
        json_decref(doc);
        return pm_http_error(r, 400, "give the report's \"text\"");
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "http-%s", what);
    json_t *req = json_pack("{s:s, s:s, s:s, s:s?, s:b}", "cmd", cmd, "study", uid, "reporter",
                            r->user.reporter, "text", strcmp(what, "report") == 0 ? text : NULL,
                            "addendum", json_is_true(json_object_get(doc, "addendum")));
    json_decref(doc);
    json_t *reply = NULL;
    int rc = req ? pm_http_ask_loop(r->srv, req, 30000, &reply) : PM_E_NOMEM;
    json_decref(req);
    if (rc) {
        json_decref(reply);
        return pm_http_error(r, 503, "the node did not answer: %s", pm_strerror(rc));
    }
    return answer_of_loop(r, reply);
}

/* POST /api/assign {study_uid, reporter} and /api/flag {study_uid, priority, reason}:
 * a coordinator's levelling; the coordinator named in the log is the signed-in user,
 * never a field of the body. */
enum MHD_Result pm_http_api_coordinate(pm_http_req *r)
{
    const char *what = r->seg[1], *why = NULL;
    int assign = strcmp(what, "assign") == 0;
    json_t *doc = body_json(r, &why);
    if (!doc)
        return pm_http_error(r, strstr(why, "Content-Type") ? 415 : 400, "%s", why);
    const char *uid = json_string_value(json_object_get(doc, "study_uid"));
    const char *reporter = json_string_value(json_object_get(doc, "reporter"));
    const char *priority = json_string_value(json_object_get(doc, "priority"));
    const char *reason = json_string_value(json_object_get(doc, "reason"));
    const char *bad = json_object_get(doc, "by") ? "give no \"by\": it is the signed-in user"
                      : !uid || !value_ok(uid) || strlen(uid) > 64 ? "give \"study_uid\""
                      : assign && !reporter               ? "give the \"reporter\" to assign to"
                      : !assign && (!priority || !reason) ? "give \"priority\" and \"reason\""
                                                          : NULL;
    if (bad) {
        json_decref(doc);
        return pm_http_error(r, 400, "%s", bad);
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "http-%s", what);
    json_t *req =
        json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?}", "cmd", cmd, "study", uid, "by", r->user.name,
                  "reporter", reporter, "priority", priority, "reason", reason);
    json_decref(doc);
    json_t *reply = NULL;
    int rc = req ? pm_http_ask_loop(r->srv, req, 30000, &reply) : PM_E_NOMEM;
    json_decref(req);
    if (rc) {
        json_decref(reply);
        return pm_http_error(r, 503, "the node did not answer: %s", pm_strerror(rc));
    }
    return answer_of_loop(r, reply);
}
