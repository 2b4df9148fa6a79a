/* libFuzzer target over what the web server parses itself (node/http/parse.c): the
 * request path, Basic and Bearer credentials, the Cookie header and Accept; and the
 * QIDO-RS key names and report texts a request may carry. libmicrohttpd parses the
 * request line and headers before these run.
 *
 * `make check` builds this with test/fuzz_replay.c and replays test/corpus/http/. To
 * fuzz for real, from the source tree after a build in build/:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -Ibuild/proto \
 *       $(pkg-config --cflags libprotobuf-c) test/fuzz_http.c node/http/parse.c \
 *       proto/error.c -lsodium -o /tmp/fuzz_http
 *   mkdir -p /tmp/http-corpus && /tmp/fuzz_http /tmp/http-corpus test/corpus/http
 *
 * The input is lines: path, Authorization, Cookie, Accept (each also tried whole). A
 * path that splits never yields a "." or ".." segment or a backslash. */
#include "node/http/parse.h"
#include "proto/error.h"

#include <stdint.h>
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
    char *line[4] = {"", "", "", ""}, *save = NULL;
    int n = 0;
    for (char *t = strtok_r(text, "\n", &save); t && n < 4; t = strtok_r(NULL, "\n", &save))
        line[n++] = t;
    check_path(line[0]);
    check_headers(line[1], line[2], line[3]);
    free(text);
    return 0;
}
