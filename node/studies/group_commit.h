/* Group commit for instances taken in: C-STOREs arriving together (several associations,
 * or one sender's next instance while a commit is under way) share one directory sync
 * and one LMDB commit, and each is still answered only once it is durable (invariant 3).
 *
 * A caller prepares its blob (pm_blobs_prepare: hash and fsync, in its own thread, in
 * parallel with the others) and calls pm_group_commit with the local key/values that
 * describe it. The first caller to find no commit running becomes the leader: it takes
 * every entry queued so far (up to PM_GROUP_MAX), commits them in one transaction
 * (pm_blobs_commit_batch) and wakes their callers; entries that queue meanwhile form the
 * next batch. The delay an entry waits is bounded by one commit of the batch before it.
 * Thread-safe; entries for different blob stores go into different batches. */
#ifndef PM_GROUP_COMMIT_H
#define PM_GROUP_COMMIT_H

#include "store/blobs.h"

#define PM_GROUP_MAX 64

/* Commits prep (rc PM_OK after pm_blobs_prepare) with its n_kvs key/values (copied by
 * the caller's batch only for the duration of the call). Returns PM_OK once all of it is
 * durable, or the batch's failure (then none of it was written). */
int pm_group_commit(pm_blobs *blobs, pm_blob_prep *prep, const pm_blob_kv *kvs, size_t n_kvs);

#endif
