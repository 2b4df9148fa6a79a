/* Looking at a node: members, digest, status. These read the store directly (LMDB
 * allows readers beside the running node) and ask the running node, if any, only for
 * what lives in its memory: which peers are up. */
#include "crypto/hash.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/ris/sender.h"
#include "node/studies/incidents.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "proto/version.h"
#include "store/blobs.h"
#include "store/feed.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    json_t *list;
    json_t *liveness;
    const uint8_t *self;
} members_ctx;

static int collect_member(void *vctx, const Pm__MemberView *m)
{
    members_ctx *c = vctx;
    char id[PM_ID_HEX], seen[32];
    pm_hex_encode(m->id.data, PM_ID_BYTES, id);
    int self = memcmp(m->id.data, c->self, PM_ID_BYTES) == 0;
    json_t *live = c->liveness ? json_object_get(c->liveness, id) : NULL;
    int up = self ? c->liveness != NULL : json_is_true(json_object_get(live, "up"));
    uint64_t last = (uint64_t)json_integer_value(json_object_get(live, "last_seen"));
    if (self && c->liveness)
        last = pm_now_ms();
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:i, s:i}", "id", id, "name",
                          m->name, "endpoint", m->endpoint, "state", m->state, "up", up,
                          "last_seen", pm_cli_time(last, seen), "self", self, "approvals",
                          (json_int_t)m->n_admit_approvals, "revoke_approvals",
                          (json_int_t)m->n_revoke_approvals);
    json_array_append_new(c->list, o);
    return 0;
}

static json_t *members_json(const pm_node *node, json_t *liveness)
{
    members_ctx c = {json_array(), liveness, pm_identity_public(node->id)};
    if (pm_views_members(node->store, collect_member, &c) != PM_OK) {
        json_decref(c.list);
        return NULL;
    }
    return c.list;
}

static void print_members_table(json_t *list)
{
    static const char *const head[] = {"ID", "NAME", "STATE", "UP", "LAST SEEN", "ENDPOINT"};
    pm_table *t = pm_table_new(6, head);
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        char id[12];
        snprintf(id, sizeof id, "%.8s%s", json_string_value(json_object_get(m, "id")),
                 json_is_true(json_object_get(m, "self")) ? "*" : "");
        const char *row[] = {id,
                             json_string_value(json_object_get(m, "name")),
                             json_string_value(json_object_get(m, "state")),
                             json_is_true(json_object_get(m, "up")) ? "up" : "down",
                             json_string_value(json_object_get(m, "last_seen")),
                             json_string_value(json_object_get(m, "endpoint"))};
        pm_table_add(t, row);
    }
    pm_table_print(t, stdout);
    pm_table_destroy(&t);
}

int pm_cmd_members(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL, &node))) {
        return rc;
    }
    json_t *live = pm_admin_liveness(&node, NULL);
    json_t *list = members_json(&node, live);
    if (!list)
        rc = pm_cli_fail("cannot read the membership view");
    else if (a.json)
        pm_cli_print_json(list);
    else {
        print_members_table(list);
        json_decref(list);
    }
    json_decref(live);
    pm_node_close(&node);
    return rc;
}

int pm_cmd_digest(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_STORE, &node))) {
        return rc;
    }
    char hex[PM_HASH_HEX];
    int r = pm_store_digest(node.store, hex);
    if (r)
        rc = pm_cli_fail("cannot read the digest: %s", pm_strerror(r));
    else
        puts(hex);
    pm_node_close(&node);
    return rc;
}

static int collect_fork(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                        const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    (void)a, (void)alen, (void)b, (void)blen;
    char id[PM_ID_HEX];
    pm_hex_encode(origin, PM_ID_BYTES, id);
    json_array_append_new(ctx, json_pack("{s:s, s:I}", "origin", id, "seq", (json_int_t)seq));
    return 0;
}

int pm_cmd_status(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    json_t *known = NULL;
    json_t *live = pm_admin_liveness(&node, &known);
    json_t *members = members_json(&node, live);
    json_t *forks = json_array();
    pm_feed_forks(node.store, collect_fork, forks);
    pm_head *heads = NULL;
    size_t nheads = 0;
    pm_feed_heads(node.store, &heads, &nheads);
    json_t *jheads = json_array();
    for (size_t i = 0; i < nheads; i++) {
        char id[PM_ID_HEX];
        pm_hex_encode(heads[i].origin, PM_ID_BYTES, id);
        json_int_t peers_have = json_integer_value(json_object_get(known, id));
        json_int_t behind =
            peers_have > (json_int_t)heads[i].seq ? peers_have - (json_int_t)heads[i].seq : 0;
        json_t *h = json_pack("{s:s, s:I, s:I}", "origin", id, "seq", (json_int_t)heads[i].seq,
                              "behind", behind);
        json_array_append_new(jheads, h);
    }
    free(heads);
    pm_worklist_counts w = {.now = pm_now_ms()};
    pm_items_counts(node.store, &w);
    uint64_t events = 0, blob_bytes = 0, cache_bytes = 0, blob_count = 0;
    pm_store_count_events(node.store, &events);
    char *data_file = pm_node_path(a.dir, "store/data.mdb");
    pm_blobs_usage(node.blobs, &blob_bytes, &cache_bytes, &blob_count);
    struct stat st;
    uint64_t store_bytes =
        data_file && stat(data_file, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    free(data_file);
    char id[PM_ID_HEX], digest[PM_HASH_HEX];
    pm_hex_encode(pm_identity_public(node.id), PM_ID_BYTES, id);
    pm_store_digest(node.store, digest);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:b, s:s, s:I, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "id", id, "name", node.cfg->name, "mesh", node.cfg->mesh_id, "running", live != NULL,
        "digest", digest, "events", (json_int_t)events, "members", members ? members : json_array(),
        "heads", jheads, "forks", forks, "worklist", "studies", (json_int_t)w.studies, "unreported",
        (json_int_t)w.unreported, "claimed", (json_int_t)w.claimed, "reported",
        (json_int_t)w.reported, "verified", (json_int_t)w.verified, "overdue",
        (json_int_t)w.overdue, "orphans", (json_int_t)w.orphans);
    json_object_set_new(doc, "version", json_string(pm_version()));
    json_object_set_new(
        doc, "storage",
        json_pack("{s:I, s:I, s:I, s:I, s:I}", "store_bytes", (json_int_t)store_bytes, "blob_bytes",
                  (json_int_t)blob_bytes, "cache_bytes", (json_int_t)cache_bytes, "cache_max_bytes",
                  (json_int_t)node.cfg->cache_max_bytes, "blobs", (json_int_t)blob_count));
    size_t ris_pending = 0;
    int ris_on = node.cfg->ris_endpoint && *node.cfg->ris_endpoint;
    if (ris_on)
        pm_ris_pending(a.dir, node.store, pm_identity_public(node.id), &ris_pending);
    json_object_set_new(doc, "ris",
                        ris_on ? json_pack("{s:s, s:I}", "endpoint", node.cfg->ris_endpoint,
                                           "undelivered", (json_int_t)ris_pending)
                               : json_null());
    /* Patient conflicts and damaged blobs (node/studies/incidents.h). */
    json_t *incidents = pm_incidents_json(node.store, 20);
    if (incidents)
        json_object_set_new(doc, "dicom", incidents);
    if (a.json) {
        pm_cli_print_json(doc);
    } else {
        char b1[32], b2[32], b3[32], b4[32];
        printf("node     %s (%s)%s\n", node.cfg->name, id, live ? "" : "  [not running]");
        printf("storage  store %s; blobs %s (%llu), of which cache %s of %s\n",
               pm_config_format_bytes(store_bytes, b1, sizeof b1),
               pm_config_format_bytes(blob_bytes, b2, sizeof b2), (unsigned long long)blob_count,
               pm_config_format_bytes(cache_bytes, b3, sizeof b3),
               pm_config_format_bytes(node.cfg->cache_max_bytes, b4, sizeof b4));
        printf("mesh     %s\n", *node.cfg->mesh_id ? node.cfg->mesh_id : "(none yet)");
        printf("digest   %s\nevents   %llu\n", digest, (unsigned long long)events);
        printf("worklist %lld studies: %lld unreported, %lld claimed, %lld reported, %lld "
               "verified; %lld overdue, %lld orphans (unclaimed past due)\n",
               (long long)w.studies, (long long)w.unreported, (long long)w.claimed,
               (long long)w.reported, (long long)w.verified, (long long)w.overdue,
               (long long)w.orphans);
        if (ris_on)
            printf("ris      %s: %zu final report%s not yet acknowledged\n", node.cfg->ris_endpoint,
                   ris_pending, ris_pending == 1 ? "" : "s");
        size_t nf = json_array_size(forks);
        if (nf) {
            printf("FORKS    %zu (evidence of a compromised or restored node):\n", nf);
            size_t i;
            json_t *f;
            json_array_foreach(forks, i, f) printf(
                "         origin %s seq %lld\n", json_string_value(json_object_get(f, "origin")),
                (long long)json_integer_value(json_object_get(f, "seq")));
        } else {
            printf("forks    none\n");
        }
        printf("feeds    ");
        size_t i;
        json_t *h;
        json_array_foreach(jheads, i, h)
        {
            json_int_t behind = json_integer_value(json_object_get(h, "behind"));
            printf("%s%.8s:%lld%s", i ? ", " : "", json_string_value(json_object_get(h, "origin")),
                   (long long)json_integer_value(json_object_get(h, "seq")), "");
            if (behind)
                printf(" (%lld behind)", (long long)behind);
        }
        printf("\n");
        if (incidents)
            pm_incidents_print(incidents, stdout);
        printf("\n");
        print_members_table(json_object_get(doc, "members"));
        json_decref(doc);
    }
    json_decref(live);
    json_decref(known);
    pm_node_close(&node);
    return rc;
}
