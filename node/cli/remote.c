#include "node/cli/remote.h"
#include "node/cli/cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_BODY_MAX (256u << 20)

int pm_remote_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--node") == 0 || strncmp(argv[i], "--node=", 7) == 0)
            return 1;
    return 0;
}

typedef struct {
    char *data;
    size_t len;
    int too_big;
} buffer;

static size_t take(char *p, size_t size, size_t n, void *ctx)
{
    buffer *b = ctx;
    size_t add = size * n;
    if (b->len + add > REMOTE_BODY_MAX) {
        b->too_big = 1;
        return 0;
    }
    char *g = realloc(b->data, b->len + add + 1);
    if (!g)
        return 0;
    memcpy(g + b->len, p, add);
    b->data = g;
    b->len += add;
    b->data[b->len] = 0;
    return add;
}

/* One request; *status receives the HTTP status (0 if none). The answer is in *out. */
static int request(const char *url, const char *body, buffer *out, long *status, char *err,
                   size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    const char *token = getenv("PACSMESH_TOKEN");
    char auth[160];
    if (token && *token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %.100s", token);
        h = curl_slist_append(h, auth);
    } else if (getenv("PACSMESH_USER")) {
        curl_easy_setopt(c, CURLOPT_USERNAME, getenv("PACSMESH_USER"));
        curl_easy_setopt(c, CURLOPT_PASSWORD,
                         getenv("PACSMESH_PASSWORD") ? getenv("PACSMESH_PASSWORD") : "");
    }
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (getenv("PACSMESH_CA"))
        curl_easy_setopt(c, CURLOPT_CAINFO, getenv("PACSMESH_CA"));
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s",
                 out->too_big ? "the answer is too large"
                 : *cerr      ? cerr
                              : curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

/* Appends "&name=value" (escaped) to the query. */
static void add_param(CURL *esc, char *q, size_t qlen, const char *name, const char *value)
{
    char *v = curl_easy_escape(esc, value, 0);
    size_t o = strlen(q);
    snprintf(q + o, qlen - o, "%c%s=%s", o ? '&' : '?', name, v ? v : "");
    curl_free(v);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc((1u << 20) + 2);
    size_t n = text ? fread(text, 1, (1u << 20) + 1, f) : 0;
    fclose(f);
    if (text)
        text[n] = 0;
    return text;
}

static const char *const listings[] = {"worklist", "studies", "status", "members",
                                       "tat",      "reports", NULL};
static const char *const writes[] = {"claim", "release", "report", "verify", NULL};

static int one_of(const char *s, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Prints the answer the CLI's way: the JSON of a listing, the sentence of a write,
 * or the error on stderr with the exit status it means. */
static int finish(const char *cmd, long status, buffer *b)
{
    json_error_t jerr;
    json_t *doc = b->data ? json_loadb(b->data, b->len, 0, &jerr) : NULL;
    const char *error = json_string_value(json_object_get(doc, "error"));
    int rc = PM_EXIT_OK;
    if (status >= 200 && status < 300) {
        if (one_of(cmd, writes)) {
            const char *note = json_string_value(json_object_get(doc, "note"));
            if (note)
                fprintf(stderr, "pacsmesh: %s\n", note);
            printf("%s\n", json_string_value(json_object_get(doc, "message")));
        } else if (doc) {
            pm_cli_print_json(json_incref(doc));
        } else {
            fwrite(b->data, 1, b->len, stdout);
        }
    } else {
        rc = status == 400 ? PM_EXIT_USAGE : PM_EXIT_FAIL;
        fprintf(stderr, "pacsmesh: %s (HTTP %ld)\n", error ? error : "the node refused", status);
    }
    json_decref(doc);
    return rc;
}

int pm_remote_run(int argc, char **argv)
{
    const char *cmd = argv[0], *node = NULL, *file = NULL, *pos = NULL;
    char query[2048] = "";
    if (!one_of(cmd, listings) && !one_of(cmd, writes))
        return pm_cli_usage("COMMAND --node URL",
                            "%s does not take --node (worklist, studies, "
                            "status, members, tat, reports, claim, release, report, verify do)",
                            cmd);
    CURL *esc = curl_easy_init();
    int rc = PM_EXIT_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--node=", 7) == 0)
            node = a + 7;
        else if (strcmp(a, "--node") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(a, "--json") == 0)
            continue;
        else if (strcmp(a, "--overdue") == 0)
            add_param(esc, query, sizeof query, "overdue", "true");
        else if (strcmp(a, "--reporter") == 0)
            rc = pm_cli_usage("COMMAND --node URL", "with --node the reporter is the signed-in "
                                                    "user's reporter id: leave out --reporter");
        else if (strcmp(a, "--file") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strncmp(a, "--", 2) == 0 && i + 1 < argc)
            add_param(esc, query, sizeof query, a + 2, argv[++i]);
        else if (a[0] != '-' && !pos)
            pos = a;
        else
            rc = pm_cli_usage("COMMAND --node URL", "unexpected argument %s", a);
    }
    if (!rc && (!node || (strncmp(node, "http://", 7) && strncmp(node, "https://", 8))))
        rc = pm_cli_usage("COMMAND --node URL", "--node is http://host:port or https://host:port");
    if (!rc && (one_of(cmd, writes) || strcmp(cmd, "reports") == 0) && !pos)
        rc = pm_cli_usage("COMMAND --node URL", "give the STUDY_UID");
    if (!rc && strcmp(cmd, "report") == 0 && !file)
        rc = pm_cli_usage("COMMAND --node URL", "--file is required");
    char url[4096], err[CURL_ERROR_SIZE + 64] = "";
    json_t *body = NULL;
    if (!rc && one_of(cmd, writes)) {
        char *text = file ? read_file(file) : NULL;
        if (file && !text)
            rc = pm_cli_fail("cannot read %s", file);
        body = json_pack("{s:s, s:s?}", "study_uid", pos, "text", text);
        free(text);
        snprintf(url, sizeof url, "%s/api/%s", node, cmd);
    } else if (!rc) {
        if (pos)
            add_param(esc, query, sizeof query, "study", pos);
        snprintf(url, sizeof url, "%s/api/%s%s", node, cmd, query);
    }
    curl_easy_cleanup(esc);
    if (rc) {
        json_decref(body);
        return rc;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    buffer b = {NULL, 0, 0};
    long status = 0;
    if (request(url, text, &b, &status, err, sizeof err) != 0)
        rc = pm_cli_fail("cannot reach %s: %s", node, err);
    else
        rc = finish(cmd, status, &b);
    free(text);
    free(b.data);
    return rc;
}
