/* Worklist metrics by site and priority (node/daemon/metrics_worklist.h). */
#include "node/daemon/metrics_worklist.h"
#include "crypto/hash.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Turnaround buckets (seconds): from minutes (an immediate case) to the four weeks of a
 * routine due time. */
static const double BUCKETS[] = {300,   900,   1800,   3600,   7200,   14400,
                                 43200, 86400, 259200, 604800, 2419200};
enum { N_BUCKETS = sizeof BUCKETS / sizeof BUCKETS[0], N_STATES = PM_WL_N_STATES };

typedef struct {
    char site[64], priority[16];
    uint64_t items[N_STATES];
    uint64_t buckets[N_BUCKETS], count;
    double sum_s;
} group;

struct pm_wl_metrics {
    pm_store *store;
    uint64_t now;
    group *g;
    size_t n;
};

/* The site's member name (its id's first 16 hex digits if it has none). */
static void site_name(pm_store *store, const ProtobufCBinaryData *id, char out[64])
{
    Pm__MemberView *m = NULL;
    if (id->len == PM_ID_BYTES && pm_views_member(store, id->data, &m) == PM_OK && m->name &&
        *m->name)
        snprintf(out, 64, "%s", m->name);
    else if (id->len == PM_ID_BYTES)
        pm_hex_encode(id->data, 8, out);
    else
        snprintf(out, 64, "unknown");
    if (m)
        pm__member_view__free_unpacked(m, NULL);
}

static group *group_for(pm_wl_metrics *c, const char *site, const char *priority)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->g[i].site, site) == 0 && strcmp(c->g[i].priority, priority) == 0)
            return &c->g[i];
    group *grown = realloc(c->g, (c->n + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    c->g = grown;
    group *g = &c->g[c->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->site, sizeof g->site, "%s", site);
    snprintf(g->priority, sizeof g->priority, "%s", priority);
    return g;
}

static int count_study(void *ctx, const Pm__StudyView *s)
{
    pm_wl_metrics *c = ctx;
    if (!s->study)
        return 0;
    char site[64];
    site_name(c->store, &s->site, site);
    const char *priority =
        s->study->terms && *s->study->terms->priority ? s->study->terms->priority : "routine";
    group *g = group_for(c, site, priority);
    if (!g)
        return PM_E_NOMEM;
    const char *state = pm_views_item_state(s, c->now);
    for (int i = 0; i < N_STATES; i++)
        g->items[i] += strcmp(state, PM_WL_STATES[i]) == 0;
    if (s->n_reports && s->reported_ms >= s->announced_ms) {
        double secs = (double)(s->reported_ms - s->announced_ms) / 1000.0;
        g->count++;
        g->sum_s += secs;
        for (int i = 0; i < N_BUCKETS; i++)
            g->buckets[i] += secs <= BUCKETS[i];
    }
    return 0;
}

int pm_wl_metrics_count(pm_store *store, uint64_t now_ms, pm_wl_metrics **out)
{
    pm_wl_metrics *c = calloc(1, sizeof *c);
    if (!c)
        return PM_E_NOMEM;
    c->store = store;
    c->now = now_ms;
    int rc = pm_views_studies(store, NULL, NULL, count_study, c);
    if (rc) {
        pm_wl_metrics_destroy(&c);
        return rc;
    }
    *out = c;
    return PM_OK;
}

void pm_wl_metrics_destroy(pm_wl_metrics **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->g);
    free(*self_p);
    *self_p = NULL;
}

void pm_wl_metrics_write(const pm_wl_metrics *m, pm_metrics_writer *w)
{
    if (!m)
        return;
    static const char items[] = "pacsmesh_worklist_site_items";
    for (size_t i = 0; i < m->n; i++)
        for (int s = 0; s < N_STATES; s++) {
            const char *const labels[][2] = {
                {"site", m->g[i].site}, {"priority", m->g[i].priority}, {"state", PM_WL_STATES[s]}};
            pm_metrics_sample(w, PM_METRICS_GAUGE, items,
                              "Worklist items by acquiring site (member name), priority and state.",
                              items, labels, 3, (double)m->g[i].items[s]);
        }
    static const char tat[] = "pacsmesh_turnaround_seconds";
    const char *help = "Turnaround from announcement to first report, by site and priority.";
    for (size_t i = 0; i < m->n; i++) {
        const group *g = &m->g[i];
        char le[32];
        for (int b = 0; b <= N_BUCKETS; b++) {
            if (b < N_BUCKETS)
                snprintf(le, sizeof le, "%g", BUCKETS[b]);
            else
                snprintf(le, sizeof le, "+Inf");
            const char *const labels[][2] = {
                {"site", g->site}, {"priority", g->priority}, {"le", le}};
            pm_metrics_sample(w, PM_METRICS_HISTOGRAM, tat, help,
                              "pacsmesh_turnaround_seconds_bucket", labels, 3,
                              (double)(b < N_BUCKETS ? g->buckets[b] : g->count));
        }
        const char *const labels[][2] = {{"site", g->site}, {"priority", g->priority}};
        pm_metrics_sample(w, PM_METRICS_HISTOGRAM, tat, help, "pacsmesh_turnaround_seconds_sum",
                          labels, 2, g->sum_s);
        pm_metrics_sample(w, PM_METRICS_HISTOGRAM, tat, help, "pacsmesh_turnaround_seconds_count",
                          labels, 2, (double)g->count);
    }
}
