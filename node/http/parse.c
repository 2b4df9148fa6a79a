#include "node/http/parse.h"
#include "proto/error.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int pm_http_path_split(const char *path, char *buf, size_t buflen, char **segs, int *nsegs)
{
    *nsegs = 0;
    if (!path || path[0] != '/')
        return PM_E_INVAL;
    size_t len = strlen(path);
    if (len >= buflen || len > PM_HTTP_PATH_MAX)
        return PM_E_TOOBIG;
    memcpy(buf, path + 1, len);
    char *p = buf;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = 0;
        if (*nsegs >= PM_HTTP_SEGS_MAX)
            return PM_E_INVAL;
        if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0 || (slash && !*p && *nsegs > 0) ||
            (slash && !*p && *nsegs == 0 && len > 1))
            return PM_E_INVAL;
        for (const unsigned char *c = (const unsigned char *)p; *c; c++)
            if (*c < 0x20 || *c == 0x7f || *c == '\\')
                return PM_E_INVAL;
        segs[(*nsegs)++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    return PM_OK;
}

int pm_http_basic_decode(const char *header, char *user, size_t userlen, char *password,
                         size_t pwlen)
{
    if (!header || strncasecmp(header, "Basic ", 6) != 0)
        return PM_E_INVAL;
    const char *b64 = header + 6;
    while (*b64 == ' ')
        b64++;
    unsigned char raw[512];
    size_t rawlen = 0;
    if (strlen(b64) > 680 || sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), " ", &rawlen,
                                               NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
        return PM_E_INVAL;
    raw[rawlen] = 0;
    char *colon = memchr(raw, ':', rawlen);
    int rc = PM_E_INVAL;
    if (colon && strlen((char *)raw) == rawlen) {
        *colon = 0;
        size_t ul = strlen((char *)raw), pl = strlen(colon + 1);
        if (ul && ul < userlen && pl < pwlen) {
            memcpy(user, raw, ul + 1);
            memcpy(password, colon + 1, pl + 1);
            rc = PM_OK;
        }
    }
    sodium_memzero(raw, sizeof raw);
    return rc;
}

static int is_token(const char *t, size_t n)
{
    if (n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)t[i]))
            return 0;
    return 1;
}

int pm_http_bearer(const char *header, char *token, size_t tokenlen)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return PM_E_INVAL;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && t[n - 1] == ' ')
        n--;
    if (!is_token(t, n) || n >= tokenlen)
        return PM_E_INVAL;
    memcpy(token, t, n);
    token[n] = 0;
    return PM_OK;
}

int pm_http_cookie(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= outlen)
                return PM_E_TOOBIG;
            memcpy(out, p + nl + 1, vl);
            out[vl] = 0;
            return PM_OK;
        }
        p = end;
    }
    return PM_E_NOTFOUND;
}

/* Calls fn for each media range of an Accept header: its type (trimmed) and the text
 * of its parameters. Stops when fn returns non-zero and returns that. */
static int each_range(const char *accept,
                      int (*fn)(void *ctx, const char *type, size_t tlen, const char *params,
                                size_t plen),
                      void *ctx)
{
    const char *p = accept;
    while (p && *p) {
        const char *end = p;
        int quoted = 0;
        while (*end && (quoted || *end != ',')) {
            if (*end == '"')
                quoted = !quoted;
            end++;
        }
        while (*p == ' ')
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *tend = semi ? semi : end;
        while (tend > p && tend[-1] == ' ')
            tend--;
        int r = fn(ctx, p, (size_t)(tend - p), semi ? semi + 1 : end,
                   semi ? (size_t)(end - semi - 1) : 0);
        if (r)
            return r;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int range_accepts(void *ctx, const char *t, size_t n, const char *params, size_t plen)
{
    (void)params;
    (void)plen;
    const char *type = ctx;
    const char *slash = strchr(type, '/');
    size_t major = slash ? (size_t)(slash - type) : strlen(type);
    if ((n == 3 && memcmp(t, "*/*", 3) == 0) || (n == strlen(type) && strncasecmp(t, type, n) == 0))
        return 1;
    return n == major + 2 && strncasecmp(t, type, major) == 0 && t[major] == '/' &&
           t[major + 1] == '*';
}

int pm_http_accepts(const char *accept, const char *type)
{
    if (!accept || !*accept)
        return 1;
    return each_range(accept, range_accepts, (void *)type);
}

typedef struct {
    const char *type, *name;
    char *out;
    size_t outlen;
} param_query;

static int range_param(void *ctx, const char *t, size_t n, const char *params, size_t plen)
{
    param_query *q = ctx;
    if (n != strlen(q->type) || strncasecmp(t, q->type, n) != 0)
        return 0;
    size_t nl = strlen(q->name);
    const char *p = params, *end = params + plen;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *e = p;
        int quoted = 0;
        while (e < end && (quoted || *e != ';')) {
            if (*e == '"')
                quoted = !quoted;
            e++;
        }
        if ((size_t)(e - p) > nl && strncasecmp(p, q->name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1, *ve = e;
            while (ve > v && ve[-1] == ' ')
                ve--;
            if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                v++;
                ve--;
            }
            size_t vl = (size_t)(ve - v);
            if (vl < q->outlen) {
                memcpy(q->out, v, vl);
                q->out[vl] = 0;
            }
            return 1;
        }
        p = e;
    }
    return 1;
}

void pm_http_accept_param(const char *accept, const char *type, const char *name, char *out,
                          size_t outlen)
{
    if (outlen)
        out[0] = 0;
    param_query q = {type, name, out, outlen};
    if (accept)
        each_range(accept, range_param, &q);
}

void pm_http_multipart_boundary(const char *ctype, char *out, size_t outlen)
{
    if (!outlen)
        return;
    out[0] = 0;
    const char *b = ctype ? strcasestr(ctype, "boundary=") : NULL;
    if (!b)
        return;
    b += 9;
    int quoted = *b == '"';
    b += quoted;
    size_t n = quoted ? strcspn(b, "\"") : strcspn(b, "; \t");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
            return; /* not a boundary character (RFC 2046 bchars) */
    if (n && n < outlen && n <= PM_HTTP_BOUNDARY_MAX) {
        memcpy(out, b, n);
        out[n] = 0;
    }
}

/* memmem that also takes a needle longer than the haystack. */
static const char *find(const char *hay, size_t n, const char *needle, size_t nl)
{
    return nl <= n ? memmem(hay, n, needle, nl) : NULL;
}

/* 1 if the headers from h to end (not including the blank line) name no Content-Type,
 * or one that begins with type (NULL: any). The last Content-Type header counts. */
static int part_type_ok(const char *h, const char *end, const char *type)
{
    const char *ct = NULL;
    while (h < end) {
        const char *eol = find(h, (size_t)(end - h), "\r\n", 2);
        size_t hl = eol ? (size_t)(eol - h) : (size_t)(end - h);
        if (hl > 13 && strncasecmp(h, "Content-Type:", 13) == 0)
            ct = h + 13;
        h += hl + 2;
    }
    /* A header line is followed by CRLF, where the reads below stop at the latest. */
    while (ct && *ct == ' ')
        ct++;
    return !ct || !type || strncasecmp(ct, type, strlen(type)) == 0;
}

static int malformed(char *why, size_t whylen, const char *text)
{
    snprintf(why, whylen, "%s", text);
    return PM_E_INVAL;
}

int pm_http_multipart_split(const char *body, size_t len, const char *boundary, const char *type,
                            pm_http_part *parts, size_t max, size_t *nparts, char *why,
                            size_t whylen)
{
    *nparts = 0;
    size_t bl = strlen(boundary);
    if (!bl || bl > PM_HTTP_BOUNDARY_MAX)
        return malformed(why, whylen, "the boundary is empty or too long");
    char next[PM_HTTP_BOUNDARY_MAX + 5];
    size_t nl = (size_t)snprintf(next, sizeof next, "\r\n--%s", boundary), dl = nl - 2;
    const char *delim = next + 2, *end = body + len;
    const char *p = find(body, len, delim, dl);
    if (!p)
        return malformed(why, whylen, "the body holds no part delimited by its boundary");
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return *nparts ? PM_OK : malformed(why, whylen, "the body holds no parts");
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return malformed(why, whylen, "a boundary line does not end with CRLF");
        p += 2;
        const char *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *blank = (end - p >= 2 && p[0] == '\r' && p[1] == '\n') ? p : NULL;
        if (!hend && !blank)
            return malformed(why, whylen, "a part's headers do not end");
        const char *data = blank ? p + 2 : hend + 4;
        if (!part_type_ok(p, blank ? p : hend, type)) {
            snprintf(why, whylen, "a part is not %s", type);
            return PM_E_INVAL;
        }
        const char *stop = find(data, (size_t)(end - data), next, nl);
        if (!stop)
            return malformed(why, whylen, "the last part is not closed by the boundary");
        if (*nparts == max) {
            malformed(why, whylen, "too many parts");
            return PM_E_TOOBIG;
        }
        parts[*nparts].start = (size_t)(data - body);
        parts[(*nparts)++].len = (size_t)(stop - data);
        p = stop + 2;
    }
}
