/* The roster and "next for me": reporter add | list | remove, and next. A reporter is
 * registered network-wide by an event (ReporterRegistered); next is computed on this
 * node from the replicated views and roster (node/worklist/next.h). */
#include "crypto/hash.h"
#include "node/cli/commands.h"
#include "node/cli/item_command.h"
#include "node/worklist/next.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

#define LIST_MAX 64
#define CAPACITY_DEFAULT 5
#define CAPACITY_MAX 1000

/* Every value of a repeatable option (--name V or --name=V), each also split at commas.
 * The values point into argv or into *storage (the caller frees it). */
static size_t collect_repeated(int argc, char **argv, const char *name, char **out, size_t max,
                               char **storage)
{
    size_t n = 0, nlen = strlen(name);
    size_t total = 1;
    for (int i = 1; i < argc; i++)
        total += strlen(argv[i]) + 1;
    char *buf = *storage = calloc(1, total);
    for (int i = 1; buf && i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, name, nlen) == 0) {
            if (a[2 + nlen] == '=')
                v = a + 3 + nlen;
            else if (a[2 + nlen] == '\0' && i + 1 < argc)
                v = argv[++i];
        }
        if (!v)
            continue;
        strcpy(buf, v);
        for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ","))
            if (*tok)
                out[n++] = tok;
        buf += strlen(v) + 1;
    }
    return n;
}

static int reporter_write(pm_node *node, Pm__ReporterRegistered *r)
{
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED;
    body.reporter_registered = r;
    return pm_item_append(node, &body);
}

/* The values of the repeatable options, read before pm_cli_parse reorders argv. */
typedef struct {
    char *subs[LIST_MAX], *sites[LIST_MAX], *sub_buf, *site_buf;
    size_t n_subs, n_sites;
} repeated_opts;

static int reporter_add(const repeated_opts *o, const pm_cli_args *a, const char *name,
                        const char *capacity)
{
    if (a->nargs != 2 || !pm_item_reporter_ok(a->args[1]))
        return pm_cli_usage(a->usage, "reporter add needs one reporter ID (1-64 letters, "
                                      "digits, '.', '_', '-', '@')");
    if (!name || !*name || strlen(name) > 256)
        return pm_cli_usage(a->usage, "--name NAME is required (1-256 characters)");
    char *end = NULL;
    long cap = capacity ? strtol(capacity, &end, 10) : CAPACITY_DEFAULT;
    /* 0 is "off the rota": registered, but offered nothing by `next` anywhere. */
    if (capacity && (!*capacity || *end || cap < 0 || cap > CAPACITY_MAX))
        return pm_cli_usage(a->usage, "--capacity is a number of items, 0-%d", CAPACITY_MAX);
    size_t n_subs = o->n_subs, n_sites = o->n_sites;
    char *const *subs = o->subs, *const *sites_text = o->sites;
    pm_node node;
    int rc = pm_node_open(a->dir, PM_NODE_ALL, &node);
    if (rc)
        return rc;
    uint8_t site_ids[LIST_MAX][PM_ID_BYTES];
    ProtobufCBinaryData sites[LIST_MAX];
    for (size_t i = 0; !rc && i < n_sites; i++) {
        rc = pm_cli_resolve_id(node.store, sites_text[i], site_ids[i]);
        sites[i] = (ProtobufCBinaryData){PM_ID_BYTES, site_ids[i]};
    }
    if (!rc) {
        Pm__ReporterRegistered r = PM__REPORTER_REGISTERED__INIT;
        r.reporter_id = a->args[1];
        r.name = (char *)name;
        r.subspecialties = (char **)subs;
        r.n_subspecialties = n_subs;
        r.sites = sites;
        r.n_sites = n_sites;
        r.capacity = (uint32_t)cap;
        rc = reporter_write(&node, &r);
        if (rc == PM_EXIT_OK)
            printf("registered reporter %s (%s): %zu sub-specialties, %s, capacity %ld\n",
                   a->args[1], name, n_subs, n_sites ? "listed sites" : "every site", cap);
    }
    pm_node_close(&node);
    return rc;
}

static int reporter_remove(const pm_cli_args *a)
{
    if (a->nargs != 2)
        return pm_cli_usage(a->usage, "reporter remove needs one reporter ID");
    pm_node node;
    int rc = pm_node_open(a->dir, PM_NODE_ALL, &node);
    if (rc)
        return rc;
    Pm__ReporterView *v = NULL;
    if (pm_views_reporter(node.store, a->args[1], &v) != PM_OK) {
        pm_node_close(&node);
        return pm_cli_fail("no reporter %s on the roster", a->args[1]);
    }
    pm__reporter_view__free_unpacked(v, NULL);
    Pm__ReporterRegistered r = PM__REPORTER_REGISTERED__INIT;
    r.reporter_id = a->args[1];
    r.removed = 1;
    rc = reporter_write(&node, &r);
    if (rc == PM_EXIT_OK)
        printf("removed reporter %s from the roster\n", a->args[1]);
    pm_node_close(&node);
    return rc;
}

static json_t *reporter_json(const Pm__ReporterView *r)
{
    json_t *subs = json_array(), *sites = json_array();
    for (size_t i = 0; i < r->n_subspecialties; i++)
        json_array_append_new(subs, json_string(r->subspecialties[i]));
    for (size_t i = 0; i < r->n_sites; i++) {
        char hex[PM_ID_HEX];
        pm_hex_encode(r->sites[i].data, PM_ID_BYTES, hex);
        json_array_append_new(sites, json_string(hex));
    }
    char by[PM_ID_HEX], when[32];
    pm_hex_encode(r->registered_by.data, PM_ID_BYTES, by);
    return json_pack("{s:s, s:s, s:o, s:o, s:i, s:s, s:s}", "id", r->id, "name", r->name,
                     "subspecialties", subs, "sites", sites, "capacity", (int)r->capacity,
                     "registered_by", by, "registered", pm_cli_time(r->time_ms, when));
}

static int add_reporter_json(void *ctx, const Pm__ReporterView *r)
{
    json_array_append_new(ctx, reporter_json(r));
    return 0;
}

static int reporter_list(const pm_cli_args *a)
{
    pm_node node;
    int rc = pm_node_open(a->dir, PM_NODE_ALL, &node);
    if (rc)
        return rc;
    json_t *list = json_array();
    int r = pm_views_reporters(node.store, add_reporter_json, list);
    pm_node_close(&node);
    if (r) {
        json_decref(list);
        return pm_cli_fail("cannot read the roster: %s", pm_strerror(r));
    }
    if (a->json) {
        pm_cli_print_json(list);
        return PM_EXIT_OK;
    }
    static const char *const head[] = {"ID", "NAME", "SUBSPECIALTIES", "SITES", "CAPACITY"};
    pm_table *t = pm_table_new(5, head);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        char *subs = json_dumps(json_object_get(o, "subspecialties"), JSON_COMPACT);
        char sites[32], cap[16];
        size_t n = json_array_size(json_object_get(o, "sites"));
        snprintf(sites, sizeof sites, n ? "%zu listed" : "all", n);
        snprintf(cap, sizeof cap, "%d", (int)json_integer_value(json_object_get(o, "capacity")));
        const char *row[] = {json_string_value(json_object_get(o, "id")),
                             json_string_value(json_object_get(o, "name")), subs ? subs : "", sites,
                             cap};
        pm_table_add(t, row);
        free(subs);
    }
    pm_table_print(t, stdout);
    pm_table_destroy(&t);
    json_decref(list);
    return PM_EXIT_OK;
}

int pm_cmd_reporter(int argc, char **argv)
{
    const char *name = NULL, *capacity = NULL, *ignored = NULL;
    pm_cli_opt opts[] = {{"name", &name, NULL},
                         {"capacity", &capacity, NULL},
                         {"subspecialty", &ignored, NULL},
                         {"site", &ignored, NULL},
                         {NULL, NULL, NULL}};
    repeated_opts rep = {0};
    rep.n_subs = collect_repeated(argc, argv, "subspecialty", rep.subs, LIST_MAX, &rep.sub_buf);
    rep.n_sites = collect_repeated(argc, argv, "site", rep.sites, LIST_MAX, &rep.site_buf);
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        ;
    else if (a.nargs < 1)
        rc = pm_cli_usage(a.usage, "say what to do: add, list or remove");
    else if (strcmp(a.args[0], "add") == 0)
        rc = reporter_add(&rep, &a, name, capacity);
    else if (strcmp(a.args[0], "list") == 0)
        rc = reporter_list(&a);
    else if (strcmp(a.args[0], "remove") == 0)
        rc = reporter_remove(&a);
    else
        rc = pm_cli_usage(a.usage, "unknown reporter command '%s'", a.args[0]);
    free(rep.sub_buf);
    free(rep.site_buf);
    return rc;
}

/* ---- next ---------------------------------------------------------------------- */

typedef struct {
    const Pm__ReporterView *reporter;
    uint64_t now;
    pm_next_ranking *ranking; /* the items the reporter may take, by their ranks */
    size_t held;              /* claims the reporter holds now */
} next_walk;

static int collect_candidate(void *ctx, const Pm__StudyView *s)
{
    next_walk *w = ctx;
    const Pm__StudyView *one[] = {s};
    w->held += pm_next_claims_held(w->reporter, one, 1, w->now);
    return pm_next_ranking_offer(w->ranking, s) ? PM_E_NOMEM : 0;
}

typedef struct {
    Pm__ReporterView **r;
    size_t n;
} roster_copy;

static int copy_reporter(void *ctx, const Pm__ReporterView *r)
{
    roster_copy *c = ctx;
    size_t len = pm__reporter_view__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    Pm__ReporterView **grown = buf ? realloc(c->r, (c->n + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(buf);
        return 1;
    }
    c->r = grown;
    pm__reporter_view__pack(r, buf);
    c->r[c->n] = pm__reporter_view__unpack(NULL, len, buf);
    free(buf);
    return c->r[c->n++] ? 0 : 1;
}

static void roster_free(roster_copy *c)
{
    for (size_t i = 0; i < c->n; i++)
        pm__reporter_view__free_unpacked(c->r[i], NULL);
    free(c->r);
}

static int print_next(const pm_cli_args *a, const Pm__StudyView *s, uint64_t now)
{
    json_t *o = pm_items_worklist_json(s, now, -1);
    json_object_del(o, "viewable"); /* not computed here: see `worklist` */
    if (a->json) {
        pm_cli_print_json(o);
        return PM_EXIT_OK;
    }
    printf("%s  %s  due %s  %s  %s\n", json_string_value(json_object_get(o, "study_uid")),
           json_string_value(json_object_get(o, "priority")),
           json_string_value(json_object_get(o, "due")),
           json_string_value(json_object_get(o, "modality")),
           json_string_value(json_object_get(o, "description")));
    json_decref(o);
    return PM_EXIT_OK;
}

int pm_cmd_next(int argc, char **argv)
{
    const char *reporter = NULL;
    pm_cli_opt opts[] = {{"reporter", &reporter, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!reporter || a.nargs))
        rc = pm_cli_usage(a.usage, "--reporter ID is required, and nothing else");
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL, &node))) {
        return rc;
    }
    Pm__ReporterView *me = NULL;
    roster_copy roster = {0};
    next_walk w = {0};
    if (pm_views_reporter(node.store, reporter, &me) != PM_OK) {
        rc = pm_cli_fail("%s is not on the roster (see `reporter add`)", reporter);
        goto done;
    }
    w.reporter = me;
    w.now = pm_now_ms();
    int r = pm_views_reporters(node.store, copy_reporter, &roster);
    if (!r && !(w.ranking = pm_next_ranking_new(me, (const Pm__ReporterView *const *)roster.r,
                                                roster.n, w.now)))
        r = PM_E_NOMEM;
    /* Only open items can be offered or count against capacity: the open-items table
     * lists them with what ranks them (a claimed item whose lease lapsed is offered
     * again); the one picked is read whole below. */
    if (!r)
        r = pm_views_open_items(node.store, collect_candidate, &w);
    if (r) {
        rc = pm_cli_fail("cannot read the worklist: %s", pm_strerror(r));
        goto done;
    }
    if (me->capacity == 0) {
        rc = pm_cli_fail("nothing for %s: their capacity is 0 (off the rota; `reporter add` "
                         "with --capacity N puts them back)",
                         reporter);
        goto done;
    }
    if (w.held >= me->capacity) {
        rc = pm_cli_fail("%s holds %zu claimed items, their capacity: report or release one first",
                         reporter, w.held);
        goto done;
    }
    char *uid = NULL;
    Pm__StudyView *pick = NULL;
    if (pm_next_ranking_pick(w.ranking, &uid) < 0)
        rc = pm_cli_fail("nothing for %s: no unclaimed item of their sub-specialties and sites",
                         reporter);
    else if (pm_views_study(node.store, uid, &pick) != PM_OK)
        rc = pm_cli_fail("cannot read study %s", uid);
    else
        rc = print_next(&a, pick, w.now);
    free(uid);
    if (pick)
        pm__study_view__free_unpacked(pick, NULL);
done:
    pm_next_ranking_free(&w.ranking);
    roster_free(&roster);
    if (me)
        pm__reporter_view__free_unpacked(me, NULL);
    pm_node_close(&node);
    return rc;
}
