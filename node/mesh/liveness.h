/* Which peers this node hears from, as the daemon's parts share it: a plain array
 * (fetch orders holders by it, prefetch and metrics read it, the worklist's
 * "viewable" asks it). JSON only where it leaves the daemon: the admin socket's
 * "peers" answer, read back by the CLI (node/cli/admin_client.c). */
#ifndef PM_MESH_LIVENESS_H
#define PM_MESH_LIVENESS_H

#include "crypto/hash.h"
#include "crypto/identity.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t id[PM_ID_BYTES];
    int up;                /* heard from within the up window */
    uint64_t last_seen_ms; /* wall clock of its last message; 0: never */
    int has_digest;        /* its last hello said the digest of its views */
    uint8_t digest[PM_HASH_BYTES];
} pm_peer_liveness;

typedef struct {
    pm_peer_liveness *peers; /* owned: pm_liveness_free */
    size_t n;
} pm_liveness;

/* The entry for id, or NULL when it is not a peer. */
const pm_peer_liveness *pm_liveness_find(const pm_liveness *self, const uint8_t *id);

/* Whether peer id is up; false for NULL (liveness not known) and for unknown ids. */
int pm_liveness_is_up(const pm_liveness *self, const uint8_t *id);

/* {"<id hex>": {"up": bool, "last_seen": ms, "digest": hex}}; NULL if out of memory. */
json_t *pm_liveness_to_json(const pm_liveness *self);

/* The inverse of pm_liveness_to_json; PM_E_PARSE if o is not such an object. *out is
 * the caller's to pm_liveness_free on success. */
int pm_liveness_from_json(const json_t *o, pm_liveness *out);

void pm_liveness_free(pm_liveness *self);

#endif
