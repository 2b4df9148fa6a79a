/* The worklist in the metrics, by site (the member's name) and priority: open items by
 * state, and the turnaround (announcement to first report) as a histogram, so a
 * dashboard can show each trust's backlog and reporting times (examples/grafana). */
#ifndef PM_METRICS_WORKLIST_H
#define PM_METRICS_WORKLIST_H

#include "node/daemon/metrics_http.h"
#include "store/store.h"

typedef struct pm_wl_metrics pm_wl_metrics;

/* Counts every study of the store as of now_ms (a walk of all studies: the caller
 * keeps the result for a while). *out is the caller's (pm_wl_metrics_destroy). */
int pm_wl_metrics_count(pm_store *store, uint64_t now_ms, pm_wl_metrics **out);
void pm_wl_metrics_destroy(pm_wl_metrics **self_p);

/* Writes pacsmesh_worklist_site_items{site,priority,state} and
 * pacsmesh_turnaround_seconds{site,priority} (histogram). */
void pm_wl_metrics_write(const pm_wl_metrics *m, pm_metrics_writer *w);

#endif
