/* restore BACKUP: the node directory becomes the backup again (docs/operations.md).
 *
 * Refused onto a running node, from a backup without its MANIFEST (it did not finish),
 * and from a backup of another node. The backup is staged in DIR.restoring, marked
 * unconfirmed (node/cli/feed_guard.h) and renamed into place; the previous directory is
 * kept beside it as DIR.before-restore-TIME. A kill at any moment leaves either the old
 * directory in place or the new one (a rerun finishes an interrupted restore). */
#include "crypto/hash.h"
#include "node/cli/backup_files.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/daemon/run_lock.h"
#include "proto/error.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const node_files[] = {"node.conf", "identity.key", "users"};

/* The id (hex) of the identity key at dir/identity.key into hex; PM_E_KEY if none. */
static int key_id(const char *dir, char hex[PM_ID_HEX])
{
    char *path = pm_node_path(dir, "identity.key");
    pm_identity *id = NULL;
    int rc = path && access(path, F_OK) == 0 ? pm_identity_load(path, &id) : PM_E_KEY;
    if (!rc)
        pm_hex_encode(pm_identity_public(id), PM_ID_BYTES, hex);
    pm_identity_destroy(&id);
    free(path);
    return rc;
}

/* Loads and checks the backup: MANIFEST, the files it needs, and that its key is the
 * node's the MANIFEST names. Prints what is wrong. */
static json_t *check_backup(const char *backup)
{
    char *mpath = pm_node_path(backup, "MANIFEST");
    json_error_t err;
    json_t *m = mpath ? json_load_file(mpath, 0, &err) : NULL;
    const char *id = json_string_value(json_object_get(m, "node_id"));
    if (!m && mpath && access(mpath, F_OK) != 0)
        pm_cli_fail("%s is not a complete pacsmesh backup: it has no MANIFEST (the backup did "
                    "not finish, or this is not a backup directory); take a new backup",
                    backup);
    else if (!m || !id || strlen(id) != 2 * PM_ID_BYTES)
        pm_cli_fail("%s: MANIFEST is damaged (%s)", mpath, m ? "no node_id" : err.text);
    free(mpath);
    if (!m || !id || strlen(id) != 2 * PM_ID_BYTES) {
        json_decref(m);
        return NULL;
    }
    const char *needed[] = {"node.conf", "identity.key", "store/data.mdb"};
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++) {
        char *p = pm_node_path(backup, needed[i]);
        int missing = !p || access(p, R_OK) != 0;
        free(p);
        if (missing) {
            pm_cli_fail("%s is an incomplete backup: %s is missing", backup, needed[i]);
            json_decref(m);
            return NULL;
        }
    }
    char hex[PM_ID_HEX];
    if (key_id(backup, hex) != PM_OK || strcmp(hex, id) != 0) {
        pm_cli_fail("%s: identity.key is not the key of node %.16s that its MANIFEST names", backup,
                    id);
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The target: no node runs there, and what is there is the same node. */
static int check_target(const char *dir, json_t *m)
{
    if (pm_run_lock_held(dir))
        return pm_cli_fail("a node is running on %s: stop it before restoring (restore "
                           "replaces its directory)",
                           dir);
    char hex[PM_ID_HEX];
    const char *id = json_string_value(json_object_get(m, "node_id"));
    if (key_id(dir, hex) == PM_OK && strcmp(hex, id) != 0)
        return pm_cli_fail("the backup is of node '%s' (%.16s), not of the node in %s "
                           "(%.16s): refusing to replace one node with another",
                           json_string_value(json_object_get(m, "name")), id, dir, hex);
    return PM_EXIT_OK;
}

/* Copies the backup into tmp and marks its store unconfirmed. */
static int stage(const char *backup, const char *tmp, json_t *m)
{
    if (pm_backup_remove_tree(tmp) || pm_backup_mkdir(tmp))
        return pm_cli_fail("cannot prepare %s", tmp);
    int rc = PM_OK;
    for (size_t i = 0; !rc && i < sizeof node_files / sizeof *node_files; i++) {
        char *from = pm_node_path(backup, node_files[i]), *to = pm_node_path(tmp, node_files[i]);
        if (from && to && access(from, F_OK) == 0)
            rc = pm_backup_copy_file(from, to, 0600);
        free(from);
        free(to);
    }
    char *sfrom = pm_node_path(backup, "store/data.mdb"), *sdir = pm_node_path(tmp, "store"),
         *sto = pm_node_path(tmp, "store/data.mdb"), *bfrom = pm_node_path(backup, "blobs"),
         *bto = pm_node_path(tmp, "blobs");
    uint64_t files = 0;
    if (!rc && !(rc = pm_backup_mkdir(sdir)) && !(rc = pm_backup_copy_file(sfrom, sto, 0600)))
        rc = pm_backup_copy_blob_tree(bfrom, bto, &files);
    pm_store *store = NULL;
    char why[160];
    snprintf(why, sizeof why, "restored from the backup taken %s",
             json_string_value(json_object_get(m, "created")));
    pm_blobs *blobs = NULL;
    uint64_t dropped = 0;
    if (!rc && !(rc = pm_store_open(sdir, 0, &store)) && !(rc = pm_feed_guard_mark(store, why)) &&
        !(rc = pm_blobs_open(store, bto, &blobs)))
        rc = pm_blobs_forget_missing(blobs, &dropped); /* cached blobs: fetched again on use */
    pm_blobs_close(&blobs);
    pm_store_close(&store);
    if (!rc)
        rc = pm_backup_fsync_dir(sdir);
    free(sfrom), free(sdir), free(sto), free(bfrom), free(bto);
    return rc ? pm_cli_fail("cannot copy the backup into %s: %s", tmp, pm_strerror(rc))
              : PM_EXIT_OK;
}

/* The staged directory replaces dir; the old one is kept beside it. */
static int swap_in(const char *dir, const char *tmp, char *kept, size_t keptlen)
{
    kept[0] = 0;
    if (access(dir, F_OK) == 0) {
        char stamp[32];
        time_t now = time(NULL);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
        snprintf(kept, keptlen, "%s.before-restore-%s", dir, stamp);
        for (int n = 2; access(kept, F_OK) == 0 && n < 1000; n++) /* never onto an older one */
            snprintf(kept, keptlen, "%s.before-restore-%s-%d", dir, stamp, n);
        if (rename(dir, kept) != 0)
            return pm_cli_fail("cannot move %s aside to %s: %s", dir, kept, strerror(errno));
    }
    if (rename(tmp, dir) != 0)
        return pm_cli_fail("cannot move %s into place as %s: %s", tmp, dir, strerror(errno));
    char *parent = strdup(dir), *slash = parent ? strrchr(parent, '/') : NULL;
    if (slash)
        *slash = 0;
    if (parent)
        pm_backup_fsync_dir(slash ? (*parent ? parent : "/") : ".");
    free(parent);
    return PM_EXIT_OK;
}

int pm_cmd_restore(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (!rc && a.nargs != 1)
        rc = pm_cli_usage(a.usage, "give exactly one backup directory");
    json_t *m = NULL;
    if (!rc && !(m = check_backup(a.args[0])))
        rc = PM_EXIT_FAIL;
    if (!rc)
        rc = check_target(a.dir, m);
    char *tmp = NULL, kept[4200];
    if (!rc) {
        size_t len = strlen(a.dir) + 16;
        if ((tmp = malloc(len)))
            snprintf(tmp, len, "%s.restoring", a.dir);
        rc = tmp ? stage(a.args[0], tmp, m) : PM_EXIT_FAIL;
    }
    if (!rc)
        rc = swap_in(a.dir, tmp, kept, sizeof kept);
    if (!rc) {
        printf("restored node '%s' (%.16s) from %s (taken %s; own feed at seq %lld)\n",
               json_string_value(json_object_get(m, "name")),
               json_string_value(json_object_get(m, "node_id")), a.args[0],
               json_string_value(json_object_get(m, "created")),
               (long long)json_integer_value(json_object_get(m, "own_seq")));
        if (*kept)
            printf("the previous directory is kept as %s\n", kept);
        printf("the node signs nothing until a peer confirms how far its own feed goes: "
               "start it with `pacsmesh run`\n");
    }
    json_decref(m);
    free(tmp);
    return rc;
}
