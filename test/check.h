/* Always-on test assertions and per-test temporary directories.
 *
 * Unlike assert(), these are never compiled out: a failure prints file:line, the
 * failed expression (and for return codes the pm_strerror text) and exits 1, which
 * the automake test driver reports as FAIL. Header-only so that any test program can
 * include it without a link dependency. */
#ifndef PM_TEST_CHECK_H
#define PM_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf, mkdtemp; configure normally defines it */
#endif
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/error.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, %s == %lld\n", __FILE__,      \
                    __LINE__, #a, check_a_, #b, check_b_);                                         \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *check_sa_ = (a), *check_sb_ = (b);                                             \
        if (strcmp(check_sa_, check_sb_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: CHECK_EQ_STR failed: %s == \"%s\", %s == \"%s\"\n", __FILE__,  \
                    __LINE__, #a, check_sa_, #b, check_sb_);                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Expects a pm_* return code equal to want; prints both codes' pm_strerror texts. */
#define CHECK_CODE(expr, want)                                                                     \
    do {                                                                                           \
        int check_rc_ = (expr), check_want_ = (want);                                              \
        if (check_rc_ != check_want_) {                                                            \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__,  \
                    #expr, check_rc_, pm_strerror(check_rc_), check_want_,                         \
                    pm_strerror(check_want_));                                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* Expects PM_OK. */
#define CHECK_RC(expr) CHECK_CODE(expr, PM_OK)

static inline int check_rm_tree_(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -1;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *child;
            if (asprintf(&child, "%s/%s", path, e->d_name) < 0)
                break;
            check_rm_tree_(child);
            free(child);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

/* Creates a fresh directory "$TMPDIR/pm-<name>-XXXXXX" (or under /tmp) and returns it
 * (the caller's, free it with check_tmpdir_remove). Exits on failure. */
static inline char *check_tmpdir(const char *name)
{
    const char *base = getenv("TMPDIR");
    char *path;
    if (!base || !*base)
        base = "/tmp";
    if (asprintf(&path, "%s/pm-%s-XXXXXX", base, name) < 0 || !mkdtemp(path)) {
        fprintf(stderr, "check_tmpdir(%s): cannot create a temporary directory\n", name);
        exit(1);
    }
    return path;
}

/* Removes the tree at *dir_p recursively, frees the string and clears the pointer. */
static inline void check_tmpdir_remove(char **dir_p)
{
    if (!dir_p || !*dir_p)
        return;
    check_rm_tree_(*dir_p);
    free(*dir_p);
    *dir_p = NULL;
}

/* "<dir>/<name>" in a fresh string; exits on failure. */
static inline char *check_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0) {
        fprintf(stderr, "check_path: out of memory\n");
        exit(1);
    }
    return p;
}

#endif
