/* The blob store: DICOM instances as content-addressed files under DIR/blobs/ab/<hash>,
 * indexed in the store's LMDB (hash -> size, pinned, last access).
 *
 * The trust's own instances are pinned; other trusts' blobs, cached by lazy fetch,
 * are evicted least-recently-used once the unpinned total passes [cache] max_bytes.
 * A blob is written to a temporary file, fsync'ed, renamed into place and its
 * directory fsync'ed before its index entry commits, so an indexed blob is always
 * whole on disk (invariant 3). */
#ifndef PM_BLOBS_H
#define PM_BLOBS_H

#include <stdint.h>

#include "store/store.h"

typedef struct pm_blobs pm_blobs;

/* dir is the blob directory (created if missing). The store is borrowed. */
int pm_blobs_open(pm_store *store, const char *dir, pm_blobs **out);
void pm_blobs_close(pm_blobs **self_p);

/* Moves the file at tmp_path (which must be on the same file system, e.g. the node's
 * spool) into the store under its content hash, durably, and indexes it. If expect is
 * non-NULL the content must hash to it (else PM_E_HASH, file removed). Idempotent:
 * an existing blob of the same hash is kept (pinning upgraded) and tmp_path removed. */
int pm_blobs_adopt(pm_blobs *self, const char *tmp_path, int pinned, const uint8_t *expect,
                   uint8_t hash_out[PM_HASH_BYTES], uint64_t *size_out);

/* As pm_blobs_adopt, and in the same pass over the file the hash of each chunk_size
 * piece (*chunks: malloc'ed, *n_chunks entries, the caller's to free). */
int pm_blobs_adopt_chunked(pm_blobs *self, const char *tmp_path, int pinned, uint32_t chunk_size,
                           uint8_t hash_out[PM_HASH_BYTES], uint64_t *size_out,
                           uint8_t (**chunks)[PM_HASH_BYTES], size_t *n_chunks);

/* Adoption in two steps, so that many blobs share one sync of their directories and one
 * index commit (a fetch's batch of instances; C-STOREs arriving together):
 * pm_blobs_prepare hashes one file and makes its bytes durable (any thread, in parallel);
 * pm_blobs_commit_batch moves the prepared files into place and indexes them all, with
 * any local key/values of the caller's, in one transaction. */
typedef struct {
    char tmp_path[4096]; /* in: the file, on the blob store's file system */
    int pinned;          /* in */
    uint8_t hash[PM_HASH_BYTES];
    uint64_t size;
    uint8_t (*chunks)[PM_HASH_BYTES]; /* with chunk_size: malloc'ed, the caller's to free */
    size_t n_chunks;
    int rc; /* PM_OK, or why this blob was not adopted (its file is removed then) */
} pm_blob_prep;

/* Fills p from p->tmp_path: its hash (which must be expect, if non-NULL: else
 * PM_E_HASH), size and, with chunk_size > 0, the hash of each chunk_size piece; and
 * fsyncs it if it is pinned (a cached copy of another trust's blob is checked against its
 * hash whenever it is served, so a torn one is fetched again, never served: it is not
 * synced one by one). Returns p->rc. */
int pm_blobs_prepare(pm_blobs *self, pm_blob_prep *p, const uint8_t *expect, uint32_t chunk_size);

/* As pm_blobs_prepare, for len bytes in memory (a fetched instance assembled there):
 * hashes them from memory and writes them to a fresh temporary file of the blob store
 * (its path in p->tmp_path), so the file is never read back. */
int pm_blobs_prepare_bytes(pm_blobs *self, pm_blob_prep *p, const void *data, size_t len,
                           const uint8_t *expect);

/* One local key/value written with a batch (val NULL deletes the key). */
typedef struct {
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} pm_blob_kv;

/* Moves every prepared blob of preps (those with rc PM_OK) into place, syncs each
 * directory a pinned one went to once, and indexes them with the n_kvs local key/values in one
 * durable transaction. PM_OK once all of it committed; else a failure for all of it (then each
 * prep's rc is set to it, and nothing of the batch is indexed or written). */
int pm_blobs_commit_batch(pm_blobs *self, pm_blob_prep *preps, size_t n, const pm_blob_kv *kvs,
                          size_t n_kvs);

/* Writes the path of the blob into path (pathlen bytes). PM_E_NOTFOUND if not held
 * (or its file has gone missing). Does not write: see pm_blobs_touch. */
int pm_blobs_path(pm_blobs *self, const uint8_t hash[PM_HASH_BYTES], char *path, size_t pathlen);

/* A blob found damaged (its file does not hash to its name): its file is moved to
 * DIR/damaged/<hash>-<ms> (kept as evidence; moved_to receives where, "" if it had
 * gone) and its index entry removed, so that it is no longer held: a fetch brings it
 * back from a peer. *was_pinned says whether it was one of the trust's own. */
int pm_blobs_set_aside(pm_blobs *self, const uint8_t hash[PM_HASH_BYTES], char *moved_to,
                       size_t movedlen, int *was_pinned);

/* Pins a held blob (one of the trust's own again, after a repair). PM_E_NOTFOUND. */
int pm_blobs_pin(pm_blobs *self, const uint8_t hash[PM_HASH_BYTES]);

/* Marks the n blobs as used now (for LRU eviction), in one transaction: a study's
 * read costs one commit, not one per instance. */
int pm_blobs_touch(pm_blobs *self, const uint8_t (*hashes)[PM_HASH_BYTES], size_t n);

/* Whether the blob is held, without touching its LRU time. */
int pm_blobs_has(pm_blobs *self, const uint8_t hash[PM_HASH_BYTES]);

/* A fresh temporary file path in the blob directory for writing a blob to be adopted. */
int pm_blobs_temp_path(pm_blobs *self, char *path, size_t pathlen);

/* Evicts unpinned blobs, least recently used first, until their total is at most
 * max_bytes. *evicted receives the number removed. */
int pm_blobs_evict(pm_blobs *self, uint64_t max_bytes, uint64_t *evicted);

/* Calls fn with the hash, file path and size of every indexed blob (only the pinned
 * ones, the trust's own instances, with pinned_only), in hash order, outside any
 * transaction; fn returning non-zero stops the walk and is returned. */
typedef int (*pm_blob_fn)(void *ctx, const uint8_t hash[PM_HASH_BYTES], const char *path,
                          uint64_t size);
int pm_blobs_each(pm_blobs *self, int pinned_only, pm_blob_fn fn, void *ctx);

/* Drops the index entries of unpinned (cached) blobs whose files are gone, e.g. in a
 * restored store (a backup copies only the trust's own blobs); *dropped receives how
 * many. Pinned entries are kept: a missing own blob is damage for `check` to report. */
int pm_blobs_forget_missing(pm_blobs *self, uint64_t *dropped);

/* Totals: all blobs, and the unpinned (cache) part. */
int pm_blobs_usage(pm_blobs *self, uint64_t *total_bytes, uint64_t *cache_bytes, uint64_t *count);

#endif
