/* What anti-entropy sends of one origin to a peer, from the peer's version entry
 * (proto/wire.proto VersionEntry): the decision gossip makes per origin, kept apart so
 * that it reads on its own.
 *
 * - Normally: the events after the peer's head.
 * - The peer's head names an event at a seq we hold, with another hash: the feeds
 *   diverged somewhere at or before it, so we send from PM_SYNC_WINDOW events before
 *   it; the peer then holds both sides and keeps them as fork proof (store/forks.h).
 * - Either side holds fork branches of the origin and the two fork digests differ:
 *   from PM_SYNC_WINDOW before the lower fork floor, and every branch event we hold,
 *   until both hold the same events of that origin. */
#ifndef PM_SYNC_PLAN_H
#define PM_SYNC_PLAN_H

#include "proto/wire.pb-c.h"
#include "store/feed.h"

#define PM_SYNC_WINDOW 64

typedef struct {
    uint64_t from_seq; /* send the feed's events from here (past our head: nothing) */
    int branches;      /* send our fork branch events of the origin too */
    int diverged;      /* the peer's head is an event we do not hold at that seq */
} pm_sync_plan;

/* theirs may be NULL (the peer holds nothing of mine->origin). */
void pm_sync_plan_origin(pm_store *store, const pm_head *mine, const Pm__VersionEntry *theirs,
                         pm_sync_plan *out);

/* Whether the peer's entry shows fork branches of its origin that we may lack (its
 * fork digest differs from ours, or we hold no fork of that origin at all). */
int pm_sync_fork_news(pm_store *store, const Pm__VersionEntry *theirs);

#endif
