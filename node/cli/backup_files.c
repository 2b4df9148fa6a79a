/* File copying for backup and restore (node/cli/backup_files.h). */
#include "node/cli/backup_files.h"
#include "proto/error.h"
#include "proto/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pm_backup_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return PM_E_IO;
    int rc = fsync(fd) == 0 ? PM_OK : PM_E_IO;
    close(fd);
    return rc;
}

int pm_backup_copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY), out = -1, rc = PM_OK;
    if (in < 0) {
        pm_error("backup", "cannot read %s: %s", from, strerror(errno));
        return PM_E_IO;
    }
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (out < 0) {
        pm_error("backup", "cannot create %s: %s", to, strerror(errno));
        close(in);
        return PM_E_IO;
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = PM_E_IO;
            break;
        }
        for (ssize_t off = 0; off < n && !rc;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                rc = PM_E_IO;
            else if (w > 0)
                off += w;
        }
        if (rc)
            break;
    }
    if (!rc && fsync(out) != 0) /* durable before anything names it as copied */
        rc = PM_E_IO;
    if (rc)
        pm_error("backup", "cannot copy %s to %s: %s", from, to, strerror(errno));
    close(in);
    close(out);
    return rc;
}

int pm_backup_mkdir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        pm_error("backup", "cannot create %s: %s", path, strerror(errno));
        return PM_E_IO;
    }
    return PM_OK;
}

/* Copies every regular file of from into to (created), one level. */
static int copy_flat(const char *from, const char *to, uint64_t *files)
{
    DIR *d = opendir(from);
    if (!d)
        return PM_E_IO;
    int rc = pm_backup_mkdir(to);
    struct dirent *e;
    char src[4096], dst[4096];
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(src, sizeof src, "%s/%s", from, e->d_name) >= (int)sizeof src ||
            snprintf(dst, sizeof dst, "%s/%s", to, e->d_name) >= (int)sizeof dst) {
            rc = PM_E_TOOBIG;
            break;
        }
        struct stat st;
        if (stat(src, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!(rc = pm_backup_copy_file(src, dst, 0600)))
            (*files)++;
    }
    closedir(d);
    if (!rc)
        rc = pm_backup_fsync_dir(to);
    return rc;
}

int pm_backup_copy_blob_tree(const char *from, const char *to, uint64_t *files)
{
    *files = 0;
    DIR *d = opendir(from);
    if (!d)
        return errno == ENOENT ? PM_OK : PM_E_IO; /* a node without blobs yet */
    int rc = pm_backup_mkdir(to);
    struct dirent *e;
    char src[4096], dst[4096];
    while (!rc && (e = readdir(d))) {
        /* Only the two-hex-digit fan-out directories: not the spool's partial files. */
        if (strlen(e->d_name) != 2 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(src, sizeof src, "%s/%s", from, e->d_name) >= (int)sizeof src ||
            snprintf(dst, sizeof dst, "%s/%s", to, e->d_name) >= (int)sizeof dst)
            rc = PM_E_TOOBIG;
        else
            rc = copy_flat(src, dst, files);
    }
    closedir(d);
    if (!rc)
        rc = pm_backup_fsync_dir(to);
    return rc;
}

int pm_backup_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? PM_OK : PM_E_IO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? PM_OK : PM_E_IO;
    DIR *d = opendir(path);
    if (!d)
        return PM_E_IO;
    struct dirent *e;
    int rc = PM_OK;
    char sub[4096];
    while (!rc && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) >= (int)sizeof sub
                 ? PM_E_TOOBIG
                 : pm_backup_remove_tree(sub);
    }
    closedir(d);
    if (!rc && rmdir(path) != 0)
        rc = PM_E_IO;
    return rc;
}
