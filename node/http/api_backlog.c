/* GET /api/backlog: the coordinator's dashboard in one answer. The open items (the due
 * index lists exactly them: unreported or claimed, by due time) counted per site,
 * priority and sub-specialty, with how many are claimed, overdue, orphans (past due
 * and unclaimed) and at risk; and each reporter's load: items claimed now (from the
 * same walk) and reports submitted today (the final-reports index from midnight UTC).
 * Reported and verified studies, however many, are never read. */
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/http/internal.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000ull

typedef struct {
    uint64_t now;
    json_t *groups;    /* "site priority subspecialty" -> counts */
    json_t *reporters; /* id -> {claimed, reported_today} */
    uint64_t midnight;
} backlog_ctx;

static void bump(json_t *o, const char *field)
{
    json_object_set_new(o, field, json_integer(json_integer_value(json_object_get(o, field)) + 1));
}

static json_t *reporter_load(backlog_ctx *c, const char *id)
{
    json_t *o = json_object_get(c->reporters, id);
    if (!o) {
        o = json_pack("{s:i, s:i}", "claimed", 0, "reported_today", 0);
        json_object_set_new(c->reporters, id, o);
    }
    return o;
}

/* s: an open item as the open-items table keeps it (store/views.h: the fields that
 * rank it, which are all this reads). Items with a due time are the backlog. */
static int count_open(void *ctx, const Pm__StudyView *s)
{
    backlog_ctx *c = ctx;
    if (!s->study || !pm_wl_due_ms(s))
        return 0;
    const char *state = pm_views_item_state(s, c->now);
    const char *sub = s->study->terms ? s->study->terms->subspecialty : "";
    char site[PM_ID_HEX], key[PM_ID_HEX + 200];
    pm_hex_encode(s->site.data, PM_ID_BYTES, site);
    snprintf(key, sizeof key, "%s %s %.64s", site, pm_wl_priority(s), sub);
    json_t *g = json_object_get(c->groups, key);
    if (!g) {
        g = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "site", site, "priority",
                      pm_wl_priority(s), "subspecialty", sub, "open", 0, "claimed", 0, "overdue", 0,
                      "orphans", 0, "at_risk", 0);
        json_object_set_new(c->groups, key, g);
    }
    int claimed = strcmp(state, "claimed") == 0 && s->claim;
    bump(g, "open");
    if (claimed) {
        bump(g, "claimed");
        bump(reporter_load(c, s->claim->reporter), "claimed");
    }
    if (pm_wl_overdue(s, c->now)) {
        bump(g, "overdue");
        if (!claimed)
            bump(g, "orphans");
    }
    if (pm_wl_at_risk(s, c->now))
        bump(g, "at_risk");
    return 0;
}

/* Reports submitted today, by whom (an item final today may hold an older first
 * report: each report is counted by its own time). */
static int count_reported(void *ctx, const Pm__StudyView *s)
{
    backlog_ctx *c = ctx;
    for (size_t i = 0; i < s->n_reports; i++)
        if (s->reports[i]->time_ms >= c->midnight)
            bump(reporter_load(c, s->reports[i]->reporter), "reported_today");
    return 0;
}

enum MHD_Result pm_http_api_backlog(pm_http_req *r)
{
    backlog_ctx c = {pm_now_ms(), json_object(), json_object(), 0};
    c.midnight = c.now - c.now % DAY_MS;
    int rc = pm_views_open_items(r->srv->s.store, count_open, &c);
    if (!rc)
        rc = pm_views_studies_final_since(r->srv->s.store, c.midnight, count_reported, &c);
    if (rc) {
        json_decref(c.groups);
        json_decref(c.reporters);
        return pm_http_error(r, 500, "the worklist cannot be read: %s", pm_strerror(rc));
    }
    /* The groups as a list in key order (site, priority, sub-specialty). */
    json_t *list = json_array();
    const char **keys = calloc(json_object_size(c.groups) + 1, sizeof *keys);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(c.groups, k, v) if (keys) keys[n++] = k;
    for (size_t i = 1; keys && i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *t = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = t;
        }
    for (size_t i = 0; keys && i < n; i++)
        json_array_append(list, json_object_get(c.groups, keys[i]));
    free(keys);
    char when[32];
    json_t *doc = json_pack("{s:s, s:o, s:o}", "time", pm_cli_time(c.now, when), "groups", list,
                            "reporters", c.reporters);
    json_decref(c.groups);
    return pm_http_json(r, 200, doc);
}
