/* Shared by the blob store's own files (blobs.c, blobs_batch.c) only. */
#ifndef PM_BLOBS_INTERNAL_H
#define PM_BLOBS_INTERNAL_H

#include <pthread.h>

#include "store/blobs.h"
#include "store/store_internal.h"

/* Index record: size(8) pinned(1) last_access_ms(8). */
#define PM_BLOB_REC_LEN 17

struct pm_blobs {
    pm_store *store;
    char *dir;
    /* Adoption and eviction of one blob must not interleave (an adopt that found the
     * file must not have it unlinked under its new index entry): they take this lock.
     * Other processes (CLI import) only adopt, and adopt renames unconditionally. */
    pthread_mutex_t lock;
};

/* The blob's file (or, with dir_only, its directory) under the blob directory. */
void pm_blobs_file(const pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], char *path, size_t len,
                   int dir_only);
int pm_blobs_fsync_dir(const char *dir);
/* Writes the blob's index entry in txn (pinning is kept if it was pinned). */
int pm_blobs_index_put(MDB_txn *txn, pm_blobs *b, const uint8_t hash[PM_HASH_BYTES], uint64_t size,
                       int pinned);

#endif
