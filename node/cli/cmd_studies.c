/* Studies and reading: import, studies (docs/pacsmesh.1). */
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/cli/progress.h"
#include "node/config/config.h"
#include "node/studies/ingest.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "store/blobs.h"
#include "store/views.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    pm_ingest_ctx ctx;
    unsigned imported, skipped;
    uint64_t bytes;
    pm_progress progress;
} import_run;

static void import_path(import_run *r, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "pacsmesh: skipped %s: cannot read it\n", path);
        r->skipped++;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth > 32)
            return;
        DIR *d = opendir(path);
        if (!d) {
            fprintf(stderr, "pacsmesh: skipped %s: cannot open the folder\n", path);
            r->skipped++;
            return;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char *child = pm_node_path(path, e->d_name);
            if (child)
                import_path(r, child, depth + 1);
            free(child);
        }
        closedir(d);
        return;
    }
    if (!S_ISREG(st.st_mode))
        return;
    char err[256], study[PM_DICOM_UID_MAX + 1];
    int rc = pm_ingest_file(&r->ctx, path, 0, study, err, sizeof err);
    if (rc) {
        fprintf(stderr, "pacsmesh: skipped %s: %s\n", path, err);
        r->skipped++;
    } else {
        r->imported++;
        r->bytes += (uint64_t)st.st_size;
    }
    pm_progress_update(&r->progress, r->imported, r->bytes, 0);
}

int pm_cmd_import(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    if (a.nargs < 1) {
        return pm_cli_usage(a.usage, "give at least one file or folder");
    }
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node)) ||
        (rc = pm_feed_guard_check(&node))) { /* importing signs announcements */
        if (node.store)                      /* the guard refused: the node was opened */
            pm_node_close(&node);
        return rc;
    }
    import_run run = {{node.store, node.blobs, node.id, node.cfg}, 0, 0, 0, {0}};
    pm_progress_start(&run.progress, "imported", "files");
    for (int i = 0; i < a.nargs; i++)
        import_path(&run, a.args[i], 0);
    pm_progress_end(&run.progress);
    unsigned announced = 0;
    int r = pm_ingest_announce(&run.ctx, &announced);
    if (r == PM_E_MESH)
        rc = pm_cli_fail("imported, but the studies cannot be announced before this node "
                         "belongs to a mesh (genesis or join)");
    else if (r)
        rc = pm_cli_fail("imported, but announcing failed: %s", pm_strerror(r));
    pm_admin_kick(&node);
    printf("imported %u instances, %u skipped; %u studies announced\n", run.imported, run.skipped,
           announced);
    if (!rc && run.skipped && !run.imported)
        rc = PM_EXIT_FAIL;
    pm_node_close(&node);
    return rc;
}

typedef struct {
    const char *patient_id, *name, *accession, *modality, *site, *since;
    json_t *list;
    pm_liveness live;
    const pm_liveness *liveness; /* &live while the node runs, else NULL */
    const uint8_t *self;
    pm_blobs *blobs;
} studies_query;

static int blob_is_local(void *ctx, const uint8_t *hash)
{
    return pm_blobs_has(ctx, hash);
}

static int modality_matches(const Pm__StudyAnnounced *st, const char *pattern)
{
    for (size_t i = 0; i < st->n_series; i++)
        if (pm_config_wildcard_match(pattern, st->series[i]->modality))
            return 1;
    return 0;
}

static int collect_study(void *ctx, const Pm__StudyView *s)
{
    studies_query *q = ctx;
    const Pm__StudyAnnounced *st = s->study;
    char site[PM_ID_HEX];
    pm_hex_encode(s->site.data, PM_ID_BYTES, site);
    if ((q->patient_id && !pm_config_wildcard_match(q->patient_id, st->patient_id)) ||
        (q->name && !pm_config_wildcard_match(q->name, st->patient_name)) ||
        (q->accession && !pm_config_wildcard_match(q->accession, st->accession_number)) ||
        (q->modality && !modality_matches(st, q->modality)) ||
        (q->site && strncasecmp(site, q->site, strlen(q->site)) != 0) ||
        (q->since && strcmp(st->study_date, q->since) < 0))
        return 0;
    int cached = pm_items_viewable(s, q->self, NULL, blob_is_local, q->blobs);
    int viewable = cached || pm_items_viewable(s, q->self, q->liveness, NULL, NULL);
    json_t *o = pm_items_study_json(s, viewable, cached);
    /* Not viewable as a whole, yet some instances are here: a viewer gets those (C-GET
     * and C-MOVE report the others as failed sub-operations). */
    size_t local = 0, total = 0;
    for (size_t i = 0; !viewable && st && i < st->n_series; i++)
        for (size_t j = 0; j < st->series[i]->n_instances; j++, total++)
            local += blob_is_local(q->blobs, st->series[i]->instances[j]->hash.data) != 0;
    if (o && !viewable && local > 0) {
        json_object_set_new(o, "partial", json_true());
        json_object_set_new(o, "local_instances", json_integer((json_int_t)local));
    }
    json_array_append_new(q->list, o);
    (void)total;
    return 0;
}

/* The literal part of a pattern before its first wildcard, into out. */
static size_t literal_prefix(const char *pattern, char *out, size_t outlen)
{
    size_t n = strcspn(pattern, "*?");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, pattern, n);
    out[n] = '\0';
    return n;
}

/* Walks the most selective index the query allows: accession, then patient id, then
 * patient name, then modality; every study only when no key has a literal prefix.
 * collect_study checks every condition in full either way. */
static int walk_studies(pm_store *store, studies_query *q)
{
    char prefix[256];
    const struct {
        const char *pattern;
        char attr; /* 0: the patient id index */
    } keys[] = {{q->accession, PM_ATTR_ACCESSION},
                {q->patient_id, 0},
                {q->name, PM_ATTR_PATIENT_NAME},
                {q->modality, PM_ATTR_MODALITY}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!keys[i].pattern || !literal_prefix(keys[i].pattern, prefix, sizeof prefix))
            continue;
        int exact = strlen(prefix) == strlen(keys[i].pattern);
        if (keys[i].attr)
            return pm_views_studies_by_attr(store, keys[i].attr, prefix, exact, collect_study, q);
        if (exact)
            return pm_views_studies(store, NULL, prefix, collect_study, q);
    }
    return pm_views_studies(store, NULL, NULL, collect_study, q);
}

int pm_cmd_studies(int argc, char **argv)
{
    studies_query q;
    memset(&q, 0, sizeof q);
    pm_cli_opt opts[] = {{"patient-id", &q.patient_id, NULL},
                         {"name", &q.name, NULL},
                         {"accession", &q.accession, NULL},
                         {"modality", &q.modality, NULL},
                         {"site", &q.site, NULL},
                         {"since", &q.since, NULL},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    char since[9];
    if (q.since) { /* accept 2026-11-22 as well as DICOM's 20261122 */
        size_t k = 0;
        for (const char *p = q.since; *p && k < 8; p++)
            if (*p >= '0' && *p <= '9')
                since[k++] = *p;
        since[k] = 0;
        if (k != 8) {
            return pm_cli_usage(a.usage, "--since: '%s' is not a date (YYYY-MM-DD)", q.since);
        }
        q.since = since;
    }
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    q.blobs = node.blobs;
    q.list = json_array();
    q.liveness = pm_admin_liveness(&node, &q.live, NULL) == PM_OK ? &q.live : NULL;
    q.self = pm_identity_public(node.id);
    int r = walk_studies(node.store, &q);
    if (r) {
        rc = pm_cli_fail("cannot read the studies: %s", pm_strerror(r));
    } else if (a.json) {
        pm_cli_print_json(json_incref(q.list));
    } else {
        static const char *const head[] = {"STUDY UID",   "PATIENT", "NAME", "DATE",    "MOD",
                                           "DESCRIPTION", "SITE",    "INST", "VIEWABLE"};
        pm_table *t = pm_table_new(9, head);
        size_t i;
        json_t *o;
        json_array_foreach(q.list, i, o)
        {
            char inst[16];
            snprintf(inst, sizeof inst, "%lld",
                     (long long)json_integer_value(json_object_get(o, "instances")));
            const char *row[] = {json_string_value(json_object_get(o, "study_uid")),
                                 json_string_value(json_object_get(o, "patient_id")),
                                 json_string_value(json_object_get(o, "patient_name")),
                                 json_string_value(json_object_get(o, "study_date")),
                                 json_string_value(json_object_get(o, "modality")),
                                 json_string_value(json_object_get(o, "description")),
                                 json_string_value(json_object_get(o, "site")),
                                 inst,
                                 json_is_true(json_object_get(o, "viewable"))  ? "yes"
                                 : json_is_true(json_object_get(o, "partial")) ? "partial"
                                                                               : "no"};
            char site[9];
            snprintf(site, sizeof site, "%.8s", row[6]);
            row[6] = site;
            pm_table_add(t, row);
        }
        pm_table_print(t, stdout);
        pm_table_destroy(&t);
    }
    json_decref(q.list);
    pm_liveness_free(&q.live);
    pm_node_close(&node);
    return rc;
}
