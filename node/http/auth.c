#include "node/http/auth.h"
#include "node/audit/notes.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { FAIL_SLOTS = 1024, BASIC_SLOTS = 256 };

typedef struct {
    uint8_t hash[32];
    char user[PM_USER_NAME_MAX + 1];
    uint64_t expires_ms;
} live_token;

typedef struct {
    char key[PM_USER_NAME_MAX + 72]; /* "ip " or "user " and the value */
    unsigned fails;
    uint64_t window_start_ms;
} fail_count;

struct pm_http_auth {
    pthread_mutex_t lock;
    char *path;
    pm_users *users;
    struct stat seen; /* of the users file when last read */
    live_token *tokens;
    size_t n_tokens;
    fail_count fails[FAIL_SLOTS];
    live_token basic[BASIC_SLOTS];
    uint8_t basic_key[crypto_generichash_KEYBYTES];
};

/* Re-reads the users file if it changed. Called with the lock held. */
static int refresh_users(pm_http_auth *a)
{
    struct stat st;
    memset(&st, 0, sizeof st);
    if (stat(a->path, &st) != 0)
        memset(&st, 0, sizeof st);
    if (a->users && st.st_ino == a->seen.st_ino && st.st_size == a->seen.st_size &&
        st.st_mtim.tv_sec == a->seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->seen.st_mtim.tv_nsec)
        return PM_OK;
    pm_users *fresh = NULL;
    char err[512];
    int rc = pm_users_load(a->path, &fresh, err, sizeof err);
    if (rc) {
        pm_error("http", "cannot read the users file: %s", err);
        return a->users ? PM_OK : PM_E_CONFIG; /* keep the last good list */
    }
    pm_users_destroy(&a->users);
    a->users = fresh;
    a->seen = st;
    return PM_OK;
}

int pm_http_auth_new(const char *users_path, pm_http_auth **out)
{
    pm_http_auth *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(users_path))) {
        free(a);
        return PM_E_NOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    randombytes_buf(a->basic_key, sizeof a->basic_key);
    refresh_users(a);
    *out = a;
    return PM_OK;
}

void pm_http_auth_destroy(pm_http_auth **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_http_auth *a = *self_p;
    pm_users_destroy(&a->users);
    sodium_memzero(a->basic_key, sizeof a->basic_key);
    free(a->tokens);
    free(a->path);
    pthread_mutex_destroy(&a->lock);
    free(a);
    *self_p = NULL;
}

/* The failure counter of key within the current window, or NULL when it has none. A
 * counter whose window has passed is emptied. */
static fail_count *find_fails(pm_http_auth *a, const char *key, uint64_t now)
{
    for (size_t i = 0; i < FAIL_SLOTS; i++) {
        fail_count *f = &a->fails[i];
        if (!f->fails || strcmp(f->key, key) != 0)
            continue;
        if (now - f->window_start_ms >= PM_HTTP_SIGNIN_WINDOW_S * 1000ull)
            f->fails = 0; /* a new window: the slot is free again */
        return f->fails ? f : NULL;
    }
    return NULL;
}

/* Counts one failure against key: its counter, else a free slot, else the one whose
 * window began longest ago. A free slot is always taken first, so that many keys (an
 * attacker cycling through user names) never push a live counter out while there is
 * room. */
static void count_failure(pm_http_auth *a, const char *key, uint64_t now)
{
    fail_count *f = find_fails(a, key, now);
    for (size_t i = 0; !f && i < FAIL_SLOTS; i++)
        if (!a->fails[i].fails)
            f = &a->fails[i];
    if (!f) {
        f = &a->fails[0];
        for (size_t i = 1; i < FAIL_SLOTS; i++)
            if (a->fails[i].window_start_ms < f->window_start_ms)
                f = &a->fails[i];
    }
    if (!f->fails) {
        memset(f, 0, sizeof *f);
        snprintf(f->key, sizeof f->key, "%s", key);
        f->window_start_ms = now;
    }
    f->fails++;
}

static int blocked(pm_http_auth *a, const char *key, unsigned limit, uint64_t now, int *retry_s)
{
    const fail_count *f = find_fails(a, key, now);
    if (!f || f->fails < limit)
        return 0;
    *retry_s = (int)((f->window_start_ms + PM_HTTP_SIGNIN_WINDOW_S * 1000ull - now) / 1000) + 1;
    return 1;
}

static void basic_key(pm_http_auth *a, const char *name, const char *pw, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->basic_key, sizeof a->basic_key, 32);
    crypto_generichash_update(&st, (const uint8_t *)name, strlen(name) + 1);
    crypto_generichash_update(&st, (const uint8_t *)pw, strlen(pw));
    crypto_generichash_final(&st, out, 32);
}

static int copy_user(pm_http_auth *a, const char *name, pm_user *user)
{
    const pm_user *u = pm_users_find(a->users, name);
    if (!u)
        return PM_E_NOTFOUND;
    *user = *u;
    memset(user->hash, 0, sizeof user->hash);
    return PM_OK;
}

int pm_http_auth_password(pm_http_auth *a, const char *name, const char *password, const char *ip,
                          pm_user *user, int *retry_s)
{
    char kip[PM_USER_NAME_MAX + 72], kuser[PM_USER_NAME_MAX + 72];
    snprintf(kip, sizeof kip, "ip %.64s", ip ? ip : "?");
    snprintf(kuser, sizeof kuser, "user %.64s", name);
    uint8_t bk[32];
    basic_key(a, name, password, bk);
    uint64_t now = pm_now_ms();
    pthread_mutex_lock(&a->lock);
    int rc = refresh_users(a);
    if (!rc && (blocked(a, kip, PM_HTTP_SIGNIN_IP_FAILS, now, retry_s) ||
                blocked(a, kuser, PM_HTTP_SIGNIN_FAILS, now, retry_s)))
        rc = PM_E_BUSY;
    for (size_t i = 0; !rc && i < BASIC_SLOTS; i++)
        if (a->basic[i].expires_ms > now && sodium_memcmp(a->basic[i].hash, bk, 32) == 0 &&
            copy_user(a, name, user) == PM_OK) {
            pthread_mutex_unlock(&a->lock);
            return PM_OK;
        }
    pm_user found;
    int known = !rc && pm_users_find(a->users, name);
    if (known)
        found = *pm_users_find(a->users, name);
    pthread_mutex_unlock(&a->lock);
    if (rc)
        return rc;
    /* Argon2id outside the lock: it takes a while by design. */
    int ok = known && pm_users_verify(&found, password);
    pthread_mutex_lock(&a->lock);
    if (ok && copy_user(a, name, user) == PM_OK) {
        live_token *slot = &a->basic[bk[0] % BASIC_SLOTS];
        memcpy(slot->hash, bk, 32);
        snprintf(slot->user, sizeof slot->user, "%s", name);
        slot->expires_ms = now + PM_HTTP_BASIC_CACHE_S * 1000ull;
    } else {
        ok = 0;
        count_failure(a, kip, now);
        count_failure(a, kuser, now);
    }
    pthread_mutex_unlock(&a->lock);
    sodium_memzero(&found, sizeof found);
    if (!ok)
        pm_warn("http", "failed sign-in for user '%.64s' from %s", name, ip ? ip : "?");
    pm_audit_note_signin(name, ip, ok); /* a checked password, not a cached one (node/audit) */
    return ok ? PM_OK : PM_E_INVAL;
}

static void hash_token(const char *hex, uint8_t out[32])
{
    crypto_generichash(out, 32, (const uint8_t *)hex, strlen(hex), NULL, 0);
}

int pm_http_auth_issue(pm_http_auth *a, const pm_user *user, int ttl_s,
                       char token[PM_HTTP_TOKEN_HEX])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(token, PM_HTTP_TOKEN_HEX, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    uint64_t now = pm_now_ms();
    pthread_mutex_lock(&a->lock);
    size_t kept = 0; /* drop the expired before growing */
    for (size_t i = 0; i < a->n_tokens; i++)
        if (a->tokens[i].expires_ms > now)
            a->tokens[kept++] = a->tokens[i];
    a->n_tokens = kept;
    int rc = PM_OK;
    if (a->n_tokens >= PM_HTTP_SESSIONS_MAX) {
        memmove(a->tokens, a->tokens + 1, (a->n_tokens - 1) * sizeof *a->tokens);
        a->n_tokens--; /* the oldest session ends */
    }
    live_token *grown = realloc(a->tokens, (a->n_tokens + 1) * sizeof *grown);
    if (!grown) {
        rc = PM_E_NOMEM;
    } else {
        a->tokens = grown;
        live_token *t = &a->tokens[a->n_tokens++];
        hash_token(token, t->hash);
        snprintf(t->user, sizeof t->user, "%s", user->name);
        t->expires_ms = now + (uint64_t)ttl_s * 1000;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int pm_http_auth_token(pm_http_auth *a, const char *token, pm_user *user)
{
    uint8_t h[32];
    hash_token(token, h);
    uint64_t now = pm_now_ms();
    int rc = PM_E_NOTFOUND;
    pthread_mutex_lock(&a->lock);
    refresh_users(a);
    for (size_t i = 0; i < a->n_tokens; i++)
        if (memcmp(a->tokens[i].hash, h, 32) == 0) {
            if (a->tokens[i].expires_ms > now)
                rc = copy_user(a, a->tokens[i].user, user);
            break;
        }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void pm_http_auth_revoke(pm_http_auth *a, const char *token)
{
    uint8_t h[32];
    hash_token(token, h);
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_tokens; i++)
        if (memcmp(a->tokens[i].hash, h, 32) == 0)
            a->tokens[i].expires_ms = 0;
    pthread_mutex_unlock(&a->lock);
}

int pm_http_auth_lookup(pm_http_auth *a, const char *name, pm_user *user)
{
    pthread_mutex_lock(&a->lock);
    refresh_users(a);
    int rc = copy_user(a, name, user);
    pthread_mutex_unlock(&a->lock);
    return rc;
}
