/* Writing node.conf: the commented file `init` writes (every key documented, its
 * default shown), and `config set`, which edits one key of an existing file in place,
 * keeping every other line, and replaces the file atomically. */
#include "node/config/config.h"
#include "node/config/table.h"
#include "node/config/value.h"
#include "proto/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Validates one override of write_default the way a node.conf line would be. */
static int check_override(const char *section, const char *name, const char *value, char *err,
                          size_t errlen)
{
    char why[256];
    pm_config *scratch = pm_config_new_defaults();
    if (!scratch)
        return PM_E_NOMEM;
    int rc =
        pm_config_key_apply(scratch, pm_config_key_find(section, name), value, 0, why, sizeof why);
    pm_config_destroy(&scratch);
    if (rc == PM_E_CONFIG)
        pm_config_errf(err, errlen, "[%s] %s: %s", section, name, why);
    return rc;
}

/* ---------------------------------------------------------------- the file init writes */

/* The default of advertise follows listen, and that of admin the file's directory:
 * show what they will be. Other keys show their table default. */
static const char *shown_default(const pm_config_key *k, const char *path, const char *listen,
                                 char *buf, size_t len)
{
    if (k == pm_config_key_find("node", "advertise")) {
        const char *l = listen ? listen : pm_config_key_find("node", "listen")->def;
        if (strncmp(l, "tcp://0.0.0.0:", 14) == 0)
            snprintf(buf, len, "tcp://127.0.0.1:%s", l + 14);
        else if (strncmp(l, "tcp://*:", 8) == 0)
            snprintf(buf, len, "tcp://127.0.0.1:%s", l + 8);
        else
            snprintf(buf, len, "%s", l);
        return buf;
    }
    if (k == pm_config_key_find("node", "admin")) {
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(buf, len, "ipc://%.*s/admin.sock", (int)(slash - path), path);
        else
            snprintf(buf, len, "ipc://admin.sock");
        return buf;
    }
    return k->def;
}

static void write_key(FILE *f, const pm_config_key *k, const char *override, const char *path,
                      const char *listen)
{
    char buf[PATH_MAX + 32];
    fprintf(f, "# %s\n", k->help);
    if (k->type == K_RULE) {
        fprintf(f, "# Conditions: modality, body_part, description (wildcards * and ?,\n"
                   "# case-insensitive; modality matches any modality of the study;\n"
                   "# quote values with spaces: description=\"CT HEAD*\"). Settings:\n"
                   "# priority, subspecialty, double_read=yes|no, due=<duration>.\n");
        fprintf(f, "# rule = modality=CT body_part=HEAD : priority=urgent "
                   "subspecialty=neuro\n"
                   "# rule = modality=MG : subspecialty=breast double_read=yes\n");
        return;
    }
    if (k->type == K_AI_RULE) {
        fprintf(f, "# Conditions: code=[SCHEME:]VALUE and meaning=PATTERN (a code of an SR\n"
                   "# the study holds), series_description=PATTERN, description=PATTERN.\n"
                   "# Settings: priority, by=AI_PRODUCT, reason=\"TEXT\" (spaces around ':').\n");
        fprintf(f, "# ai_rule = code=SCT:50960005 : priority=immediate by=ai:ich-detector\n"
                   "# ai_rule = series_description=\"AI ICH POSITIVE*\" : priority=immediate "
                   "by=ai:ich-detector\n");
        return;
    }
    const char *shown = shown_default(k, path, listen, buf, sizeof buf);
    if (override)
        fprintf(f, "%s = %s\n", k->name, override);
    else if (k->type == K_TEXT && !k->def)
        fprintf(f, "%s =\n", k->name); /* required: no default to show */
    else if (shown && *shown)
        fprintf(f, "# %s = %s\n", k->name, shown);
    else
        fprintf(f, "# %s =\n", k->name);
}

/* Every section and key, commented, overrides[i] set for the i'th key of the table. */
static void write_template(FILE *f, const char *const *overrides, const char *path,
                           const char *listen)
{
    fprintf(f,
            "# node.conf: configuration of a pacsmesh node, written by `pacsmesh init`.\n"
            "#\n"
            "# Lines starting with # or ; are comments. A key left commented out takes the\n"
            "# default shown. Durations: 500ms, 90s, 15m, 1h, 28d (combine: 1h30m).\n"
            "# Sizes: 1048576, 500MB, 10GiB. Lines are at most %d characters; repeat a\n"
            "# list key (peers, allowed_aes) to add more items. Unknown keys are errors.\n"
            "# Restart `pacsmesh run` after editing.\n",
            PM_CONFIG_LINE_MAX);
    for (size_t s = 0; s < PM_CONFIG_N_SECTIONS; s++) {
        fprintf(f, "\n[%s]\n", pm_config_sections[s]);
        if (strcmp(pm_config_sections[s], PM_CONFIG_DESTINATIONS) == 0) {
            fprintf(f, "# C-MOVE destinations, one per line: AE_TITLE = host:port [tls]\n"
                       "# WORKSTATION1 = 10.0.0.5:104\n"
                       "# REMOTE_PACS = pacs.example:2762 tls\n");
            continue;
        }
        for (size_t i = 0; i < pm_config_n_keys; i++) {
            const pm_config_key *k = &pm_config_keys[i];
            if (strcmp(k->section, pm_config_sections[s]) != 0)
                continue;
            if (k != pm_config_keys && strcmp(k[-1].section, k->section) == 0)
                fputc('\n', f);
            write_key(f, k, overrides[i], path, listen);
        }
    }
}

/* Creates path (never overwriting it) holding text, fsync'ed. */
static int install_new(const char *path, const char *text, size_t textlen, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = errno == EEXIST ? PM_E_EXISTS : PM_E_IO;
        pm_config_errf(err, errlen, "%s: %s", path,
                       rc == PM_E_EXISTS ? "already exists; not overwriting it" : strerror(errno));
        return rc;
    }
    if (write_all(fd, text, textlen) != 0 || fsync(fd) != 0) {
        pm_config_errf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return PM_E_IO;
    }
    close(fd);
    (void)fsync_dir_of(path);
    return PM_OK;
}

int pm_config_write_default(const char *path, const char *name, const char *listen,
                            const char *advertise, int dicom_port, const char *ae_title,
                            const char *admin, char *err, size_t errlen)
{
    char portbuf[16] = "";
    const char *overrides[PM_CONFIG_KEYS_MAX] = {0};
    int rc;
    if (!name) {
        pm_config_errf(err, errlen, "a node name is required");
        return PM_E_INVAL;
    }
    if (dicom_port > 0)
        snprintf(portbuf, sizeof portbuf, "%d", dicom_port);
    const struct {
        const char *section, *name, *value;
    } given[] = {{"node", "name", name},
                 {"node", "listen", listen},
                 {"node", "advertise", advertise},
                 {"node", "admin", admin},
                 {"dicom", "port", dicom_port > 0 ? portbuf : NULL},
                 {"dicom", "ae_title", ae_title}};
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++) {
        if (!given[i].value)
            continue;
        if ((rc = check_override(given[i].section, given[i].name, given[i].value, err, errlen)) !=
            PM_OK)
            return rc;
        overrides[pm_config_key_find(given[i].section, given[i].name) - pm_config_keys] =
            given[i].value;
    }

    char *text = NULL;
    size_t textlen = 0;
    FILE *f = open_memstream(&text, &textlen);
    if (!f)
        return PM_E_NOMEM;
    write_template(f, overrides, path, listen);
    if (fclose(f) != 0) {
        free(text);
        return PM_E_NOMEM;
    }
    /* What init writes must load: check before it reaches the disk. */
    pm_config *check = NULL;
    rc = pm_config_parse(path, text, textlen, NULL, &check, err, errlen);
    pm_config_destroy(&check);
    if (rc == PM_OK)
        rc = install_new(path, text, textlen, err, errlen);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- editing in place */

typedef struct {
    const char *start; /* of the line in the old text */
    size_t len;        /* including its newline, if any */
} span;

/* What a line of node.conf is, as far as editing needs to know. */
enum { L_OTHER, L_SECTION, L_KEY, L_TEMPLATE };

static int classify(const char *line, size_t len, char *name, size_t namelen)
{
    const char *p = line, *end = line + len;
    while (p < end && isspace((unsigned char)*p))
        p++;
    name[0] = '\0';
    if (p == end)
        return L_OTHER;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || (size_t)(close - p - 1) >= namelen)
            return L_OTHER;
        snprintf(name, namelen, "%.*s", (int)(close - p - 1), p + 1);
        return L_SECTION;
    }
    int type = L_KEY;
    if (*p == '#' || *p == ';') {
        /* "# key = value": a commented-out template, as init writes them. */
        type = L_TEMPLATE;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    const char *k = p;
    while (p < end && *p != '=' && *p != ':' && *p != '\n')
        p++;
    if (p == end || *p == '\n')
        return L_OTHER;
    const char *ke = p;
    while (ke > k && isspace((unsigned char)ke[-1]))
        ke--;
    if (ke == k || (size_t)(ke - k) >= namelen)
        return L_OTHER;
    for (const char *c = k; type == L_TEMPLATE && c < ke; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            return L_OTHER;
    snprintf(name, namelen, "%.*s", (int)(ke - k), k);
    return type;
}

/* Checks section.key = value as a load would; *k receives the key's row (NULL for a
 * destination). */
static int check_set(const char *section, const char *key, const char *value,
                     const pm_config_key **k, char *err, size_t errlen)
{
    char why[256], q[PM_CONFIG_QUOTE_MAX];
    *k = NULL;
    if (strchr(value, '\n') || strchr(value, '\r')) {
        pm_config_errf(err, errlen, "[%s] %s: the value must be on one line", section, key);
        return PM_E_CONFIG;
    }
    if (strcmp(section, PM_CONFIG_DESTINATIONS) == 0) {
        pm_dicom_destination d;
        if (pm_config_check_ae(key, why, sizeof why) != PM_OK ||
            pm_config_check_destination(value, &d, why, sizeof why) != PM_OK) {
            pm_config_errf(err, errlen, "[%s] %s: %s", section, key, why);
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    if (!pm_config_section_known(section)) {
        pm_config_errf(err, errlen, "[%s]: unknown section", pm_config_quote(section, q));
        return PM_E_CONFIG;
    }
    if (!(*k = pm_config_key_find(section, key))) {
        pm_config_errf(err, errlen, "[%s] %s: unknown key", section, pm_config_quote(key, q));
        return PM_E_CONFIG;
    }
    return check_override(section, key, value, err, errlen);
}

/* The lines that will hold the key: one per item of a list, else one. *lines is the
 * caller's to free. */
static int new_lines(const char *section, const char *key, const pm_config_key *k,
                     const char *value, char **lines, char *err, size_t errlen)
{
    size_t lineslen = 0;
    FILE *m = open_memstream(lines, &lineslen);
    if (!m)
        return PM_E_NOMEM;
    if (k && (k->type == K_PEERS || k->type == K_AES)) {
        char *copy = strdup(value);
        bool any = false;
        for (char *save = NULL, *it = copy ? strtok_r(copy, ", \t", &save) : NULL; it;
             it = strtok_r(NULL, ", \t", &save), any = true)
            fprintf(m, "%s = %s\n", key, it);
        if (!any)
            fprintf(m, "%s =\n", key);
        free(copy);
    } else {
        fprintf(m, "%s = %s\n", key, value);
    }
    if (fclose(m) != 0) {
        free(*lines);
        *lines = NULL;
        return PM_E_NOMEM;
    }
    for (const char *l = *lines; *l;) {
        const char *nl = strchr(l, '\n');
        if ((size_t)(nl - l) > PM_CONFIG_LINE_MAX) {
            pm_config_errf(err, errlen, "[%s] %s: the line would be longer than %d characters",
                           section, key, PM_CONFIG_LINE_MAX);
            free(*lines);
            *lines = NULL;
            return PM_E_CONFIG;
        }
        l = nl + 1;
    }
    return PM_OK;
}

/* Cuts text into lines, each keeping its newline. *spans is the caller's to free. */
static int split_lines(const char *text, size_t len, span **spans, size_t *nspans)
{
    size_t cap = 64;
    *nspans = 0;
    *spans = malloc(cap * sizeof **spans);
    for (const char *p = text, *end = text + len; *spans && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (*nspans == cap) {
            span *grown = realloc(*spans, cap * 2 * sizeof **spans);
            if (!grown) {
                free(*spans);
                *spans = NULL;
                break;
            }
            *spans = grown;
            cap *= 2;
        }
        (*spans)[(*nspans)++] = (span){p, n};
        p += n;
    }
    return *spans ? PM_OK : PM_E_NOMEM;
}

/* Where the key's lines are in the section: the first (kept, replaced), the later ones
 * (dropped), the template line, the last key line and the section header. */
typedef struct {
    long header, first, templ, last_key;
} placement;

static placement find_place(const span *spans, size_t nspans, const char *section, const char *key,
                            bool *drop)
{
    placement at = {-1, -1, -1, -1};
    char cur[64] = "", name[64];
    for (size_t i = 0; i < nspans; i++) {
        int t = classify(spans[i].start, spans[i].len, name, sizeof name);
        if (t == L_SECTION) {
            snprintf(cur, sizeof cur, "%s", name);
            if (strcmp(cur, section) == 0 && at.header < 0)
                at.header = (long)i;
            continue;
        }
        if (strcmp(cur, section) != 0)
            continue;
        if (t == L_KEY) {
            at.last_key = (long)i;
            if (strcmp(name, key) == 0) {
                if (at.first < 0)
                    at.first = (long)i;
                else
                    drop[i] = true;
            }
        } else if (t == L_TEMPLATE && at.templ < 0 && strcmp(name, key) == 0) {
            at.templ = (long)i;
        }
    }
    return at;
}

/* The old text with the key's lines replaced by lines. *text is the caller's to free. */
static int splice_lines(const char *old, size_t oldlen, const char *section, const char *key,
                        const char *lines, char **text, size_t *textlen)
{
    span *spans;
    size_t nspans;
    if (split_lines(old, oldlen, &spans, &nspans) != PM_OK)
        return PM_E_NOMEM;
    bool *drop = calloc(nspans + 1, sizeof *drop);
    if (!drop) {
        free(spans);
        return PM_E_NOMEM;
    }
    placement at = find_place(spans, nspans, section, key, drop);
    /* Where the new lines go: instead of the first key line, else after these. */
    long after = at.first >= 0      ? -1
                 : at.templ >= 0    ? at.templ
                 : at.last_key >= 0 ? at.last_key
                                    : at.header;
    FILE *o = open_memstream(text, textlen);
    int rc = PM_E_NOMEM;
    if (o) {
        for (size_t i = 0; i < nspans; i++) {
            if (drop[i])
                continue;
            if ((long)i == at.first)
                fputs(lines, o);
            else
                fwrite(spans[i].start, 1, spans[i].len, o);
            if ((long)i == after) {
                if (spans[i].start[spans[i].len - 1] != '\n')
                    fputc('\n', o);
                fputs(lines, o);
            }
        }
        if (at.first < 0 && after < 0) {
            if (oldlen && old[oldlen - 1] != '\n')
                fputc('\n', o);
            fprintf(o, "%s[%s]\n%s", oldlen ? "\n" : "", section, lines);
        }
        if (fclose(o) == 0)
            rc = PM_OK;
        else {
            free(*text);
            *text = NULL;
        }
    }
    free(drop);
    free(spans);
    return rc;
}

/* Replaces path with text atomically, keeping the file's mode. */
static int replace_file(const char *path, const char *text, size_t textlen, char *err,
                        size_t errlen)
{
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        pm_config_errf(err, errlen, "%s: cannot create a temporary file: %s", path,
                       strerror(errno));
        return PM_E_IO;
    }
    if (fchmod(fd, mode) != 0 || write_all(fd, text, textlen) != 0 || fsync(fd) != 0) {
        pm_config_errf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return PM_E_IO;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        pm_config_errf(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
        unlink(tmp);
        return PM_E_IO;
    }
    (void)fsync_dir_of(path);
    return PM_OK;
}

int pm_config_set(const char *path, const char *section, const char *key, const char *value,
                  char *err, size_t errlen)
{
    const pm_config_key *k;
    char *lines = NULL, *old = NULL, *text = NULL;
    size_t oldlen, textlen = 0;
    int rc;
    if (!section || !key || !value)
        return PM_E_INVAL;
    if ((rc = check_set(section, key, value, &k, err, errlen)) != PM_OK ||
        (rc = new_lines(section, key, k, value, &lines, err, errlen)) != PM_OK)
        return rc;
    if ((rc = pm_config_read_file(path, &old, &oldlen, err, errlen)) == PM_OK &&
        (rc = splice_lines(old, oldlen, section, key, lines, &text, &textlen)) == PM_OK)
        rc = replace_file(path, text, textlen, err, errlen);
    free(text);
    free(old);
    free(lines);
    return rc;
}
