/* Parsing the untrusted parts of a request the server itself reads (libmicrohttpd
 * parses the request line and headers): the path, credentials, cookies, Accept, and a
 * multipart/related body (STOW-RS). Pure functions, fuzzed by test/fuzz_http.c. */
#ifndef PM_HTTP_PARSE_H
#define PM_HTTP_PARSE_H

#include <stddef.h>

#define PM_HTTP_SEGS_MAX 12
#define PM_HTTP_PATH_MAX 2048
#define PM_HTTP_BOUNDARY_MAX 70 /* RFC 2046 5.1.1 */

/* Splits an absolute, already percent-decoded path into segments, in buf (buflen
 * bytes): "/dicom-web/studies/1.2/series" -> {"dicom-web", "studies", "1.2",
 * "series"}. A trailing "/" gives an empty last segment. PM_E_INVAL for a path that is
 * not absolute, has "." or ".." segments, empty inner segments, backslashes, control
 * characters or more than PM_HTTP_SEGS_MAX segments; PM_E_TOOBIG if it does not fit. */
int pm_http_path_split(const char *path, char *buf, size_t buflen, char **segs, int *nsegs);

/* "Basic base64(user:password)" -> user, password. PM_OK or PM_E_INVAL. */
int pm_http_basic_decode(const char *header, char *user, size_t userlen, char *password,
                         size_t pwlen);

/* "Bearer TOKEN" -> TOKEN (64 hex digits). PM_OK or PM_E_INVAL. */
int pm_http_bearer(const char *header, char *token, size_t tokenlen);

/* The value of cookie name in a Cookie header. PM_OK, PM_E_NOTFOUND, PM_E_TOOBIG. */
int pm_http_cookie(const char *header, const char *name, char *out, size_t outlen);

/* 1 if an Accept header (NULL: none) accepts media type type ("application/dicom+json"):
 * absent, * / *, type/ *, or type itself (parameters ignored). */
int pm_http_accepts(const char *accept, const char *type);

/* The value of parameter name (e.g. "transfer-syntax") of the first media range of
 * Accept that names type, without quotes; "" if absent. */
void pm_http_accept_param(const char *accept, const char *type, const char *name, char *out,
                          size_t outlen);

/* The boundary parameter of a multipart Content-Type value (ctype; NULL: none), without
 * its quotes, into out (outlen bytes); "" if there is none, it is empty, longer than
 * PM_HTTP_BOUNDARY_MAX, does not fit or holds a control character (CR, LF, ...). */
void pm_http_multipart_boundary(const char *ctype, char *out, size_t outlen);

/* One part of a multipart body: its data (after its headers, up to the CRLF before the
 * next delimiter) is the len bytes at offset start of the body. */
typedef struct {
    size_t start, len;
} pm_http_part;

/* Splits a multipart body (len bytes at body, not necessarily NUL-terminated, never read
 * past) into its parts, delimited by "--" boundary (1 to PM_HTTP_BOUNDARY_MAX
 * characters, as pm_http_multipart_boundary gives it). The parts go into parts (room
 * for max), their number into *nparts (on failure, those found before the fault); they
 * point into body, which the caller keeps. Each part that has a Content-Type header
 * must name type (a prefix, case-insensitive; NULL: any). The body is checked whole:
 * PM_OK only if every delimiter line ends with CRLF, every part's headers end, the last
 * part is closed by the boundary and there are 1 to max parts; otherwise PM_E_INVAL
 * (PM_E_TOOBIG for more than max parts) and why the body is malformed in why (whylen
 * bytes). Text before the first delimiter and after the closing one is ignored. */
int pm_http_multipart_split(const char *body, size_t len, const char *boundary, const char *type,
                            pm_http_part *parts, size_t max, size_t *nparts, char *why,
                            size_t whylen);

#endif
