#include "store/blobs.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/blobs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { REC_LEN = PM_BLOB_REC_LEN };

/* The 256 directories blobs go to, made once (and the blob directory synced for them),
 * so that adopting a study's instances does not make a directory for most of them. What
 * cannot be made here is made by the adoption that needs it. */
static void make_subdirs(pm_blobs *b)
{
    int made = 0;
    for (int i = 0; i < 256; i++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%02x", b->dir, i);
        made |= mkdir(sub, 0700) == 0;
    }
    if (made)
        pm_blobs_fsync_dir(b->dir);
}

int pm_blobs_open(pm_store *store, const char *dir, pm_blobs **out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        pm_error("blobs", "cannot create %s: %s", dir, strerror(errno));
        return PM_E_IO;
    }
    pm_blobs *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(dir))) {
        free(b);
        return PM_E_NOMEM;
    }
    b->store = store;
    pthread_mutex_init(&b->lock, NULL);
    make_subdirs(b);
    *out = b;
    return PM_OK;
}

void pm_blobs_close(pm_blobs **self_p)
{
    if (!self_p || !*self_p)
        return;
    pthread_mutex_destroy(&(*self_p)->lock);
    free((*self_p)->dir);
    free(*self_p);
    *self_p = NULL;
}

void pm_blobs_file(const pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], char *path, size_t len,
                   int dir_only)
{
    char hex[PM_HASH_HEX];
    pm_hex_encode(hash, PM_HASH_BYTES, hex);
    if (dir_only)
        snprintf(path, len, "%s/%.2s", b->dir, hex);
    else
        snprintf(path, len, "%s/%.2s/%s", b->dir, hex, hex);
}

int pm_blobs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return PM_E_IO;
    int rc = fsync(fd) == 0 ? PM_OK : PM_E_IO;
    close(fd);
    return rc;
}

int pm_blobs_temp_path(pm_blobs *b, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/tmp-%08x%08x", b->dir, randombytes_random(), randombytes_random());
    return PM_OK;
}

int pm_blobs_index_put(MDB_txn *txn, pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], uint64_t size,
                       int pinned)
{
    MDB_val k = {PM_HASH_BYTES, (void *)hash}, old;
    uint8_t rec[REC_LEN];
    if (mdb_get(txn, b->store->blobs, &k, &old) == 0 && old.mv_size == REC_LEN)
        pinned |= ((uint8_t *)old.mv_data)[8];
    pm_put_be64(rec, size);
    rec[8] = (uint8_t)pinned;
    pm_put_be64(rec + 9, pm_now_ms());
    MDB_val v = {REC_LEN, rec};
    return pm_store_mdb_error(mdb_put(txn, b->store->blobs, &k, &v, 0), "index blob");
}

static int write_index(pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], uint64_t size, int pinned)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (rc)
        return rc;
    if ((rc = pm_blobs_index_put(txn, b, hash, size, pinned))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

static int adopt(pm_blobs *b, const char *tmp_path, int pinned, const uint8_t *expect,
                 uint32_t chunk_size, uint8_t hash_out[PM_HASH_BYTES], uint64_t *size_out,
                 uint8_t (**chunks)[PM_HASH_BYTES], size_t *n_chunks)
{
    uint8_t hash[PM_HASH_BYTES];
    uint64_t size = 0;
    uint8_t(*pieces)[PM_HASH_BYTES] = NULL;
    size_t n_pieces = 0;
    int rc = pm_hash_file_chunks(tmp_path, chunk_size, hash, &size, &pieces, &n_pieces);
    if (rc) {
        unlink(tmp_path);
        return rc;
    }
    if (chunks) {
        *chunks = pieces;
        *n_chunks = n_pieces;
    } else {
        free(pieces);
    }
    if (expect && sodium_memcmp(hash, expect, PM_HASH_BYTES) != 0) {
        unlink(tmp_path);
        return PM_E_HASH;
    }
    char dir[4096], path[4096];
    pm_blobs_file(b, hash, dir, sizeof dir, 1);
    pm_blobs_file(b, hash, path, sizeof path, 0);
    if (mkdir(dir, 0700) == 0) {
        if (pm_blobs_fsync_dir(b->dir) != PM_OK) { /* the new subdirectory itself must survive */
            unlink(tmp_path);
            return PM_E_IO;
        }
    } else if (errno != EEXIST) {
        unlink(tmp_path);
        return PM_E_IO;
    }
    /* Always rename, even over an existing copy (same content): a copy found here could
     * be evicted before the index entry below commits. */
    int fd = open(tmp_path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        unlink(tmp_path);
        return PM_E_IO;
    }
    close(fd);
    pthread_mutex_lock(&b->lock);
    if (rename(tmp_path, path) != 0 || pm_blobs_fsync_dir(dir) != PM_OK) {
        pthread_mutex_unlock(&b->lock);
        unlink(tmp_path);
        return PM_E_IO;
    }
    rc = write_index(b, hash, size, pinned);
    pthread_mutex_unlock(&b->lock);
    if (rc)
        return rc;
    if (hash_out)
        memcpy(hash_out, hash, PM_HASH_BYTES);
    if (size_out)
        *size_out = size;
    return PM_OK;
}

int pm_blobs_adopt(pm_blobs *b, const char *tmp_path, int pinned, const uint8_t *expect,
                   uint8_t hash_out[PM_HASH_BYTES], uint64_t *size_out)
{
    return adopt(b, tmp_path, pinned, expect, 0, hash_out, size_out, NULL, NULL);
}

int pm_blobs_adopt_chunked(pm_blobs *b, const char *tmp_path, int pinned, uint32_t chunk_size,
                           uint8_t hash_out[PM_HASH_BYTES], uint64_t *size_out,
                           uint8_t (**chunks)[PM_HASH_BYTES], size_t *n_chunks)
{
    int rc = adopt(b, tmp_path, pinned, NULL, chunk_size, hash_out, size_out, chunks, n_chunks);
    if (rc && chunks) {
        free(*chunks);
        *chunks = NULL;
        *n_chunks = 0;
    }
    return rc;
}

int pm_blobs_has(pm_blobs *b, const uint8_t hash[PM_HASH_BYTES])
{
    MDB_txn *txn;
    if (pm_store_txn_begin(b->store, 0, &txn))
        return 0;
    MDB_val k = {PM_HASH_BYTES, (void *)hash}, v;
    int has = mdb_get(txn, b->store->blobs, &k, &v) == 0;
    mdb_txn_abort(txn);
    return has;
}

int pm_blobs_path(pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], char *path, size_t pathlen)
{
    if (!pm_blobs_has(b, hash))
        return PM_E_NOTFOUND;
    pm_blobs_file(b, hash, path, pathlen, 0);
    if (access(path, R_OK) != 0)
        return PM_E_NOTFOUND;
    return PM_OK;
}

int pm_blobs_set_aside(pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], char *moved_to,
                       size_t movedlen, int *was_pinned)
{
    char path[4096], dir[4096];
    *was_pinned = 0;
    if (moved_to && movedlen)
        moved_to[0] = 0;
    pm_blobs_file(b, hash, path, sizeof path, 0);
    snprintf(dir, sizeof dir, "%.4000s/damaged", b->dir);
    pthread_mutex_lock(&b->lock);
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (!rc) {
        MDB_val k = {PM_HASH_BYTES, (void *)hash}, v;
        if (mdb_get(txn, b->store->blobs, &k, &v) == 0) {
            *was_pinned = v.mv_size == REC_LEN && ((uint8_t *)v.mv_data)[8];
            rc = pm_store_mdb_error(mdb_del(txn, b->store->blobs, &k, NULL), "set a blob aside");
        }
        rc = rc ? (mdb_txn_abort(txn), rc) : pm_store_txn_commit(txn);
    }
    if (!rc && (mkdir(dir, 0700) == 0 || errno == EEXIST)) {
        char to[4200];
        char hex[PM_HASH_HEX];
        pm_hex_encode(hash, PM_HASH_BYTES, hex);
        snprintf(to, sizeof to, "%s/%s-%llu", dir, hex, (unsigned long long)pm_now_ms());
        if (rename(path, to) == 0) {
            if (moved_to)
                snprintf(moved_to, movedlen, "%s", to);
        } else if (errno != ENOENT) {
            unlink(path); /* never served again, whatever happens */
        }
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int pm_blobs_pin(pm_blobs *b, const uint8_t hash[PM_HASH_BYTES])
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (rc)
        return rc;
    MDB_val k = {PM_HASH_BYTES, (void *)hash}, v;
    if (mdb_get(txn, b->store->blobs, &k, &v) != 0 || v.mv_size != REC_LEN) {
        mdb_txn_abort(txn);
        return PM_E_NOTFOUND;
    }
    uint8_t rec[REC_LEN];
    memcpy(rec, v.mv_data, REC_LEN);
    rec[8] = 1;
    MDB_val nv = {REC_LEN, rec};
    if ((rc = pm_store_mdb_error(mdb_put(txn, b->store->blobs, &k, &nv, 0), "pin blob"))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

int pm_blobs_touch(pm_blobs *b, const uint8_t (*hashes)[PM_HASH_BYTES], size_t n)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (rc)
        return rc;
    uint64_t now = pm_now_ms();
    for (size_t i = 0; i < n; i++) {
        MDB_val k = {PM_HASH_BYTES, (void *)hashes[i]}, v;
        if (mdb_get(txn, b->store->blobs, &k, &v) != 0 || v.mv_size != REC_LEN ||
            ((uint8_t *)v.mv_data)[8]) /* pinned blobs are never evicted: no LRU time */
            continue;
        uint8_t rec[REC_LEN];
        memcpy(rec, v.mv_data, REC_LEN);
        pm_put_be64(rec + 9, now);
        MDB_val nv = {REC_LEN, rec};
        if ((rc = pm_store_mdb_error(mdb_put(txn, b->store->blobs, &k, &nv, 0), "touch blob")))
            break;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

typedef struct {
    uint8_t hash[PM_HASH_BYTES];
    uint64_t size, last;
} cached_blob;

static int by_last_access(const void *a, const void *b)
{
    const cached_blob *x = a, *y = b;
    return x->last < y->last ? -1 : x->last > y->last;
}

static int evict_locked(pm_blobs *b, uint64_t max_bytes, uint64_t *evicted);

int pm_blobs_evict(pm_blobs *b, uint64_t max_bytes, uint64_t *evicted)
{
    *evicted = 0;
    pthread_mutex_lock(&b->lock);
    int rc = evict_locked(b, max_bytes, evicted);
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static int evict_locked(pm_blobs *b, uint64_t max_bytes, uint64_t *evicted)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 1, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    mdb_cursor_open(txn, b->store->blobs, &cur);
    cached_blob *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (v.mv_size != REC_LEN || k.mv_size != PM_HASH_BYTES || ((uint8_t *)v.mv_data)[8])
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            cached_blob *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = PM_E_NOMEM;
                break;
            }
            list = grown;
        }
        memcpy(list[n].hash, k.mv_data, PM_HASH_BYTES);
        list[n].size = pm_get_be64(v.mv_data);
        list[n].last = pm_get_be64((uint8_t *)v.mv_data + 9);
        total += list[n].size;
        n++;
    }
    mdb_cursor_close(cur);
    if (n > 1)
        qsort(list, n, sizeof *list, by_last_access);
    size_t victims = 0;
    for (size_t i = 0; !rc && i < n && total > max_bytes; i++) {
        MDB_val dk = {PM_HASH_BYTES, list[i].hash};
        if (mdb_del(txn, b->store->blobs, &dk, NULL) == 0) {
            total -= list[i].size;
            list[victims++] = list[i];
        }
    }
    /* Files go only after the index no longer names them: a crash in between leaves
     * orphan files, never an index entry without its file. */
    if (rc) {
        mdb_txn_abort(txn);
    } else if (!(rc = pm_store_txn_commit(txn))) {
        for (size_t i = 0; i < victims; i++) {
            char path[4096];
            pm_blobs_file(b, list[i].hash, path, sizeof path, 0);
            if (!pm_blobs_has(b, list[i].hash)) /* re-adopted meanwhile: keep it */
                unlink(path);
        }
        *evicted = victims;
    }
    free(list);
    return rc;
}

int pm_blobs_usage(pm_blobs *b, uint64_t *total_bytes, uint64_t *cache_bytes, uint64_t *count)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 0, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    mdb_cursor_open(txn, b->store->blobs, &cur);
    *total_bytes = *cache_bytes = *count = 0;
    MDB_val k, v;
    int op = MDB_FIRST;
    while (mdb_cursor_get(cur, &k, &v, op) == 0) {
        op = MDB_NEXT;
        if (v.mv_size != REC_LEN)
            continue;
        uint64_t size = pm_get_be64(v.mv_data);
        *total_bytes += size;
        if (!((uint8_t *)v.mv_data)[8])
            *cache_bytes += size;
        (*count)++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return PM_OK;
}

int pm_blobs_each(pm_blobs *b, int pinned_only, pm_blob_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(b->store, 0, &txn);
    if (rc)
        return rc;
    MDB_cursor *cur;
    uint8_t(*hashes)[PM_HASH_BYTES] = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0, cap = 0;
    if ((rc = pm_store_mdb_error(mdb_cursor_open(txn, b->store->blobs, &cur), "open cursor"))) {
        mdb_txn_abort(txn);
        return rc;
    }
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (v.mv_size != REC_LEN || k.mv_size != PM_HASH_BYTES ||
            (pinned_only && !((uint8_t *)v.mv_data)[8]))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            uint8_t(*gh)[PM_HASH_BYTES] = realloc(hashes, cap * PM_HASH_BYTES);
            uint64_t *gs = gh ? realloc(sizes, cap * sizeof *gs) : NULL;
            if (gh)
                hashes = gh;
            if (gs)
                sizes = gs;
            if (!gh || !gs) {
                rc = PM_E_NOMEM;
                break;
            }
        }
        memcpy(hashes[n], k.mv_data, PM_HASH_BYTES);
        sizes[n++] = pm_get_be64(v.mv_data);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn); /* the files are read outside the transaction */
    char path[4096];
    for (size_t i = 0; !rc && i < n; i++) {
        pm_blobs_file(b, hashes[i], path, sizeof path, 0);
        rc = fn(ctx, hashes[i], path, sizes[i]);
    }
    free(hashes);
    free(sizes);
    return rc;
}

typedef struct {
    uint8_t (*gone)[PM_HASH_BYTES];
    size_t n, cap;
} missing_list;

static int note_missing(void *ctx, const uint8_t hash[PM_HASH_BYTES], const char *path,
                        uint64_t size)
{
    (void)size;
    missing_list *m = ctx;
    if (access(path, F_OK) == 0)
        return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        uint8_t(*grown)[PM_HASH_BYTES] = realloc(m->gone, cap * PM_HASH_BYTES);
        if (!grown)
            return PM_E_NOMEM;
        m->gone = grown;
        m->cap = cap;
    }
    memcpy(m->gone[m->n++], hash, PM_HASH_BYTES);
    return 0;
}

int pm_blobs_forget_missing(pm_blobs *b, uint64_t *dropped)
{
    missing_list m = {NULL, 0, 0};
    *dropped = 0;
    int rc = pm_blobs_each(b, 0, note_missing, &m);
    MDB_txn *txn = NULL;
    if (!rc && m.n)
        rc = pm_store_txn_begin(b->store, 1, &txn);
    for (size_t i = 0; !rc && txn && i < m.n; i++) {
        MDB_val k = {PM_HASH_BYTES, m.gone[i]}, v;
        if (mdb_get(txn, b->store->blobs, &k, &v) != 0 || v.mv_size != REC_LEN ||
            ((uint8_t *)v.mv_data)[8])
            continue; /* pinned: kept */
        int r = mdb_del(txn, b->store->blobs, &k, NULL);
        if (r == 0)
            (*dropped)++;
        else if (r != MDB_NOTFOUND)
            rc = pm_store_mdb_error(r, "forget missing blob");
    }
    if (txn) {
        if (rc)
            mdb_txn_abort(txn);
        else
            rc = pm_store_txn_commit(txn);
    }
    free(m.gone);
    return rc;
}
