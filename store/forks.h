/* Fork branches: what a node keeps when one origin signed two different events with
 * one sequence number (docs/design.md, Replication; docs/operations.md, the fork rule).
 *
 * The feed (store/feed.h) holds one chain per origin, the first this node received.
 * Every other validly signed event of that origin is a fork branch event and is kept
 * here, keyed by (origin, seq, hash): both sides of a fork at one sequence number and
 * each branch's later events, up to PM_FORKS_MAX_PER_ORIGIN of them. They are proof
 * (gossiped, exported, reported by `audit verify`) and, under the fork rule, they count
 * in the views like the feed's own events, so every node that holds the same events
 * derives the same views whichever branch its feed happens to hold. */
#ifndef PM_FORKS_H
#define PM_FORKS_H

#include "store/feed.h"

#define PM_FORKS_MAX_PER_ORIGIN 4096

/* The lowest sequence at which origin has a fork branch event held; 0 if none. */
int pm_forks_floor(pm_store *store, const uint8_t origin[PM_ID_BYTES], uint64_t *floor);

/* A digest of every event of origin held from seq floor on, feed and branches alike,
 * independent of which branch the feed holds: equal on two nodes exactly when they hold
 * the same events of that origin from floor on. */
int pm_forks_digest(pm_store *store, const uint8_t origin[PM_ID_BYTES], uint64_t floor,
                    uint8_t out[PM_HASH_BYTES]);

/* Calls fn with every fork branch event of origin (every origin when origin is NULL),
 * by (origin, seq, hash). The bytes are borrowed for the call; fn returning non-zero
 * stops the walk and is returned. */
int pm_forks_each(pm_store *store, const uint8_t *origin, pm_feed_fn fn, void *ctx);

/* The highest sequence of any fork branch event of origin held; 0 if none. With the
 * feed's head, how far this node holds that origin (a peer whose feed holds the longer
 * branch is not "ahead" of it). */
int pm_forks_top(pm_store *store, const uint8_t origin[PM_ID_BYTES], uint64_t *top);

/* Number of fork branch events held (all origins). */
int pm_forks_count(pm_store *store, uint64_t *count);

#endif
