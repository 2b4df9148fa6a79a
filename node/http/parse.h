/* Parsing the untrusted parts of a request the server itself reads (libmicrohttpd
 * parses the request line and headers): the path, credentials, cookies and Accept.
 * Pure functions, fuzzed by test/fuzz_http.c. */
#ifndef PM_HTTP_PARSE_H
#define PM_HTTP_PARSE_H

#include <stddef.h>

#define PM_HTTP_SEGS_MAX 12
#define PM_HTTP_PATH_MAX 2048

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

#endif
