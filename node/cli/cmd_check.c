/* check: is what is on disk what it should be? (docs/operations.md, Checking a node)
 *
 * The views are derived again from the events held (feed and fork branches, every
 * signature and chain checked, in a scratch store) and the digest compared with the
 * stored one; every blob's file is hashed and compared with its name. Works on a
 * running node (LMDB readers beside the writer; the comparison is of one moment only
 * if nothing arrives meanwhile, so a mismatch on a busy node is checked again). */
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "proto/error.h"
#include "store/feed.h"
#include "store/forks.h"
#include "store/verify.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    pm_verifier *v;
    char kind;
} feeder;

static int feed_record(void *ctx, const uint8_t *raw, size_t len)
{
    feeder *f = ctx;
    return pm_verifier_add(f->v, f->kind, raw, len);
}

typedef struct {
    uint64_t damaged, forks;
} event_problems;

/* Fork evidence is not damage (it is reported by status and audit verify); anything
 * else a re-derivation finds is. */
static void note_problem(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq,
                         const char *what)
{
    event_problems *p = ctx;
    if (strstr(what, "fork")) {
        p->forks++;
        return;
    }
    p->damaged++;
    char hex[PM_ID_HEX];
    pm_hex_encode(origin, PM_ID_BYTES, hex);
    printf("DAMAGED event origin %s seq %llu: %s\n", hex, (unsigned long long)seq, what);
}

/* Derives the views again in a scratch store; *same: the digests match. */
static int rederive(pm_node *node, int *same, uint64_t *events, event_problems *p)
{
    char scratch[] = "/tmp/pacsmesh-check-XXXXXX";
    if (!mkdtemp(scratch))
        return pm_cli_fail("cannot make a scratch directory");
    pm_verifier *v;
    int r = pm_verifier_new(scratch, note_problem, p, &v);
    if (r)
        return pm_cli_fail("cannot create a scratch store: %s", pm_strerror(r));
    char stored[PM_HASH_HEX], derived[PM_HASH_HEX];
    feeder fe = {v, 'E'}, ff = {v, 'F'};
    uint64_t problems = 0;
    if (!(r = pm_store_digest(node->store, stored)) &&
        !(r = pm_feed_for_each(node->store, feed_record, &fe)) &&
        !(r = pm_forks_each(node->store, NULL, feed_record, &ff)) &&
        !(r = pm_verifier_finish(v, events, &problems)))
        r = pm_store_digest(pm_verifier_store(v), derived);
    pm_verifier_destroy(&v);
    if (r)
        return pm_cli_fail("cannot re-derive the views: %s", pm_strerror(r));
    *same = strcmp(stored, derived) == 0;
    if (!*same)
        printf("DAMAGED views: stored digest %s, derived from the events %s\n", stored, derived);
    return PM_EXIT_OK;
}

typedef struct {
    uint64_t checked, damaged, bytes;
} blob_check;

static int check_blob(void *ctx, const uint8_t hash[PM_HASH_BYTES], const char *path, uint64_t size)
{
    blob_check *c = ctx;
    char hex[PM_HASH_HEX];
    pm_hex_encode(hash, PM_HASH_BYTES, hex);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        c->damaged++;
        printf("DAMAGED blob %s: its file %s is missing\n", hex, path);
        return 0;
    }
    pm_hasher h;
    pm_hasher_init(&h);
    uint8_t buf[1 << 16], got[PM_HASH_BYTES];
    ssize_t n;
    uint64_t total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        pm_hasher_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    pm_hasher_final(&h, got);
    c->checked++;
    c->bytes += total;
    if (n < 0 || total != size || memcmp(got, hash, PM_HASH_BYTES) != 0) {
        c->damaged++;
        printf("DAMAGED blob %s: %s %s\n", hex, path,
               n < 0           ? "cannot be read"
               : total != size ? "has the wrong size"
                               : "does not match its hash");
    }
    return 0;
}

int pm_cmd_check(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    int same = 0;
    uint64_t events = 0;
    event_problems p = {0, 0};
    blob_check b = {0, 0, 0};
    rc = rederive(&node, &same, &events, &p);
    if (!rc && pm_blobs_each(node.blobs, 0, check_blob, &b))
        rc = pm_cli_fail("cannot walk the blob index");
    if (!rc && (!same || p.damaged || b.damaged))
        rc = pm_cli_fail("%s is damaged: %llu events, %s, %llu of %llu blobs (see above)", a.dir,
                         (unsigned long long)p.damaged, same ? "views match" : "views differ",
                         (unsigned long long)b.damaged, (unsigned long long)b.checked);
    else if (!rc)
        printf("ok: %llu events re-derived, views match; %llu blobs (%llu bytes) match their "
               "hashes%s\n",
               (unsigned long long)events, (unsigned long long)b.checked,
               (unsigned long long)b.bytes, p.forks ? "; fork evidence held (see status)" : "");
    pm_node_close(&node);
    return rc;
}
