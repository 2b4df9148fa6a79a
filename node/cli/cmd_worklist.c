/* The network worklist: worklist, claim, release, report, verify, reports, tat
 * (docs/pacsmesh.1). Every change is an event appended to this node's feed; the running
 * node, if any, is told to push it at once. */
#include "crypto/hash.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/cli/item_command.h"
#include "node/config/value.h"
#include "node/dicom/sr.h"
#include "node/studies/ingest.h"
#include "node/worklist/actions.h"
#include "node/worklist/present.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/blobs.h"
#include "store/feed.h"
#include "store/views.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* claim, release, report and verify: the worklist actions (node/worklist/actions.h),
 * the same the web server calls. */
typedef enum { ACT_CLAIM, ACT_RELEASE, ACT_REPORT, ACT_VERIFY } item_action;

/* Reads the report text file (at most 1 MiB and one byte, to tell "too large"). */
static char *read_report(const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read %s", path);
        return NULL;
    }
    size_t cap = PM_WL_REPORT_MAX + 1, len;
    char *text = malloc(cap + 1);
    len = text ? fread(text, 1, cap, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    text[len] = 0;
    const char *problem = pm_wl_report_text_problem(text, len);
    if (problem) {
        snprintf(why, whylen, "the report file %s %s", path, problem);
        free(text);
        return NULL;
    }
    return text;
}

/* Runs the action, prints its sentence and tells a running node to push the event. */
static int act_on_item(pm_node *node, item_action act, const char *uid, const char *reporter,
                       const char *file, int addendum)
{
    char msg[1024], note[512] = "", why[512];
    pm_wl_node n = {node->store, node->blobs, node->id, node->cfg};
    int rc;
    if (act == ACT_REPORT) {
        char *text = read_report(file, why, sizeof why);
        if (!text)
            return pm_cli_fail("%s", why);
        rc = pm_wl_report(&n, uid, reporter, text, addendum, msg, sizeof msg, note, sizeof note);
        free(text);
    } else {
        rc = act == ACT_CLAIM     ? pm_wl_claim(&n, uid, reporter, msg, sizeof msg)
             : act == ACT_RELEASE ? pm_wl_release(&n, uid, reporter, msg, sizeof msg)
                                  : pm_wl_verify(&n, uid, reporter, msg, sizeof msg);
    }
    if (*note)
        fprintf(stderr, "pacsmesh: %s\n", note);
    if (rc)
        return pm_cli_fail("%s", msg);
    pm_admin_kick(node);
    printf("%s\n", msg);
    return PM_EXIT_OK;
}

/* What they share: parse STUDY_UID --reporter ID (and --file, --addendum for report),
 * open the node and the item, act, clean up. */
static int run_item_command(int argc, char **argv, item_action act)
{
    const char *reporter = NULL, *file = NULL;
    int addendum = 0;
    pm_cli_opt opts[] = {{"reporter", &reporter, NULL},
                         {"file", &file, NULL},
                         {"addendum", NULL, &addendum},
                         {NULL, NULL, NULL}};
    if (act != ACT_REPORT)
        opts[1] = opts[3];
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!reporter || (act == ACT_REPORT && !file)))
        rc = pm_cli_usage(a.usage, act == ACT_REPORT ? "--reporter and --file are required"
                                                     : "--reporter is required");
    pm_node node;
    Pm__StudyView *sv = NULL;
    if (rc || (rc = pm_item_open(&a, reporter, &node, &sv)))
        return rc;
    pm__study_view__free_unpacked(sv, NULL);
    /* Each of these signs an event: never while the node's own feed is unconfirmed. */
    if ((rc = pm_feed_guard_check(&node)) == PM_EXIT_OK)
        rc = act_on_item(&node, act, a.args[0], reporter, file, addendum);
    pm_node_close(&node);
    return rc;
}

int pm_cmd_claim(int argc, char **argv)
{
    return run_item_command(argc, argv, ACT_CLAIM);
}

int pm_cmd_release(int argc, char **argv)
{
    return run_item_command(argc, argv, ACT_RELEASE);
}

int pm_cmd_report(int argc, char **argv)
{
    return run_item_command(argc, argv, ACT_REPORT);
}

int pm_cmd_verify(int argc, char **argv)
{
    return run_item_command(argc, argv, ACT_VERIFY);
}

int pm_cmd_reports(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    pm_node node;
    Pm__StudyView *sv = NULL;
    if (rc || (rc = pm_item_open(&a, NULL, &node, &sv))) {
        return rc;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < sv->n_reports; i++) {
        const Pm__ReportView *r = sv->reports[i];
        char node_id[PM_ID_HEX], when[32];
        pm_hex_encode(r->node.data, PM_ID_BYTES, node_id);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s?, s:b}", "reporter", r->reporter,
                            "node", node_id, "time", pm_cli_time(r->time_ms, when), "text", r->text,
                            "conflict", sv->conflict, "sr_uid", r->sr_sop_instance_uid, "amends",
                            *r->amends ? r->amends : NULL, "out_of_turn", r->out_of_turn));
    }
    if (a.json) {
        pm_cli_print_json(list);
    } else {
        size_t i;
        json_t *o;
        if (!json_array_size(list))
            printf("no reports for %s yet\n", a.args[0]);
        json_array_foreach(list, i, o)
        {
            printf("--- report %zu of %zu by %s at %s from node %.8s%s\n%s\n", i + 1,
                   json_array_size(list), json_string_value(json_object_get(o, "reporter")),
                   json_string_value(json_object_get(o, "time")),
                   json_string_value(json_object_get(o, "node")),
                   sv->conflict ? " (CONFLICT: reconcile)" : "",
                   json_string_value(json_object_get(o, "text")));
        }
        json_decref(list);
    }
    pm__study_view__free_unpacked(sv, NULL);
    pm_node_close(&node);
    return rc;
}

typedef struct {
    const char *state, *site, *subspecialty, *priority, *claimed_by;
    int overdue;
    int paged;              /* --limit over the due index: stop once the page is full */
    uint64_t offset, limit; /* the page: skip offset matches, keep limit */
    uint64_t matched;       /* matches met so far */
    /* --limit over another walk: only each match's due time and UID are kept, sorted,
     * and just the page's items are read again and shaped (keys_page). */
    struct item_key *keys;
    size_t nkeys, capkeys;
    int keys_done; /* the keys are sorted: collect_item now shapes the page's items */
    uint64_t now;
    json_t *list;
    pm_liveness live;
    const pm_liveness *liveness; /* &live while the node runs, else NULL */
    const uint8_t *self;
    pm_blobs *blobs;
} worklist_query;

static int blob_is_local(void *ctx, const uint8_t *hash)
{
    return ctx && pm_blobs_has(ctx, hash);
}

/* Filters on the view itself, so only matching items pay for viewability and JSON. */
static int item_matches(const worklist_query *q, const Pm__StudyView *s)
{
    const Pm__WorklistTerms *t = s->study ? s->study->terms : NULL;
    const char *state = pm_views_item_state(s, q->now);
    int open = pm_wl_state_open(state);
    if (q->state && strcmp(q->state, "open") == 0 ? !open
        : q->state                                ? strcmp(q->state, state) != 0
                                                  : s->withdrawn)
        return 0; /* withdrawn studies show only when asked for */
    if (q->claimed_by && (strcmp(state, "claimed") != 0 || !s->claim ||
                          strcmp(s->claim->reporter, q->claimed_by) != 0))
        return 0;
    if (q->subspecialty && strcasecmp(q->subspecialty, t ? t->subspecialty : "") != 0)
        return 0;
    if (q->priority && strcmp(q->priority, pm_wl_priority(s)) != 0)
        return 0;
    if (q->overdue && !pm_wl_overdue(s, q->now))
        return 0;
    if (q->site) {
        char site[PM_ID_HEX];
        pm_hex_encode(s->site.data, PM_ID_BYTES, site);
        if (strncasecmp(site, q->site, strlen(q->site)) != 0)
            return 0;
    }
    return 1;
}

/* A match of a paged listing not walked in due order. */
struct item_key {
    uint64_t due_s; /* the listing's order: due to the second, then UID */
    char uid[PM_UID_MAX + 1];
};

static int keep_key(worklist_query *q, const Pm__StudyView *s)
{
    if (q->nkeys == q->capkeys) {
        size_t cap = q->capkeys ? q->capkeys * 2 : 1024;
        struct item_key *grown = realloc(q->keys, cap * sizeof *grown);
        if (!grown)
            return PM_E_NOMEM;
        q->keys = grown;
        q->capkeys = cap;
    }
    struct item_key *k = &q->keys[q->nkeys++];
    k->due_s = pm_wl_due_ms(s) / 1000;
    snprintf(k->uid, sizeof k->uid, "%s", s->study->study_instance_uid);
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const struct item_key *x = a, *y = b;
    return x->due_s != y->due_s ? (x->due_s < y->due_s ? -1 : 1) : strcmp(x->uid, y->uid);
}

static int collect_item(void *ctx, const Pm__StudyView *s);

/* The page of the sorted keys: each of its items read and shaped, in order. */
static int keys_page(pm_store *store, worklist_query *q)
{
    if (q->nkeys)
        qsort(q->keys, q->nkeys, sizeof *q->keys, by_key);
    q->keys_done = 1;
    for (uint64_t i = q->offset; i < q->nkeys && i < q->offset + q->limit; i++) {
        Pm__StudyView *sv = NULL;
        if (pm_views_study(store, q->keys[i].uid, &sv) != PM_OK)
            continue;
        collect_item(q, sv);
        pm__study_view__free_unpacked(sv, NULL);
    }
    return PM_OK;
}

/* What collect_item returns once a page walked in due order is full: not an error. */
#define PAGE_FULL 1

static int collect_item(void *ctx, const Pm__StudyView *s)
{
    worklist_query *q = ctx;
    if (!s->study || (!q->keys_done && !item_matches(q, s)))
        return 0;
    if (q->limit && !q->paged && !q->keys_done)
        return keep_key(q, s);
    if (q->paged && q->matched++ < q->offset)
        return 0;
    if (q->paged && json_array_size(q->list) >= q->limit)
        return PAGE_FULL;
    int viewable = pm_items_viewable(s, q->self, q->liveness, blob_is_local, q->blobs);
    json_array_append_new(q->list, pm_items_worklist_json(s, q->now, viewable));
    return 0;
}

static int by_due(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "due")),
                   json_string_value(json_object_get(y, "due")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "study_uid")),
                      json_string_value(json_object_get(y, "study_uid")));
}

/* Whether the walk is the due index, whose order is the listing's: a page then ends
 * the walk as soon as it is full, however many items there are. Open items are the
 * ones the due index lists (unreported or claimed with a due time). */
static int walks_by_due(const worklist_query *q)
{
    return q->overdue || (q->state && (strcmp(q->state, "open") == 0 ||
                                       (q->limit && (strcmp(q->state, "unreported") == 0 ||
                                                     strcmp(q->state, "claimed") == 0))));
}

/* Walks the most selective index the filters allow; item_matches checks every filter
 * in full either way. Overdue items are the open ones due before now (the due index);
 * a state is the state index, where "unreported" also walks the claimed items (a
 * lapsed lease reads as unreported); then priority, sub-specialty, site. A page of
 * open, unreported or claimed items walks the due index too. */
static int walk_items(pm_store *store, worklist_query *q)
{
    if (walks_by_due(q)) {
        int rc =
            pm_views_studies_due_before(store, q->overdue ? q->now : UINT64_MAX, collect_item, q);
        return rc == PAGE_FULL ? PM_OK : rc;
    }
    if (q->state) {
        int rc = pm_views_studies_by_attr(store, PM_ATTR_STATE, q->state, 1, collect_item, q);
        if (!rc && strcmp(q->state, "unreported") == 0)
            rc = pm_views_studies_by_attr(store, PM_ATTR_STATE, "claimed", 1, collect_item, q);
        return rc;
    }
    if (q->priority)
        return pm_views_studies_by_attr(store, PM_ATTR_PRIORITY, q->priority, 1, collect_item, q);
    if (q->subspecialty)
        return pm_views_studies_by_attr(store, PM_ATTR_SUBSPECIALTY, q->subspecialty, 1,
                                        collect_item, q);
    if (q->site && *q->site)
        return pm_views_studies_by_attr(store, PM_ATTR_SITE, q->site, 0, collect_item, q);
    return pm_views_studies(store, NULL, NULL, collect_item, q);
}

/* --limit N (1..10000) and --offset N: one page of the listing. */
static int parse_page(const pm_cli_args *a, const char *limit, const char *offset,
                      worklist_query *q)
{
    char *end = NULL;
    if (limit) {
        unsigned long long v = strtoull(limit, &end, 10);
        if (!*limit || *end || v < 1 || v > 10000 || *limit == '-')
            return pm_cli_usage(a->usage, "--limit is a number of items, 1 to 10000: '%s'", limit);
        q->limit = v;
    }
    if (offset) {
        unsigned long long v = strtoull(offset, &end, 10);
        if (!*offset || *end || *offset == '-')
            return pm_cli_usage(a->usage, "--offset is a number of items: '%s'", offset);
        if (!limit)
            return pm_cli_usage(a->usage, "--offset needs --limit");
        q->offset = v;
    }
    return PM_EXIT_OK;
}

/* The listing's filters: a state the worklist knows ("open": unreported or claimed), a
 * priority the rules know. */
static int check_filters(const pm_cli_args *a, const worklist_query *q)
{
    int state_ok = !q->state || strcmp(q->state, "withdrawn") == 0 || strcmp(q->state, "open") == 0;
    for (int i = 0; PM_WL_STATES[i]; i++)
        state_ok |= q->state && strcmp(q->state, PM_WL_STATES[i]) == 0;
    if (!state_ok)
        return pm_cli_usage(
            a->usage, "--state is one of unreported, claimed, reported, verified, withdrawn, open");
    if (q->priority && pm_config_priority_index(q->priority) < 0)
        return pm_cli_usage(a->usage, "--priority is one of immediate, urgent, routine");
    return PM_EXIT_OK;
}

/* The worklist command's options into q (and a). PM_EXIT_OK or PM_EXIT_USAGE. */
static int parse_worklist_args(int argc, char **argv, worklist_query *q, pm_cli_args *a)
{
    const char *limit = NULL, *offset = NULL;
    pm_cli_opt opts[] = {{"state", &q->state, NULL},
                         {"site", &q->site, NULL},
                         {"subspecialty", &q->subspecialty, NULL},
                         {"priority", &q->priority, NULL},
                         {"overdue", NULL, &q->overdue},
                         {"claimed-by", &q->claimed_by, NULL},
                         {"limit", &limit, NULL},
                         {"offset", &offset, NULL},
                         {NULL, NULL, NULL}};
    int rc = pm_cli_parse(argc, argv, opts, a);
    if (!rc)
        rc = parse_page(a, limit, offset, q);
    if (!rc)
        rc = check_filters(a, q);
    return rc;
}

/* The matching items into q->list (a page of them with --limit, in order). */
static int list_items(pm_node *node, worklist_query *q)
{
    q->blobs = node->blobs;
    q->now = pm_now_ms();
    q->list = json_array();
    q->liveness = pm_admin_liveness(node, &q->live, NULL) == PM_OK ? &q->live : NULL;
    q->self = pm_identity_public(node->id);
    q->paged = q->limit && walks_by_due(q);
    int r = walk_items(node->store, q);
    if (!r && q->limit && !q->paged)
        r = keys_page(node->store, q);
    free(q->keys);
    q->keys = NULL;
    return r;
}

/* The listing's items with a new reference each, by due time (a page is in order
 * already); NULL when out of memory. The caller drops them with free_items. */
static json_t **sorted_items(const worklist_query *q, size_t *n)
{
    *n = json_array_size(q->list);
    json_t **items = calloc(*n + 1, sizeof *items);
    for (size_t i = 0; items && i < *n; i++)
        items[i] = json_incref(json_array_get(q->list, i));
    if (items && !q->limit)
        qsort(items, *n, sizeof *items, by_due);
    return items;
}

static void free_items(json_t **items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        json_decref(items[i]);
    free(items);
}

static void print_items_json(json_t **items, size_t n)
{
    json_t *sorted = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append(sorted, items[i]);
    pm_cli_print_json(sorted);
}

static void print_items_table(json_t **items, size_t n)
{
    static const char *const head[] = {"DUE", "PRIORITY", "STATE",     "CLAIMED BY", "SUBSPEC",
                                       "MOD", "SITE",     "STUDY UID", "FLAGS"};
    pm_table *t = pm_table_new(9, head);
    for (size_t i = 0; items && i < n; i++) {
        json_t *o = items[i];
        char flags[64], site[9];
        snprintf(flags, sizeof flags, "%s%s%s",
                 json_is_true(json_object_get(o, "overdue")) ? "OVERDUE " : "",
                 json_is_true(json_object_get(o, "conflict")) ? "CONFLICT " : "",
                 json_is_true(json_object_get(o, "viewable")) ? "" : "not-viewable");
        snprintf(site, sizeof site, "%.8s", json_string_value(json_object_get(o, "site")));
        const char *claimed = json_string_value(json_object_get(o, "claimed_by"));
        const char *row[] = {json_string_value(json_object_get(o, "due")),
                             json_string_value(json_object_get(o, "priority")),
                             json_string_value(json_object_get(o, "state")),
                             claimed ? claimed : "",
                             json_string_value(json_object_get(o, "subspecialty")),
                             json_string_value(json_object_get(o, "modality")),
                             site,
                             json_string_value(json_object_get(o, "study_uid")),
                             flags};
        pm_table_add(t, row);
    }
    pm_table_print(t, stdout);
    pm_table_destroy(&t);
}

int pm_cmd_worklist(int argc, char **argv)
{
    worklist_query q;
    memset(&q, 0, sizeof q);
    pm_cli_args a;
    int rc = parse_worklist_args(argc, argv, &q, &a);
    if (rc)
        return rc;
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node)))
        return rc;
    int r = list_items(&node, &q);
    size_t n;
    json_t **items = sorted_items(&q, &n);
    if (r)
        rc = pm_cli_fail("cannot read the worklist: %s", pm_strerror(r));
    else if (a.json)
        print_items_json(items, n);
    else
        print_items_table(items, n);
    free_items(items, n);
    json_decref(q.list);
    pm_liveness_free(&q.live);
    pm_node_close(&node);
    return rc;
}
