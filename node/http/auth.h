/* Who is asking: users (node/users), sessions and tokens, and sign-in rate limits.
 *
 * Sessions (the cookie set by POST /api/login) and bearer tokens (POST /api/tokens) are
 * 32 random bytes, shown as 64 hex digits; the server keeps only their BLAKE2b hashes,
 * in memory (a restart signs everyone out). A session or token names a user: removing
 * the user, or changing the users file so that the name is gone, ends it at once.
 * The users file is re-read when it changes (`pacsmesh user add` takes effect without a
 * restart). Basic credentials that verified are remembered (keyed hash of name and
 * password) for PM_HTTP_BASIC_CACHE_S, so scripts do not pay Argon2id per request.
 *
 * Sign-in failures are counted per client address and per user name; after
 * PM_HTTP_SIGNIN_IP_FAILS or PM_HTTP_SIGNIN_FAILS of them within
 * PM_HTTP_SIGNIN_WINDOW_S further attempts are refused
 * (HTTP 429) until the window ends. Thread-safe. */
#ifndef PM_HTTP_AUTH_H
#define PM_HTTP_AUTH_H

#include <stdint.h>

#include "node/users/users.h"

#define PM_HTTP_TOKEN_HEX 65 /* 64 hex digits and NUL */
#define PM_HTTP_SESSION_S (8 * 3600)
#define PM_HTTP_TOKEN_MAX_S (30 * 86400)
#define PM_HTTP_SESSIONS_MAX 4096
#define PM_HTTP_SIGNIN_FAILS 5     /* per user name */
#define PM_HTTP_SIGNIN_IP_FAILS 30 /* per client address */
#define PM_HTTP_SIGNIN_WINDOW_S 60
#define PM_HTTP_BASIC_CACHE_S 300

typedef struct pm_http_auth pm_http_auth;

int pm_http_auth_new(const char *users_path, pm_http_auth **out);
void pm_http_auth_destroy(pm_http_auth **self_p);

/* Checks name and password from client address ip. PM_OK (*user filled); PM_E_INVAL
 * (unknown user or wrong password: the caller says which of neither); PM_E_BUSY (too
 * many failures: *retry_s seconds left); PM_E_CONFIG (the users file is unreadable). */
int pm_http_auth_password(pm_http_auth *a, const char *name, const char *password, const char *ip,
                          pm_user *user, int *retry_s);

/* A new session or token for user, valid ttl_s seconds; token receives its hex. */
int pm_http_auth_issue(pm_http_auth *a, const pm_user *user, int ttl_s,
                       char token[PM_HTTP_TOKEN_HEX]);

/* The user of a live session or token. PM_OK or PM_E_NOTFOUND (unknown, expired,
 * or its user is gone). */
int pm_http_auth_token(pm_http_auth *a, const char *token, pm_user *user);

/* The user called name (hash cleared). PM_OK or PM_E_NOTFOUND. */
int pm_http_auth_lookup(pm_http_auth *a, const char *name, pm_user *user);

/* Ends a session or token (sign-out). */
void pm_http_auth_revoke(pm_http_auth *a, const char *token);

#endif
