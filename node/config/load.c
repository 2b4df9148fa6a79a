/* Loading node.conf: libinih splits the file into (section, key, value); it is fed by
 * our own line reader, which counts lines (Debian builds inih without
 * INI_HANDLER_LINENO), strips indentation (so an indented line is a key, never a
 * continuation of the previous value), checks section headers as they go by and
 * refuses lines too long for inih's buffer instead of letting it split them. Each
 * value is checked and stored by the key table; what the file leaves out is derived
 * last. Also the dump of the effective configuration, the inverse of loading. */
#include "node/config/config.h"
#include "node/config/table.h"
#include "node/config/value.h"
#include "proto/error.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* State of one parse, shared by the line reader and the key handler. */
typedef struct {
    pm_config *cfg;
    const char *file; /* name used in messages */
    const char *data;
    size_t len, pos;
    int lineno;                       /* physical line last handed to inih */
    char section[64];                 /* section of that line, as the reader saw it */
    int set_line[PM_CONFIG_KEYS_MAX]; /* where each scalar key was set, to refuse a second time */
    int *dest_line;                   /* same for each destination */
    bool failed;
    int rc;
    int err_line;
    char *err;
    size_t errlen;
} parse_ctx;

static void fail(parse_ctx *c, int rc, const char *section, const char *key, const char *why)
{
    if (c->failed)
        return; /* the first error is the one reported */
    c->failed = true;
    c->rc = rc;
    c->err_line = c->lineno;
    if (rc == PM_E_NOMEM)
        pm_config_errf(c->err, c->errlen, "%s: out of memory", c->file);
    else if (key && !*section)
        pm_config_errf(c->err, c->errlen, "%s:%d: %s: %s", c->file, c->lineno, key, why);
    else if (key)
        pm_config_errf(c->err, c->errlen, "%s:%d: [%s] %s: %s", c->file, c->lineno, section, key,
                       why);
    else
        pm_config_errf(c->err, c->errlen, "%s:%d: [%s]: %s", c->file, c->lineno, section, why);
}

static const char *section_list(void)
{
    return "node, mesh, dicom, dicom.destinations, gossip, cache, metrics, http, worklist, ris";
}

/* inih's fgets-style reader: one physical line per call, without indentation, so that
 * lineno always names the line inih is working on. */
static char *read_line(char *buf, int num, void *stream)
{
    parse_ctx *c = stream;
    if (c->pos >= c->len)
        return NULL;
    const char *p = c->data + c->pos;
    const char *nl = memchr(p, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - p) : c->len - c->pos;
    c->pos += n + (nl ? 1 : 0);
    c->lineno++;
    if (c->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3, n -= 3;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    while (n && isspace((unsigned char)*p))
        p++, n--;
    size_t max = num > 2 ? (size_t)num - 2 : 0;
    if (max > PM_CONFIG_LINE_MAX)
        max = PM_CONFIG_LINE_MAX;
    char why[160];
    if (memchr(p, '\0', n)) {
        fail(c, PM_E_CONFIG, c->section, NULL, "line contains a NUL byte");
        n = 0;
    } else if (n > max) {
        size_t klen = 0;
        while (klen < n && klen < 40 && (isalnum((unsigned char)p[klen]) || p[klen] == '_'))
            klen++;
        char key[41];
        memcpy(key, p, klen);
        key[klen] = '\0';
        snprintf(why, sizeof why,
                 "line is longer than %zu characters; split a list over repeated lines", max);
        fail(c, PM_E_CONFIG, c->section, klen ? key : NULL, why);
        n = 0;
    } else if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        size_t slen = close ? (size_t)(close - p - 1) : 0;
        if (close && slen < sizeof c->section) {
            memcpy(c->section, p + 1, slen);
            c->section[slen] = '\0';
            if (!pm_config_section_known(c->section)) {
                snprintf(why, sizeof why, "unknown section (%s)", section_list());
                fail(c, PM_E_CONFIG, c->section, NULL, why);
            }
        } else if (close) {
            snprintf(c->section, sizeof c->section, "?");
            snprintf(why, sizeof why, "unknown section (%s)", section_list());
            fail(c, PM_E_CONFIG, "...", NULL, why);
        }
    }
    if (max == 0)
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\n';
    buf[n + 1] = '\0';
    return buf;
}

const pm_dicom_destination *pm_config_destination(const pm_config *cfg, const char *ae)
{
    for (size_t i = 0; ae && i < cfg->n_destinations; i++)
        if (strcmp(cfg->destinations[i].destination_ae, ae) == 0)
            return &cfg->destinations[i];
    return NULL;
}

static int add_destination(parse_ctx *c, const char *ae, const char *value)
{
    pm_config *cfg = c->cfg;
    char why[256];
    pm_dicom_destination d;
    memset(&d, 0, sizeof d);
    if (pm_config_check_ae(ae, why, sizeof why) != PM_OK) {
        fail(c, PM_E_CONFIG, PM_CONFIG_DESTINATIONS, ae, why);
        return 0;
    }
    for (size_t i = 0; i < cfg->n_destinations; i++)
        if (strcmp(cfg->destinations[i].destination_ae, ae) == 0) {
            snprintf(why, sizeof why, "set twice (first on line %d)", c->dest_line[i]);
            fail(c, PM_E_CONFIG, PM_CONFIG_DESTINATIONS, ae, why);
            return 0;
        }
    if (pm_config_check_destination(value, &d, why, sizeof why) != PM_OK) {
        fail(c, PM_E_CONFIG, PM_CONFIG_DESTINATIONS, ae, why);
        return 0;
    }
    if (cfg->n_destinations >= PM_CONFIG_LIST_MAX) {
        snprintf(why, sizeof why, "more than %d destinations", PM_CONFIG_LIST_MAX);
        fail(c, PM_E_CONFIG, PM_CONFIG_DESTINATIONS, ae, why);
        return 0;
    }
    snprintf(d.destination_ae, sizeof d.destination_ae, "%s", ae);
    pm_dicom_destination *grown =
        realloc(cfg->destinations, (cfg->n_destinations + 1) * sizeof *grown);
    int *lines = realloc(c->dest_line, (cfg->n_destinations + 1) * sizeof *lines);
    if (grown)
        cfg->destinations = grown;
    if (lines)
        c->dest_line = lines;
    if (!grown || !lines) {
        fail(c, PM_E_NOMEM, PM_CONFIG_DESTINATIONS, ae, "");
        return 0;
    }
    c->dest_line[cfg->n_destinations] = c->lineno;
    cfg->destinations[cfg->n_destinations++] = d;
    return 1;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *c = user;
    char why[320];
    if (c->failed)
        return 0;
    if (!*section) {
        fail(c, PM_E_CONFIG, "", name, "key outside any section (start with [node])");
        return 0;
    }
    if (!pm_config_section_known(section)) {
        snprintf(why, sizeof why, "unknown section (%s)", section_list());
        fail(c, PM_E_CONFIG, section, NULL, why);
        return 0;
    }
    if (strcmp(section, PM_CONFIG_DESTINATIONS) == 0)
        return add_destination(c, name, value);
    const pm_config_key *k = pm_config_key_find(section, name);
    if (!k) {
        /* Name the keys the section does have: the typo is usually obvious then. */
        size_t o = (size_t)snprintf(why, sizeof why, "unknown key (");
        const char *sep = "";
        for (size_t i = 0; i < pm_config_n_keys && o < sizeof why; i++)
            if (strcmp(pm_config_keys[i].section, section) == 0) {
                o += (size_t)snprintf(why + o, sizeof why - o, "%s%s", sep, pm_config_keys[i].name);
                sep = ", ";
            }
        if (o < sizeof why)
            snprintf(why + o, sizeof why - o, ")");
        fail(c, PM_E_CONFIG, section, *name ? name : "(no key)", why);
        return 0;
    }
    size_t idx = (size_t)(k - pm_config_keys);
    if (!pm_config_key_is_list(k->type)) {
        if (c->set_line[idx]) {
            snprintf(why, sizeof why, "set twice (first on line %d)", c->set_line[idx]);
            fail(c, PM_E_CONFIG, section, name, why);
            return 0;
        }
        c->set_line[idx] = c->lineno;
    }
    int rc = pm_config_key_apply(c->cfg, k, value, c->lineno, why, sizeof why);
    if (rc != PM_OK) {
        fail(c, rc, section, name, why);
        return 0;
    }
    return 1;
}

/* The line'th line of data, trimmed, for a syntax error message. */
static void line_text(const char *data, size_t len, int line, char *out, size_t outlen)
{
    const char *p = data, *end = data + len;
    for (int i = 1; i < line && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    while (n && isspace((unsigned char)*p))
        p++, n--;
    while (n && isspace((unsigned char)p[n - 1]))
        n--;
    char tmp[96];
    if (n > sizeof tmp - 1)
        n = sizeof tmp - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char q[PM_CONFIG_QUOTE_MAX];
    snprintf(out, outlen, "%s", pm_config_quote(tmp, q));
}

/* [dicom] report_destination names a destination of the file (in any order). */
static int check_report_destination(parse_ctx *c)
{
    const pm_config *cfg = c->cfg;
    if (!cfg->report_destination || !*cfg->report_destination ||
        pm_config_destination(cfg, cfg->report_destination))
        return PM_OK;
    const pm_config_key *k = pm_config_key_find("dicom", "report_destination");
    pm_config_errf(c->err, c->errlen,
                   "%s:%d: [dicom] report_destination: %s is not an AE of [%s] (add a line "
                   "%s = host:port there)",
                   c->file, c->set_line[k - pm_config_keys], cfg->report_destination,
                   PM_CONFIG_DESTINATIONS, cfg->report_destination);
    return PM_E_CONFIG;
}

/* Fills what the file left to be derived from other values. */
static int derive(pm_config *cfg, const char *file, const char *node_dir, char *err, size_t errlen)
{
    char why[256];
    if (!cfg->name) {
        pm_config_errf(err, errlen, "%s: [node] name: missing (every node needs a name)", file);
        return PM_E_CONFIG;
    }
    if (!cfg->advertise) {
        /* Peers cannot connect to a wildcard: substitute loopback, fine for one host. */
        const char *l = cfg->listen;
        char adv[PM_CONFIG_ENDPOINT_MAX + 16];
        if (strncmp(l, "tcp://*:", 8) == 0)
            snprintf(adv, sizeof adv, "tcp://127.0.0.1:%s", l + 8);
        else if (strncmp(l, "tcp://0.0.0.0:", 14) == 0)
            snprintf(adv, sizeof adv, "tcp://127.0.0.1:%s", l + 14);
        else if (strncmp(l, "tcp://[::]:", 11) == 0)
            snprintf(adv, sizeof adv, "tcp://[::1]:%s", l + 11);
        else
            snprintf(adv, sizeof adv, "%s", l);
        if (pm_config_check_endpoint(adv, false, why, sizeof why) != PM_OK) {
            pm_config_errf(err, errlen, "%s: [node] advertise: cannot be derived from listen: %s",
                           file, why);
            return PM_E_CONFIG;
        }
        if (!(cfg->advertise = strdup(adv)))
            return PM_E_NOMEM;
    }
    if (!cfg->admin) {
        char dir[PATH_MAX], abs[PATH_MAX], ep[PATH_MAX + 32];
        if (node_dir) {
            snprintf(dir, sizeof dir, "%s", node_dir);
        } else {
            const char *slash = strrchr(file, '/');
            if (!slash)
                snprintf(dir, sizeof dir, ".");
            else if (slash == file)
                snprintf(dir, sizeof dir, "/");
            else
                snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
        }
        /* The daemon and the CLI must agree whatever their working directories. */
        if (dir[0] != '/' && realpath(dir, abs))
            snprintf(dir, sizeof dir, "%s", abs);
        size_t dl = strlen(dir);
        while (dl > 1 && dir[dl - 1] == '/')
            dir[--dl] = '\0';
        snprintf(ep, sizeof ep, "ipc://%s%sadmin.sock", dir, dl && dir[dl - 1] == '/' ? "" : "/");
        if (pm_config_check_endpoint(ep, true, why, sizeof why) != PM_OK) {
            pm_config_errf(err, errlen, "%s: [node] admin: the default %s; set admin explicitly",
                           file, why);
            return PM_E_CONFIG;
        }
        if (!(cfg->admin = strdup(ep)))
            return PM_E_NOMEM;
    }
    return PM_OK;
}

int pm_config_parse(const char *name, const char *data, size_t len, const char *node_dir,
                    pm_config **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (len > PM_CONFIG_FILE_MAX) {
        pm_config_errf(err, errlen, "%s: larger than %d bytes", name, PM_CONFIG_FILE_MAX);
        return PM_E_CONFIG;
    }
    parse_ctx c;
    memset(&c, 0, sizeof c);
    c.file = name;
    c.data = data;
    c.len = len;
    c.err = err;
    c.errlen = errlen;
    if (!(c.cfg = pm_config_new_defaults()) || !(c.cfg->path = strdup(name))) {
        pm_config_destroy(&c.cfg);
        pm_config_errf(err, errlen, "%s: out of memory", name);
        return PM_E_NOMEM;
    }
    int line = ini_parse_stream(read_line, &c, on_key, &c);
    int rc = PM_OK;
    if (line == -2 && !c.failed) {
        pm_config_errf(err, errlen, "%s: out of memory", name);
        rc = PM_E_NOMEM;
    } else if (line > 0 && (!c.failed || line < c.err_line)) {
        char text[100];
        line_text(data, len, line, text, sizeof text);
        pm_config_errf(err, errlen,
                       "%s:%d: syntax error: %s is not `key = value`, `[section]` or a comment",
                       name, line, text);
        rc = PM_E_CONFIG;
    } else if (c.failed) {
        rc = c.rc;
    } else if ((rc = check_report_destination(&c)) == PM_OK) {
        rc = derive(c.cfg, name, node_dir, err, errlen);
    }
    free(c.dest_line);
    if (rc != PM_OK) {
        pm_config_destroy(&c.cfg);
        return rc;
    }
    *out = c.cfg;
    return PM_OK;
}

/* Reads a whole file of at most PM_CONFIG_FILE_MAX bytes. */
int pm_config_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pm_config_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return PM_E_IO;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = PM_OK;
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
        if (n > PM_CONFIG_FILE_MAX) {
            pm_config_errf(err, errlen, "%s: larger than %d bytes", path, PM_CONFIG_FILE_MAX);
            rc = PM_E_CONFIG;
            break;
        }
        if (n == cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                free(buf);
            buf = grown;
            cap *= 2;
        }
    }
    if (!buf) {
        pm_config_errf(err, errlen, "%s: out of memory", path);
        rc = PM_E_NOMEM;
    } else if (rc == PM_OK && ferror(f)) {
        pm_config_errf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = PM_E_IO;
    }
    fclose(f);
    if (rc != PM_OK) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return PM_OK;
}

int pm_config_load(const char *path, const char *node_dir, pm_config **out, char *err,
                   size_t errlen)
{
    char *data;
    size_t len;
    *out = NULL;
    int rc = pm_config_read_file(path, &data, &len, err, errlen);
    if (rc != PM_OK)
        return rc;
    rc = pm_config_parse(path, data, len, node_dir, out, err, errlen);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- dump */

/* "key = value", or "key=value" when only that fits in a line or when the value starts
 * with ';' (after a space, inih would take it for a comment). */
static void put_line(FILE *out, const char *key, const char *value)
{
    if (strlen(key) + 3 + strlen(value) <= PM_CONFIG_LINE_MAX && value[0] != ';')
        fprintf(out, "%s = %s\n", key, value);
    else
        fprintf(out, "%s=%s\n", key, value);
}

void pm_config_dump(const pm_config *cfg, FILE *out)
{
    char buf[PM_CONFIG_LINE_MAX + 1];
    fprintf(out, "# effective configuration read from %s\n", cfg->path ? cfg->path : "(none)");
    for (size_t s = 0; s < PM_CONFIG_N_SECTIONS; s++) {
        fprintf(out, "\n[%s]\n", pm_config_sections[s]);
        if (strcmp(pm_config_sections[s], PM_CONFIG_DESTINATIONS) == 0) {
            for (size_t i = 0; i < cfg->n_destinations; i++) {
                const pm_dicom_destination *d = &cfg->destinations[i];
                snprintf(buf, sizeof buf, strchr(d->host, ':') ? "[%s]:%d%s" : "%s:%d%s", d->host,
                         d->port, d->tls ? " tls" : "");
                put_line(out, d->destination_ae, buf);
            }
            continue;
        }
        for (size_t i = 0; i < pm_config_n_keys; i++) {
            const pm_config_key *k = &pm_config_keys[i];
            if (strcmp(k->section, pm_config_sections[s]) != 0)
                continue;
            if (k->type == K_PEERS || k->type == K_AES) {
                char *const *list = *(char **const *)((const char *)cfg + k->offset);
                size_t n = *(const size_t *)((const char *)cfg + k->count_offset);
                if (n == 0)
                    put_line(out, k->name, "");
                for (size_t j = 0; j < n; j++)
                    put_line(out, k->name, list[j]);
            } else if (k->type == K_RULE) {
                for (size_t j = 0; j < cfg->n_rules; j++)
                    put_line(out, k->name, cfg->rules[j].conditions_text);
            } else if (k->type == K_AI_RULE) {
                for (size_t j = 0; j < cfg->n_ai_rules; j++)
                    put_line(out, k->name, cfg->ai_rules[j].text);
            } else {
                pm_config_key_format(cfg, k, buf, sizeof buf);
                put_line(out, k->name, buf);
            }
        }
    }
}
