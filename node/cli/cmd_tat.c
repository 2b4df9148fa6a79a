/* tat: turnaround from announcement to first report, grouped by any of site, priority,
 * modality, reporter and day, over a range of days. It walks the final-reports index
 * (store/study_index.c: items by the time their report became final, each with its
 * turnaround record, store/turnaround.h) between the range's ends, so a month's
 * statistics read that month's records, not every study's view.
 * The dashboard's charts are drawn from exactly this JSON (GET /api/tat). */
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/studies/modalities.h"
#include "proto/error.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000ull

/* The keys a group may be made of, in the order they sort and print. */
enum { KEY_SITE, KEY_PRIORITY, KEY_MODALITY, KEY_REPORTER, KEY_DAY, N_KEYS };
static const char *const key_names[N_KEYS] = {"site", "priority", "modality", "reporter", "day"};

typedef struct {
    char *key[N_KEYS]; /* the group's value of each key in use, else NULL */
    uint64_t *ms;      /* turnaround of each item */
    uint64_t *target;  /* its due window (due - announced) */
    size_t n, cap, within;
} tat_group;

typedef struct {
    const char *site_filter;
    int by[N_KEYS]; /* which keys group */
    tat_group *groups;
    size_t n, cap;
    json_t *index; /* composite key -> group number + 1 */
} tat_ctx;

/* "site,priority,day" into c->by; 0, or -1 naming nothing known. */
static int parse_by(const char *spec, tat_ctx *c)
{
    char buf[128];
    if (strlen(spec) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", spec);
    int any = 0;
    for (char *save = NULL, *k = strtok_r(buf, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < N_KEYS; i++)
            if (strcmp(k, key_names[i]) == 0)
                found = c->by[i] = 1;
        if (!found)
            return -1;
        any = 1;
    }
    return any ? 0 : -1;
}

/* "YYYY-MM-DD" as the UTC midnight starting it, in ms; 0 if not a day. */
static uint64_t day_start_ms(const char *day)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, m, d;
    char extra;
    if (!day || sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || strlen(day) != 10 ||
        y < 1970 || m < 1 || m > 12 || d < 1 || d > 31)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    struct tm back;
    if (t < 0 || !gmtime_r(&t, &back) || back.tm_mday != d)
        return 0; /* 2026-02-31 */
    return (uint64_t)t * 1000;
}

static void day_of(uint64_t ms, char out[16])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static tat_group *group_for(tat_ctx *c, const char *const vals[N_KEYS])
{
    char composite[2048] = "";
    size_t o = 0;
    for (int i = 0; i < N_KEYS; i++)
        if (c->by[i] && o < sizeof composite)
            o += (size_t)snprintf(composite + o, sizeof composite - o, "%s\x1f", vals[i]);
    json_int_t at = json_integer_value(json_object_get(c->index, composite));
    if (at)
        return &c->groups[at - 1];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        tat_group *grown = realloc(c->groups, cap * sizeof *grown);
        if (!grown)
            return NULL;
        c->groups = grown;
        c->cap = cap;
    }
    tat_group *g = &c->groups[c->n++];
    memset(g, 0, sizeof *g);
    for (int i = 0; i < N_KEYS; i++)
        g->key[i] = c->by[i] ? strdup(vals[i]) : NULL;
    json_object_set_new(c->index, composite, json_integer((json_int_t)c->n));
    return g;
}

static int add_to(tat_group *g, uint64_t ms, uint64_t target, int within)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        uint64_t *a = realloc(g->ms, cap * sizeof *a);
        if (a)
            g->ms = a;
        uint64_t *b = a ? realloc(g->target, cap * sizeof *b) : NULL;
        if (!b)
            return PM_E_NOMEM;
        g->target = b;
        g->cap = cap;
    }
    g->ms[g->n] = ms;
    g->target[g->n++] = target;
    g->within += within != 0;
    return 0;
}

/* The study's modalities without SR, the structured report the reporting itself adds
 * to the study (a study of SR alone keeps it). */
static void acquired_modalities(const char *modalities, char *out, size_t len)
{
    char all[PM_STUDY_MODALITIES_MAX];
    snprintf(all, sizeof all, "%s", modalities);
    size_t o = 0;
    int sr = 0;
    out[0] = 0;
    for (char *save = NULL, *m = strtok_r(all, "\\", &save); m; m = strtok_r(NULL, "\\", &save)) {
        if (strcmp(m, "SR") == 0)
            sr = 1;
        else if (o < len)
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "\\" : "", m);
    }
    if (!*out && sr)
        snprintf(out, len, "SR");
}

/* One final item into its group; only the keys in use are computed. */
static int add_sample(void *vctx, const pm_turnaround *t)
{
    tat_ctx *c = vctx;
    if (!t->reported_ms || t->reported_ms < t->announced_ms)
        return 0;
    char site[PM_ID_HEX] = "", day[16] = "", modality[PM_STUDY_MODALITIES_MAX] = "";
    if (c->site_filter || c->by[KEY_SITE])
        pm_hex_encode(t->site, PM_ID_BYTES, site);
    if (c->site_filter && strncasecmp(site, c->site_filter, strlen(c->site_filter)) != 0)
        return 0;
    if (c->by[KEY_DAY])
        day_of(t->final_ms, day);
    if (c->by[KEY_MODALITY])
        acquired_modalities(t->modalities, modality, sizeof modality);
    const char *vals[N_KEYS] = {site, t->priority, modality, t->reporter, day};
    tat_group *g = group_for(c, vals);
    if (!g)
        return PM_E_NOMEM;
    uint64_t target = t->due_ms > t->announced_ms ? t->due_ms - t->announced_ms : 0;
    return add_to(g, t->reported_ms - t->announced_ms, target,
                  !t->due_ms || t->reported_ms <= t->due_ms);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
    const tat_group *x = a, *y = b;
    for (int i = 0; i < N_KEYS; i++) {
        int c = x->key[i] && y->key[i] ? strcmp(x->key[i], y->key[i]) : 0;
        if (c)
            return c;
    }
    return 0;
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

static json_t *group_json(tat_group *g)
{
    qsort(g->ms, g->n, sizeof *g->ms, cmp_u64);
    qsort(g->target, g->n, sizeof *g->target, cmp_u64);
    uint64_t med = percentile(g->ms, g->n, 50), p90 = percentile(g->ms, g->n, 90);
    json_t *o = json_object();
    for (int i = 0; i < N_KEYS; i++)
        if (g->key[i])
            json_object_set_new(o, key_names[i], json_string(g->key[i]));
    json_object_set_new(o, "count", json_integer((json_int_t)g->n));
    json_object_set_new(o, "median_s", json_integer((json_int_t)(med / 1000)));
    json_object_set_new(o, "p90_s", json_integer((json_int_t)(p90 / 1000)));
    json_object_set_new(o, "median_ms", json_integer((json_int_t)med));
    json_object_set_new(o, "p90_ms", json_integer((json_int_t)p90));
    json_object_set_new(o, "target_ms", json_integer((json_int_t)percentile(g->target, g->n, 50)));
    json_object_set_new(o, "within_target", json_integer((json_int_t)g->within));
    /* A share in thousandths, so every reader rounds it the same way. */
    json_object_set_new(o, "within_target_share",
                        json_real((double)(g->within * 1000 / g->n) / 1000.0));
    return o;
}

static void print_table(json_t *list, const tat_ctx *c)
{
    const char *head[N_KEYS + 5];
    int cols = 0;
    for (int i = 0; i < N_KEYS; i++)
        if (c->by[i])
            head[cols++] = key_names[i];
    const char *more[] = {"COUNT", "MEDIAN", "P90", "TARGET", "IN TIME"};
    for (int i = 0; i < 5; i++)
        head[cols + i] = more[i];
    char upper[N_KEYS][16];
    for (int i = 0; i < cols; i++) {
        snprintf(upper[i], sizeof upper[i], "%s", head[i]);
        for (char *p = upper[i]; *p; p++)
            *p = (char)(*p - 'a' + 'A');
        head[i] = upper[i];
    }
    pm_table *t = pm_table_new(cols + 5, head);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        char cells[5][32], site[9];
        const char *row[N_KEYS + 5];
        int k = 0;
        for (int j = 0; j < N_KEYS; j++) {
            if (!c->by[j])
                continue;
            const char *v = json_string_value(json_object_get(o, key_names[j]));
            if (j == KEY_SITE) {
                snprintf(site, sizeof site, "%.8s", v);
                v = site;
            }
            row[k++] = v;
        }
        snprintf(cells[0], 32, "%lld", (long long)json_integer_value(json_object_get(o, "count")));
        format_duration((uint64_t)json_integer_value(json_object_get(o, "median_ms")), cells[1],
                        32);
        format_duration((uint64_t)json_integer_value(json_object_get(o, "p90_ms")), cells[2], 32);
        format_duration((uint64_t)json_integer_value(json_object_get(o, "target_ms")), cells[3],
                        32);
        snprintf(cells[4], 32, "%.1f%%",
                 100.0 * json_real_value(json_object_get(o, "within_target_share")));
        for (int j = 0; j < 5; j++)
            row[k++] = cells[j];
        pm_table_add(t, row);
    }
    pm_table_print(t, stdout);
    pm_table_destroy(&t);
}

/* The options into c and the range [from, until); PM_EXIT_OK or a usage error. */
static int parse_range(const pm_cli_args *a, const char *from, const char *to, const char *by,
                       tat_ctx *c, uint64_t *from_ms, uint64_t *until_ms)
{
    if (by ? parse_by(by, c) : parse_by("site,priority", c))
        return pm_cli_usage(a->usage, "--by is a comma-separated list of site, priority, "
                                      "modality, reporter, day");
    *from_ms = 0;
    *until_ms = UINT64_MAX;
    if (from && !(*from_ms = day_start_ms(from)))
        return pm_cli_usage(a->usage, "--from is a day, YYYY-MM-DD (UTC): '%s'", from);
    if (to) {
        uint64_t t = day_start_ms(to);
        if (!t)
            return pm_cli_usage(a->usage, "--to is a day, YYYY-MM-DD (UTC): '%s'", to);
        *until_ms = t + DAY_MS; /* the whole last day */
    }
    if (*until_ms <= *from_ms)
        return pm_cli_usage(a->usage, "--to is before --from");
    return PM_EXIT_OK;
}

int pm_cmd_tat(int argc, char **argv)
{
    tat_ctx c = {0};
    const char *from = NULL, *to = NULL, *by = NULL;
    pm_cli_opt opts[] = {{"site", &c.site_filter, NULL},
                         {"from", &from, NULL},
                         {"to", &to, NULL},
                         {"by", &by, NULL},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    uint64_t from_ms = 0, until_ms = UINT64_MAX;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc || (rc = parse_range(&a, from, to, by, &c, &from_ms, &until_ms)))
        return rc;
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_STORE, &node)))
        return rc;
    c.index = json_object();
    int r = pm_views_turnarounds_between(node.store, from_ms, until_ms, add_sample, &c);
    if (r)
        rc = pm_cli_fail("cannot read the final reports: %s", pm_strerror(r));
    if (c.n) /* qsort(NULL, 0, ...) is undefined */
        qsort(c.groups, c.n, sizeof *c.groups, cmp_group);
    json_t *list = json_array();
    for (size_t i = 0; i < c.n; i++)
        json_array_append_new(list, group_json(&c.groups[i]));
    if (!rc && a.json)
        pm_cli_print_json(json_incref(list));
    else if (!rc)
        print_table(list, &c);
    json_decref(list);
    json_decref(c.index);
    for (size_t i = 0; i < c.n; i++) {
        for (int k = 0; k < N_KEYS; k++)
            free(c.groups[i].key[k]);
        free(c.groups[i].ms);
        free(c.groups[i].target);
    }
    free(c.groups);
    pm_node_close(&node);
    return rc;
}
