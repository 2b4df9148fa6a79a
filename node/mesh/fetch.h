/* Lazy pixel data (docs/design.md): bringing another trust's instances into the local
 * cache from whichever peer holds them, and serving ours (and cached ones) to peers.
 *
 * A fetch job asks holders for PM_FETCH_CHUNK-byte chunks, keeping at most
 * PM_FETCH_WINDOW requests in flight (each reply returns one credit, so a slow peer
 * cannot be flooded and memory stays bounded), instances in series and instance order,
 * spread over the holders that are up. A finished instance is hashed and adopted off the
 * main loop (node/mesh/fetch_adopt.h), only if it matches the hash its origin signed; otherwise,
 * and when a holder says it lacks the blob or does not answer in time, the instance starts again
 * from the next holder. When the study is complete, a study-accessed event records who read it and
 * which nodes served it. Runs in the main loop's thread. */
#ifndef PM_FETCH_H
#define PM_FETCH_H

#include <jansson.h>

#include "node/mesh/liveness.h"
#include "node/mesh/transport.h"
#include "proto/wire.pb-c.h"
#include "store/blobs.h"

#define PM_FETCH_CHUNK (1u << 20)
/* Requests in flight: within half the transport's queue of 32 messages per peer, since
 * ZeroMQ tells a sender of room in a pipe only after its reader has taken half of it; a
 * holder's replies and gossip then share the queue without one being dropped. 12 chunks
 * keep both ends busy on any link this side of a continent. The chunk size stays 1 MiB:
 * it is the size the origin signs chunk hashes for, and what every node serves at most. */
#define PM_FETCH_WINDOW 12
#define PM_FETCH_TIMEOUT_MS 5000
/* How long an instance waits for its holder's link to come back before trying the next. */
#define PM_FETCH_RECONNECT_MS 10000

typedef struct pm_fetcher pm_fetcher;

/* Called once when a job finishes: rc PM_OK, or why it failed. */
typedef void (*pm_fetch_done_fn)(void *ctx, uint64_t job, int rc);

int pm_fetcher_new(pm_transport *t, pm_store *store, pm_blobs *blobs, const pm_identity *id,
                   const pm_config *cfg, pm_fetch_done_fn done, void *done_ctx, pm_fetcher **out);
void pm_fetcher_destroy(pm_fetcher **self_p);

/* Starts fetching what is not local of study_uid on behalf of reader (a reporter or
 * calling AE). *job receives its id. The done callback never runs inside this call:
 * jobs finish (even those with nothing to fetch) in pm_fetch_tick, so the caller can
 * register interest in the id first. A running job of the same study that is fetching
 * everything this one would is joined instead (*job is its id; reader is added to those
 * its study-accessed events name). PM_E_NOTFOUND for an unknown study. */
int pm_fetch_start(pm_fetcher *self, const char *study_uid, const char *reader,
                   const pm_liveness *liveness, uint64_t *job);

/* Warms the cache: starts fetching what is not local of study_uid in the background, for
 * no reader yet (a prefetch is not a read: it records no study-accessed event unless a
 * reader joins it; one who opens the study later joins it or finds it here). *job
 * receives its id (or that of a running fetch of the study it joined), or 0 when
 * everything is here.
 * PM_E_NOTFOUND for an unknown study. */
int pm_fetch_prefetch(pm_fetcher *self, const char *study_uid, const pm_liveness *liveness,
                      uint64_t *job);

/* Called as each instance of a job arrives and is verified (rc PM_OK), or fails at
 * every holder (rc PM_E_NOTFOUND), so that a viewer is served instance by instance
 * while the rest of the study is still coming. */
typedef void (*pm_fetch_instance_fn)(void *ctx, uint64_t job, const uint8_t hash[PM_HASH_BYTES],
                                     int rc);
void pm_fetcher_on_instance(pm_fetcher *self, pm_fetch_instance_fn fn, void *ctx);

/* Of the instance with this content hash in job: 1 arrived, 0 still coming, else why
 * not: the code it failed with (PM_E_NET no holder reachable, PM_E_HASH every copy
 * damaged, PM_E_NOSPACE this node's disk full, PM_E_NOTFOUND no holder has it), or
 * PM_E_NOTFOUND when it is not part of the job (the job is gone, or it was local when
 * the job started). */
int pm_fetch_instance_state(pm_fetcher *self, uint64_t job, const uint8_t hash[PM_HASH_BYTES]);

/* {"state": "running"|"done"|"failed", "bytes", "total", "instances", "error"?} or NULL. */
json_t *pm_fetch_status(pm_fetcher *self, uint64_t job);

void pm_fetch_handle_request(pm_fetcher *self, const pm_channel *ch, const Pm__ChunkRequest *req);
void pm_fetch_handle_reply(pm_fetcher *self, const pm_channel *ch, const Pm__ChunkReply *rep);

/* The adopter's wake-up file descriptor (readable when fetched instances have been
 * checked and adopted off the main loop), and what to call when it is readable. */
int pm_fetch_wake_fd(pm_fetcher *self);
void pm_fetch_handle_adopted(pm_fetcher *self);
/* Whether adopted instances wait to be handled: the loop asks between the messages of a
 * burst, so that a viewer waiting for an instance that is here is told at once, not
 * after the burst's other chunk replies. */
int pm_fetch_adopted_waiting(pm_fetcher *self);

/* Timeouts and new requests; returns ms until it wants to run again (or -1). */
int pm_fetch_tick(pm_fetcher *self, uint64_t now_ms);

typedef struct {
    uint64_t bytes_fetched, bytes_served, instances_fetched, corrupt, jobs_done, jobs_failed;
    uint64_t last_job_ms;
} pm_fetch_stats;
pm_fetch_stats pm_fetch_get_stats(pm_fetcher *self);

#endif
