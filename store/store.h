/* The node's store: one LMDB environment holding the per-origin feeds of signed
 * events, their indexes, the materialised views and the blob index.
 *
 * Several processes may open one store at once (the running node and CLI commands);
 * LMDB serialises writers across processes and threads, and every append reads the
 * feed head inside its write transaction, so concurrent writers cannot fork a feed.
 * Every committed write transaction is durable (LMDB's default full sync).
 *
 * Everything returned by the functions here is copied out of LMDB: nothing borrowed
 * outlives the call unless said otherwise. */
#ifndef PM_STORE_H
#define PM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/hash.h"
#include "crypto/identity.h"
#include "proto/view.pb-c.h"
#include "store/event.h"

#define PM_STORE_FORMAT 1
/* Address space, not disk: LMDB maps the file and grows it as it fills. A decade of a
 * ten-trust network (30 million studies at about 4.6 KB each with their reporting,
 * bench/README.md) is 140 GB: 64 GiB, the old limit, would have filled in four years. */
#define PM_STORE_DEFAULT_MAP (1ull << 40)

typedef struct pm_store pm_store;

/* Opens (creating if absent) the store in directory dir. PM_E_FORMAT if the store was
 * written by an incompatible format version; PM_E_STORE on LMDB failure. */
int pm_store_open(const char *dir, uint64_t map_size, pm_store **out);
void pm_store_close(pm_store **self_p);

/* For scratch stores only (audit verify, replay): commits stop syncing to disk. */
void pm_store_set_nosync(pm_store *self);

/* The mesh id this store belongs to (32 bytes); PM_E_NOTFOUND before genesis/join. */
int pm_store_mesh_id(pm_store *self, uint8_t out[PM_HASH_BYTES]);
/* Records the mesh id (from a join token). PM_E_EXISTS if a different one is set. */
int pm_store_set_mesh_id(pm_store *self, const uint8_t id[PM_HASH_BYTES]);

/* Node-local key/value state that is not part of the views (bootstrap peer keys,
 * settings). get: *val is the caller's (malloc); PM_E_NOTFOUND. */
int pm_store_local_put(pm_store *self, const char *key, const void *val, size_t len);
int pm_store_local_get(pm_store *self, const char *key, void **val, size_t *len);

/* Writes n local key/values (val NULL: delete the key) in one durable transaction. */
int pm_store_local_write(pm_store *self, const char *const *keys, const size_t *klens,
                         const void *const *vals, const size_t *vlens, size_t n);

/* Deletes the local key only if its value is still expect (elen bytes), in one
 * transaction. PM_OK whether or not it was deleted. */
int pm_store_local_delete_if(pm_store *self, const void *key, size_t klen, const void *expect,
                             size_t elen);

/* Calls fn for each local key starting with prefix (plen bytes), in key order. The
 * bytes are borrowed for the call. */
typedef int (*pm_local_fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen);
int pm_store_local_each(pm_store *self, const void *prefix, size_t plen, pm_local_fn fn, void *ctx);

/* Hex digest of the views, PM_HASH_HEX bytes: equal on converged nodes. */
int pm_store_digest(pm_store *self, char out[PM_HASH_HEX]);

/* A consistent, compacted copy of the whole store (LMDB's copy API: a read snapshot,
 * so writers go on meanwhile) as dir/data.mdb; dir must exist and hold no data.mdb.
 * The copy is fsync'ed before this returns. */
int pm_store_copy(pm_store *self, const char *dir);

/* Number of events held in all feeds. */
int pm_store_count_events(pm_store *self, uint64_t *events);

#endif
