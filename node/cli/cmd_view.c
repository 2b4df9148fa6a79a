/* Looking at a node: members, digest, status. These read the store directly (LMDB
 * allows readers beside the running node) and ask the running node, if any, only for
 * what lives in its memory: which peers are up. */
#include "crypto/hash.h"
#include "node/audit/atna_sender.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/ris/sender.h"
#include "node/ris/sr_sender.h"
#include "node/studies/incidents.h"
#include "node/worklist/present.h"
#include "proto/error.h"
#include "proto/version.h"
#include "store/blobs.h"
#include "store/feed.h"
#include "store/forks.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    json_t *list;
    const pm_liveness *liveness; /* NULL: the node is not running */
    const uint8_t *self;
    char digest[PM_HASH_HEX]; /* ours, to tell which peers agree */
} members_ctx;

static int collect_member(void *vctx, const Pm__MemberView *m)
{
    members_ctx *c = vctx;
    char id[PM_ID_HEX], seen[32];
    pm_hex_encode(m->id.data, PM_ID_BYTES, id);
    int self = memcmp(m->id.data, c->self, PM_ID_BYTES) == 0;
    const pm_peer_liveness *live = pm_liveness_find(c->liveness, m->id.data);
    int up = self ? c->liveness != NULL : live && live->up;
    uint64_t last = live ? live->last_seen_ms : 0;
    if (self && c->liveness)
        last = pm_now_ms();
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:i, s:i}", "id", id, "name",
                          m->name, "endpoint", m->endpoint, "state", m->state, "up", up,
                          "last_seen", pm_cli_time(last, seen), "self", self, "approvals",
                          (json_int_t)m->n_admit_approvals, "revoke_approvals",
                          (json_int_t)m->n_revoke_approvals);
    /* A peer that is up says, in each hello, the digest of its views: equal to ours
     * means it holds the same events (a lag of a gossip round shows as false). */
    char theirs[PM_HASH_HEX];
    if (live && live->has_digest)
        pm_hex_encode(live->digest, PM_HASH_BYTES, theirs);
    if (!self && up)
        json_object_set_new(o, "agrees",
                            live->has_digest ? json_boolean(strcmp(theirs, c->digest) == 0)
                                             : json_null());
    json_array_append_new(c->list, o);
    return 0;
}

static json_t *members_json(const pm_node *node, const pm_liveness *liveness)
{
    members_ctx c = {json_array(), liveness, pm_identity_public(node->id), ""};
    if (pm_store_digest(node->store, c.digest) != PM_OK)
        c.digest[0] = 0;
    if (pm_views_members(node->store, collect_member, &c) != PM_OK) {
        json_decref(c.list);
        return NULL;
    }
    return c.list;
}

static void print_members_table(json_t *list)
{
    static const char *const head[] = {"ID",        "NAME",     "STATE", "UP",
                                       "LAST SEEN", "ENDPOINT", "DIGEST"};
    pm_table *t = pm_table_new(7, head);
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
                             json_string_value(json_object_get(m, "endpoint")),
                             json_is_true(json_object_get(m, "self"))      ? "(this node)"
                             : json_is_true(json_object_get(m, "agrees"))  ? "agrees"
                             : json_is_false(json_object_get(m, "agrees")) ? "DIFFERS"
                                                                           : ""};
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
    pm_liveness live;
    int running = pm_admin_liveness(&node, &live, NULL) == PM_OK;
    json_t *list = members_json(&node, running ? &live : NULL);
    if (!list)
        rc = pm_cli_fail("cannot read the membership view");
    else if (a.json)
        pm_cli_print_json(list);
    else {
        print_members_table(list);
        json_decref(list);
    }
    pm_liveness_free(&live);
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

/* What says whether this node may sign, its own membership state and the quorum rule
 * in effect (docs/operations.md): added to the status document. */
static void add_safety(json_t *doc, const pm_node *node, json_t *members)
{
    char *why = NULL;
    int unconfirmed = pm_feed_guard_unconfirmed(node->store, &why);
    json_object_set_new(doc, "confirmed", json_boolean(!unconfirmed));
    if (unconfirmed)
        json_object_set_new(doc, "unconfirmed_reason",
                            json_string(why ? why : "the store is marked unconfirmed"));
    free(why);
    const char *state = "none";
    size_t n_members = 0, i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *st = json_string_value(json_object_get(m, "state"));
        n_members += st && strcmp(st, "member") == 0;
        if (json_is_true(json_object_get(m, "self")) && st)
            state = st;
    }
    json_object_set_new(doc, "state", json_string(state));
    unsigned k = node->cfg->quorum ? node->cfg->quorum : 1;
    size_t effective = n_members && n_members < k ? n_members : k;
    json_object_set_new(doc, "quorum",
                        json_pack("{s:I, s:I, s:I}", "k", (json_int_t)k, "members",
                                  (json_int_t)n_members, "effective", (json_int_t)effective));
}

static void print_safety(json_t *doc)
{
    json_t *q = json_object_get(doc, "quorum");
    long long k = json_integer_value(json_object_get(q, "k")),
              eff = json_integer_value(json_object_get(q, "effective"));
    printf("state    %s; quorum %lld of %lld members%s\n",
           json_string_value(json_object_get(doc, "state")), eff,
           (long long)json_integer_value(json_object_get(q, "members")),
           eff < k ? " (fewer members than the mesh's quorum K: every member must approve)" : "");
    if (json_is_true(json_object_get(doc, "confirmed")))
        printf("feed     confirmed: this node may sign new events\n");
    else
        printf("FEED     NOT CONFIRMED: %s; nothing is signed until a peer confirms how far "
               "this node's own feed goes\n",
               json_string_value(json_object_get(doc, "unconfirmed_reason")));
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The human-readable status, from the same document --json prints. */
static void print_status_table(json_t *doc, int running)
{
    json_t *st = json_object_get(doc, "storage"), *w = json_object_get(doc, "worklist");
    char b1[32], b2[32], b3[32], b4[32];
    printf("node     %s (%s)%s\n", json_string_value(json_object_get(doc, "name")),
           json_string_value(json_object_get(doc, "id")), running ? "" : "  [not running]");
    printf("storage  store %s; blobs %s (%lld), of which cache %s of %s\n",
           pm_config_format_bytes((uint64_t)jint(st, "store_bytes"), b1, sizeof b1),
           pm_config_format_bytes((uint64_t)jint(st, "blob_bytes"), b2, sizeof b2),
           (long long)jint(st, "blobs"),
           pm_config_format_bytes((uint64_t)jint(st, "cache_bytes"), b3, sizeof b3),
           pm_config_format_bytes((uint64_t)jint(st, "cache_max_bytes"), b4, sizeof b4));
    const char *mesh = json_string_value(json_object_get(doc, "mesh"));
    printf("mesh     %s\n", mesh && *mesh ? mesh : "(none yet)");
    print_safety(doc);
    printf("digest   %s\nevents   %lld\n", json_string_value(json_object_get(doc, "digest")),
           (long long)jint(doc, "events"));
    printf("worklist %lld studies: %lld unreported, %lld claimed, %lld reported, %lld "
           "verified; %lld overdue, %lld orphans (unclaimed past due)\n",
           (long long)jint(w, "studies"), (long long)jint(w, "unreported"),
           (long long)jint(w, "claimed"), (long long)jint(w, "reported"),
           (long long)jint(w, "verified"), (long long)jint(w, "overdue"),
           (long long)jint(w, "orphans"));
    json_t *ris = json_object_get(doc, "ris");
    if (json_is_object(ris))
        printf("ris      %s: %lld final report%s not yet acknowledged\n",
               json_string_value(json_object_get(ris, "endpoint")),
               (long long)jint(ris, "undelivered"), jint(ris, "undelivered") == 1 ? "" : "s");
    json_t *audit = json_object_get(doc, "audit");
    if (json_is_object(audit))
        printf("audit    %s: %lld audit message%s not yet sent\n",
               json_string_value(json_object_get(audit, "syslog")),
               (long long)jint(audit, "unsent"), jint(audit, "unsent") == 1 ? "" : "s");
    json_t *sr = json_object_get(doc, "report_sr");
    if (json_is_object(sr))
        printf("reports  SR to %s: %lld final report%s not yet stored\n",
               json_string_value(json_object_get(sr, "destination")),
               (long long)jint(sr, "undelivered"), jint(sr, "undelivered") == 1 ? "" : "s");
    json_t *forks = json_object_get(doc, "forks"), *f, *h;
    size_t i;
    if (json_array_size(forks)) {
        printf("FORKS    %zu (evidence of a compromised or restored node):\n",
               json_array_size(forks));
        json_array_foreach(forks, i, f)
            printf("         origin %s seq %lld\n", json_string_value(json_object_get(f, "origin")),
                   (long long)jint(f, "seq"));
    } else {
        printf("forks    none\n");
    }
    printf("feeds    ");
    json_array_foreach(json_object_get(doc, "heads"), i, h)
    {
        printf("%s%.8s:%lld", i ? ", " : "", json_string_value(json_object_get(h, "origin")),
               (long long)jint(h, "seq"));
        if (jint(h, "behind"))
            printf(" (%lld behind)", (long long)jint(h, "behind"));
    }
    printf("\n");
    if (json_object_get(doc, "dicom"))
        pm_incidents_print(json_object_get(doc, "dicom"), stdout);
    printf("\n");
    print_members_table(json_object_get(doc, "members"));
}

/* Each origin's head here, and how far behind what the peers (known: origin hex ->
 * seq) have; a fork's longer branch counts as held. */
static json_t *heads_json(const pm_node *node, json_t *known)
{
    pm_head *heads = NULL;
    size_t nheads = 0;
    pm_feed_heads(node->store, &heads, &nheads);
    json_t *jheads = json_array();
    for (size_t i = 0; i < nheads; i++) {
        char id[PM_ID_HEX];
        pm_hex_encode(heads[i].origin, PM_ID_BYTES, id);
        json_int_t peers_have = json_integer_value(json_object_get(known, id));
        uint64_t top = 0, held = heads[i].seq;
        if (pm_forks_top(node->store, heads[i].origin, &top) == PM_OK && top > held)
            held = top;
        json_int_t behind = peers_have > (json_int_t)held ? peers_have - (json_int_t)held : 0;
        json_t *h = json_pack("{s:s, s:I, s:I}", "origin", id, "seq", (json_int_t)heads[i].seq,
                              "behind", behind);
        json_array_append_new(jheads, h);
    }
    free(heads);
    return jheads;
}

/* Disk use: the store's file, the blobs and the cache. */
static json_t *storage_json(const pm_node *node, const char *dir)
{
    uint64_t blob_bytes = 0, cache_bytes = 0, blob_count = 0;
    char *data_file = pm_node_path(dir, "store/data.mdb");
    pm_blobs_usage(node->blobs, &blob_bytes, &cache_bytes, &blob_count);
    struct stat st;
    uint64_t store_bytes =
        data_file && stat(data_file, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    free(data_file);
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "store_bytes", (json_int_t)store_bytes,
                     "blob_bytes", (json_int_t)blob_bytes, "cache_bytes", (json_int_t)cache_bytes,
                     "cache_max_bytes", (json_int_t)node->cfg->cache_max_bytes, "blobs",
                     (json_int_t)blob_count);
}

/* RIS delivery and ATNA audit export: where to, and what is still to go (null: off). */
static json_t *ris_json(const pm_node *node, const char *dir)
{
    if (!node->cfg->ris_endpoint || !*node->cfg->ris_endpoint)
        return json_null();
    size_t pending = 0;
    pm_ris_pending(dir, node->store, pm_identity_public(node->id), &pending);
    return json_pack("{s:s, s:I}", "endpoint", node->cfg->ris_endpoint, "undelivered",
                     (json_int_t)pending);
}

static json_t *audit_json(const pm_node *node, const char *dir)
{
    if (!node->cfg->audit_syslog || !*node->cfg->audit_syslog)
        return json_null();
    uint64_t events = 0, records = 0;
    pm_atna_pending(dir, node->store, pm_identity_public(node->id), &events, &records);
    return json_pack("{s:s, s:I}", "syslog", node->cfg->audit_syslog, "unsent",
                     (json_int_t)(events + records));
}

/* [dicom] report_destination and the final reports whose SR it has not stored; null
 * when off. */
static json_t *report_sr_json(const char *dir, pm_node *node)
{
    const char *dest = node->cfg->report_destination;
    if (!dest || !*dest)
        return json_null();
    size_t pending = 0;
    pm_sr_pending(dir, node->store, pm_identity_public(node->id), &pending);
    return json_pack("{s:s, s:I}", "destination", dest, "undelivered", (json_int_t)pending);
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
    pm_liveness live;
    int running = pm_admin_liveness(&node, &live, &known) == PM_OK;
    json_t *members = members_json(&node, running ? &live : NULL);
    json_t *forks = json_array();
    pm_feed_forks(node.store, collect_fork, forks);
    json_t *jheads = heads_json(&node, known);
    pm_worklist_counts w = {.now = pm_now_ms()};
    pm_items_counts(node.store, &w);
    uint64_t events = 0;
    pm_store_count_events(node.store, &events);
    char id[PM_ID_HEX], digest[PM_HASH_HEX];
    pm_hex_encode(pm_identity_public(node.id), PM_ID_BYTES, id);
    pm_store_digest(node.store, digest);
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:b, s:s, s:I, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
        "id", id, "name", node.cfg->name, "mesh", node.cfg->mesh_id, "running", running, "digest",
        digest, "events", (json_int_t)events, "members", members ? members : json_array(), "heads",
        jheads, "forks", forks, "worklist", "studies", (json_int_t)w.studies, "unreported",
        (json_int_t)w.unreported, "claimed", (json_int_t)w.claimed, "reported",
        (json_int_t)w.reported, "verified", (json_int_t)w.verified, "overdue",
        (json_int_t)w.overdue, "orphans", (json_int_t)w.orphans);
    json_object_set_new(doc, "version", json_string(pm_version()));
    json_object_set_new(doc, "storage", storage_json(&node, a.dir));
    json_object_set_new(doc, "ris", ris_json(&node, a.dir));
    json_object_set_new(doc, "audit", audit_json(&node, a.dir));
    json_object_set_new(doc, "report_sr", report_sr_json(a.dir, &node));
    /* Patient conflicts and damaged blobs (node/studies/incidents.h). */
    json_t *incidents = pm_incidents_json(node.store, 20);
    if (incidents)
        json_object_set_new(doc, "dicom", incidents);
    add_safety(doc, &node, json_object_get(doc, "members"));
    if (a.json) {
        pm_cli_print_json(doc);
    } else {
        print_status_table(doc, running);
        json_decref(doc);
    }
    pm_liveness_free(&live);
    json_decref(known);
    pm_node_close(&node);
    return rc;
}
