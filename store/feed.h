/* Per-origin feeds of signed events: appending this node's own events, ingesting
 * foreign ones (idempotently, with chain, sequence, mesh and revocation checks), and
 * reading feeds for gossip and audit. */
#ifndef PM_FEED_H
#define PM_FEED_H

#include "store/store.h"

typedef struct {
    uint8_t origin[PM_ID_BYTES];
    uint64_t seq;                /* highest contiguous sequence held */
    uint8_t hash[PM_HASH_BYTES]; /* hash of that event's envelope */
    uint64_t lamport;
} pm_head;

/* Appends a new event by id to its own feed and applies it. body carries the payload;
 * origin, seq, prev, lamport, wall_ms and mesh are filled in here (inside the write
 * transaction, so concurrent appenders cannot fork the feed). PM_E_MESH if the store
 * has no mesh yet and body is not a genesis. On success, if out is non-NULL, *out is
 * the new event (the caller's). Durable when this returns PM_OK. */
int pm_feed_append(pm_store *store, const pm_identity *id, Pm__EventBody *body, pm_event **out);

/* Ingests serialized envelopes received from a peer, in one durable transaction.
 * results[i] receives, for bytes[i]: PM_OK (new, stored and applied), PM_ALREADY_HELD,
 * or the reason it was refused: the codes of pm_event_parse, PM_E_MESH, PM_E_GAP,
 * PM_E_CHAIN, PM_E_FORK (a fork branch event, new: kept and applied as store/forks.h
 * says, not in the feed), PM_E_TOOBIG (a branch past the bound) or PM_E_REVOKED.
 * Nothing refused is stored. Returns PM_OK if the
 * transaction committed, else the store error (and nothing was stored). */
int pm_feed_ingest_batch(pm_store *store, const uint8_t *const *bytes, const size_t *lens, size_t n,
                         int *results);

/* As pm_feed_ingest_batch for envelopes whose signatures the caller has already
 * checked (pm_event_parse returned PM_OK for each), e.g. on several threads. */
int pm_feed_ingest_batch_verified(pm_store *store, const uint8_t *const *bytes, const size_t *lens,
                                  size_t n, int *results);

/* As pm_feed_ingest_batch, with the signatures of the events this node does not hold
 * yet (a sequence past its head of their origin) checked on every core while the
 * events before them are being stored (store/sigcheck.h), everything in the one
 * transaction: what a catch-up of thousands of events needs. Same results and returns. */
int pm_feed_ingest_batch_parallel(pm_store *store, const uint8_t *const *bytes, const size_t *lens,
                                  size_t n, int *results);

/* Single-event convenience form: returns the per-event result (or the store error). */
int pm_feed_ingest(pm_store *store, const uint8_t *bytes, size_t len);

/* Records a fork proof (two different, validly signed events of one origin with one
 * sequence number) whatever this node holds of that feed, so a node that is behind
 * keeps it too. PM_OK if it was new, PM_ALREADY_HELD, PM_E_INVAL if a and b are not a
 * proof, or the codes of pm_event_parse and PM_E_MESH. */
int pm_feed_record_fork_proof(pm_store *store, const uint8_t *a, size_t alen, const uint8_t *b,
                              size_t blen);

/* The head of origin's feed; PM_E_NOTFOUND if none is held. */
int pm_feed_head(pm_store *store, const uint8_t origin[PM_ID_BYTES], pm_head *out);

/* Every feed's head (the version vector). *out is the caller's to free(). */
int pm_feed_heads(pm_store *store, pm_head **out, size_t *n);

typedef int (*pm_feed_fn)(void *ctx, const uint8_t *raw, size_t len);

/* Calls fn with origin's events from from_seq on, oldest first, stopping after
 * max_events or once max_bytes have been passed (at least one event is given), or when
 * fn returns non-zero (which is then returned). The bytes are borrowed for the call. */
int pm_feed_read(pm_store *store, const uint8_t origin[PM_ID_BYTES], uint64_t from_seq,
                 size_t max_events, size_t max_bytes, pm_feed_fn fn, void *ctx);

/* Calls fn for every event held, in the total order (lamport, origin, seq). */
int pm_feed_for_each(pm_store *store, pm_feed_fn fn, void *ctx);

/* Calls fn for each fork held: the event in the feed and the conflicting one (or two
 * branch events, when the feed does not reach that seq). Implemented in store/forks.c. */
typedef int (*pm_fork_fn)(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                          const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
int pm_feed_forks(pm_store *store, pm_fork_fn fn, void *ctx);

#endif
