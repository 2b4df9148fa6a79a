#include "node/cli/cli.h"
#include "crypto/hash.h"
#include "node/cli/commands.h"
#include "proto/error.h"
#include "store/feed.h"
#include "store/views.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int pm_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pacsmesh: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return PM_EXIT_FAIL;
}

int pm_cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pacsmesh: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fprintf(stderr, "usage: pacsmesh %s\n", usage);
    return PM_EXIT_USAGE;
}

/* Which of the options every command takes is name (nlen bytes), if any. */
static void common_option(pm_cli_args *out, const char *name, size_t nlen, const char ***value,
                          int **flag)
{
    if (nlen == 3 && strncmp(name, "dir", 3) == 0)
        *value = &out->dir;
    else if (nlen == 4 && strncmp(name, "json", 4) == 0)
        *flag = &out->json;
    else if (nlen == 4 && strncmp(name, "help", 4) == 0)
        *flag = &out->help;
}

int pm_cli_parse(int argc, char **argv, const pm_cli_opt *opts, pm_cli_args *out)
{
    memset(out, 0, sizeof *out);
    const pm_cli_command *cmd = argc > 0 ? pm_cli_command_find(argv[0]) : NULL;
    const char *usage = out->usage = cmd ? cmd->usage : argc > 0 ? argv[0] : "";
    /* Positional arguments move down to argv[1..]: the slot written is never one not
     * yet read, and option values are kept as pointers to the strings, not slots. */
    out->args = argv + 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            while (++i < argc)
                out->args[out->nargs++] = argv[i];
            break;
        }
        if (strncmp(arg, "--", 2) != 0) {
            out->args[out->nargs++] = argv[i];
            continue;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *inline_value = eq ? eq + 1 : NULL;
        const char **value = NULL;
        int *flag = NULL;
        common_option(out, name, nlen, &value, &flag);
        for (const pm_cli_opt *o = opts; o && o->name && !value && !flag; o++)
            if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0) {
                value = o->value;
                flag = o->flag;
            }
        if (!value && !flag)
            return pm_cli_usage(usage, "unknown option --%.*s", (int)nlen, name);
        if (flag) {
            if (inline_value)
                return pm_cli_usage(usage, "--%.*s takes no value", (int)nlen, name);
            *flag = 1;
        } else if (inline_value) {
            *value = inline_value;
        } else if (i + 1 < argc) {
            *value = argv[++i];
        } else {
            return pm_cli_usage(usage, "--%.*s needs a value", (int)nlen, name);
        }
    }
    if (!out->dir)
        out->dir = getenv("PACSMESH_DIR");
    if (!out->dir || !*out->dir)
        out->dir = "/var/lib/pacsmesh";
    return PM_EXIT_OK;
}

int pm_cli_hoist_globals(int argc, char **argv)
{
    static const char usage[] = "[--dir DIR] [--json] COMMAND [options]";
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "--version") == 0)
            break; /* stands for a command */
        if (strcmp(a, "--dir") == 0) {
            if (i + 1 >= argc)
                return pm_cli_usage(usage, "--dir needs a value");
            i += 2;
        } else if (strncmp(a, "--dir=", 6) == 0 || strcmp(a, "--json") == 0) {
            i++;
        } else {
            return pm_cli_usage(usage, "unknown option %s before the command", a);
        }
    }
    if (i == 1)
        return PM_EXIT_OK;
    if (i >= argc)
        return pm_cli_usage(usage, "options but no command");
    char *cmd = argv[i];
    memmove(argv + 2, argv + 1, (size_t)(i - 1) * sizeof *argv);
    argv[1] = cmd;
    return PM_EXIT_OK;
}

char *pm_node_path(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

int pm_node_open(const char *dir, int what, pm_node *out)
{
    memset(out, 0, sizeof *out);
    out->dir = strdup(dir);
    char *path = NULL;
    int rc = PM_EXIT_OK;
    if (what & PM_NODE_CONFIG) {
        char err[512];
        path = pm_node_path(dir, "node.conf");
        int r = pm_config_load(path, dir, &out->cfg, err, sizeof err);
        if (r == PM_E_IO && access(path, F_OK) != 0)
            rc = pm_cli_fail("no node in %s (run pacsmesh init, or pass --dir)", dir);
        else if (r)
            rc = pm_cli_fail("%s", err);
        free(path);
        path = NULL;
        if (rc)
            goto fail;
    }
    if (what & PM_NODE_IDENTITY) {
        path = pm_node_path(dir, "identity.key");
        if (pm_identity_load(path, &out->id) != PM_OK)
            rc = pm_cli_fail("cannot load the node identity %s", path);
        free(path);
        path = NULL;
        if (rc)
            goto fail;
    }
    if (what & PM_NODE_STORE) {
        path = pm_node_path(dir, "store");
        int r = pm_store_open(path, 0, &out->store);
        if (r)
            rc = pm_cli_fail("cannot open the store %s: %s", path, pm_strerror(r));
        free(path);
        path = NULL;
        if (rc)
            goto fail;
    }
    if ((what & PM_NODE_BLOBS) == PM_NODE_BLOBS) {
        path = pm_node_path(dir, "blobs");
        int r = path ? pm_blobs_open(out->store, path, &out->blobs) : PM_E_NOMEM;
        if (r)
            rc = pm_cli_fail("cannot open the blob store %s: %s", path, pm_strerror(r));
        free(path);
        if (rc)
            goto fail;
    }
    return PM_EXIT_OK;
fail:
    pm_node_close(out);
    return rc;
}

void pm_node_close(pm_node *node)
{
    pm_blobs_close(&node->blobs);
    pm_store_close(&node->store);
    pm_identity_destroy(&node->id);
    pm_config_destroy(&node->cfg);
    free(node->dir);
    node->dir = NULL;
}

typedef struct {
    const char *prefix;
    size_t len;
    uint8_t found[PM_ID_BYTES];
    int matches;
} id_search;

static int match_member(void *ctx, const Pm__MemberView *m)
{
    id_search *s = ctx;
    char hex[PM_ID_HEX];
    pm_hex_encode(m->id.data, PM_ID_BYTES, hex);
    if (strncasecmp(hex, s->prefix, s->len) == 0) {
        memcpy(s->found, m->id.data, PM_ID_BYTES);
        s->matches++;
    }
    return 0;
}

int pm_cli_resolve_id(pm_store *store, const char *text, uint8_t out[PM_ID_BYTES])
{
    size_t len = strlen(text);
    if (len == 2 * PM_ID_BYTES && pm_hex_decode(text, out, PM_ID_BYTES) == PM_OK)
        return PM_EXIT_OK;
    if (len < 8 || len > 2 * PM_ID_BYTES || strspn(text, "0123456789abcdefABCDEF") != len)
        return pm_cli_fail("'%s' is not a node id (64 hex digits, or a unique prefix of at "
                           "least 8)",
                           text);
    id_search s = {text, len, {0}, 0};
    int rc = pm_views_members(store, match_member, &s);
    if (rc)
        return pm_cli_fail("cannot read members: %s", pm_strerror(rc));
    if (s.matches == 0)
        return pm_cli_fail("no member's id starts with %s", text);
    if (s.matches > 1)
        return pm_cli_fail("%s matches %d members; give more digits", text, s.matches);
    memcpy(out, s.found, PM_ID_BYTES);
    return PM_EXIT_OK;
}

const char *pm_cli_time(uint64_t ms, char buf[32])
{
    if (!ms) {
        buf[0] = 0;
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

const char *pm_cli_short_id(const uint8_t *id, char buf[9])
{
    pm_hex_encode(id, 4, buf);
    return buf;
}

void pm_cli_print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text) {
        puts(text);
        free(text);
    }
    json_decref(doc);
}

struct pm_table {
    int ncols;
    char **cells; /* row-major, header row first */
    size_t nrows;
};

pm_table *pm_table_new(int ncols, const char *const *headers)
{
    pm_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    pm_table_add(t, headers);
    return t;
}

void pm_table_add(pm_table *t, const char *const *cells)
{
    char **grown = realloc(t->cells, (t->nrows + 1) * (size_t)t->ncols * sizeof *grown);
    if (!grown)
        return;
    t->cells = grown;
    for (int c = 0; c < t->ncols; c++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = strdup(cells[c] ? cells[c] : "");
    t->nrows++;
}

void pm_table_print(pm_table *t, FILE *out)
{
    size_t width[32] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols && c < 32; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t len = s ? strlen(s) : 0;
            if (len > width[c])
                width[c] = len;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c + 1 == t->ncols)
                fprintf(out, "%s", s ? s : "");
            else
                fprintf(out, "%-*s  ", (int)width[c], s ? s : "");
        }
        fputc('\n', out);
    }
}

void pm_table_destroy(pm_table **t)
{
    if (!t || !*t)
        return;
    for (size_t i = 0; i < (*t)->nrows * (size_t)(*t)->ncols; i++)
        free((*t)->cells[i]);
    free((*t)->cells);
    free(*t);
    *t = NULL;
}
