/* Shaping studies and worklist items for output: the SPEC's JSON field names, used by
 * `studies`, `worklist` and `audit replay` alike. */
#ifndef PM_ITEMS_H
#define PM_ITEMS_H

#include <jansson.h>
#include <stdint.h>

#include "node/mesh/liveness.h"
#include "proto/view.pb-c.h"

/* Whether the study's pixel data can be reached now: every instance cached here, or a
 * holder other than this node is up. liveness: the running node's word
 * (pm_admin_liveness), or NULL when the node is not running. */
int pm_items_viewable(const Pm__StudyView *s, const uint8_t *self, const pm_liveness *liveness,
                      int (*is_local)(void *ctx, const uint8_t *hash), void *ctx);

/* The worklist item of a study as a JSON object (field names as docs/pacsmesh.1 lists them). */
json_t *pm_items_worklist_json(const Pm__StudyView *s, uint64_t now_ms, int viewable);

/* The study as a JSON object for `studies`. */
json_t *pm_items_study_json(const Pm__StudyView *s, int viewable, int cached);

/* Worklist counts at a moment (status, metrics). Orphans are unclaimed items past
 * due. */
typedef struct {
    uint64_t now;
    uint64_t studies, unreported, claimed, reported, verified, overdue, orphans;
} pm_worklist_counts;

/* The same counts from the indexes (the state index, the open items by due time):
 * what status and metrics read, without reading every study. *w's now is set by the
 * caller; the rest is filled in. */
struct pm_store;
int pm_items_counts(struct pm_store *store, pm_worklist_counts *w);

#endif
