/* Adopting blobs in batches (store/blobs.h: pm_blobs_prepare, pm_blobs_commit_batch):
 * the per-file work (hashing, the file's fsync) happens where the caller runs, in
 * parallel; the shared work (the directories' fsyncs, the index commit) once per batch.
 * An indexed blob is still always whole on disk: the index commits only after every file
 * and directory of its batch was synced. */
#include "proto/error.h"
#include "proto/log.h"
#include "store/blobs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pm_blobs_prepare(pm_blobs *b, pm_blob_prep *p, const uint8_t *expect, uint32_t chunk_size)
{
    (void)b;
    p->chunks = NULL;
    p->n_chunks = 0;
    uint8_t(*pieces)[PM_HASH_BYTES] = NULL;
    p->rc = pm_hash_file_chunks(p->tmp_path, chunk_size, p->hash, &p->size, &pieces, &p->n_chunks);
    if (p->rc == PM_OK && expect && sodium_memcmp(p->hash, expect, PM_HASH_BYTES) != 0)
        p->rc = PM_E_HASH;
    /* Only the trust's own (pinned) blobs are synced one by one. A cached copy of another
     * trust's is checked against its hash whenever it is served (node/studies/verify.h),
     * and by each peer it is served to, so a copy a power cut tore is set aside and
     * fetched again, never served; the fetch does not pay a sync per instance for it. */
    if (p->rc == PM_OK && p->pinned) {
        int fd = open(p->tmp_path, O_RDONLY);
        if (fd < 0 || fsync(fd) != 0)
            p->rc = PM_E_IO;
        if (fd >= 0)
            close(fd);
    }
    if (p->rc != PM_OK) {
        free(pieces);
        p->n_chunks = 0;
        unlink(p->tmp_path);
        return p->rc;
    }
    if (chunk_size)
        p->chunks = pieces;
    else
        free(pieces);
    return PM_OK;
}

/* Writes len bytes to a new file at path, synced if sync. */
static int write_new_file(const char *path, const void *data, size_t len, int sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == ENOSPC ? PM_E_NOSPACE : PM_E_IO;
    int rc = PM_OK;
    for (size_t done = 0; rc == PM_OK && done < len;) {
        ssize_t n = write(fd, (const uint8_t *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = errno == ENOSPC ? PM_E_NOSPACE : PM_E_IO;
        else
            done += (size_t)n;
    }
    if (rc == PM_OK && sync && fsync(fd) != 0)
        rc = PM_E_IO;
    if (close(fd) != 0 && rc == PM_OK)
        rc = PM_E_IO;
    if (rc != PM_OK)
        unlink(path);
    return rc;
}

int pm_blobs_prepare_bytes(pm_blobs *b, pm_blob_prep *p, const void *data, size_t len,
                           const uint8_t *expect)
{
    p->chunks = NULL;
    p->n_chunks = 0;
    p->size = len;
    pm_hash(data, len, p->hash);
    p->rc = expect && sodium_memcmp(p->hash, expect, PM_HASH_BYTES) != 0 ? PM_E_HASH : PM_OK;
    if (p->rc == PM_OK)
        p->rc = pm_blobs_temp_path(b, p->tmp_path, sizeof p->tmp_path);
    if (p->rc == PM_OK) /* pinned ones synced one by one, as in pm_blobs_prepare */
        p->rc = write_new_file(p->tmp_path, data, len, p->pinned);
    return p->rc;
}

/* Makes the blob's directory if it is new (and syncs the blob directory for it), and
 * moves the file in. The directory still needs its sync (done once per batch). */
static int move_in(pm_blobs *b, pm_blob_prep *p, char *dir, size_t dirlen)
{
    char path[4096];
    pm_blobs_file(b, p->hash, dir, dirlen, 1);
    pm_blobs_file(b, p->hash, path, sizeof path, 0);
    if (mkdir(dir, 0700) == 0) {
        if (pm_blobs_fsync_dir(b->dir) != PM_OK)
            return PM_E_IO;
    } else if (errno != EEXIST) {
        return PM_E_IO;
    }
    /* Always rename, even over an existing copy (same content): a copy found here could
     * be evicted before the index entry commits. */
    return rename(p->tmp_path, path) == 0 ? PM_OK : PM_E_IO;
}

static int by_string(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Syncs each distinct directory of dirs (n entries) once. */
static int sync_dirs(char (*dirs)[4096], size_t n)
{
    char **order = malloc((n + 1) * sizeof *order);
    if (!order)
        return PM_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = dirs[i];
    qsort(order, n, sizeof *order, by_string);
    int rc = PM_OK;
    for (size_t i = 0; rc == PM_OK && i < n; i++)
        if (i == 0 || strcmp(order[i], order[i - 1]) != 0)
            rc = pm_blobs_fsync_dir(order[i]);
    free(order);
    return rc;
}

static int index_batch(pm_blobs *b, pm_blob_prep *preps, size_t n, const pm_blob_kv *kvs,
                       size_t n_kvs)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < n; i++)
        if (preps[i].rc == PM_OK)
            rc = pm_blobs_index_put(txn, b, preps[i].hash, preps[i].size, preps[i].pinned);
    for (size_t i = 0; !rc && i < n_kvs; i++) {
        MDB_val k = {kvs[i].klen, (void *)kvs[i].key};
        if (kvs[i].val) {
            MDB_val v = {kvs[i].vlen, (void *)kvs[i].val};
            rc = pm_store_mdb_error(mdb_put(txn, b->store->local, &k, &v, 0), "write local");
        } else {
            int r = mdb_del(txn, b->store->local, &k, NULL);
            rc = r == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(r, "delete local");
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

int pm_blobs_commit_batch(pm_blobs *b, pm_blob_prep *preps, size_t n, const pm_blob_kv *kvs,
                          size_t n_kvs)
{
    char(*dirs)[4096] = malloc((n + 1) * sizeof *dirs);
    if (!dirs)
        return PM_E_NOMEM;
    size_t n_dirs = 0;
    pthread_mutex_lock(&b->lock);
    int rc = PM_OK;
    for (size_t i = 0; i < n && rc == PM_OK; i++) {
        if (preps[i].rc != PM_OK)
            continue;
        /* One that cannot be moved fails the batch: the caller's key/values may
         * describe it. Those moved already are files without an index entry, which a
         * later adoption of the same content renames over. */
        if ((rc = move_in(b, &preps[i], dirs[n_dirs], sizeof dirs[n_dirs])) != PM_OK) {
            unlink(preps[i].tmp_path);
            break;
        }
        if (preps[i].pinned) /* see pm_blobs_prepare */
            n_dirs++;
    }
    if (rc == PM_OK)
        rc = sync_dirs(dirs, n_dirs);
    if (rc == PM_OK)
        rc = index_batch(b, preps, n, kvs, n_kvs);
    pthread_mutex_unlock(&b->lock);
    free(dirs);
    if (rc != PM_OK)
        for (size_t i = 0; i < n; i++) {
            if (preps[i].rc == PM_OK)
                unlink(preps[i].tmp_path); /* not moved yet (or moved: no such file) */
            preps[i].rc = rc;
        }
    return rc;
}
