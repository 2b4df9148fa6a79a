/* tat: turnaround from announcement to first report, per site and priority, from
 * the views (which the event log alone determines). */
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char site[PM_ID_HEX];
    char priority[16];
    uint64_t *ms;
    size_t n;
} tat_group;

typedef struct {
    const char *site_filter;
    tat_group *groups;
    size_t n;
} tat_ctx;

static int add_sample(void *vctx, const Pm__StudyView *s)
{
    tat_ctx *c = vctx;
    if (!s->study || !s->n_reports || s->reported_ms < s->announced_ms)
        return 0;
    char site[PM_ID_HEX];
    pm_hex_encode(s->site.data, PM_ID_BYTES, site);
    if (c->site_filter && strncasecmp(site, c->site_filter, strlen(c->site_filter)) != 0)
        return 0;
    const char *priority = pm_wl_priority(s);
    tat_group *g = NULL;
    for (size_t i = 0; i < c->n && !g; i++)
        if (strcmp(c->groups[i].site, site) == 0 && strcmp(c->groups[i].priority, priority) == 0)
            g = &c->groups[i];
    if (!g) {
        tat_group *grown = realloc(c->groups, (c->n + 1) * sizeof *grown);
        if (!grown)
            return PM_E_NOMEM;
        c->groups = grown;
        g = &c->groups[c->n++];
        memset(g, 0, sizeof *g);
        snprintf(g->site, sizeof g->site, "%s", site);
        snprintf(g->priority, sizeof g->priority, "%s", priority);
    }
    uint64_t *grown = realloc(g->ms, (g->n + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    g->ms = grown;
    g->ms[g->n++] = s->reported_ms - s->announced_ms;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
    const tat_group *x = a, *y = b;
    int c = strcmp(x->site, y->site);
    return c ? c : strcmp(x->priority, y->priority);
}

/* Nearest-rank percentile: the smallest value with at least p% of samples at or below. */
static uint64_t percentile(const uint64_t *sorted, size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    return sorted[rank ? rank - 1 : 0];
}

static void format_duration(uint64_t ms, char *out, size_t len)
{
    uint64_t s = ms / 1000;
    if (s < 120)
        snprintf(out, len, "%.1fs", (double)ms / 1000.0);
    else if (s < 7200)
        snprintf(out, len, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(out, len, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
}

int pm_cmd_tat(int argc, char **argv)
{
    tat_ctx c = {0};
    pm_cli_opt opts[] = {{"site", &c.site_filter, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_STORE, &node))) {
        return rc;
    }
    int r = pm_views_studies(node.store, NULL, NULL, add_sample, &c);
    if (r)
        rc = pm_cli_fail("cannot read the worklist: %s", pm_strerror(r));
    if (c.n) /* qsort(NULL, 0, ...) is undefined */
        qsort(c.groups, c.n, sizeof *c.groups, cmp_group);
    json_t *list = json_array();
    for (size_t i = 0; i < c.n; i++) {
        tat_group *g = &c.groups[i];
        qsort(g->ms, g->n, sizeof *g->ms, cmp_u64);
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:I, s:I, s:I}", "site", g->site, "priority",
                                        g->priority, "count", (json_int_t)g->n, "median_s",
                                        (json_int_t)(percentile(g->ms, g->n, 50) / 1000), "p90_s",
                                        (json_int_t)(percentile(g->ms, g->n, 90) / 1000)));
        json_object_set_new(json_array_get(list, i), "median_ms",
                            json_integer((json_int_t)percentile(g->ms, g->n, 50)));
        json_object_set_new(json_array_get(list, i), "p90_ms",
                            json_integer((json_int_t)percentile(g->ms, g->n, 90)));
    }
    if (!rc && a.json) {
        pm_cli_print_json(json_incref(list));
    } else if (!rc) {
        static const char *const head[] = {"SITE", "PRIORITY", "COUNT", "MEDIAN", "P90"};
        pm_table *t = pm_table_new(5, head);
        for (size_t i = 0; i < c.n; i++) {
            char count[24], med[32], p90[32], site[9];
            snprintf(count, sizeof count, "%zu", c.groups[i].n);
            format_duration(percentile(c.groups[i].ms, c.groups[i].n, 50), med, sizeof med);
            format_duration(percentile(c.groups[i].ms, c.groups[i].n, 90), p90, sizeof p90);
            snprintf(site, sizeof site, "%.8s", c.groups[i].site);
            const char *row[] = {site, c.groups[i].priority, count, med, p90};
            pm_table_add(t, row);
        }
        pm_table_print(t, stdout);
        pm_table_destroy(&t);
    }
    json_decref(list);
    for (size_t i = 0; i < c.n; i++)
        free(c.groups[i].ms);
    free(c.groups);
    pm_node_close(&node);
    return rc;
}
