/* backup | restore | confirm: a node's directory saved while it runs, put back, and
 * the restored node kept from signing blind (docs/operations.md).
 *
 * A backup directory holds node.conf, identity.key, store/data.mdb (LMDB's compacting
 * copy of a read snapshot), the trust's own (pinned) blobs, and MANIFEST, written last:
 * a backup without MANIFEST did not finish and is refused. */
#include "crypto/hash.h"
#include "node/cli/backup_files.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/daemon/run_lock.h"
#include "proto/error.h"
#include "store/feed.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_FORMAT 1

/* Files of the node directory that a backup carries besides the store and blobs. */
static const char *const node_files[] = {"node.conf", "identity.key", "users"};

typedef struct {
    const char *to;
    uint64_t files, bytes;
} blob_copy;

static int copy_pinned(void *ctx, const uint8_t hash[PM_HASH_BYTES], const char *path,
                       uint64_t size)
{
    blob_copy *c = ctx;
    char hex[PM_HASH_HEX], dir[4096], dst[4096 + PM_HASH_HEX];
    pm_hex_encode(hash, PM_HASH_BYTES, hex);
    if (snprintf(dir, sizeof dir, "%s/%.2s", c->to, hex) >= (int)sizeof dir - PM_HASH_HEX - 1)
        return PM_E_TOOBIG;
    snprintf(dst, sizeof dst, "%s/%s", dir, hex);
    int rc = pm_backup_mkdir(dir);
    if (!rc)
        rc = pm_backup_copy_file(path, dst, 0600);
    if (!rc) {
        c->files++;
        c->bytes += size;
    }
    return rc;
}

static int write_manifest(const char *out, json_t *m)
{
    char *tmp = pm_node_path(out, "MANIFEST.tmp"), *final = pm_node_path(out, "MANIFEST");
    int rc = tmp && final && json_dump_file(m, tmp, JSON_INDENT(2)) == 0 ? PM_OK : PM_E_IO;
    if (!rc) {
        FILE *f = fopen(tmp, "rb+");
        if (!f || fsync(fileno(f)) != 0)
            rc = PM_E_IO;
        if (f)
            fclose(f);
    }
    if (!rc && rename(tmp, final) != 0)
        rc = PM_E_IO;
    if (!rc)
        rc = pm_backup_fsync_dir(out);
    free(tmp);
    free(final);
    return rc;
}

/* Everything but the MANIFEST, into the (new, empty) directory out. */
static int backup_contents(pm_node *node, const char *out, blob_copy *blobs)
{
    char *store_dir = pm_node_path(out, "store"), *blob_dir = pm_node_path(out, "blobs");
    int rc = store_dir && blob_dir ? PM_OK : PM_E_NOMEM;
    if (!rc && !(rc = pm_backup_mkdir(store_dir)) && (rc = pm_store_copy(node->store, store_dir)))
        pm_cli_fail("cannot copy the store into %s: %s", store_dir, pm_strerror(rc));
    for (size_t i = 0; !rc && i < sizeof node_files / sizeof *node_files; i++) {
        char *from = pm_node_path(node->dir, node_files[i]), *to = pm_node_path(out, node_files[i]);
        if (from && to && access(from, F_OK) == 0 && (rc = pm_backup_copy_file(from, to, 0600)))
            pm_cli_fail("cannot copy %s into %s", from, out);
        free(from);
        free(to);
    }
    blobs->to = blob_dir;
    if (!rc && !(rc = pm_backup_mkdir(blob_dir)) &&
        (rc = pm_blobs_each(node->blobs, 1, copy_pinned, blobs)))
        pm_cli_fail("cannot copy the node's own blobs: %s", pm_strerror(rc));
    if (!rc)
        rc = pm_backup_fsync_dir(blob_dir);
    free(store_dir);
    free(blob_dir);
    return rc ? PM_EXIT_FAIL : PM_EXIT_OK;
}

int pm_cmd_backup(int argc, char **argv)
{
    const char *out = NULL;
    pm_cli_opt opts[] = {{"out", &out, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!out || a.nargs))
        rc = pm_cli_usage(a.usage, "give --out DIR and nothing else");
    if (!rc && mkdir(out, 0700) != 0)
        rc = pm_cli_fail("cannot create the backup directory %s: %s%s", out, strerror(errno),
                         errno == EEXIST ? " (give a new directory)" : "");
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    blob_copy blobs = {NULL, 0, 0};
    rc = backup_contents(&node, out, &blobs);
    pm_head head = {{0}, 0, {0}, 0};
    uint64_t events = 0;
    pm_feed_head(node.store, pm_identity_public(node.id), &head);
    pm_store_count_events(node.store, &events);
    char id[PM_ID_HEX], when[32];
    pm_hex_encode(pm_identity_public(node.id), PM_ID_BYTES, id);
    pm_cli_time(pm_now_ms(), when);
    json_t *m =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "format", MANIFEST_FORMAT,
                  "node_id", id, "name", node.cfg->name, "mesh", node.cfg->mesh_id, "created", when,
                  "events", (json_int_t)events, "own_seq", (json_int_t)head.seq, "blobs",
                  (json_int_t)blobs.files, "blob_bytes", (json_int_t)blobs.bytes);
    if (!rc && (!m || write_manifest(out, m)))
        rc = pm_cli_fail("cannot write %s/MANIFEST", out);
    if (!rc)
        printf("backup of %s (%.16s) in %s: store (%llu events, own feed at seq %llu), "
               "identity, node.conf, %llu own blobs (%llu bytes), MANIFEST\n",
               node.cfg->name, id, out, (unsigned long long)events, (unsigned long long)head.seq,
               (unsigned long long)blobs.files, (unsigned long long)blobs.bytes);
    json_decref(m);
    pm_node_close(&node);
    return rc;
}

int pm_cmd_confirm(int argc, char **argv)
{
    int force = 0;
    pm_cli_opt opts[] = {{"force", NULL, &force}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!force || a.nargs))
        rc = pm_cli_usage(a.usage, "confirm only with --force, and only when no peer of this node "
                                   "can ever be reached again (docs/operations.md)");
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_STORE, &node))) {
        return rc;
    }
    char *why = NULL;
    if (!pm_feed_guard_unconfirmed(node.store, &why)) {
        printf("already confirmed: this node may sign new events\n");
    } else if ((rc = pm_feed_guard_clear(node.store))) {
        rc = pm_cli_fail("cannot clear the mark: %s", pm_strerror(rc));
    } else {
        fprintf(stderr,
                "pacsmesh: warning: own feed confirmed by hand (it was: %s). If any peer holds "
                "later events of this node, the next event it signs forks its feed.\n",
                why ? why : "unconfirmed");
        printf("confirmed by operator override\n");
    }
    free(why);
    pm_node_close(&node);
    return rc;
}
