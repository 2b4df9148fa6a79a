/* The DICOM edge's allow-list (node/dicom/access.h). */
#include "node/dicom/access.h"
#include "proto/error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const char *const right_names[] = {"echo", "store", "find", "get", "move"};
#define N_RIGHTS (sizeof right_names / sizeof *right_names)

static void whyf(char *why, size_t wl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void whyf(char *why, size_t wl, const char *fmt, ...)
{
    if (!why || !wl)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, wl, fmt, ap);
    va_end(ap);
}

const char *pm_access_right_name(unsigned right)
{
    for (size_t i = 0; i < N_RIGHTS; i++)
        if (right == 1u << i)
            return right_names[i];
    return "?";
}

const char *pm_access_verdict_text(pm_access_verdict v)
{
    switch (v) {
    case PM_ACCESS_ACCEPT: return "accepted";
    case PM_ACCESS_UNKNOWN_AE: return "calling AE title not listed in allowed_aes";
    case PM_ACCESS_WRONG_HOST: return "calling AE title not allowed from this address";
    case PM_ACCESS_EMPTY_LIST:
        return "allowed_aes is empty: every association refused (list the AEs that may "
               "query, retrieve or store)";
    }
    return "?";
}

/* "find+get" (or "all") into PM_ACCESS_* bits. */
static int parse_rights(const char *s, unsigned *out, char *why, size_t wl)
{
    *out = 0;
    while (*s) {
        size_t len = strcspn(s, "+");
        unsigned bit = 0;
        if (len == 3 && strncmp(s, "all", 3) == 0)
            bit = PM_ACCESS_ALL;
        for (size_t i = 0; i < N_RIGHTS && !bit; i++)
            if (strlen(right_names[i]) == len && strncmp(s, right_names[i], len) == 0)
                bit = 1u << i;
        if (!bit) {
            whyf(why, wl, "unknown right '%.*s' (echo, store, find, get, move, all)", (int)len, s);
            return PM_E_CONFIG;
        }
        *out |= bit;
        s += len;
        if (*s == '+' && !*++s) {
            whyf(why, wl, "a right is missing after '+'");
            return PM_E_CONFIG;
        }
    }
    if (!*out) {
        whyf(why, wl, "no rights after ':'");
        return PM_E_CONFIG;
    }
    return PM_OK;
}

/* The IPv4 addresses of host (a literal or a name) into e->addrs. */
static int resolve(pm_access_entry *e, char *why, size_t wl)
{
    struct in_addr a;
    if (inet_pton(AF_INET, e->host, &a) == 1 &&
        inet_ntop(AF_INET, &a, e->addrs[0], sizeof e->addrs[0])) {
        e->n_addrs = 1;
        return PM_OK;
    }
    for (const char *c = e->host; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.') {
            whyf(why, wl, "host '%.64s' is neither an IPv4 address nor a host name", e->host);
            return PM_E_CONFIG;
        }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(e->host, NULL, &hints, &res);
    if (rc != 0) {
        whyf(why, wl, "host '%s' does not resolve: %s", e->host, gai_strerror(rc));
        return PM_E_CONFIG;
    }
    e->n_addrs = 0;
    for (struct addrinfo *p = res; p && e->n_addrs < PM_ACCESS_ADDRS_MAX; p = p->ai_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)p->ai_addr;
        char text[PM_ACCESS_ADDR_LEN];
        if (!inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text))
            continue;
        int dup = 0;
        for (size_t i = 0; i < e->n_addrs; i++)
            dup |= strcmp(e->addrs[i], text) == 0;
        if (!dup)
            snprintf(e->addrs[e->n_addrs++], sizeof e->addrs[0], "%s", text);
    }
    freeaddrinfo(res);
    if (!e->n_addrs) {
        whyf(why, wl, "host '%s' has no IPv4 address", e->host);
        return PM_E_CONFIG;
    }
    return PM_OK;
}

static int valid_ae(const char *ae, size_t len)
{
    if (len == 0 || len > PM_DICOM_AE_MAX)
        return 0;
    int blank = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ae[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return 0;
        blank &= c == ' ';
    }
    return !blank;
}

int pm_access_parse(const char *text, pm_access_entry *out, char *why, size_t wl)
{
    memset(out, 0, sizeof *out);
    out->rights = PM_ACCESS_ALL;
    size_t ae_len = strcspn(text, "@:");
    if (!valid_ae(text, ae_len)) {
        whyf(why, wl, "'%.*s' is not an AE title (1-16 characters, no backslash)",
             (int)(ae_len > 64 ? 64 : ae_len), text);
        return PM_E_CONFIG;
    }
    memcpy(out->ae, text, ae_len);
    const char *p = text + ae_len;
    if (*p == '@') {
        p++;
        size_t host_len = strcspn(p, ":");
        if (host_len == 0 || host_len >= sizeof out->host) {
            whyf(why, wl, "'%s': no host after '@' (AE@host, e.g. VIEWER@10.0.0.5)", text);
            return PM_E_CONFIG;
        }
        memcpy(out->host, p, host_len);
        p += host_len;
        int rc = resolve(out, why, wl);
        if (rc != PM_OK)
            return rc;
    }
    if (*p == ':') {
        int rc = parse_rights(p + 1, &out->rights, why, wl);
        if (rc != PM_OK)
            return rc;
    }
    return PM_OK;
}

static int same_ae(const char *listed, const char *ae)
{
    size_t n = strlen(ae);
    while (n && ae[n - 1] == ' ')
        n--;
    return strlen(listed) == n && strncmp(listed, ae, n) == 0;
}

static int host_matches(const pm_access_entry *e, const char *host)
{
    if (!e->host[0])
        return 1;
    for (size_t i = 0; i < e->n_addrs; i++)
        if (strcmp(e->addrs[i], host) == 0)
            return 1;
    return 0;
}

pm_access_verdict pm_access_check(const pm_access_entry *entries, size_t n, int store_from_any,
                                  const char *ae, const char *host, unsigned *rights)
{
    unsigned granted = 0;
    int named = 0, matched = 0;
    for (size_t i = 0; i < n; i++) {
        if (!same_ae(entries[i].ae, ae))
            continue;
        named = 1;
        if (host_matches(&entries[i], host)) {
            matched = 1;
            granted |= entries[i].rights;
        }
    }
    if (store_from_any) /* any AE may send; only listed ones may read */
        granted |= PM_ACCESS_ECHO | PM_ACCESS_STORE;
    *rights = granted;
    if (matched || store_from_any)
        return PM_ACCESS_ACCEPT;
    if (named)
        return PM_ACCESS_WRONG_HOST;
    return n ? PM_ACCESS_UNKNOWN_AE : PM_ACCESS_EMPTY_LIST;
}

const char *pm_dicom_refusal_name(int why)
{
    static const char *const names[PM_DICOM_REFUSED_COUNT] = {
        "called_ae", "calling_ae", "host", "rights", "identity", "tls", "identifier"};
    return why >= 0 && why < PM_DICOM_REFUSED_COUNT ? names[why] : "?";
}
