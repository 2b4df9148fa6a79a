/* Shared by store/feed.c and store/forks.c: the fork branch table inside the caller's
 * write transaction. Not an API. */
#ifndef PM_FORKS_INTERNAL_H
#define PM_FORKS_INTERNAL_H

#include "store/forks.h"
#include "store/store_internal.h"

/* Keeps ev (verified, same mesh, not in the feed at its slot) as a fork branch event and
 * applies it. PM_OK if new, PM_ALREADY_HELD if it was held (in the feed or here),
 * PM_E_TOOBIG when the origin already has PM_FORKS_MAX_PER_ORIGIN of them. */
int pm_forks_record(MDB_txn *txn, pm_store *s, const pm_event *ev);

/* Whether a branch event of origin with this seq and hash is held. */
int pm_forks_holds(MDB_txn *txn, pm_store *s, const uint8_t *origin, uint64_t seq,
                   const uint8_t hash[PM_HASH_BYTES]);

/* Removes ev from the branches (it is about to extend the feed, which indexes it). */
int pm_forks_promote(MDB_txn *txn, pm_store *s, const pm_event *ev);

/* pm_forks_each inside txn (origin must not be NULL). */
int pm_forks_each_txn(MDB_txn *txn, pm_store *s, const uint8_t *origin, pm_feed_fn fn, void *ctx);

/* Whether ev's mesh is this store's (shared with the feed's checks). */
int pm_feed_check_mesh(MDB_txn *txn, pm_store *s, const pm_event *ev);

#endif
