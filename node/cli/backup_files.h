/* The file work of `backup` and `restore` (node/cli/cmd_backup.c): durable copies, so
 * that a backup's MANIFEST (written last) or a restored directory (renamed into place
 * last) only ever names files that are whole on disk. */
#ifndef PM_BACKUP_FILES_H
#define PM_BACKUP_FILES_H

#include <stdint.h>
#include <sys/types.h>

/* Copies the file from to to (created or truncated with mode) and fsyncs it.
 * PM_E_IO, logged with the path, on failure. */
int pm_backup_copy_file(const char *from, const char *to, mode_t mode);

/* mkdir 0700; an existing directory is fine. */
int pm_backup_mkdir(const char *path);

/* fsync of a directory, so renames and new entries in it are durable. */
int pm_backup_fsync_dir(const char *dir);

/* Copies a blob directory (DIR/xx/<hash> files) into to; *files receives the count.
 * A missing from is an empty tree. */
int pm_backup_copy_blob_tree(const char *from, const char *to, uint64_t *files);

/* rm -r path (a leftover of an interrupted restore); a missing path is fine. */
int pm_backup_remove_tree(const char *path);

#endif
