/* libFuzzer target over what the web server parses itself (node/http/parse.c): the
 * request path, Basic and Bearer credentials, the Cookie header and Accept with its
 * parameters; and, for STOW-RS, the boundary of a multipart Content-Type and the split
 * of a multipart/related body into its parts. libmicrohttpd parses the request line and
 * headers before these run.
 *
 * `make check` builds this with test/fuzz_replay.c and replays test/corpus/http/. To
 * fuzz for real, from the source tree after a build in build/:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -Ibuild/proto \
 *       $(pkg-config --cflags libprotobuf-c) test/fuzz_http.c node/http/parse.c \
 *       proto/error.c -lsodium -o /tmp/fuzz_http
 *   mkdir -p /tmp/http-corpus && /tmp/fuzz_http /tmp/http-corpus test/corpus/http
 *
 * The input is lines: path, Authorization, Cookie, Accept, Content-Type (each also
 * tried whole), and after the Content-Type's line the body, whose bytes (CRs and LFs
 * included) are split by the Content-Type's boundary; the whole input is also split as
 * a body delimited by "--b". A path that splits never yields a "." or ".." segment or a
 * backslash. A boundary is at most PM_HTTP_BOUNDARY_MAX characters of the Content-Type,
 * without CR or LF. Split parts lie inside the body, in order, each ended by the first
 * CRLF "--" boundary after its start, and there are 1 to the given most of them. */
#include "node/http/parse.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_path(const char *p)
{
    char buf[PM_HTTP_PATH_MAX + 2], *segs[PM_HTTP_SEGS_MAX];
    int n = 0;
    if (pm_http_path_split(p, buf, sizeof buf, segs, &n) != PM_OK)
        return;
    if (n < 1 || n > PM_HTTP_SEGS_MAX)
        abort();
    for (int i = 0; i < n; i++)
        if (strcmp(segs[i], ".") == 0 || strcmp(segs[i], "..") == 0 || strchr(segs[i], '\\'))
            abort();
}

static void check_headers(const char *authz, const char *cookie, const char *accept)
{
    char user[66], pw[258], tok[65], val[80], ts[80];
    if (pm_http_basic_decode(authz, user, sizeof user, pw, sizeof pw) == PM_OK &&
        (strlen(user) >= sizeof user || strlen(pw) >= sizeof pw || !*user))
        abort();
    if (pm_http_bearer(authz, tok, sizeof tok) == PM_OK && strlen(tok) != 64)
        abort();
    if (pm_http_cookie(cookie, "pm_session", val, sizeof val) == PM_OK && strlen(val) >= sizeof val)
        abort();
    (void)pm_http_accepts(accept, "application/dicom+json");
    (void)pm_http_accepts(accept, "multipart/related");
    pm_http_accept_param(accept, "multipart/related", "transfer-syntax", ts, sizeof ts);
    if (strlen(ts) >= sizeof ts)
        abort();
}

/* At most this many parts, so that fuzzing reaches "too many parts". */
#define FUZZ_PARTS_MAX 8

static void check_split(const char *body, size_t len, const char *boundary)
{
    pm_http_part parts[FUZZ_PARTS_MAX];
    size_t n = 0;
    char why[128] = "", next[PM_HTTP_BOUNDARY_MAX + 5];
    int rc = pm_http_multipart_split(body, len, boundary, "application/dicom", parts,
                                     FUZZ_PARTS_MAX, &n, why, sizeof why);
    if (rc != PM_OK) {
        if ((rc != PM_E_INVAL && rc != PM_E_TOOBIG) || !*why || n > FUZZ_PARTS_MAX)
            abort();
        return;
    }
    size_t nl = (size_t)snprintf(next, sizeof next, "\r\n--%s", boundary), prev_end = 0;
    if (n < 1 || n > FUZZ_PARTS_MAX || *why)
        abort();
    for (size_t i = 0; i < n; i++) {
        const pm_http_part *pt = &parts[i];
        /* inside the body with its delimiter after it, after the previous one's */
        if (pt->start > len || pt->len > len - pt->start || nl > len - pt->start - pt->len ||
            pt->start < prev_end)
            abort();
        /* the first delimiter after its start ends it */
        if (memmem(body + pt->start, pt->len + nl, next, nl) != body + pt->start + pt->len)
            abort();
        prev_end = pt->start + pt->len + nl;
    }
}

static void check_multipart(const char *ctype, const char *body, size_t len)
{
    char boundary[PM_HTTP_BOUNDARY_MAX + 1];
    pm_http_multipart_boundary(ctype, boundary, sizeof boundary);
    size_t bl = strlen(boundary);
    if (bl > PM_HTTP_BOUNDARY_MAX || strpbrk(boundary, "\r\n") || (bl && !strstr(ctype, boundary)))
        abort();
    if (bl)
        check_split(body, len, boundary);
}

/* A copy of n bytes at p, exactly as long, so that a read past its end is caught. */
static char *exact_copy(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c)
        memcpy(c, p, n);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    check_path(text);
    check_headers(text, text, text);
    check_multipart(text, "", 0);
    char *whole = exact_copy(data, size);
    if (whole)
        check_split(whole, size, "b");
    free(whole);
    char *line[5] = {"", "", "", "", ""}, *save = NULL;
    int n = 0;
    for (char *t = strtok_r(text, "\n", &save); t && n < 5; t = strtok_r(NULL, "\n", &save))
        line[n++] = t;
    check_path(line[0]);
    check_headers(line[1], line[2], line[3]);
    /* The body: the input's bytes after the Content-Type's line. */
    size_t at = n == 5 ? (size_t)(line[4] - text) + strlen(line[4]) + 1 : size;
    at = at < size ? at : size;
    char *body = exact_copy(data + at, size - at);
    if (body)
        check_multipart(line[4], body, size - at);
    free(body);
    free(text);
    return 0;
}
