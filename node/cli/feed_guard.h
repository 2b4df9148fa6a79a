/* Whether this node may sign new events (docs/design.md, Replication; docs/operations.md, "A
 * restored node"): a node restored from a backup may lag behind its own feed as its
 * peers hold it; a new event signed now would reuse a sequence number and fork it.
 *
 * `restore` marks the store "unconfirmed" (a node-local key, not in the views). The
 * running node clears the mark once a peer has told it how far its own feed goes and
 * it holds that much; `confirm --force` clears it by hand (the logged override for a
 * node that can never reach a peer). While the mark is set nothing is signed: the DICOM
 * edge stores what it receives and announces it once confirmed, and CLI writes wait for
 * the running node, or are refused when no node runs. */
#ifndef PM_FEED_GUARD_H
#define PM_FEED_GUARD_H

#include "node/cli/cli.h"

/* How long a CLI write waits for a running node's confirmation before giving up. */
#define PM_FEED_GUARD_WAIT_MS 30000

/* 1 if the store is marked unconfirmed (*why, if not NULL, receives the reason: the
 * caller's to free), else 0. */
int pm_feed_guard_unconfirmed(pm_store *store, char **why);

/* Marks the store unconfirmed, with why (a sentence). Durable on return. */
int pm_feed_guard_mark(pm_store *store, const char *why);

/* Clears the mark. Durable on return. */
int pm_feed_guard_clear(pm_store *store);

/* For CLI commands that sign: PM_EXIT_OK when signing cannot fork this node's feed;
 * while a running node waits for confirmation, waits up to PM_FEED_GUARD_WAIT_MS for
 * it; otherwise prints why not (and what to do) and returns PM_EXIT_FAIL. */
int pm_feed_guard_check(const pm_node *node);

#endif
