/* The one place views change. Views are a pure function of the set of events held
 * (docs/design.md invariant 2): applying an event re-derives each view key it touches
 * from all of that key's events in the total order (lamport, origin, seq), so the
 * order events arrived in cannot matter.
 *
 * Membership decides which events count: an event is applied only if its author was
 * admitted (at any position: events a new member wrote before its admission reached
 * us are held, then applied) and not revoked at or before the event's position. When
 * membership changes, every key the affected authors touched is re-derived. */
#ifndef PM_APPLY_H
#define PM_APPLY_H

#include <lmdb.h>

#include "store/store.h"

/* Indexes ev and re-derives the views it affects, inside the caller's write txn. For a
 * membership event, if membership_pending is not NULL, the (costly) re-derivation of
 * membership is left to one pm_apply_membership call at the end of a batch and
 * *membership_pending is set; the views are final only after that call. */
int pm_apply_event(pm_store *store, MDB_txn *txn, const pm_event *ev, int *membership_pending);

/* Re-derives membership and everything that depends on it. */
int pm_apply_membership(pm_store *store, MDB_txn *txn);

/* An event of a fork branch (store/forks.h) was just recorded: it counts like any
 * event (the fork rule: every validly signed event of a forked origin counts, in the
 * total order extended by the event hash), so it is indexed and its views derived
 * again. unindex removes the branch index entry only (the event is being promoted
 * into the feed, which indexes it again). */
int pm_apply_branch_event(pm_store *store, MDB_txn *txn, const pm_event *ev);
int pm_apply_branch_unindex(pm_store *store, MDB_txn *txn, const pm_event *ev);

/* Whether the member view allows an event by its member at pos (see above). */
int pm_apply_author_valid(const Pm__MemberView *member, const pm_position *pos);

#endif
