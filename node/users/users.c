#include "node/users/users.h"
#include "proto/error.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct pm_users {
    pm_user *list;
    size_t n;
};

static const char *const role_names[] = {"reporter", "coordinator", "auditor", "admin"};

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *pm_users_role_name(pm_role role)
{
    for (int i = 0; i < 4; i++)
        if (role == (pm_role)(1 << i))
            return role_names[i];
    return "?";
}

int pm_users_role_parse(const char *text, pm_role *out)
{
    for (int i = 0; text && i < 4; i++)
        if (strcmp(text, role_names[i]) == 0) {
            *out = (pm_role)(1 << i);
            return PM_OK;
        }
    return PM_E_INVAL;
}

int pm_users_name_ok(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > PM_USER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)text[i]) && !strchr("._-@", text[i]))
            return 0;
    return 1;
}

/* One line: NAME ROLE REPORTER HASH. */
static int parse_line(char *line, pm_user *u)
{
    char *save = NULL, *f[5];
    int n = 0;
    for (char *t = strtok_r(line, " \t", &save); t && n < 5; t = strtok_r(NULL, " \t", &save))
        f[n++] = t;
    if (n != 4 || !pm_users_name_ok(f[0]) || pm_users_role_parse(f[1], &u->role) ||
        (strcmp(f[2], "-") != 0 && !pm_users_name_ok(f[2])) || strlen(f[3]) >= PM_USER_HASH_MAX ||
        strncmp(f[3], "$argon2id$", 10) != 0)
        return PM_E_CONFIG;
    snprintf(u->name, sizeof u->name, "%s", f[0]);
    snprintf(u->reporter, sizeof u->reporter, "%s", strcmp(f[2], "-") ? f[2] : "");
    snprintf(u->hash, sizeof u->hash, "%s", f[3]);
    return PM_OK;
}

int pm_users_load(const char *path, pm_users **out, char *err, size_t errlen)
{
    *out = NULL;
    pm_users *u = calloc(1, sizeof *u);
    if (!u)
        return PM_E_NOMEM;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *out = u;
            return PM_OK;
        }
        say(err, errlen, "cannot read %s: %s", path, strerror(errno));
        free(u);
        return PM_E_IO;
    }
    char line[512];
    int lineno = 0, rc = PM_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] != '\n' && !feof(f)) {
            rc = PM_E_CONFIG;
            say(err, errlen, "%s:%d: line too long", path, lineno);
            break;
        }
        line[strcspn(line, "\r\n")] = 0;
        if (line[strspn(line, " \t")] == 0 || line[strspn(line, " \t")] == '#')
            continue;
        pm_user *grown = u->n < PM_USERS_MAX ? realloc(u->list, (u->n + 1) * sizeof *grown) : NULL;
        if (!grown) {
            rc = u->n < PM_USERS_MAX ? PM_E_NOMEM : PM_E_CONFIG;
            say(err, errlen, "%s:%d: too many users", path, lineno);
            break;
        }
        u->list = grown;
        if (parse_line(line, &u->list[u->n]) != PM_OK) {
            rc = PM_E_CONFIG;
            say(err, errlen, "%s:%d: not NAME ROLE REPORTER ARGON2ID-HASH", path, lineno);
            break;
        }
        if (pm_users_find(u, u->list[u->n].name)) {
            rc = PM_E_CONFIG;
            say(err, errlen, "%s:%d: user listed twice", path, lineno);
            break;
        }
        u->n++;
    }
    fclose(f);
    if (rc) {
        pm_users_destroy(&u);
        return rc;
    }
    *out = u;
    return PM_OK;
}

void pm_users_destroy(pm_users **self_p)
{
    if (!self_p || !*self_p)
        return;
    sodium_memzero((*self_p)->list, (*self_p)->n * sizeof(pm_user));
    free((*self_p)->list);
    free(*self_p);
    *self_p = NULL;
}

size_t pm_users_count(const pm_users *u)
{
    return u ? u->n : 0;
}

const pm_user *pm_users_at(const pm_users *u, size_t i)
{
    return u && i < u->n ? &u->list[i] : NULL;
}

const pm_user *pm_users_find(const pm_users *u, const char *name)
{
    for (size_t i = 0; u && name && i < u->n; i++)
        if (strcmp(u->list[i].name, name) == 0)
            return &u->list[i];
    return NULL;
}

/* Writes the list to path atomically (temp file, fsync, rename), mode 0600. */
static int save(const char *path, const pm_users *u, char *err, size_t errlen)
{
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    if (!tmp)
        return PM_E_NOMEM;
    snprintf(tmp, plen, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int ok = f != NULL;
    if (ok)
        ok = fprintf(
                 f, "# pacsmesh users: NAME ROLE REPORTER HASH (written by `pacsmesh user`)\n") > 0;
    for (size_t i = 0; ok && i < u->n; i++)
        ok = fprintf(f, "%s %s %s %s\n", u->list[i].name, pm_users_role_name(u->list[i].role),
                     *u->list[i].reporter ? u->list[i].reporter : "-", u->list[i].hash) > 0;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        say(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok ? PM_OK : PM_E_IO;
}

int pm_users_add(const char *path, const char *name, pm_role role, const char *reporter,
                 const char *password, char *err, size_t errlen)
{
    if (!pm_users_name_ok(name)) {
        say(err, errlen, "'%s' is not a user name (1-64 letters, digits, '.', '_', '-', '@')",
            name ? name : "");
        return PM_E_INVAL;
    }
    if (reporter && *reporter && !pm_users_name_ok(reporter)) {
        say(err, errlen, "'%s' is not a reporter id (1-64 letters, digits, '.', '_', '-', '@')",
            reporter);
        return PM_E_INVAL;
    }
    size_t plen = password ? strlen(password) : 0;
    if (plen < PM_USER_PASSWORD_MIN || plen > PM_USER_PASSWORD_MAX) {
        say(err, errlen, "the password must be %d-%d characters", PM_USER_PASSWORD_MIN,
            PM_USER_PASSWORD_MAX);
        return PM_E_INVAL;
    }
    pm_users *u = NULL;
    int rc = pm_users_load(path, &u, err, errlen);
    if (rc)
        return rc;
    if (pm_users_find(u, name)) {
        say(err, errlen, "user %s already exists", name);
        pm_users_destroy(&u);
        return PM_E_EXISTS;
    }
    pm_user *grown = realloc(u->list, (u->n + 1) * sizeof *grown);
    if (!grown) {
        pm_users_destroy(&u);
        return PM_E_NOMEM;
    }
    u->list = grown;
    pm_user *nu = &u->list[u->n];
    memset(nu, 0, sizeof *nu);
    snprintf(nu->name, sizeof nu->name, "%s", name);
    snprintf(nu->reporter, sizeof nu->reporter, "%s", reporter ? reporter : "");
    nu->role = role;
    if (crypto_pwhash_str_alg(nu->hash, password, plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        pm_users_destroy(&u);
        return PM_E_NOMEM;
    }
    u->n++;
    rc = save(path, u, err, errlen);
    pm_users_destroy(&u);
    return rc;
}

int pm_users_remove(const char *path, const char *name, char *err, size_t errlen)
{
    pm_users *u = NULL;
    int rc = pm_users_load(path, &u, err, errlen);
    if (rc)
        return rc;
    const pm_user *found = pm_users_find(u, name);
    if (!found) {
        say(err, errlen, "no user %s", name ? name : "");
        pm_users_destroy(&u);
        return PM_E_NOTFOUND;
    }
    size_t i = (size_t)(found - u->list);
    memmove(&u->list[i], &u->list[i + 1], (u->n - i - 1) * sizeof *u->list);
    u->n--;
    rc = save(path, u, err, errlen);
    pm_users_destroy(&u);
    return rc;
}

int pm_users_verify(const pm_user *user, const char *password)
{
    if (!user || !password || strlen(password) > PM_USER_PASSWORD_MAX)
        return 0;
    return crypto_pwhash_str_verify(user->hash, password, strlen(password)) == 0;
}
