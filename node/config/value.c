/* node.conf value syntax: each kind of value parsed, checked and formatted once. */
#include "node/config/value.h"
#include "proto/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SECOND PM_CONFIG_SECOND_MS
#define DAY PM_CONFIG_DAY_MS
#define IPC_PATH_MAX 107 /* sun_path less its NUL */

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const priority_names[] = {"immediate", "urgent", "routine"};

void pm_config_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A printable, bounded rendering of untrusted text for messages. */
const char *pm_config_quote(const char *v, char buf[PM_CONFIG_QUOTE_MAX])
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

bool pm_config_has_control(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static int lookup(const char *v, const char *const *names, int n)
{
    for (int i = 0; v && i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

int pm_config_level_index(const char *name)
{
    return lookup(name, level_names, 4);
}

const char *pm_config_level_name(int level)
{
    return level_names[level & 3];
}

int pm_config_priority_index(const char *name)
{
    return lookup(name, priority_names, 3);
}

/* Decimal digits only, at least one, no overflow. */
int pm_config_parse_uint(const char *s, const char **end, uint64_t *out)
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
        if (pm_config_parse_uint(p, &p, &n) != PM_OK)
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
    if (!text || pm_config_parse_uint(text, &p, &n) != PM_OK)
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

static bool is_hostname(const char *h, size_t len)
{
    if (len == 0 || len > 253 || h[0] == '-' || h[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

bool pm_config_is_ip(const char *h, int *family)
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
    if (pm_config_parse_uint(colon + 1, NULL, &p) != PM_OK || p < 1 || p > 65535)
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
        if (!pm_config_is_ip(host, &fam) || fam != AF_INET6)
            return PM_E_INVAL;
    } else {
        if (len >= hostlen || memchr(h, ':', len))
            return PM_E_INVAL;
        memcpy(host, h, len);
        host[len] = '\0';
        if (strcmp(host, "*") != 0 && !pm_config_is_ip(host, NULL) && !is_hostname(host, len))
            return PM_E_INVAL;
    }
    *port = (int)p;
    return PM_OK;
}

static bool is_wildcard_host(const char *h)
{
    return strcmp(h, "*") == 0 || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

int pm_config_check_endpoint(const char *v, bool bind, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX], host[256];
    int port;
    if (strlen(v) > PM_CONFIG_ENDPOINT_MAX) {
        pm_config_errf(why, wl, "%s is longer than %d characters", pm_config_quote(v, q),
                       PM_CONFIG_ENDPOINT_MAX);
        return PM_E_CONFIG;
    }
    if (strncmp(v, "tcp://", 6) == 0) {
        if (split_hostport(v + 6, host, sizeof host, &port) != PM_OK) {
            pm_config_errf(why, wl, "%s is not an endpoint (tcp://host:port or ipc://path)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        if (!bind && is_wildcard_host(host)) {
            pm_config_errf(why, wl, "%s has a wildcard host; give an address peers can reach",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    if (strncmp(v, "ipc://", 6) == 0) {
        size_t len = strlen(v + 6);
        if (len == 0 || len > IPC_PATH_MAX || pm_config_has_control(v)) {
            pm_config_errf(why, wl, "%s is not an ipc endpoint (ipc://path, path 1-%d characters)",
                           pm_config_quote(v, q), IPC_PATH_MAX);
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    pm_config_errf(why, wl, "%s is not an endpoint (tcp://host:port or ipc://path)",
                   pm_config_quote(v, q));
    return PM_E_CONFIG;
}

int pm_config_check_hostport(const char *v, char *why, size_t wl)
{
    char q[96], host[256];
    int port;
    if (split_hostport(v, host, sizeof host, &port) != PM_OK) {
        pm_config_errf(why, wl, "%s is not host:port (e.g. ris.trust.example:2575)",
                       pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_config_check_loopback(const char *v, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX], host[256];
    int port;
    if (split_hostport(v, host, sizeof host, &port) != PM_OK) {
        pm_config_errf(why, wl, "%s is not host:port (e.g. 127.0.0.1:9464)", pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    unsigned char a[16];
    bool loop = strcmp(host, "localhost") == 0 ||
                (inet_pton(AF_INET, host, a) == 1 && a[0] == 127) ||
                (inet_pton(AF_INET6, host, a) == 1 &&
                 memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0);
    if (!loop) {
        pm_config_errf(
            why, wl,
            "%s is not a loopback address (e.g. 127.0.0.1:9464); metrics stay on this host",
            pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_config_check_ae(const char *v, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX];
    size_t len = strlen(v);
    bool blank = true;
    for (size_t i = 0; i < len; i++)
        if (v[i] != ' ')
            blank = false;
    if (len == 0 || len > PM_DICOM_AE_MAX || blank || strchr(v, '\\') || pm_config_has_control(v)) {
        pm_config_errf(why, wl, "%s is not an AE title (1-16 characters, no backslash)",
                       pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_config_check_destination(const char *v, pm_dicom_destination *d, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX], hostport[300];
    /* host:port, optionally followed by the word tls */
    size_t n = strcspn(v, " \t");
    const char *opt = v + n + strspn(v + n, " \t");
    d->tls = 0;
    if (*opt && strcmp(opt, "tls") != 0) {
        pm_config_errf(why, wl, "%s: after host:port only the word tls may follow",
                       pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    if (n >= sizeof hostport) {
        pm_config_errf(why, wl, "%s is not host:port (e.g. 10.0.0.5:104)", pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    memcpy(hostport, v, n);
    hostport[n] = '\0';
    if (split_hostport(hostport, d->host, sizeof d->host, &d->port) != PM_OK ||
        strcmp(d->host, "*") == 0) {
        pm_config_errf(why, wl, "%s is not host:port (e.g. 10.0.0.5:104)", pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    d->tls = *opt != '\0';
    return PM_OK;
}
