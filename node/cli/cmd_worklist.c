/* The network worklist: worklist, claim, release, report, verify, reports, tat
 * (docs/pacsmesh.1). Every change is an event appended to this node's feed; the running
 * node, if any, is told to push it at once. */
#include "crypto/hash.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/cli/item_command.h"
#include "node/dicom/sr.h"
#include "node/studies/ingest.h"
#include "node/worklist/present.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/blobs.h"
#include "store/feed.h"
#include "store/views.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* What claim, release, report and verify share: parse STUDY_UID --reporter ID (and
 * one more option where the command has one), open the node and the item, run act,
 * clean up. act prints its own result and returns an exit status. */
typedef int (*item_action)(pm_node *node, const char *uid, const char *reporter,
                           const Pm__StudyView *sv, const char *extra);

static int run_item_command(int argc, char **argv, const char *extra_name, item_action act)
{
    const char *reporter = NULL, *extra = NULL;
    pm_cli_opt opts[] = {
        {"reporter", &reporter, NULL}, {extra_name, &extra, NULL}, {NULL, NULL, NULL}};
    if (!extra_name)
        opts[1] = opts[2];
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!reporter || (extra_name && !extra)))
        rc = pm_cli_usage(
            a.usage, extra_name ? "--reporter and --%s are required" : "--reporter is required%s",
            extra_name ? extra_name : "");
    pm_node node;
    Pm__StudyView *sv = NULL;
    if (rc || (rc = pm_item_open(&a, reporter, &node, &sv))) {
        return rc;
    }
    /* Each of these signs an event: never while the node's own feed is unconfirmed. */
    if ((rc = pm_feed_guard_check(&node)) == PM_EXIT_OK)
        rc = act(&node, a.args[0], reporter, sv, extra);
    pm__study_view__free_unpacked(sv, NULL);
    pm_node_close(&node);
    return rc;
}

static int claim_item(pm_node *node, const char *uid, const char *reporter, const Pm__StudyView *sv,
                      const char *extra)
{
    (void)extra;
    uint64_t now = pm_now_ms();
    const char *state = pm_views_item_state(sv, now);
    char until[32];
    pm_wl_verdict v = pm_wl_may_claim(sv, state, reporter, now);
    if (v == PM_WL_ALREADY_REPORTED)
        return pm_cli_fail("study %s is already %s; nothing to claim", uid, state);
    if (v == PM_WL_HELD_BY_OTHER)
        return pm_cli_fail("study %s is claimed by %s until %s", uid, sv->claim->reporter,
                           pm_cli_time(sv->claim->lease_until_ms, until));
    if (v != PM_WL_ALLOWED)
        return pm_cli_fail("cannot claim %s: %s", uid, pm_wl_verdict_text(v));
    Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
    c.study_instance_uid = (char *)uid;
    c.reporter = (char *)reporter;
    c.lease_until_ms = now + node->cfg->lease_ms;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    body.item_claimed = &c;
    int rc = pm_item_append(node, &body);
    if (rc == PM_EXIT_OK)
        printf("claimed %s for %s until %s\n", uid, reporter, pm_cli_time(c.lease_until_ms, until));
    return rc;
}

int pm_cmd_claim(int argc, char **argv)
{
    return run_item_command(argc, argv, NULL, claim_item);
}

static int release_item(pm_node *node, const char *uid, const char *reporter,
                        const Pm__StudyView *sv, const char *extra)
{
    (void)extra;
    const char *state = pm_views_item_state(sv, pm_now_ms());
    int claimed = strcmp(state, "claimed") == 0;
    if (pm_wl_may_release(sv, state, reporter) != PM_WL_ALLOWED)
        return pm_cli_fail("study %s is not claimed by %s (it is %s%s%s)", uid, reporter, state,
                           claimed ? " by " : "", claimed ? sv->claim->reporter : "");
    Pm__ItemReleased r = PM__ITEM_RELEASED__INIT;
    r.study_instance_uid = (char *)uid;
    r.reporter = (char *)reporter;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED;
    body.item_released = &r;
    int rc = pm_item_append(node, &body);
    if (rc == PM_EXIT_OK)
        printf("released %s\n", uid);
    return rc;
}

int pm_cmd_release(int argc, char **argv)
{
    return run_item_command(argc, argv, NULL, release_item);
}

/* Reads the report text: non-empty, valid UTF-8, at most 1 MiB. */
static char *read_report(const char *path, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read %s", path);
        return NULL;
    }
    size_t cap = (1u << 20) + 1, len;
    char *text = malloc(cap + 1);
    len = text ? fread(text, 1, cap, f) : 0;
    fclose(f);
    if (!text)
        return NULL;
    text[len] = 0;
    const char *reason = NULL;
    if (len == cap)
        reason = "is larger than 1 MiB";
    else if (len == 0 || strspn(text, " \t\r\n") == len)
        reason = "is empty";
    else if (strlen(text) != len)
        reason = "contains NUL bytes";
    else {
        /* UTF-8 validation: a report that is not text must not enter the signed log. */
        const unsigned char *p = (const unsigned char *)text;
        while (*p && !reason) {
            int n = *p < 0x80             ? 0
                    : (*p & 0xE0) == 0xC0 ? 1
                    : (*p & 0xF0) == 0xE0 ? 2
                    : (*p & 0xF8) == 0xF0 ? 3
                                          : -1;
            if (n < 0 || (n == 1 && *p < 0xC2))
                reason = "is not UTF-8 text";
            for (int i = 1; !reason && i <= n; i++)
                if ((p[i] & 0xC0) != 0x80)
                    reason = "is not UTF-8 text";
            p += n + 1;
        }
    }
    if (reason) {
        snprintf(why, whylen, "the report file %s %s", path, reason);
        free(text);
        return NULL;
    }
    return text;
}

/* The report also becomes a DICOM Basic Text SR instance of the study, held by this
 * node and announced with it, so any viewer or PACS that retrieves the study sees the
 * report. sop_uid (65 bytes) receives its SOP Instance UID, "" if it could not be made
 * (the report itself is never held back for that). */
static void add_report_sr(pm_node *node, const Pm__StudyView *sv, const char *reporter,
                          const char *text, char *sop_uid)
{
    sop_uid[0] = 0;
    char tmp[4096], study[PM_DICOM_UID_MAX + 1], err[256] = "";
    const Pm__StudyAnnounced *st = sv->study;
    pm_blobs_temp_path(node->blobs, tmp, sizeof tmp);
    int rc = pm_dicom_write_report_sr(
        tmp, st->study_instance_uid, st->patient_id, st->patient_name, st->patient_birth_date,
        st->patient_sex, st->accession_number, st->study_date, st->study_time, st->study_id,
        st->referring_physician, reporter, text, pm_now_ms(), sop_uid, err, sizeof err);
    pm_ingest_ctx ingest = {node->store, node->blobs, node->id, node->cfg};
    if (!rc)
        rc = pm_ingest_file(&ingest, tmp, 1, study, err, sizeof err);
    if (rc) {
        fprintf(stderr,
                "pacsmesh: warning: the report is recorded, but its DICOM SR could not "
                "be added to the study: %s\n",
                *err ? err : pm_strerror(rc));
        sop_uid[0] = 0;
    }
}

/* Submits text (read from file) on the item: a report, or with addendum an addendum to
 * its latest report. Refused, naming why, where the fold would not let it move the
 * item; the same text twice is one report. */
static int submit_report(pm_node *node, const char *uid, const char *reporter,
                         const Pm__StudyView *sv, const char *file, int addendum)
{
    char why[512], until[32];
    char *text = read_report(file, why, sizeof why);
    if (!text)
        return pm_cli_fail("%s", why);
    uint64_t now = pm_now_ms();
    const char *state = pm_views_item_state(sv, now);
    const char *amends = "";
    if (addendum && !(amends = pm_wl_amendable_report(sv))) {
        free(text);
        return pm_cli_fail("study %s is %s: there is no report to add an addendum to", uid, state);
    }
    pm_wl_verdict v = pm_wl_may_report(sv, state, reporter, text, amends, now);
    if (v == PM_WL_DUPLICATE) {
        free(text);
        printf("%s already submitted this %s for %s; nothing new recorded\n", reporter,
               addendum ? "addendum" : "report", uid);
        return PM_EXIT_OK;
    }
    if (v == PM_WL_HELD_BY_OTHER) {
        free(text);
        return pm_cli_fail("study %s is claimed by %s until %s: only the holder may report it", uid,
                           sv->claim->reporter, pm_cli_time(sv->claim->lease_until_ms, until));
    }
    if (v != PM_WL_ALLOWED) {
        free(text);
        return pm_cli_fail("study %s: %s", uid, pm_wl_verdict_text(v));
    }
    char sr_uid[65];
    add_report_sr(node, sv, reporter, text, sr_uid);
    Pm__ReportSubmitted r = PM__REPORT_SUBMITTED__INIT;
    r.study_instance_uid = (char *)uid;
    r.reporter = (char *)reporter;
    r.text = text;
    r.sr_sop_instance_uid = sr_uid;
    r.amends = (char *)amends;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    body.report_submitted = &r;
    int rc = pm_feed_append(node->store, node->id, &body, NULL);
    if (rc) {
        free(text);
        return pm_cli_fail("cannot write the event: %s", pm_strerror(rc));
    }
    /* The study, now with the SR this node holds, is announced again. */
    pm_ingest_ctx ingest = {node->store, NULL, node->id, node->cfg};
    unsigned announced = 0;
    if (*sr_uid && pm_ingest_announce(&ingest, &announced) != PM_OK)
        fprintf(stderr, "pacsmesh: warning: the report SR will be announced when the node "
                        "next starts\n");
    pm_admin_kick(node);
    printf("%s by %s recorded for %s%s%s\n", addendum ? "addendum" : "report", reporter, uid,
           *sr_uid ? "; DICOM SR " : "", sr_uid);
    free(text);
    return rc;
}

int pm_cmd_report(int argc, char **argv)
{
    const char *reporter = NULL, *file = NULL;
    int addendum = 0;
    pm_cli_opt opts[] = {{"reporter", &reporter, NULL},
                         {"file", &file, NULL},
                         {"addendum", NULL, &addendum},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && (!reporter || !file))
        rc = pm_cli_usage(a.usage, "--reporter and --file are required");
    pm_node node;
    Pm__StudyView *sv = NULL;
    if (rc || (rc = pm_item_open(&a, reporter, &node, &sv))) {
        return rc;
    }
    rc = submit_report(&node, a.args[0], reporter, sv, file, addendum);
    pm__study_view__free_unpacked(sv, NULL);
    pm_node_close(&node);
    return rc;
}

static int verify_item(pm_node *node, const char *uid, const char *reporter,
                       const Pm__StudyView *sv, const char *extra)
{
    (void)extra;
    const char *state = pm_views_item_state(sv, pm_now_ms());
    pm_wl_verdict verdict = pm_wl_may_verify(sv, state, reporter);
    if (verdict == PM_WL_NOT_REPORTED)
        return pm_cli_fail("study %s is %s: only a reported study can be verified", uid, state);
    if (verdict == PM_WL_NO_SECOND_READER)
        return pm_cli_fail("%s wrote the report: a second reader must verify it", reporter);
    Pm__ReportVerified v = PM__REPORT_VERIFIED__INIT;
    v.study_instance_uid = (char *)uid;
    v.reporter = (char *)reporter;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
    body.report_verified = &v;
    int rc = pm_item_append(node, &body);
    if (rc == PM_EXIT_OK)
        printf("verified %s by %s\n", uid, reporter);
    return rc;
}

int pm_cmd_verify(int argc, char **argv)
{
    return run_item_command(argc, argv, NULL, verify_item);
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
    const char *state, *site, *subspecialty, *priority;
    int overdue;
    uint64_t now;
    json_t *list, *liveness;
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
    if (q->state ? strcmp(q->state, state) != 0 : s->withdrawn)
        return 0; /* withdrawn studies show only when asked for */
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

static int collect_item(void *ctx, const Pm__StudyView *s)
{
    worklist_query *q = ctx;
    if (!s->study || !item_matches(q, s))
        return 0;
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

/* Walks the most selective index the filters allow; item_matches checks every filter
 * in full either way. Overdue items are the open ones due before now (the due index);
 * a state is the state index, where "unreported" also walks the claimed items (a
 * lapsed lease reads as unreported); then priority, sub-specialty, site. */
static int walk_items(pm_store *store, worklist_query *q)
{
    if (q->overdue)
        return pm_views_studies_due_before(store, q->now, collect_item, q);
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

int pm_cmd_worklist(int argc, char **argv)
{
    worklist_query q;
    memset(&q, 0, sizeof q);
    pm_cli_opt opts[] = {{"state", &q.state, NULL},
                         {"site", &q.site, NULL},
                         {"subspecialty", &q.subspecialty, NULL},
                         {"priority", &q.priority, NULL},
                         {"overdue", NULL, &q.overdue},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    static const char *const states[] = {"unreported", "claimed",   "reported",
                                         "verified",   "withdrawn", NULL};
    static const char *const priorities[] = {"immediate", "urgent", "routine", NULL};
    int ok = !q.state, pok = !q.priority;
    for (int i = 0; states[i]; i++)
        ok |= q.state && strcmp(q.state, states[i]) == 0;
    for (int i = 0; priorities[i]; i++)
        pok |= q.priority && strcmp(q.priority, priorities[i]) == 0;
    if (!ok || !pok) {
        return pm_cli_usage(
            a.usage, !ok ? "--state is one of unreported, claimed, reported, verified, withdrawn"
                         : "--priority is one of immediate, urgent, routine");
    }
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    q.blobs = node.blobs;
    q.now = pm_now_ms();
    q.list = json_array();
    q.liveness = pm_admin_liveness(&node, NULL);
    q.self = pm_identity_public(node.id);
    int r = walk_items(node.store, &q);
    size_t n = json_array_size(q.list);
    json_t **items = calloc(n + 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++)
        items[i] = json_incref(json_array_get(q.list, i));
    if (items)
        qsort(items, n, sizeof *items, by_due);
    if (r) {
        rc = pm_cli_fail("cannot read the worklist: %s", pm_strerror(r));
    } else if (a.json) {
        json_t *sorted = json_array();
        for (size_t i = 0; items && i < n; i++)
            json_array_append(sorted, items[i]);
        pm_cli_print_json(sorted);
    } else {
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
    for (size_t i = 0; items && i < n; i++)
        json_decref(items[i]);
    free(items);
    json_decref(q.list);
    json_decref(q.liveness);
    pm_node_close(&node);
    return rc;
}
