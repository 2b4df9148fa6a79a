/* audit export | verify | log: the signed event log, read by auditors without
 * trusting any node (docs/pacsmesh.1, Audit). */
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "store/auditfile.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/forks.h"
#include "store/verify.h"
#include "store/views.h"

#include <time.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A source of records: an export file, or the node's own store. */
typedef struct {
    pm_auditfile_fn fn;
    void *ctx;
} record_sink;

static int store_event(void *ctx, const uint8_t *raw, size_t len)
{
    record_sink *s = ctx;
    return s->fn(s->ctx, 'E', raw, len);
}

static int store_fork(void *ctx, const uint8_t *raw, size_t len)
{
    record_sink *s = ctx;
    return s->fn(s->ctx, 'F', raw, len);
}

/* What `audit log` asks the store for by an index: a study's events, else a patient's
 * studies', else those naming a reporter; with none, every event. */
typedef struct {
    const char *study, *patient, *reporter;
} log_selection;

/* The selected events of the store, by the index that selects fewest. */
static int read_selected(pm_store *store, const log_selection *sel, record_sink *sink)
{
    if (sel && sel->study)
        return pm_views_study_events(store, sel->study, store_event, sink);
    if (sel && sel->patient)
        return pm_views_patient_events(store, sel->patient, store_event, sink);
    if (sel && sel->reporter)
        return pm_views_reporter_events(store, sel->reporter, store_event, sink);
    return pm_feed_for_each(store, store_event, sink);
}

/* Feeds every record of FILE (or of the store in dir) to fn; from the store, only the
 * events sel selects (NULL: all), by the indexes, and the fork evidence. Prints its own
 * errors. */
static int read_records(const char *file, const char *dir, const log_selection *sel,
                        pm_auditfile_fn fn, void *ctx)
{
    if (file) {
        uint64_t where = 0;
        int r = pm_auditfile_read(file, fn, ctx, &where);
        if (r == PM_E_IO)
            return pm_cli_fail("cannot read %s", file);
        if (r == PM_E_FORMAT)
            return pm_cli_fail("%s is not a pacsmesh audit export (bad magic or version)", file);
        if (r == PM_E_PARSE)
            return pm_cli_fail("%s: damaged or truncated record at byte %llu", file,
                               (unsigned long long)where);
        if (r == PM_E_HASH)
            return pm_cli_fail("%s: the file's trailing hash does not match its contents "
                               "(the file was changed after export)",
                               file);
        return r ? pm_cli_fail("%s: %s", file, pm_strerror(r)) : PM_EXIT_OK;
    }
    pm_node node;
    int rc = pm_node_open(dir, PM_NODE_STORE, &node);
    if (rc)
        return rc;
    record_sink sink = {fn, ctx};
    int r = read_selected(node.store, sel, &sink);
    if (!r)
        r = pm_forks_each(node.store, NULL, store_fork, &sink);
    pm_node_close(&node);
    return r ? pm_cli_fail("cannot read the store: %s", pm_strerror(r)) : PM_EXIT_OK;
}

static void print_problem(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                          const char *what)
{
    (void)ctx;
    char hex[PM_ID_HEX];
    pm_hex_encode(origin, PM_ID_BYTES, hex);
    printf("FAIL origin %s seq %llu: %s\n", hex, (unsigned long long)seq, what);
}

static int add_record(void *ctx, char kind, const uint8_t *raw, size_t len)
{
    return pm_verifier_add(ctx, kind, raw, len);
}

static int audit_verify(const pm_cli_args *a)
{
    if (a->nargs > 2)
        return pm_cli_usage(a->usage, "audit verify takes at most one FILE");
    const char *file = a->nargs == 2 ? a->args[1] : NULL;
    char scratch[] = "/tmp/pacsmesh-verify-XXXXXX";
    if (!mkdtemp(scratch))
        return pm_cli_fail("cannot make a scratch directory");
    pm_verifier *v;
    int r = pm_verifier_new(scratch, print_problem, NULL, &v);
    if (r)
        return pm_cli_fail("cannot create a scratch store: %s", pm_strerror(r));
    /* A damaged file still has its events checked, so that the failures name the
     * origin and sequence of what was changed; the file-level error comes after. */
    int file_rc = read_records(file, a->dir, NULL, add_record, v), rc = PM_EXIT_OK;
    uint64_t events = 0, problems = 0;
    if ((r = pm_verifier_finish(v, &events, &problems)))
        rc = pm_cli_fail("verification stopped: %s", pm_strerror(r));
    if (file_rc)
        rc = file_rc;
    pm_verifier_destroy(&v);
    if (rc)
        return rc;
    if (problems) {
        fprintf(stderr, "pacsmesh: %llu of %llu events failed verification\n",
                (unsigned long long)problems, (unsigned long long)events);
        return PM_EXIT_FAIL;
    }
    printf("ok: %llu events verified: signatures, chains, membership, no forks\n",
           (unsigned long long)events);
    return PM_EXIT_OK;
}

static int audit_export(const pm_cli_args *a, const char *out)
{
    if (!out)
        return pm_cli_usage(a->usage, "audit export needs --out FILE");
    pm_node node;
    int rc = pm_node_open(a->dir, PM_NODE_STORE, &node);
    if (rc)
        return rc;
    uint64_t count = 0;
    int r = pm_auditfile_export(node.store, out, &count);
    pm_node_close(&node);
    if (r)
        return pm_cli_fail("cannot write %s: %s", out, pm_strerror(r));
    printf("exported %llu events to %s\n", (unsigned long long)count, out);
    return PM_EXIT_OK;
}

typedef struct {
    const char *origin_prefix;
    const char *study;
    json_t *patient_studies; /* with --patient: {"UID": true} for each of the patient's */
    const char *reporter;
    const char *type;
    json_t *json;
    pm_table *table;
} log_ctx;

/* Whether the event is one the options asked for (the indexes chose the events; the
 * fork evidence and a FILE's records are filtered here). */
static int wanted(const log_ctx *c, const char *origin_hex, const Pm__EventBody *b)
{
    const char *study = pm_event_study_uid(b), *reporter = pm_event_reporter(b);
    if (c->origin_prefix && strncasecmp(origin_hex, c->origin_prefix, strlen(c->origin_prefix)))
        return 0;
    if (c->reporter && (!reporter || strcmp(reporter, c->reporter) != 0))
        return 0;
    if (c->study && (!study || strcmp(study, c->study) != 0))
        return 0;
    if (c->patient_studies && (!study || !json_object_get(c->patient_studies, study)))
        return 0;
    return !c->type || strcmp(pm_event_type(b), c->type) == 0;
}

static int log_record(void *vctx, char kind, const uint8_t *raw, size_t len)
{
    log_ctx *c = vctx;
    pm_event *ev;
    if (pm_event_parse(raw, len, &ev) != PM_OK) {
        fprintf(stderr, "pacsmesh: skipping an event that does not verify (run audit verify)\n");
        return 0;
    }
    const Pm__EventBody *b = ev->body;
    char origin[PM_ID_HEX], when[32];
    pm_hex_encode(b->origin.data, PM_ID_BYTES, origin);
    const char *study = pm_event_study_uid(b), *reporter = pm_event_reporter(b);
    if (!wanted(c, origin, b)) {
        pm_event_destroy(&ev);
        return 0;
    }
    /* A fork branch event is listed with its own type and flagged: it counts under the
     * fork rule, and a coordinator reconciles what the forked origin signed. */
    const char *type = pm_event_type(b);
    char detail[256] = "";
    if (b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED ||
        b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED) {
        char target[PM_ID_HEX];
        const ProtobufCBinaryData *id = b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED
                                            ? &b->member_admitted->node_id
                                            : &b->member_revoked->node_id;
        pm_hex_encode(id->data, PM_ID_BYTES, target);
        if (b->payload_case == PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED)
            snprintf(detail, sizeof detail, "node %s; its events up to seq %llu stand", target,
                     (unsigned long long)b->member_revoked->last_seq);
        else
            snprintf(detail, sizeof detail, "node %s", target);
    } else if (b->payload_case == PM__EVENT_BODY__PAYLOAD_GENESIS) {
        snprintf(detail, sizeof detail, "mesh '%s' quorum %u", b->genesis->mesh_name,
                 b->genesis->quorum);
    }
    if (kind == 'F') {
        char base[sizeof detail - 32];
        snprintf(base, sizeof base, "%s", detail);
        snprintf(detail, sizeof detail, "FORK branch event%s%s", *base ? "; " : "", base);
    }
    pm_cli_time(b->wall_ms, when);
    if (c->json) {
        json_t *o =
            json_pack("{s:s, s:I, s:I, s:s, s:s}", "origin", origin, "seq", (json_int_t)b->seq,
                      "lamport", (json_int_t)b->lamport, "time", when, "type", type);
        if (study)
            json_object_set_new(o, "study_uid", json_string(study));
        if (reporter)
            json_object_set_new(o, "reporter", json_string(reporter));
        if (*detail)
            json_object_set_new(o, "detail", json_string(detail));
        json_object_set_new(o, "fork", json_boolean(kind == 'F'));
        json_array_append_new(c->json, o);
    } else {
        char seq[24], lamport[24], shortid[9];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)b->seq);
        snprintf(lamport, sizeof lamport, "%llu", (unsigned long long)b->lamport);
        const char *row[] = {when,
                             pm_cli_short_id(b->origin.data, shortid),
                             seq,
                             lamport,
                             type,
                             study ? study : "",
                             reporter ? reporter : "",
                             detail};
        pm_table_add(c->table, row);
    }
    pm_event_destroy(&ev);
    return 0;
}

static int add_patient_study(void *ctx, const Pm__StudyView *sv)
{
    if (sv->study)
        json_object_set_new(ctx, sv->study->study_instance_uid, json_true());
    return 0;
}

/* Whether name is an event type (pm_event_type_name), else a usage error listing them. */
static int check_type(const pm_cli_args *a, const char *name)
{
    char all[512] = "";
    for (size_t i = 0; pm_event_type_name(i); i++) {
        if (strcmp(pm_event_type_name(i), name) == 0)
            return PM_EXIT_OK;
        snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", i ? ", " : "",
                 pm_event_type_name(i));
    }
    return pm_cli_usage(a->usage, "unknown event type '%s' (one of: %s)", name, all);
}

/* The studies of the patient into c->patient_studies (the patient index). */
static int patient_studies(const pm_cli_args *a, const char *patient, log_ctx *c)
{
    pm_node node;
    int rc = pm_node_open(a->dir, PM_NODE_STORE, &node);
    if (rc)
        return rc;
    c->patient_studies = json_object();
    int r = pm_views_studies(node.store, NULL, patient, add_patient_study, c->patient_studies);
    pm_node_close(&node);
    return r ? pm_cli_fail("cannot read the store: %s", pm_strerror(r)) : PM_EXIT_OK;
}

static int audit_log(const pm_cli_args *a, const char *origin, const log_selection *sel,
                     const char *type)
{
    const char *study = sel->study, *patient = sel->patient;
    if (a->nargs > 2)
        return pm_cli_usage(a->usage, "audit log takes at most one FILE");
    if (study && patient)
        return pm_cli_usage(a->usage, "give --study or --patient, not both");
    const char *file = a->nargs == 2 ? a->args[1] : NULL;
    if (patient && file)
        return pm_cli_usage(a->usage,
                            "--patient reads this node's store (its patient index), not a FILE; "
                            "use --study with a FILE");
    if (sel->reporter && strlen(sel->reporter) > 64)
        return pm_cli_usage(a->usage, "--reporter is a reporter id, at most 64 characters");
    int rc = type ? check_type(a, type) : PM_EXIT_OK;
    if (rc)
        return rc;
    static const char *const head[] = {"TIME", "ORIGIN", "SEQ",      "LAMPORT",
                                       "TYPE", "STUDY",  "REPORTER", "DETAIL"};
    log_ctx c = {origin,
                 study,
                 NULL,
                 sel->reporter,
                 type,
                 a->json ? json_array() : NULL,
                 a->json ? NULL : pm_table_new(8, head)};
    if (patient)
        rc = patient_studies(a, patient, &c);
    if (!rc)
        rc = read_records(file, a->dir, sel, log_record, &c);
    if (!rc && c.json)
        pm_cli_print_json(json_incref(c.json));
    else if (!rc)
        pm_table_print(c.table, stdout);
    json_decref(c.json);
    json_decref(c.patient_studies);
    pm_table_destroy(&c.table);
    return rc;
}

/* ---- replay ---------------------------------------------------------------------- */

/* ISO 8601 UTC ("2026-11-22T10:00:00Z", seconds optional, fraction allowed) or ms
 * since the epoch. */
static int parse_time(const char *text, uint64_t *ms)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*text && !*end && end - text >= 10) {
        *ms = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) {
        memset(&tm, 0, sizeof tm);
        rest = strptime(text, "%Y-%m-%dT%H:%M", &tm);
    }
    if (!rest)
        return -1;
    unsigned frac_ms = 0;
    if (*rest == '.') {
        unsigned scale = 100;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
            frac_ms += (unsigned)(*rest - '0') * scale;
    }
    if (strcmp(rest, "Z") != 0 && *rest)
        return -1;
    *ms = (uint64_t)timegm(&tm) * 1000 + frac_ms;
    return 0;
}

typedef struct {
    pm_verifier *v;
    uint64_t until;
    uint8_t (*cut)[PM_ID_BYTES]; /* origins whose feed passed the moment */
    size_t n_cut;
} replay_ctx;

/* Keeps each origin's events up to its first one after the moment: a feed is a chain,
 * so a later event cannot stand without the earlier ones. */
static int replay_record(void *vctx, char kind, const uint8_t *raw, size_t len)
{
    replay_ctx *c = vctx;
    if (kind != 'E')
        return 0;
    pm_event *ev;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK) /* replay's ingest verifies it */
        return 0;
    const uint8_t *origin = ev->body->origin.data;
    int cut = 0;
    for (size_t i = 0; i < c->n_cut && !cut; i++)
        cut = memcmp(c->cut[i], origin, PM_ID_BYTES) == 0;
    if (!cut && ev->body->wall_ms > c->until) {
        uint8_t(*grown)[PM_ID_BYTES] = realloc(c->cut, (c->n_cut + 1) * PM_ID_BYTES);
        if (grown) {
            c->cut = grown;
            memcpy(c->cut[c->n_cut++], origin, PM_ID_BYTES);
        }
        cut = 1;
    }
    pm_event_destroy(&ev);
    return cut ? 0 : pm_verifier_add(c->v, kind, raw, len);
}

static void ignore_problem(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                           const char *what)
{
    (void)ctx, (void)origin, (void)seq, (void)what;
}

typedef struct {
    uint64_t at;
    json_t *worklist, *studies;
} replay_views;

static int replay_study(void *ctx, const Pm__StudyView *s)
{
    replay_views *r = ctx;
    json_array_append_new(r->worklist, pm_items_worklist_json(s, r->at, 0));
    json_array_append_new(r->studies, pm_items_study_json(s, 0, 0));
    return 0;
}

static int audit_replay(const pm_cli_args *a, const char *until)
{
    uint64_t at;
    if (!until || parse_time(until, &at) != 0)
        return pm_cli_usage(a->usage, "audit replay needs --until TIME (ISO 8601 UTC, e.g. "
                                      "2026-11-22T10:00:00Z)");
    if (a->nargs > 2)
        return pm_cli_usage(a->usage, "audit replay takes at most one FILE");
    char scratch[] = "/tmp/pacsmesh-replay-XXXXXX";
    if (!mkdtemp(scratch))
        return pm_cli_fail("cannot make a scratch directory");
    replay_ctx c = {NULL, at, NULL, 0};
    int r = pm_verifier_new(scratch, ignore_problem, NULL, &c.v);
    if (r)
        return pm_cli_fail("cannot create a scratch store: %s", pm_strerror(r));
    int rc = read_records(a->nargs == 2 ? a->args[1] : NULL, a->dir, NULL, replay_record, &c);
    uint64_t events = 0, problems = 0;
    if (!rc && (r = pm_verifier_finish(c.v, &events, &problems)))
        rc = pm_cli_fail("replay stopped: %s", pm_strerror(r));
    replay_views views = {at, json_array(), json_array()};
    if (!rc)
        pm_views_studies(pm_verifier_store(c.v), NULL, NULL, replay_study, &views);
    char digest[PM_HASH_HEX] = "";
    if (!rc)
        pm_store_digest(pm_verifier_store(c.v), digest);
    pm_verifier_destroy(&c.v);
    free(c.cut);
    if (!rc && a->json) {
        char when[32];
        pm_cli_print_json(json_pack("{s:s, s:I, s:s, s:O, s:O}", "until", pm_cli_time(at, when),
                                    "events", (json_int_t)events, "digest", digest, "worklist",
                                    views.worklist, "studies", views.studies));
    } else if (!rc) {
        char when[32];
        printf("as of %s: %llu events, digest %s\n", pm_cli_time(at, when),
               (unsigned long long)events, digest);
        size_t i;
        json_t *o;
        json_array_foreach(views.worklist, i, o)
        {
            const char *by = json_string_value(json_object_get(o, "claimed_by"));
            printf("%-10s %-9s %-12s due %s  %s%s\n",
                   json_string_value(json_object_get(o, "state")),
                   json_string_value(json_object_get(o, "priority")), by ? by : "-",
                   json_string_value(json_object_get(o, "due")),
                   json_string_value(json_object_get(o, "study_uid")),
                   json_is_true(json_object_get(o, "conflict")) ? "  CONFLICT" : "");
        }
    }
    json_decref(views.worklist);
    json_decref(views.studies);
    return rc;
}

int pm_cmd_audit(int argc, char **argv)
{
    const char *out = NULL, *origin = NULL, *until = NULL, *type = NULL;
    log_selection sel = {NULL, NULL, NULL};
    pm_cli_opt opts[] = {{"out", &out, NULL},
                         {"until", &until, NULL},
                         {"origin", &origin, NULL},
                         {"study", &sel.study, NULL},
                         {"patient", &sel.patient, NULL},
                         {"reporter", &sel.reporter, NULL},
                         {"type", &type, NULL},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    if (a.nargs < 1)
        rc = pm_cli_usage(a.usage, "say what to do: export, verify, log or replay");
    else if (strcmp(a.args[0], "verify") == 0)
        rc = audit_verify(&a);
    else if (strcmp(a.args[0], "export") == 0)
        rc = audit_export(&a, out);
    else if (strcmp(a.args[0], "log") == 0)
        rc = audit_log(&a, origin, &sel, type);
    else if (strcmp(a.args[0], "replay") == 0)
        rc = audit_replay(&a, until);
    else
        rc = pm_cli_usage(a.usage, "unknown audit command '%s'", a.args[0]);
    return rc;
}
