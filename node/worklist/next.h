/* "Next for me": the item a reporter should take next, computed on their own node from
 * the replicated views and roster, with no coordinator and no hub (exclusivity still
 * comes from claims, which converge).
 *
 * Only items the reporter may report are offered: open and unclaimed (a lapsed lease
 * counts as unclaimed), not withdrawn, of a sub-specialty they read (an item with none
 * is general work, open to all) and from a site they are credentialed for (a reporter
 * with no sites listed may report every site's studies). Among those, the most urgent
 * first: priority (an at-risk item counts as urgent), then the share of its due window
 * left (overdue first), then the study UID (so every node ranks alike). Reporters
 * asking at the same moment are spread: the reporter who is k-th, by id, among the
 * roster's reporters taking work (capacity above 0) who are eligible for the most
 * urgent item is offered the k-th most urgent item they may take (wrapping round), so
 * two of them are told different items while there are enough. A reporter whose
 * capacity is 0 takes no place, so the most urgent item is always offered to someone
 * taking work. The spread assumes those reporters are at work; anyone may still claim
 * any item from the worklist. Pure: no store, no clock. */
#ifndef PM_WORKLIST_NEXT_H
#define PM_WORKLIST_NEXT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/view.pb-c.h"

/* Whether reporter r may take item sv at now_ms (the eligibility rule above). */
int pm_next_eligible(const Pm__ReporterView *r, const Pm__StudyView *sv, uint64_t now_ms);

/* Claims r holds now among items[0..n). */
size_t pm_next_claims_held(const Pm__ReporterView *r, const Pm__StudyView *const *items, size_t n,
                           uint64_t now_ms);

/* A ranking of the items r may take, offered one at a time and kept as their ranks, not
 * their views: what lets `next` walk every open item of a decade's worklist without
 * holding them. roster lists every reporter (r among them), for the spread; r and
 * roster must outlive the ranking. */
typedef struct pm_next_ranking pm_next_ranking;

/* NULL when out of memory. */
pm_next_ranking *pm_next_ranking_new(const Pm__ReporterView *r,
                                     const Pm__ReporterView *const *roster, size_t n_roster,
                                     uint64_t now_ms);

/* Offers item sv (kept only if r may take it). Nonzero when out of memory. */
int pm_next_ranking_offer(pm_next_ranking *k, const Pm__StudyView *sv);

/* The place, in the order offered, of the item to offer r, or -1 when none is eligible
 * (or memory ran out); with uid, its study UID too (the caller frees it). */
long pm_next_ranking_pick(pm_next_ranking *k, char **uid);

void pm_next_ranking_free(pm_next_ranking **k_p);

/* The index in items of the item to offer r, or -1 when none is eligible: a ranking of
 * items[0..n). */
long pm_next_pick(const Pm__ReporterView *r, const Pm__ReporterView *const *roster, size_t n_roster,
                  const Pm__StudyView *const *items, size_t n, uint64_t now_ms);

#endif
