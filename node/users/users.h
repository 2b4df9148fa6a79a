/* The people who sign in to a node's web server: DIR/users (or [http] users), one
 * user per line, written only by `pacsmesh user add|remove` and read by the server.
 *
 *   # pacsmesh users: NAME ROLE REPORTER HASH
 *   alice reporter dr.alice $argon2id$v=19$m=65536,t=2,p=1$...
 *
 * NAME and REPORTER are 1-64 letters, digits and . _ - @ (REPORTER is "-" when the
 * user has none); ROLE is reporter, coordinator, auditor or admin; HASH is a libsodium
 * crypto_pwhash_str Argon2id string. The file has mode 0600 and is replaced
 * atomically. Passwords are never stored or logged. */
#ifndef PM_USERS_H
#define PM_USERS_H

#include <stddef.h>
#include <stdint.h>

#define PM_USER_NAME_MAX 64
#define PM_USER_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define PM_USER_PASSWORD_MIN 8
#define PM_USER_PASSWORD_MAX 256
#define PM_USERS_MAX 10000

/* Roles are bits so that a route can name every role that may use it. */
typedef enum {
    PM_ROLE_REPORTER = 1,
    PM_ROLE_COORDINATOR = 2,
    PM_ROLE_AUDITOR = 4,
    PM_ROLE_ADMIN = 8,
    PM_ROLE_ANY = 15
} pm_role;

typedef struct {
    char name[PM_USER_NAME_MAX + 1];
    pm_role role;
    char reporter[PM_USER_NAME_MAX + 1]; /* "" when the user is bound to no reporter id */
    char hash[PM_USER_HASH_MAX];
} pm_user;

typedef struct pm_users pm_users;

/* Reads the file at path; a missing file is an empty list. PM_OK, PM_E_CONFIG with
 * "FILE:LINE: reason" in err for a malformed line, PM_E_IO, PM_E_NOMEM. *out is the
 * caller's (pm_users_destroy). */
int pm_users_load(const char *path, pm_users **out, char *err, size_t errlen);

/* Frees. Accepts NULL and *self_p == NULL; clears the pointer. */
void pm_users_destroy(pm_users **self_p);

size_t pm_users_count(const pm_users *u);
/* The i-th user (i < count), borrowed for the life of u. */
const pm_user *pm_users_at(const pm_users *u, size_t i);
/* The user called name, or NULL; borrowed for the life of u. */
const pm_user *pm_users_find(const pm_users *u, const char *name);

/* Adds a user to the file at path (creating it), hashing password with Argon2id.
 * reporter may be NULL or "". PM_E_INVAL (err says which argument), PM_E_EXISTS,
 * PM_E_IO, PM_E_NOMEM. */
int pm_users_add(const char *path, const char *name, pm_role role, const char *reporter,
                 const char *password, char *err, size_t errlen);

/* Removes the user called name. PM_E_NOTFOUND, PM_E_IO. */
int pm_users_remove(const char *path, const char *name, char *err, size_t errlen);

/* 1 if password is the user's, else 0 (constant time in the password; Argon2id). */
int pm_users_verify(const pm_user *user, const char *password) __attribute__((warn_unused_result));

/* "reporter", "coordinator", "auditor", "admin"; "?" for anything else. */
const char *pm_users_role_name(pm_role role);
/* PM_OK or PM_E_INVAL. */
int pm_users_role_parse(const char *text, pm_role *out);

/* 1 if text is a valid user name or reporter id (1-64 of letters, digits, . _ - @). */
int pm_users_name_ok(const char *text);

#endif
