/* Setting a node up: init, id, genesis, admit, join, revoke (docs/pacsmesh.1). */
#include "crypto/hash.h"
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "proto/error.h"
#include "proto/wire.pb-c.h"
#include "store/feed.h"
#include "store/views.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_PREFIX "pmjoin1-"

static int mkdir_p(const char *dir)
{
    char *copy = strdup(dir);
    if (!copy)
        return -1;
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
                free(copy);
                return -1;
            }
            *p = '/';
        }
    free(copy);
    /* The node directory holds the keys, the store and the blobs: owner only, also when
     * it existed (empty) before. */
    return (mkdir(dir, 0700) != 0 && errno != EEXIST) || chmod(dir, 0700) != 0 ? -1 : 0;
}

int pm_cmd_init(int argc, char **argv)
{
    const char *name = NULL, *listen = NULL, *advertise = NULL, *port = NULL, *ae = NULL,
               *admin = NULL;
    pm_cli_opt opts[] = {
        {"name", &name, NULL},       {"listen", &listen, NULL}, {"advertise", &advertise, NULL},
        {"dicom-port", &port, NULL}, {"ae", &ae, NULL},         {"admin", &admin, NULL},
        {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    if (!name || !*name)
        return pm_cli_usage(a.usage, "--name is required");
    if (a.nargs)
        return pm_cli_usage(a.usage, "unexpected argument '%s'", a.args[0]);
    int dicom_port = 0;
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 1 || p > 65535)
            return pm_cli_usage(a.usage, "--dicom-port: '%s' is not a port number", port);
        dicom_port = (int)p;
    }
    char *conf = pm_node_path(a.dir, "node.conf"), *key = pm_node_path(a.dir, "identity.key"),
         *store_dir = pm_node_path(a.dir, "store");
    pm_identity *id = NULL;
    pm_store *store = NULL;
    char err[512];
    if (access(conf, F_OK) == 0 || access(key, F_OK) == 0) {
        rc = pm_cli_fail("%s already holds a node; refusing to overwrite it", a.dir);
        goto done;
    }
    if (mkdir_p(a.dir) != 0) {
        rc = pm_cli_fail("cannot create %s: %s", a.dir, strerror(errno));
        goto done;
    }
    int r = pm_config_write_default(conf, name, listen, advertise, dicom_port, ae, admin, err,
                                    sizeof err);
    if (r) {
        rc = r == PM_E_CONFIG ? pm_cli_usage(a.usage, "%s", err) : pm_cli_fail("%s", err);
        goto done;
    }
    if ((r = pm_identity_generate(&id)) || (r = pm_identity_save(id, key))) {
        unlink(conf);
        rc = pm_cli_fail("cannot write the identity key %s: %s", key, pm_strerror(r));
        goto done;
    }
    if ((r = pm_store_open(store_dir, 0, &store))) {
        rc = pm_cli_fail("cannot create the store %s: %s", store_dir, pm_strerror(r));
        goto done;
    }
    char hex[PM_ID_HEX];
    pm_hex_encode(pm_identity_public(id), PM_ID_BYTES, hex);
    printf("created node '%s' in %s\n%s\n", name, a.dir, hex);
done:
    pm_store_close(&store);
    pm_identity_destroy(&id);
    free(conf);
    free(key);
    free(store_dir);
    return rc;
}

int pm_cmd_id(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    pm_node node;
    if ((rc = pm_node_open(a.dir, PM_NODE_IDENTITY, &node)) == PM_EXIT_OK) {
        char hex[PM_ID_HEX];
        pm_hex_encode(pm_identity_public(node.id), PM_ID_BYTES, hex);
        puts(hex);
        pm_node_close(&node);
    }
    return rc;
}

int pm_cmd_genesis(int argc, char **argv)
{
    const char *mesh = NULL, *quorum = "1";
    pm_cli_opt opts[] = {{"mesh", &mesh, NULL}, {"quorum", &quorum, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    char *end;
    long k = strtol(quorum, &end, 10);
    if (!mesh || !*mesh)
        rc = pm_cli_usage(a.usage, "--mesh is required");
    else if (*end || k < 1 || k > 100)
        rc = pm_cli_usage(a.usage, "--quorum: '%s' is not a number from 1 to 100", quorum);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL, &node))) {
        return rc;
    }
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = (char *)mesh;
    g.quorum = (uint32_t)k;
    g.founder_name = node.cfg->name;
    g.founder_endpoint = node.cfg->advertise;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    body.genesis = &g;
    pm_event *ev = NULL;
    int r = pm_feed_append(node.store, node.id, &body, &ev);
    if (r == PM_E_EXISTS) {
        rc = pm_cli_fail("this node already belongs to a mesh");
    } else if (r) {
        rc = pm_cli_fail("cannot write the genesis event: %s", pm_strerror(r));
    } else {
        char hex[PM_HASH_HEX], qtext[16], err[512];
        pm_hex_encode(ev->hash, PM_HASH_BYTES, hex);
        snprintf(qtext, sizeof qtext, "%ld", k);
        if (pm_config_set(node.cfg->path, "mesh", "id", hex, err, sizeof err) ||
            pm_config_set(node.cfg->path, "mesh", "quorum", qtext, err, sizeof err))
            rc = pm_cli_fail("genesis written, but node.conf not updated: %s", err);
        else
            printf("created mesh '%s' (quorum %ld)\n%s\n", mesh, k, hex);
        pm_event_destroy(&ev);
    }
    pm_node_close(&node);
    return rc;
}

/* Reads the genesis envelope (seq 1 of the founder) for a join token. */
static int copy_first(void *ctx, const uint8_t *raw, size_t len)
{
    ProtobufCBinaryData *out = ctx;
    out->data = malloc(len);
    if (!out->data)
        return PM_E_NOMEM;
    memcpy(out->data, raw, len);
    out->len = len;
    return 1;
}

typedef struct {
    uint8_t founder[PM_ID_BYTES];
    int found;
} founder_search;

static int find_founder(void *ctx, const Pm__MemberView *m)
{
    founder_search *f = ctx;
    if (m->founder) {
        memcpy(f->founder, m->id.data, PM_ID_BYTES);
        f->found = 1;
    }
    return 0;
}

static char *make_token(pm_node *node, const uint8_t new_id[PM_ID_BYTES], const char *mesh_name)
{
    uint8_t mesh[PM_HASH_BYTES];
    founder_search fs = {{0}, 0};
    ProtobufCBinaryData genesis = {0, NULL};
    if (pm_store_mesh_id(node->store, mesh) || pm_views_members(node->store, find_founder, &fs) ||
        !fs.found || pm_feed_read(node->store, fs.founder, 1, 1, 1, copy_first, &genesis) < 0 ||
        !genesis.data)
        return NULL;
    Pm__JoinToken t = PM__JOIN_TOKEN__INIT;
    t.mesh_id.data = mesh;
    t.mesh_id.len = PM_HASH_BYTES;
    t.genesis = genesis;
    t.admitter.data = (uint8_t *)pm_identity_public(node->id);
    t.admitter.len = PM_ID_BYTES;
    t.admitter_endpoint = node->cfg->advertise;
    t.node_id.data = (uint8_t *)new_id;
    t.node_id.len = PM_ID_BYTES;
    t.mesh_name = (char *)mesh_name;
    size_t len = pm__join_token__get_packed_size(&t);
    uint8_t *packed = malloc(len);
    size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *token = malloc(sizeof TOKEN_PREFIX + b64len);
    if (packed && token) {
        pm__join_token__pack(&t, packed);
        strcpy(token, TOKEN_PREFIX);
        sodium_bin2base64(token + strlen(TOKEN_PREFIX), b64len, packed, len,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    } else {
        free(token);
        token = NULL;
    }
    free(packed);
    free(genesis.data);
    return token;
}

/* Appends a membership event by this node after checking it is a member. */
static int append_membership(pm_node *node, Pm__EventBody *body)
{
    if (!pm_views_is_member(node->store, pm_identity_public(node->id)))
        return pm_cli_fail("this node is not a member of a mesh (yet): it cannot approve");
    int rc = pm_feed_guard_check(node);
    if (rc)
        return rc;
    int r = pm_feed_append(node->store, node->id, body, NULL);
    if (r)
        return pm_cli_fail("cannot write the event: %s", pm_strerror(r));
    pm_admin_kick(node);
    return PM_EXIT_OK;
}

int pm_cmd_admit(int argc, char **argv)
{
    const char *name = NULL, *endpoint = NULL;
    pm_cli_opt opts[] = {{"name", &name, NULL}, {"endpoint", &endpoint, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    uint8_t new_id[PM_ID_BYTES], curve[PM_CURVE_KEY_BYTES];
    if (a.nargs != 1)
        rc = pm_cli_usage(a.usage, "give exactly one NODE_ID");
    else if (!name || !*name || !endpoint || !*endpoint)
        rc = pm_cli_usage(a.usage, "--name and --endpoint are required");
    else if (pm_hex_decode(a.args[0], new_id, PM_ID_BYTES) ||
             pm_identity_curve_public_of(new_id, curve))
        rc = pm_cli_usage(a.usage, "'%s' is not a node id (64 hex digits, as `pacsmesh id` prints)",
                          a.args[0]);
    else if (strncmp(endpoint, "tcp://", 6) != 0)
        rc = pm_cli_usage(a.usage, "--endpoint: '%s' is not a tcp:// endpoint", endpoint);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL, &node))) {
        return rc;
    }
    Pm__MemberAdmitted m = PM__MEMBER_ADMITTED__INIT;
    m.node_id.data = new_id;
    m.node_id.len = PM_ID_BYTES;
    m.name = (char *)name;
    m.endpoint = (char *)endpoint;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
    body.member_admitted = &m;
    if ((rc = append_membership(&node, &body)) == PM_EXIT_OK) {
        char *token = make_token(&node, new_id, "");
        if (!token) {
            rc = pm_cli_fail("admission recorded, but the join token could not be made");
        } else {
            Pm__MemberView *mv = NULL;
            if (pm_views_member(node.store, new_id, &mv) == PM_OK) {
                printf("approved %s (%s): %zu of the approvals needed; state %s\n", name, a.args[0],
                       mv->n_admit_approvals, mv->state);
                pm__member_view__free_unpacked(mv, NULL);
            }
            puts(token);
            free(token);
        }
    }
    pm_node_close(&node);
    return rc;
}

int pm_cmd_join(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    if (a.nargs != 1 || strncmp(a.args[0], TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0) {
        return pm_cli_usage(a.usage, "give the token `pacsmesh admit` printed (pmjoin1-...)");
    }
    const char *b64 = a.args[0] + strlen(TOKEN_PREFIX);
    size_t cap = strlen(b64), len = 0;
    uint8_t *bin = malloc(cap + 1);
    Pm__JoinToken *t = NULL;
    pm_event *genesis = NULL;
    pm_node node;
    int opened = 0;
    if (!bin ||
        sodium_base642bin(bin, cap, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        !(t = pm__join_token__unpack(NULL, len, bin)) || t->mesh_id.len != PM_HASH_BYTES ||
        t->node_id.len != PM_ID_BYTES || t->admitter.len != PM_ID_BYTES) {
        rc = pm_cli_usage(a.usage, "the token is damaged (copy it whole)");
        goto done;
    }
    if (pm_event_parse(t->genesis.data, t->genesis.len, &genesis) != PM_OK ||
        genesis->body->payload_case != PM__EVENT_BODY__PAYLOAD_GENESIS ||
        memcmp(genesis->hash, t->mesh_id.data, PM_HASH_BYTES) != 0) {
        rc = pm_cli_fail("the token's genesis does not match its mesh id: refusing it");
        goto done;
    }
    if ((rc = pm_node_open(a.dir, PM_NODE_ALL, &node)))
        goto done;
    opened = 1;
    if (memcmp(t->node_id.data, pm_identity_public(node.id), PM_ID_BYTES) != 0) {
        char want[PM_ID_HEX];
        pm_hex_encode(t->node_id.data, PM_ID_BYTES, want);
        rc = pm_cli_fail("this token admits node %s, not this node", want);
        goto done;
    }
    int r = pm_store_set_mesh_id(node.store, t->mesh_id.data);
    if (r == PM_E_EXISTS) {
        rc = pm_cli_fail("this node already belongs to another mesh");
        goto done;
    }
    if (r || ((r = pm_feed_ingest(node.store, t->genesis.data, t->genesis.len)) < 0)) {
        rc = pm_cli_fail("cannot record the mesh: %s", pm_strerror(r));
        goto done;
    }
    /* CURVE needs the server's key: remember whose endpoint the bootstrap peer is. */
    char peer_key[600];
    snprintf(peer_key, sizeof peer_key, "peer:%s", t->admitter_endpoint);
    if ((r = pm_store_local_put(node.store, peer_key, t->admitter.data, PM_ID_BYTES))) {
        rc = pm_cli_fail("cannot record the first peer: %s", pm_strerror(r));
        goto done;
    }
    char hex[PM_HASH_HEX], err[512];
    pm_hex_encode(t->mesh_id.data, PM_HASH_BYTES, hex);
    if (pm_config_set(node.cfg->path, "mesh", "id", hex, err, sizeof err) ||
        pm_config_set(node.cfg->path, "mesh", "peers", t->admitter_endpoint, err, sizeof err)) {
        rc = pm_cli_fail("cannot update node.conf: %s", err);
        goto done;
    }
    printf("joined mesh %s; first peer %s (start the node with `pacsmesh run`)\n", hex,
           t->admitter_endpoint);
done:
    if (opened)
        pm_node_close(&node);
    pm_event_destroy(&genesis);
    if (t)
        pm__join_token__free_unpacked(t, NULL);
    free(bin);
    return rc;
}

int pm_cmd_revoke(int argc, char **argv)
{
    const char *reason = NULL;
    pm_cli_opt opts[] = {{"reason", &reason, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    if (a.nargs != 1)
        rc = pm_cli_usage(a.usage, "give exactly one NODE_ID");
    else if (!reason || !*reason)
        rc = pm_cli_usage(a.usage, "--reason is required");
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL, &node))) {
        return rc;
    }
    uint8_t target[PM_ID_BYTES];
    if ((rc = pm_cli_resolve_id(node.store, a.args[0], target)) == PM_EXIT_OK) {
        Pm__MemberRevoked m = PM__MEMBER_REVOKED__INIT;
        m.node_id.data = target;
        m.node_id.len = PM_ID_BYTES;
        m.reason = (char *)reason;
        pm_head head; /* its events this node holds stand; later ones will not */
        m.last_seq = pm_feed_head(node.store, target, &head) == PM_OK ? head.seq : 0;
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED;
        body.member_revoked = &m;
        if ((rc = append_membership(&node, &body)) == PM_EXIT_OK) {
            Pm__MemberView *mv = NULL;
            if (pm_views_member(node.store, target, &mv) == PM_OK) {
                printf("revocation of %s approved (%zu approvals); state %s\n", mv->name,
                       mv->n_revoke_approvals, mv->state);
                pm__member_view__free_unpacked(mv, NULL);
            }
        }
    }
    pm_node_close(&node);
    return rc;
}
