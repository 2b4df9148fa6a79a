/* node.conf: one table of keys drives parsing, validation, defaults, the dump and the
 * file `init` writes. libinih splits the file into (section, key, value); it is fed by
 * our own line reader, which counts lines (Debian builds inih without
 * INI_HANDLER_LINENO), strips indentation (so an indented line is a key, never a
 * continuation of the previous value), checks section headers as they go by and
 * refuses lines too long for inih's buffer instead of letting it split them. */
#include "node/config/config.h"
#include "proto/error.h"
#include "proto/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the table */

typedef enum {
    K_TEXT,    /* free text without control characters: node name */
    K_BIND,    /* ZeroMQ endpoint we bind: tcp://host:port (host may be * or 0.0.0.0), ipc://path */
    K_CONNECT, /* ZeroMQ endpoint others connect to: no wildcard host */
    K_LOOPBACK, /* host:port on loopback, or empty */
    K_HOSTPORT, /* host:port anywhere, or empty */
    K_ADDRESS,  /* IPv4 or IPv6 literal */
    K_PORT,     /* 1..65535 */
    K_UINT,     /* decimal, within min..max */
    K_BYTES,    /* size with unit */
    K_DURATION, /* duration with unit */
    K_LEVEL,    /* log level name, stored as int */
    K_PRIORITY, /* priority name, stored in char[16] */
    K_MESHID,   /* 64 hex digits or empty */
    K_AE,       /* DICOM AE title */
    K_PEERS,    /* list of K_CONNECT endpoints */
    K_AES,      /* list of AE titles */
    K_RULE      /* worklist rule; the key may be repeated */
} kind;

typedef struct {
    const char *section;
    const char *name;
    kind type;
    size_t offset;       /* of the field in pm_config */
    size_t size;         /* of that field */
    size_t count_offset; /* lists: offset of the item count */
    const char *def;     /* default as written in node.conf; NULL = none or derived */
    uint64_t min, max;
    const char *unit; /* K_UINT: what the number counts, for messages */
    const char *help;
} key_spec;

#define FIELD(f) offsetof(pm_config, f), sizeof(((pm_config *)0)->f)
#define LIST(f, n) offsetof(pm_config, f), sizeof(((pm_config *)0)->f), offsetof(pm_config, n)

#define SECOND UINT64_C(1000)
#define DAY (UINT64_C(86400) * SECOND)
#define MIB (UINT64_C(1) << 20)

static const key_spec keys[] = {
    {"node", "name", K_TEXT, FIELD(name), 0, NULL, 1, 64, NULL,
     "This node's name, shown to the other members (required; 1-64 characters)."},
    {"node", "listen", K_BIND, FIELD(listen), 0, "tcp://0.0.0.0:7400", 0, 0, NULL,
     "ZeroMQ endpoint where this node accepts peer connections."},
    {"node", "advertise", K_CONNECT, FIELD(advertise), 0, NULL, 0, 0, NULL,
     "Endpoint peers connect to (default: listen with 0.0.0.0 or * replaced by 127.0.0.1)."},
    {"node", "admin", K_BIND, FIELD(admin), 0, NULL, 0, 0, NULL,
     "Control socket the CLI talks to (default: ipc://<node dir>/admin.sock)."},
    {"node", "log_level", K_LEVEL, FIELD(log_level), 0, "info", 0, 0, NULL,
     "Lowest level logged to stderr: debug, info, warn or error."},

    {"mesh", "id", K_MESHID, FIELD(mesh_id), 0, "", 0, 0, NULL,
     "The mesh this node belongs to (64 hex digits); set by `genesis` or `join`."},
    {"mesh", "quorum", K_UINT, FIELD(quorum), 0, "1", 1, 100, "number",
     "Approvals needed to admit or revoke a member, when this node creates the mesh."},
    {"mesh", "peers", K_PEERS, LIST(peers, n_peers), "", 0, 0, NULL,
     "Bootstrap peers: endpoints, comma- or space-separated; repeat the line to add more."},

    {"dicom", "ae_title", K_AE, FIELD(ae_title), 0, "PACSMESH", 0, 0, NULL,
     "AE title of this node's DICOM service (1-16 characters, no backslash)."},
    {"dicom", "port", K_PORT, FIELD(dicom_port), 0, "11112", 1, 65535, NULL,
     "TCP port of the DICOM service."},
    {"dicom", "bind", K_ADDRESS, FIELD(dicom_bind), 0, "0.0.0.0", 0, 0, NULL,
     "IP address the DICOM service listens on (0.0.0.0: all interfaces)."},
    {"dicom", "allowed_aes", K_AES, LIST(allowed_aes, n_allowed_aes), "", 0, 0, NULL,
     "Calling AE titles accepted (comma- or space-separated; empty: any)."},
    {"dicom", "max_pdu", K_UINT, FIELD(max_pdu), 0, "131072", 16384, 1048576, "number of bytes",
     "Largest PDU received, in bytes."},

    {"gossip", "interval_ms", K_UINT, FIELD(gossip_interval_ms), 0, "500", 10, 60000,
     "number of milliseconds", "Milliseconds between anti-entropy rounds."},
    {"gossip", "fanout", K_UINT, FIELD(gossip_fanout), 0, "3", 1, 64, "number of peers",
     "Peers contacted in each round."},
    {"gossip", "max_batch", K_UINT, FIELD(gossip_max_batch), 0, "256", 1, 4096, "number of events",
     "Most events sent in one message."},

    {"cache", "max_bytes", K_BYTES, FIELD(cache_max_bytes), 0, "10GiB", MIB, UINT64_C(1) << 60,
     NULL, "Size of the cache of other trusts' pixel data (e.g. 500MB, 10GiB; LRU eviction)."},

    {"metrics", "listen", K_LOOPBACK, FIELD(metrics_listen), 0, "", 0, 0, NULL,
     "Loopback host:port serving Prometheus metrics, e.g. 127.0.0.1:9464 (empty: off)."},

    {"ris", "endpoint", K_HOSTPORT, FIELD(ris_endpoint), 0, "", 0, 0, NULL,
     "The trust's RIS: host:port of its HL7 v2 MLLP listener; final reports of this "
     "node's studies go there as ORU^R01 (empty: off)."},
    {"ris", "sending_facility", K_TEXT, FIELD(ris_sending_facility), 0, "PACSMESH", 1, 180, NULL,
     "MSH-4 of the reports sent to the RIS: this trust as the RIS knows it."},
    {"ris", "receiving_application", K_TEXT, FIELD(ris_receiving_application), 0, "RIS", 1, 180,
     NULL, "MSH-5 of the reports sent to the RIS."},
    {"ris", "retry", K_DURATION, FIELD(ris_retry_ms), 0, "10s", SECOND, DAY, NULL,
     "How long to wait before sending a report again when the RIS did not acknowledge it."},

    {"worklist", "due_immediate", K_DURATION, FIELD(due_immediate_ms), 0, "1h", SECOND, 3650 * DAY,
     NULL, "Time to report an immediate study (e.g. 90s, 15m, 1h, 28d)."},
    {"worklist", "due_urgent", K_DURATION, FIELD(due_urgent_ms), 0, "24h", SECOND, 3650 * DAY, NULL,
     "Time to report an urgent study."},
    {"worklist", "due_routine", K_DURATION, FIELD(due_routine_ms), 0, "28d", SECOND, 3650 * DAY,
     NULL, "Time to report a routine study."},
    {"worklist", "default_priority", K_PRIORITY, FIELD(default_priority), 0, "routine", 0, 0, NULL,
     "Priority of a study no rule matches: immediate, urgent or routine."},
    {"worklist", "lease", K_DURATION, FIELD(lease_ms), 0, "4h", SECOND, 365 * DAY, NULL,
     "How long a claim holds without a report."},
    {"worklist", "rule", K_RULE, FIELD(rules), 0, NULL, 0, 0, NULL,
     "Rules `rule = CONDITIONS : SETTINGS`, any number; the first that matches wins."},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"node",  "mesh",    "dicom",    "dicom.destinations",
                                       "gossip", "cache", "metrics", "worklist", "ris"};
#define N_SECTIONS (sizeof sections / sizeof sections[0])
#define DESTINATIONS "dicom.destinations"

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const priority_names[] = {"immediate", "urgent", "routine"};

#define LIST_MAX 1024 /* items in one list, destinations, rules */
#define ENDPOINT_MAX 255
#define IPC_PATH_MAX 107 /* sun_path less its NUL */
#define PATTERN_MAX 128

/* ---------------------------------------------------------------- small helpers */

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A printable, bounded rendering of untrusted text for messages. */
static const char *quoted(const char *v, char buf[96])
{
    size_t o = 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (o >= 80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static bool has_control(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static int lookup(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static bool section_known(const char *s)
{
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (strcmp(s, sections[i]) == 0)
            return true;
    return false;
}

static const key_spec *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool is_list(kind t)
{
    return t == K_PEERS || t == K_AES || t == K_RULE;
}

/* Decimal digits only, at least one, no overflow. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return PM_E_INVAL;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return PM_E_INVAL;
        v = v * 10 + d;
    }
    *out = v;
    if (end)
        *end = p;
    else if (*p)
        return PM_E_INVAL;
    return PM_OK;
}

int pm_config_parse_duration(const char *text, uint64_t *ms_out)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1},  {"s", SECOND}, {"m", 60 * SECOND}, {"h", 3600 * SECOND},
                 {"d", DAY}, {"w", 7 * DAY}};
    if (!text || !*text)
        return PM_E_INVAL;
    if (strcmp(text, "0") == 0) {
        *ms_out = 0;
        return PM_OK;
    }
    uint64_t total = 0;
    const char *p = text;
    while (*p) {
        uint64_t n;
        if (parse_u64(p, &p, &n) != PM_OK)
            return PM_E_INVAL;
        size_t len = 0;
        while (isalpha((unsigned char)p[len]))
            len++;
        uint64_t mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strlen(units[i].unit) == len && strncmp(p, units[i].unit, len) == 0)
                mult = units[i].ms;
        if (mult == 0 || (n && n > UINT64_MAX / mult) || n * mult > UINT64_MAX - total)
            return PM_E_INVAL;
        total += n * mult;
        p += len;
    }
    *ms_out = total;
    return PM_OK;
}

int pm_config_parse_bytes(const char *text, uint64_t *bytes_out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", UINT64_C(1000)},
                 {"kb", UINT64_C(1000)},
                 {"kib", UINT64_C(1) << 10},
                 {"m", UINT64_C(1000000)},
                 {"mb", UINT64_C(1000000)},
                 {"mib", UINT64_C(1) << 20},
                 {"g", UINT64_C(1000000000)},
                 {"gb", UINT64_C(1000000000)},
                 {"gib", UINT64_C(1) << 30},
                 {"t", UINT64_C(1000000000000)},
                 {"tb", UINT64_C(1000000000000)},
                 {"tib", UINT64_C(1) << 40},
                 {"p", UINT64_C(1000000000000000)},
                 {"pb", UINT64_C(1000000000000000)},
                 {"pib", UINT64_C(1) << 50}};
    uint64_t n;
    const char *p;
    if (!text || parse_u64(text, &p, &n) != PM_OK)
        return PM_E_INVAL;
    while (*p == ' ')
        p++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(p, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return PM_E_INVAL;
            *bytes_out = n * units[i].mult;
            return PM_OK;
        }
    return PM_E_INVAL;
}

char *pm_config_format_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", DAY}, {"h", 3600 * SECOND}, {"m", 60 * SECOND}, {"s", SECOND}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms && ms % units[i].ms == 0) {
            snprintf(out, outlen, "%" PRIu64 "%s", ms / units[i].ms, units[i].unit);
            return out;
        }
    snprintf(out, outlen, ms ? "%" PRIu64 "ms" : "0", ms);
    return out;
}

char *pm_config_format_bytes(uint64_t bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"PiB", "TiB", "GiB", "MiB", "KiB"};
    static const char *const decimal[] = {"PB", "TB", "GB", "MB", "KB"};
    for (int i = 0; i < 5; i++) {
        uint64_t mult = UINT64_C(1) << (10 * (5 - i));
        if (bytes && bytes % mult == 0) {
            snprintf(out, outlen, "%" PRIu64 "%s", bytes / mult, units[i]);
            return out;
        }
    }
    uint64_t mult = UINT64_C(1000000000000000);
    for (int i = 0; i < 5; i++, mult /= 1000)
        if (bytes && bytes % mult == 0) {
            snprintf(out, outlen, "%" PRIu64 "%s", bytes / mult, decimal[i]);
            return out;
        }
    snprintf(out, outlen, "%" PRIu64, bytes);
    return out;
}

int pm_config_wildcard_match(const char *pattern, const char *text)
{
    const char *p = pattern, *t = text ? text : "";
    const char *star = NULL, *resume = NULL;
    /* Greedy with backtracking to the last star only: O(len(p) * len(t)) at worst. */
    while (*t) {
        if (*p == '*') {
            star = ++p;
            resume = t;
        } else if (*p && (*p == '?' || tolower((unsigned char)*p) == tolower((unsigned char)*t))) {
            p++;
            t++;
        } else if (star) {
            p = star;
            t = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---------------------------------------------------------------- value checks */

static bool is_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static bool is_ip(const char *h, int *family)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, h, buf) == 1) {
        if (family)
            *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, h, buf) == 1) {
        if (family)
            *family = AF_INET6;
        return true;
    }
    return false;
}

/* Splits "host:port" / "[v6]:port" into host (brackets removed) and port. */
static int split_hostport(const char *v, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return PM_E_INVAL;
    uint64_t p;
    if (parse_u64(colon + 1, NULL, &p) != PM_OK || p < 1 || p > 65535)
        return PM_E_INVAL;
    const char *h = v;
    size_t len = (size_t)(colon - v);
    if (h[0] == '[') {
        if (len < 3 || h[len - 1] != ']')
            return PM_E_INVAL;
        h++;
        len -= 2;
        if (len >= hostlen)
            return PM_E_INVAL;
        memcpy(host, h, len);
        host[len] = '\0';
        int fam;
        if (!is_ip(host, &fam) || fam != AF_INET6)
            return PM_E_INVAL;
    } else {
        if (len >= hostlen || memchr(h, ':', len))
            return PM_E_INVAL;
        memcpy(host, h, len);
        host[len] = '\0';
        if (strcmp(host, "*") != 0 && !is_ip(host, NULL) && !is_hostname(host, len))
            return PM_E_INVAL;
    }
    *port = (int)p;
    return PM_OK;
}

static bool is_wildcard_host(const char *h)
{
    return strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

static int check_endpoint(const char *v, bool bind, char *why, size_t wl)
{
    char q[96], host[256];
    int port;
    if (strlen(v) > ENDPOINT_MAX) {
        say(why, wl, "%s is longer than %d characters", quoted(v, q), ENDPOINT_MAX);
        return PM_E_CONFIG;
    }
    if (strncmp(v, "tcp://", 6) == 0) {
        if (split_hostport(v + 6, host, sizeof host, &port) != PM_OK) {
            say(why, wl, "%s is not an endpoint (tcp://host:port or ipc://path)", quoted(v, q));
            return PM_E_CONFIG;
        }
        if (!bind && is_wildcard_host(host)) {
            say(why, wl, "%s has a wildcard host; give an address peers can reach", quoted(v, q));
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    if (strncmp(v, "ipc://", 6) == 0) {
        size_t len = strlen(v + 6);
        if (len == 0 || len > IPC_PATH_MAX || has_control(v)) {
            say(why, wl, "%s is not an ipc endpoint (ipc://path, path 1-%d characters)",
                quoted(v, q), IPC_PATH_MAX);
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    say(why, wl, "%s is not an endpoint (tcp://host:port or ipc://path)", quoted(v, q));
    return PM_E_CONFIG;
}

static int check_loopback(const char *v, char *why, size_t wl)
{
    char q[96], host[256];
    int port;
    if (split_hostport(v, host, sizeof host, &port) != PM_OK) {
        say(why, wl, "%s is not host:port (e.g. 127.0.0.1:9464)", quoted(v, q));
        return PM_E_CONFIG;
    }
    unsigned char a[16];
    bool loop = strcmp(host, "localhost") == 0 ||
                (inet_pton(AF_INET, host, a) == 1 && a[0] == 127) ||
                (inet_pton(AF_INET6, host, a) == 1 &&
                 memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0);
    if (!loop) {
        say(why, wl,
            "%s is not a loopback address (e.g. 127.0.0.1:9464); metrics stay on this host",
            quoted(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

static int check_ae(const char *v, char *why, size_t wl)
{
    char q[96];
    size_t len = strlen(v);
    bool blank = true;
    for (size_t i = 0; i < len; i++)
        if (v[i] != ' ')
            blank = false;
    if (len == 0 || len > PM_DICOM_AE_MAX || blank || strchr(v, '\\') || has_control(v)) {
        say(why, wl, "%s is not an AE title (1-16 characters, no backslash)", quoted(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

static int check_destination(const char *v, pm_dicom_destination *d, char *why, size_t wl)
{
    char q[96];
    if (split_hostport(v, d->host, sizeof d->host, &d->port) != PM_OK ||
        strcmp(d->host, "*") == 0) {
        say(why, wl, "%s is not host:port (e.g. 10.0.0.5:104)", quoted(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

/* ---------------------------------------------------------------- rules */

/* Reads the next KEY=VALUE token of s (VALUE may be "double quoted"). Returns 1 and
 * advances *sp, 0 at the end, or PM_E_CONFIG with a reason. */
static int next_token(char **sp, char **key, char **val, char *why, size_t wl)
{
    char *s = *sp, q[96];
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 0;
    char *start = s;
    while (*s && *s != '=' && !isspace((unsigned char)*s))
        s++;
    if (*s != '=' || s == start) {
        char *e = s;
        while (*e && !isspace((unsigned char)*e))
            e++;
        *e = '\0';
        say(why, wl, "%s is not name=value", quoted(start, q));
        return PM_E_CONFIG;
    }
    *s++ = '\0';
    *key = start;
    if (*s == '"') {
        *val = ++s;
        char *close = strchr(s, '"');
        if (!close) {
            say(why, wl, "%s=: missing closing quote", quoted(start, q));
            return PM_E_CONFIG;
        }
        *close = '\0';
        s = close + 1;
        if (*s && !isspace((unsigned char)*s)) {
            say(why, wl, "%s=: text after closing quote", quoted(start, q));
            return PM_E_CONFIG;
        }
    } else {
        *val = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = '\0';
    }
    if (!**val) {
        say(why, wl, "%s has an empty value", quoted(start, q));
        return PM_E_CONFIG;
    }
    *sp = s;
    return 1;
}

static void rule_free(pm_worklist_rule *r)
{
    free(r->conditions_text);
    free(r->modality);
    free(r->body_part);
    free(r->description);
    memset(r, 0, sizeof *r);
}

static int parse_rule(const char *text, int line, pm_worklist_rule *r, char *why, size_t wl)
{
    char q[96];
    int rc = PM_E_CONFIG;
    memset(r, 0, sizeof *r);
    r->line = line;
    char *copy = strdup(text);
    r->conditions_text = strdup(text);
    if (!copy || !r->conditions_text) {
        rc = PM_E_NOMEM;
        goto fail;
    }
    /* The first ':' outside double quotes separates conditions from settings. */
    char *sep = NULL;
    bool inq = false;
    for (char *p = copy; *p && !sep; p++) {
        if (*p == '"')
            inq = !inq;
        else if (*p == ':' && !inq)
            sep = p;
    }
    if (!sep) {
        say(why, wl,
            "%s is not CONDITIONS : SETTINGS (e.g. modality=CT body_part=HEAD : "
            "priority=urgent subspecialty=neuro)",
            quoted(text, q));
        goto fail;
    }
    *sep = '\0';
    char *s = copy, *key, *val;
    int t;
    while ((t = next_token(&s, &key, &val, why, wl)) == 1) {
        char **slot = strcmp(key, "modality") == 0      ? &r->modality
                      : strcmp(key, "body_part") == 0   ? &r->body_part
                      : strcmp(key, "description") == 0 ? &r->description
                                                        : NULL;
        if (!slot) {
            say(why, wl, "unknown condition %s (modality, body_part, description)", quoted(key, q));
            goto fail;
        }
        if (*slot) {
            say(why, wl, "condition %s given twice", key);
            goto fail;
        }
        if (strlen(val) > PATTERN_MAX || has_control(val)) {
            say(why, wl, "%s=%s: not a pattern (at most %d characters)", key, quoted(val, q),
                PATTERN_MAX);
            goto fail;
        }
        if (!(*slot = strdup(val))) {
            rc = PM_E_NOMEM;
            goto fail;
        }
    }
    if (t < 0)
        goto fail;
    s = sep + 1;
    bool any = false, seen_prio = false, seen_sub = false, seen_dr = false, seen_due = false;
    while ((t = next_token(&s, &key, &val, why, wl)) == 1) {
        bool *seen;
        any = true;
        if (strcmp(key, "priority") == 0) {
            seen = &seen_prio;
            if (lookup(val, priority_names, 3) < 0) {
                say(why, wl, "priority=%s is not a priority (immediate, urgent, routine)",
                    quoted(val, q));
                goto fail;
            }
            strcpy(r->priority, val);
        } else if (strcmp(key, "subspecialty") == 0) {
            seen = &seen_sub;
            if (strlen(val) >= sizeof r->subspecialty || has_control(val)) {
                say(why, wl, "subspecialty=%s is longer than %zu characters", quoted(val, q),
                    sizeof r->subspecialty - 1);
                goto fail;
            }
            strcpy(r->subspecialty, val);
        } else if (strcmp(key, "double_read") == 0) {
            seen = &seen_dr;
            if (strcmp(val, "yes") == 0)
                r->double_read = 1;
            else if (strcmp(val, "no") == 0)
                r->double_read = 0;
            else {
                say(why, wl, "double_read=%s is not yes or no", quoted(val, q));
                goto fail;
            }
        } else if (strcmp(key, "due") == 0) {
            seen = &seen_due;
            if (pm_config_parse_duration(val, &r->due_ms) != PM_OK || r->due_ms < SECOND ||
                r->due_ms > 3650 * DAY) {
                say(why, wl, "due=%s is not a duration (1s..3650d, e.g. 90s, 15m, 1h, 28d)",
                    quoted(val, q));
                goto fail;
            }
        } else {
            say(why, wl, "unknown setting %s (priority, subspecialty, double_read, due)",
                quoted(key, q));
            goto fail;
        }
        if (*seen) {
            say(why, wl, "setting %s given twice", key);
            goto fail;
        }
        *seen = true;
    }
    if (t < 0)
        goto fail;
    if (!any) {
        say(why, wl, "no settings after ':' (priority, subspecialty, double_read, due)");
        goto fail;
    }
    free(copy);
    return PM_OK;
fail:
    free(copy);
    rule_free(r);
    return rc;
}

static bool rule_matches(const pm_worklist_rule *r, const char *modality, const char *body_part,
                         const char *description)
{
    if (r->modality) {
        /* Any element of a backslash-separated list of modalities may match. */
        const char *m = modality ? modality : "";
        bool hit = false;
        char item[PATTERN_MAX + 1];
        for (;;) {
            const char *end = strchr(m, '\\');
            size_t len = end ? (size_t)(end - m) : strlen(m);
            while (len && m[0] == ' ')
                m++, len--;
            while (len && m[len - 1] == ' ')
                len--;
            if (len < sizeof item) {
                memcpy(item, m, len);
                item[len] = '\0';
                if (pm_config_wildcard_match(r->modality, item)) {
                    hit = true;
                    break;
                }
            }
            if (!end)
                break;
            m = end + 1;
        }
        if (!hit)
            return false;
    }
    if (r->body_part && !pm_config_wildcard_match(r->body_part, body_part))
        return false;
    if (r->description && !pm_config_wildcard_match(r->description, description))
        return false;
    return true;
}

uint64_t pm_config_due_for(const pm_config *cfg, const char *priority)
{
    int p = priority ? lookup(priority, priority_names, 3) : -1;
    if (p < 0)
        p = lookup(cfg->default_priority, priority_names, 3);
    return p == 0 ? cfg->due_immediate_ms : p == 1 ? cfg->due_urgent_ms : cfg->due_routine_ms;
}

void pm_config_worklist_terms(const pm_config *cfg, const char *modality, const char *body_part,
                              const char *description, uint64_t now_ms,
                              char priority[PM_CONFIG_PRIORITY_MAX],
                              char subspecialty[PM_CONFIG_SUBSPECIALTY_MAX], int *double_read,
                              uint64_t *due_ms)
{
    const pm_worklist_rule *hit = NULL;
    for (size_t i = 0; i < cfg->n_rules && !hit; i++)
        if (rule_matches(&cfg->rules[i], modality, body_part, description))
            hit = &cfg->rules[i];
    const char *prio = hit && hit->priority[0] ? hit->priority : cfg->default_priority;
    snprintf(priority, PM_CONFIG_PRIORITY_MAX, "%s", prio);
    snprintf(subspecialty, PM_CONFIG_SUBSPECIALTY_MAX, "%s", hit ? hit->subspecialty : "");
    *double_read = hit ? hit->double_read : 0;
    uint64_t due = hit && hit->due_ms ? hit->due_ms : pm_config_due_for(cfg, prio);
    *due_ms = now_ms > UINT64_MAX - due ? UINT64_MAX : now_ms + due;
}

/* ---------------------------------------------------------------- applying values */

static int set_string(char **slot, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return PM_E_NOMEM;
    free(*slot);
    *slot = d;
    return PM_OK;
}

static void store_uint(void *field, size_t size, uint64_t v)
{
    if (size == sizeof(uint64_t))
        *(uint64_t *)field = v;
    else
        *(unsigned *)field = (unsigned)v; /* int and unsigned fields alike */
}

static int append_item(char ***list, size_t *n, const char *v)
{
    if (*n >= LIST_MAX)
        return PM_E_TOOBIG;
    char **grown = realloc(*list, (*n + 2) * sizeof **list);
    if (!grown)
        return PM_E_NOMEM;
    *list = grown;
    if (!(grown[*n] = strdup(v)))
        return PM_E_NOMEM;
    grown[++*n] = NULL;
    return PM_OK;
}

/* Validates v for key k and stores it in cfg (lists and rules append). Returns PM_OK,
 * PM_E_CONFIG with the reason in why, or PM_E_NOMEM. */
static int apply(pm_config *cfg, const key_spec *k, const char *v, int line, char *why, size_t wl)
{
    char *field = (char *)cfg + k->offset, q[96], lo[32], hi[32];
    uint64_t n;
    int i, rc;
    switch (k->type) {
    case K_TEXT:
        if (strlen(v) < k->min || strlen(v) > k->max || has_control(v)) {
            say(why, wl, "%s is not a name (%" PRIu64 "-%" PRIu64 " printable characters)",
                quoted(v, q), k->min, k->max);
            return PM_E_CONFIG;
        }
        return set_string((char **)field, v);
    case K_BIND:
    case K_CONNECT:
        if ((rc = check_endpoint(v, k->type == K_BIND, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_LOOPBACK:
        if (*v && (rc = check_loopback(v, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_HOSTPORT: {
        char host[256];
        int port;
        if (*v && split_hostport(v, host, sizeof host, &port) != PM_OK) {
            say(why, wl, "%s is not host:port (e.g. ris.trust.example:2575)", quoted(v, q));
            return PM_E_CONFIG;
        }
        return set_string((char **)field, v);
    }
    case K_ADDRESS:
        if (!is_ip(v, NULL)) {
            say(why, wl, "%s is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)", quoted(v, q));
            return PM_E_CONFIG;
        }
        return set_string((char **)field, v);
    case K_MESHID: {
        char id[65];
        size_t len = strlen(v);
        bool hex = len == 64;
        for (size_t j = 0; hex && j < len; j++) {
            hex = isxdigit((unsigned char)v[j]) != 0;
            id[j] = (char)tolower((unsigned char)v[j]);
        }
        if (len && !hex) {
            say(why, wl, "%s is not a mesh id (64 hex digits, or empty)", quoted(v, q));
            return PM_E_CONFIG;
        }
        id[len ? 64 : 0] = '\0';
        return set_string((char **)field, id);
    }
    case K_AE:
        if ((rc = check_ae(v, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_PORT:
    case K_UINT:
        if (parse_u64(v, NULL, &n) != PM_OK) {
            say(why, wl, "%s is not a %s (%" PRIu64 "..%" PRIu64 ")", quoted(v, q),
                k->type == K_PORT ? "port number" : k->unit, k->min, k->max);
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            say(why, wl, "%s is out of range (%" PRIu64 "..%" PRIu64 ")", quoted(v, q), k->min,
                k->max);
            return PM_E_CONFIG;
        }
        store_uint(field, k->size, n);
        return PM_OK;
    case K_BYTES:
        if (pm_config_parse_bytes(v, &n) != PM_OK) {
            say(why, wl, "%s is not a size (e.g. 1048576, 500MB, 10GiB)", quoted(v, q));
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            say(why, wl, "%s is out of range (%s..%s)", quoted(v, q),
                pm_config_format_bytes(k->min, lo, sizeof lo),
                pm_config_format_bytes(k->max, hi, sizeof hi));
            return PM_E_CONFIG;
        }
        store_uint(field, k->size, n);
        return PM_OK;
    case K_DURATION:
        if (pm_config_parse_duration(v, &n) != PM_OK) {
            say(why, wl, "%s is not a duration (e.g. 90s, 15m, 1h, 28d)", quoted(v, q));
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            say(why, wl, "%s is out of range (%s..%s)", quoted(v, q),
                pm_config_format_duration(k->min, lo, sizeof lo),
                pm_config_format_duration(k->max, hi, sizeof hi));
            return PM_E_CONFIG;
        }
        store_uint(field, k->size, n);
        return PM_OK;
    case K_LEVEL:
        if ((i = lookup(v, level_names, 4)) < 0) {
            say(why, wl, "%s is not a log level (debug, info, warn, error)", quoted(v, q));
            return PM_E_CONFIG;
        }
        *(int *)field = i;
        return PM_OK;
    case K_PRIORITY:
        if (lookup(v, priority_names, 3) < 0) {
            say(why, wl, "%s is not a priority (immediate, urgent, routine)", quoted(v, q));
            return PM_E_CONFIG;
        }
        snprintf(field, k->size, "%s", v);
        return PM_OK;
    case K_PEERS:
    case K_AES: {
        char ***list = (char ***)field;
        size_t *count = (size_t *)((char *)cfg + k->count_offset);
        char *copy = strdup(v);
        if (!copy)
            return PM_E_NOMEM;
        rc = PM_OK;
        for (char *save = NULL, *item = strtok_r(copy, ", \t", &save); item && rc == PM_OK;
             item = strtok_r(NULL, ", \t", &save)) {
            rc =
                k->type == K_PEERS ? check_endpoint(item, false, why, wl) : check_ae(item, why, wl);
            if (rc == PM_OK && (rc = append_item(list, count, item)) == PM_E_TOOBIG) {
                say(why, wl, "more than %d items", LIST_MAX);
                rc = PM_E_CONFIG;
            }
        }
        free(copy);
        return rc;
    }
    case K_RULE: {
        if (cfg->n_rules >= LIST_MAX) {
            say(why, wl, "more than %d rules", LIST_MAX);
            return PM_E_CONFIG;
        }
        pm_worklist_rule r;
        if ((rc = parse_rule(v, line, &r, why, wl)) != PM_OK)
            return rc;
        pm_worklist_rule *grown = realloc(cfg->rules, (cfg->n_rules + 1) * sizeof *grown);
        if (!grown) {
            rule_free(&r);
            return PM_E_NOMEM;
        }
        cfg->rules = grown;
        cfg->rules[cfg->n_rules++] = r;
        return PM_OK;
    }
    }
    return PM_E_CONFIG;
}

static pm_config *config_new_defaults(void)
{
    pm_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    char why[256];
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].def && apply(cfg, &keys[i], keys[i].def, 0, why, sizeof why) != PM_OK) {
            pm_config_destroy(&cfg); /* out of memory: the defaults are valid */
            return NULL;
        }
    return cfg;
}

void pm_config_destroy(pm_config **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_config *cfg = *self_p;
    free(cfg->path);
    free(cfg->name);
    free(cfg->listen);
    free(cfg->advertise);
    free(cfg->admin);
    free(cfg->mesh_id);
    for (size_t i = 0; i < cfg->n_peers; i++)
        free(cfg->peers[i]);
    free(cfg->peers);
    free(cfg->ae_title);
    free(cfg->dicom_bind);
    for (size_t i = 0; i < cfg->n_allowed_aes; i++)
        free(cfg->allowed_aes[i]);
    free(cfg->allowed_aes);
    free(cfg->destinations);
    free(cfg->metrics_listen);
    free(cfg->ris_endpoint);
    free(cfg->ris_sending_facility);
    free(cfg->ris_receiving_application);
    for (size_t i = 0; i < cfg->n_rules; i++)
        rule_free(&cfg->rules[i]);
    free(cfg->rules);
    free(cfg);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- parsing */

typedef struct {
    pm_config *cfg;
    const char *file; /* name used in messages */
    const char *data;
    size_t len, pos;
    int lineno;           /* physical line last handed to inih */
    char section[64];     /* section of that line, as the reader saw it */
    int set_line[N_KEYS]; /* where each scalar key was set, to refuse a second time */
    int *dest_line;       /* same for each destination */
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
        say(c->err, c->errlen, "%s: out of memory", c->file);
    else if (key && !*section)
        say(c->err, c->errlen, "%s:%d: %s: %s", c->file, c->lineno, key, why);
    else if (key)
        say(c->err, c->errlen, "%s:%d: [%s] %s: %s", c->file, c->lineno, section, key, why);
    else
        say(c->err, c->errlen, "%s:%d: [%s]: %s", c->file, c->lineno, section, why);
}

static const char *section_list(void)
{
    return "node, mesh, dicom, dicom.destinations, gossip, cache, metrics, worklist";
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
            if (!section_known(c->section)) {
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

static int add_destination(parse_ctx *c, const char *ae, const char *value)
{
    pm_config *cfg = c->cfg;
    char why[256];
    pm_dicom_destination d;
    memset(&d, 0, sizeof d);
    if (check_ae(ae, why, sizeof why) != PM_OK) {
        fail(c, PM_E_CONFIG, DESTINATIONS, ae, why);
        return 0;
    }
    for (size_t i = 0; i < cfg->n_destinations; i++)
        if (strcmp(cfg->destinations[i].destination_ae, ae) == 0) {
            snprintf(why, sizeof why, "set twice (first on line %d)", c->dest_line[i]);
            fail(c, PM_E_CONFIG, DESTINATIONS, ae, why);
            return 0;
        }
    if (check_destination(value, &d, why, sizeof why) != PM_OK) {
        fail(c, PM_E_CONFIG, DESTINATIONS, ae, why);
        return 0;
    }
    if (cfg->n_destinations >= LIST_MAX) {
        snprintf(why, sizeof why, "more than %d destinations", LIST_MAX);
        fail(c, PM_E_CONFIG, DESTINATIONS, ae, why);
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
        fail(c, PM_E_NOMEM, DESTINATIONS, ae, "");
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
    if (!section_known(section)) {
        snprintf(why, sizeof why, "unknown section (%s)", section_list());
        fail(c, PM_E_CONFIG, section, NULL, why);
        return 0;
    }
    if (strcmp(section, DESTINATIONS) == 0)
        return add_destination(c, name, value);
    const key_spec *k = find_key(section, name);
    if (!k) {
        /* Name the keys the section does have: the typo is usually obvious then. */
        size_t o = (size_t)snprintf(why, sizeof why, "unknown key (");
        const char *sep = "";
        for (size_t i = 0; i < N_KEYS && o < sizeof why; i++)
            if (strcmp(keys[i].section, section) == 0) {
                o += (size_t)snprintf(why + o, sizeof why - o, "%s%s", sep, keys[i].name);
                sep = ", ";
            }
        if (o < sizeof why)
            snprintf(why + o, sizeof why - o, ")");
        fail(c, PM_E_CONFIG, section, *name ? name : "(no key)", why);
        return 0;
    }
    size_t idx = (size_t)(k - keys);
    if (!is_list(k->type)) {
        if (c->set_line[idx]) {
            snprintf(why, sizeof why, "set twice (first on line %d)", c->set_line[idx]);
            fail(c, PM_E_CONFIG, section, name, why);
            return 0;
        }
        c->set_line[idx] = c->lineno;
    }
    int rc = apply(c->cfg, k, value, c->lineno, why, sizeof why);
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
    char q[96];
    snprintf(out, outlen, "%s", quoted(tmp, q));
}

/* Fills what the file left to be derived from other values. */
static int derive(pm_config *cfg, const char *file, const char *node_dir, char *err, size_t errlen)
{
    char why[256];
    if (!cfg->name) {
        say(err, errlen, "%s: [node] name: missing (every node needs a name)", file);
        return PM_E_CONFIG;
    }
    if (!cfg->advertise) {
        /* Peers cannot connect to a wildcard: substitute loopback, fine for one host. */
        const char *l = cfg->listen;
        char adv[ENDPOINT_MAX + 16];
        if (strncmp(l, "tcp://*:", 8) == 0)
            snprintf(adv, sizeof adv, "tcp://127.0.0.1:%s", l + 8);
        else if (strncmp(l, "tcp://0.0.0.0:", 14) == 0)
            snprintf(adv, sizeof adv, "tcp://127.0.0.1:%s", l + 14);
        else if (strncmp(l, "tcp://[::]:", 11) == 0)
            snprintf(adv, sizeof adv, "tcp://[::1]:%s", l + 11);
        else
            snprintf(adv, sizeof adv, "%s", l);
        if (check_endpoint(adv, false, why, sizeof why) != PM_OK) {
            say(err, errlen, "%s: [node] advertise: cannot be derived from listen: %s", file, why);
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
        if (check_endpoint(ep, true, why, sizeof why) != PM_OK) {
            say(err, errlen, "%s: [node] admin: the default %s; set admin explicitly", file, why);
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
        say(err, errlen, "%s: larger than %d bytes", name, PM_CONFIG_FILE_MAX);
        return PM_E_CONFIG;
    }
    parse_ctx c;
    memset(&c, 0, sizeof c);
    c.file = name;
    c.data = data;
    c.len = len;
    c.err = err;
    c.errlen = errlen;
    if (!(c.cfg = config_new_defaults()) || !(c.cfg->path = strdup(name))) {
        pm_config_destroy(&c.cfg);
        say(err, errlen, "%s: out of memory", name);
        return PM_E_NOMEM;
    }
    int line = ini_parse_stream(read_line, &c, on_key, &c);
    int rc = PM_OK;
    if (line == -2 && !c.failed) {
        say(err, errlen, "%s: out of memory", name);
        rc = PM_E_NOMEM;
    } else if (line > 0 && (!c.failed || line < c.err_line)) {
        char text[100];
        line_text(data, len, line, text, sizeof text);
        say(err, errlen, "%s:%d: syntax error: %s is not `key = value`, `[section]` or a comment",
            name, line, text);
        rc = PM_E_CONFIG;
    } else if (c.failed) {
        rc = c.rc;
    } else {
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
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        say(err, errlen, "%s: cannot open: %s", path, strerror(errno));
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
            say(err, errlen, "%s: larger than %d bytes", path, PM_CONFIG_FILE_MAX);
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
        say(err, errlen, "%s: out of memory", path);
        rc = PM_E_NOMEM;
    } else if (rc == PM_OK && ferror(f)) {
        say(err, errlen, "%s: cannot read: %s", path, strerror(errno));
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
    int rc = read_file(path, &data, &len, err, errlen);
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

static void format_value(const pm_config *cfg, const key_spec *k, char *buf, size_t len)
{
    const char *field = (const char *)cfg + k->offset;
    uint64_t v = k->size == sizeof(uint64_t) ? *(const uint64_t *)field : *(const unsigned *)field;
    switch (k->type) {
    case K_PORT:
    case K_UINT: snprintf(buf, len, "%" PRIu64, v); break;
    case K_BYTES: pm_config_format_bytes(v, buf, len); break;
    case K_DURATION: pm_config_format_duration(v, buf, len); break;
    case K_LEVEL: snprintf(buf, len, "%s", level_names[*(const int *)field & 3]); break;
    case K_PRIORITY: snprintf(buf, len, "%s", field); break;
    default: {
        const char *s = *(char *const *)field;
        snprintf(buf, len, "%s", s ? s : "");
    }
    }
}

void pm_config_dump(const pm_config *cfg, FILE *out)
{
    char buf[PM_CONFIG_LINE_MAX + 1];
    fprintf(out, "# effective configuration read from %s\n", cfg->path ? cfg->path : "(none)");
    for (size_t s = 0; s < N_SECTIONS; s++) {
        fprintf(out, "\n[%s]\n", sections[s]);
        if (strcmp(sections[s], DESTINATIONS) == 0) {
            for (size_t i = 0; i < cfg->n_destinations; i++) {
                const pm_dicom_destination *d = &cfg->destinations[i];
                snprintf(buf, sizeof buf, strchr(d->host, ':') ? "[%s]:%d" : "%s:%d", d->host,
                         d->port);
                put_line(out, d->destination_ae, buf);
            }
            continue;
        }
        for (size_t i = 0; i < N_KEYS; i++) {
            const key_spec *k = &keys[i];
            if (strcmp(k->section, sections[s]) != 0)
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
            } else {
                format_value(cfg, k, buf, sizeof buf);
                put_line(out, k->name, buf);
            }
        }
    }
}

/* ---------------------------------------------------------------- writing files */

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
    pm_config *scratch = config_new_defaults();
    if (!scratch)
        return PM_E_NOMEM;
    int rc = apply(scratch, find_key(section, name), value, 0, why, sizeof why);
    pm_config_destroy(&scratch);
    if (rc == PM_E_CONFIG)
        say(err, errlen, "[%s] %s: %s", section, name, why);
    return rc;
}

int pm_config_write_default(const char *path, const char *name, const char *listen,
                            const char *advertise, int dicom_port, const char *ae_title,
                            const char *admin, char *err, size_t errlen)
{
    char portbuf[16] = "", advbuf[ENDPOINT_MAX + 16], adminbuf[PATH_MAX + 32];
    const char *overrides[N_KEYS] = {0};
    int rc;
    if (!name) {
        say(err, errlen, "a node name is required");
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
        overrides[find_key(given[i].section, given[i].name) - keys] = given[i].value;
    }

    char *text = NULL;
    size_t textlen = 0;
    FILE *f = open_memstream(&text, &textlen);
    if (!f)
        return PM_E_NOMEM;
    fprintf(f,
            "# node.conf: configuration of a pacsmesh node, written by `pacsmesh init`.\n"
            "#\n"
            "# Lines starting with # or ; are comments. A key left commented out takes the\n"
            "# default shown. Durations: 500ms, 90s, 15m, 1h, 28d (combine: 1h30m).\n"
            "# Sizes: 1048576, 500MB, 10GiB. Lines are at most %d characters; repeat a\n"
            "# list key (peers, allowed_aes) to add more items. Unknown keys are errors.\n"
            "# Restart `pacsmesh run` after editing.\n",
            PM_CONFIG_LINE_MAX);
    for (size_t s = 0; s < N_SECTIONS; s++) {
        fprintf(f, "\n[%s]\n", sections[s]);
        if (strcmp(sections[s], DESTINATIONS) == 0) {
            fprintf(f, "# C-MOVE destinations, one per line: AE_TITLE = host:port\n"
                       "# WORKSTATION1 = 10.0.0.5:104\n");
            continue;
        }
        for (size_t i = 0; i < N_KEYS; i++) {
            const key_spec *k = &keys[i];
            if (strcmp(k->section, sections[s]) != 0)
                continue;
            if (k != keys && strcmp(k[-1].section, k->section) == 0)
                fputc('\n', f);
            fprintf(f, "# %s\n", k->help);
            const char *shown = k->def;
            if (k == find_key("node", "advertise")) {
                /* The default follows listen: show what it will be. */
                const char *l = listen ? listen : find_key("node", "listen")->def;
                if (strncmp(l, "tcp://0.0.0.0:", 14) == 0)
                    snprintf(advbuf, sizeof advbuf, "tcp://127.0.0.1:%s", l + 14);
                else if (strncmp(l, "tcp://*:", 8) == 0)
                    snprintf(advbuf, sizeof advbuf, "tcp://127.0.0.1:%s", l + 8);
                else
                    snprintf(advbuf, sizeof advbuf, "%s", l);
                shown = advbuf;
            } else if (k == find_key("node", "admin")) {
                const char *slash = strrchr(path, '/');
                if (slash)
                    snprintf(adminbuf, sizeof adminbuf, "ipc://%.*s/admin.sock",
                             (int)(slash - path), path);
                else
                    snprintf(adminbuf, sizeof adminbuf, "ipc://admin.sock");
                shown = adminbuf;
            } else if (k->type == K_RULE) {
                fprintf(f, "# Conditions: modality, body_part, description (wildcards * and ?,\n"
                           "# case-insensitive; modality matches any modality of the study;\n"
                           "# quote values with spaces: description=\"CT HEAD*\"). Settings:\n"
                           "# priority, subspecialty, double_read=yes|no, due=<duration>.\n");
                fprintf(f, "# rule = modality=CT body_part=HEAD : priority=urgent "
                           "subspecialty=neuro\n"
                           "# rule = modality=MG : subspecialty=breast double_read=yes\n");
                continue;
            }
            if (overrides[i])
                fprintf(f, "%s = %s\n", k->name, overrides[i]);
            else if (k->type == K_TEXT && !k->def)
                fprintf(f, "%s =\n", k->name); /* required: no default to show */
            else if (shown && *shown)
                fprintf(f, "# %s = %s\n", k->name, shown);
            else
                fprintf(f, "# %s =\n", k->name);
        }
    }
    if (fclose(f) != 0) {
        free(text);
        return PM_E_NOMEM;
    }

    /* What init writes must load: check before it reaches the disk. */
    pm_config *check = NULL;
    rc = pm_config_parse(path, text, textlen, NULL, &check, err, errlen);
    pm_config_destroy(&check);
    if (rc != PM_OK) {
        free(text);
        return rc;
    }

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = errno == EEXIST ? PM_E_EXISTS : PM_E_IO;
        say(err, errlen, "%s: %s", path,
            rc == PM_E_EXISTS ? "already exists; not overwriting it" : strerror(errno));
        free(text);
        return rc;
    }
    if (write_all(fd, text, textlen) != 0 || fsync(fd) != 0) {
        say(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        free(text);
        return PM_E_IO;
    }
    close(fd);
    free(text);
    (void)fsync_dir_of(path);
    return PM_OK;
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

int pm_config_set(const char *path, const char *section, const char *key, const char *value,
                  char *err, size_t errlen)
{
    char why[256], q[96];
    int rc;
    if (!section || !key || !value)
        return PM_E_INVAL;
    if (strchr(value, '\n') || strchr(value, '\r')) {
        say(err, errlen, "[%s] %s: the value must be on one line", section, key);
        return PM_E_CONFIG;
    }
    /* Validate as a load would, and work out the lines to write. */
    const key_spec *k = NULL;
    if (strcmp(section, DESTINATIONS) == 0) {
        pm_dicom_destination d;
        if (check_ae(key, why, sizeof why) != PM_OK ||
            check_destination(value, &d, why, sizeof why) != PM_OK) {
            say(err, errlen, "[%s] %s: %s", section, key, why);
            return PM_E_CONFIG;
        }
    } else if (!section_known(section)) {
        say(err, errlen, "[%s]: unknown section", quoted(section, q));
        return PM_E_CONFIG;
    } else if (!(k = find_key(section, key))) {
        say(err, errlen, "[%s] %s: unknown key", section, quoted(key, q));
        return PM_E_CONFIG;
    } else if ((rc = check_override(section, key, value, err, errlen)) != PM_OK) {
        return rc;
    }
    char *lines = NULL;
    size_t lineslen = 0;
    FILE *m = open_memstream(&lines, &lineslen);
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
        free(lines);
        return PM_E_NOMEM;
    }
    for (const char *l = lines; *l;) {
        const char *nl = strchr(l, '\n');
        if ((size_t)(nl - l) > PM_CONFIG_LINE_MAX) {
            say(err, errlen, "[%s] %s: the line would be longer than %d characters", section, key,
                PM_CONFIG_LINE_MAX);
            free(lines);
            return PM_E_CONFIG;
        }
        l = nl + 1;
    }

    char *old;
    size_t oldlen;
    if ((rc = read_file(path, &old, &oldlen, err, errlen)) != PM_OK) {
        free(lines);
        return rc;
    }
    /* Find the section, the key's lines, a template line and the last key line. */
    size_t nspans = 0, cap = 64;
    span *spans = malloc(cap * sizeof *spans);
    for (const char *p = old, *end = old + oldlen; spans && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (nspans == cap) {
            span *grown = realloc(spans, cap * 2 * sizeof *spans);
            if (!grown) {
                free(spans);
                spans = NULL;
                break;
            }
            spans = grown;
            cap *= 2;
        }
        spans[nspans++] = (span){p, len};
        p += len;
    }
    if (!spans) {
        free(old);
        free(lines);
        return PM_E_NOMEM;
    }
    char cur[64] = "", name[64];
    long header = -1, first = -1, templ = -1, last_key = -1;
    bool *drop = calloc(nspans + 1, sizeof *drop);
    if (!drop) {
        free(spans);
        free(old);
        free(lines);
        return PM_E_NOMEM;
    }
    for (size_t i = 0; i < nspans; i++) {
        int t = classify(spans[i].start, spans[i].len, name, sizeof name);
        if (t == L_SECTION) {
            snprintf(cur, sizeof cur, "%s", name);
            if (strcmp(cur, section) == 0 && header < 0)
                header = (long)i;
            continue;
        }
        if (strcmp(cur, section) != 0)
            continue;
        if (t == L_KEY) {
            last_key = (long)i;
            if (strcmp(name, key) == 0) {
                if (first < 0)
                    first = (long)i;
                else
                    drop[i] = true;
            }
        } else if (t == L_TEMPLATE && templ < 0 && strcmp(name, key) == 0) {
            templ = (long)i;
        }
    }
    /* Where the new lines go: instead of the first key line, else after these. */
    long after = first >= 0 ? -1 : templ >= 0 ? templ : last_key >= 0 ? last_key : header;
    FILE *o = NULL;
    char *text = NULL;
    size_t textlen = 0;
    if ((o = open_memstream(&text, &textlen))) {
        for (size_t i = 0; i < nspans; i++) {
            if (drop[i])
                continue;
            if ((long)i == first)
                fputs(lines, o);
            else
                fwrite(spans[i].start, 1, spans[i].len, o);
            if ((long)i == after) {
                if (spans[i].start[spans[i].len - 1] != '\n')
                    fputc('\n', o);
                fputs(lines, o);
            }
        }
        if (first < 0 && after < 0) {
            if (oldlen && old[oldlen - 1] != '\n')
                fputc('\n', o);
            fprintf(o, "%s[%s]\n%s", oldlen ? "\n" : "", section, lines);
        }
        if (fclose(o) != 0) {
            o = NULL;
            free(text);
            text = NULL;
        }
    }
    free(drop);
    free(spans);
    free(old);
    free(lines);
    if (!o) {
        return PM_E_NOMEM;
    }

    /* Replace atomically, keeping the file's mode. */
    struct stat st;
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : 0644;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    rc = PM_E_IO;
    if (fd < 0) {
        say(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
    } else if (fchmod(fd, mode) != 0 || write_all(fd, text, textlen) != 0 || fsync(fd) != 0) {
        say(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    } else if (close(fd) != 0 || rename(tmp, path) != 0) {
        say(err, errlen, "%s: cannot replace: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        (void)fsync_dir_of(path);
        rc = PM_OK;
    }
    free(text);
    return rc;
}
