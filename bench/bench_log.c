/* Benchmark of the signed log, in one run:
 *   1. raw libsodium Ed25519 sign/s and verify/s (the floor everything else sits on);
 *   2. pm_feed_append events/s: each append is one durable LMDB write transaction;
 *   3. pm_event_parse events/s (parse + verify, no store);
 *   4. pm_feed_ingest_batch events/s and batches/s, batches of 256, durable, into a
 *      fresh store: parse, verify, chain, membership, index and views;
 * and the ratio of 4 to raw verify (the target: at least one half).
 *
 *   bench/bench_log [events]       (default 20480 events for 3 and 4)
 *
 * The store lives under $TMPDIR (default /tmp): point it at the disk you care about.
 * The workload is realistic for the views: four origins, each study announced once
 * and then claimed and reported, so every study key has a few events. */
#include "bench/bench_common.h"
#include "crypto/sign.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { ORIGINS = 4, BATCH = 256 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char child[4096];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rm_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void bench_raw(size_t n, double *verify_rate)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    uint8_t msg[200];
    randombytes_buf(msg, sizeof msg);
    uint8_t(*sigs)[crypto_sign_BYTES] = malloc(n * crypto_sign_BYTES);
    DIE_IF(!sigs);
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sigs[i], NULL, msg, sizeof msg, sk);
    }
    double t1 = now();
    for (size_t i = 0; i < n; i++) {
        msg[0] = (uint8_t)i;
        DIE_IF(crypto_sign_verify_detached(sigs[i], msg, sizeof msg, pk) != 0);
    }
    double t2 = now();
    *verify_rate = n / (t2 - t1);
    printf("raw Ed25519 (libsodium, 200-byte messages)\n");
    printf("  sign                 %10.0f /s\n", n / (t1 - t0));
    printf("  verify               %10.0f /s\n", *verify_rate);
    free(sigs);
    sodium_memzero(sk, sizeof sk);
}

/* ---- a workload of signed events built without a store -------------------------- */

typedef struct {
    pm_identity *id;
    uint64_t seq;
    uint8_t head[PM_HASH_BYTES];
} author;

typedef struct {
    pm_event **ev;
    size_t n;
} workload;

static uint64_t lamport;
static uint8_t mesh[PM_HASH_BYTES];

static void add(workload *w, author *a, Pm__EventBody *b)
{
    static const uint8_t zeros[PM_HASH_BYTES];
    b->origin.data = (uint8_t *)pm_identity_public(a->id);
    b->origin.len = PM_ID_BYTES;
    b->seq = ++a->seq;
    b->prev.data = a->seq == 1 ? (uint8_t *)zeros : a->head;
    b->prev.len = PM_HASH_BYTES;
    b->lamport = ++lamport;
    b->wall_ms = 1700000000000ull + lamport;
    b->mesh.data = mesh;
    b->mesh.len = PM_HASH_BYTES;
    DIE_IF(pm_event_build(a->id, b, &w->ev[w->n]) != PM_OK);
    memcpy(a->head, w->ev[w->n]->hash, PM_HASH_BYTES);
    w->n++;
}

static void study_event(workload *w, author *a, size_t i, int kind)
{
    char uid[64];
    snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.10.%zu", i / 3);
    bench_event e;
    bench_sample_event(&e, kind, uid, "P1234567");
    add(w, a, &e.body);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20480;
    DIE_IF(sodium_init() < 0 || n < BATCH);
    pm_log_set_level(PM_LOG_WARN);
    const char *base = getenv("TMPDIR");
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/pm-bench-XXXXXX", base && *base ? base : "/tmp");
    DIE_IF(!mkdtemp(tmp));
    char dir_a[4200], dir_b[4200];
    snprintf(dir_a, sizeof dir_a, "%s/append", tmp);
    snprintf(dir_b, sizeof dir_b, "%s/ingest", tmp);

    double raw_verify;
    bench_raw(n, &raw_verify);

    /* 2. Appends: one durable transaction each, for about two seconds. */
    author authors[ORIGINS];
    for (int i = 0; i < ORIGINS; i++) {
        memset(&authors[i], 0, sizeof authors[i]);
        DIE_IF(pm_identity_generate(&authors[i].id) != PM_OK);
    }
    pm_store *sa = NULL;
    DIE_IF(pm_store_open(dir_a, 0, &sa) != PM_OK);
    Pm__EventBody gb = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.quorum = 1;
    g.mesh_name = "bench";
    gb.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    gb.genesis = &g;
    pm_event *genesis = NULL;
    DIE_IF(pm_feed_append(sa, authors[0].id, &gb, &genesis) != PM_OK);
    memcpy(mesh, genesis->hash, PM_HASH_BYTES);
    size_t appended = 0;
    double t0 = now(), t1;
    while ((t1 = now()) - t0 < 2.0) {
        char uid[64];
        snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.11.%zu", appended / 2);
        Pm__EventBody b = PM__EVENT_BODY__INIT;
        Pm__ItemClaimed ic = PM__ITEM_CLAIMED__INIT;
        ic.study_instance_uid = uid;
        ic.reporter = "dr.bench";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
        b.item_claimed = &ic;
        DIE_IF(pm_feed_append(sa, authors[0].id, &b, NULL) != PM_OK);
        appended++;
    }
    printf("pm_feed_append (one durable transaction per event)\n");
    printf("  append               %10.0f events/s  (%zu in %.2f s)\n", appended / (t1 - t0),
           appended, t1 - t0);
    pm_store_close(&sa);

    /* The ingest workload: genesis, three admissions, then announce/claim/report. */
    workload w = {calloc(n + 8, sizeof(pm_event *)), 0};
    DIE_IF(!w.ev);
    lamport = genesis->body->lamport;
    authors[0].seq = 1;
    memcpy(authors[0].head, genesis->hash, PM_HASH_BYTES);
    for (int i = 1; i < ORIGINS; i++) {
        Pm__EventBody b = PM__EVENT_BODY__INIT;
        Pm__MemberAdmitted ma = PM__MEMBER_ADMITTED__INIT;
        ma.node_id.data = (uint8_t *)pm_identity_public(authors[i].id);
        ma.node_id.len = PM_ID_BYTES;
        ma.name = "member";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
        b.member_admitted = &ma;
        add(&w, &authors[0], &b);
    }
    size_t setup = w.n;
    for (size_t i = 0; w.n < n + setup; i++)
        study_event(&w, &authors[(i / 3) % ORIGINS], i, (int)(i % 3));

    /* 3. Parse and verify alone. */
    t0 = now();
    for (size_t i = setup; i < w.n; i++) {
        pm_event *ev = NULL;
        DIE_IF(pm_event_parse(w.ev[i]->raw, w.ev[i]->raw_len, &ev) != PM_OK);
        pm_event_destroy(&ev);
    }
    t1 = now();
    double parse_rate = n / (t1 - t0);
    printf("pm_event_parse (parse + verify, no store)\n");
    printf("  parse                %10.0f events/s\n", parse_rate);

    /* 4. Ingest in batches of 256 into a fresh durable store. */
    pm_store *sb = NULL;
    DIE_IF(pm_store_open(dir_b, 0, &sb) != PM_OK);
    DIE_IF(pm_store_set_mesh_id(sb, mesh) != PM_OK);
    DIE_IF(pm_feed_ingest(sb, genesis->raw, genesis->raw_len) != PM_OK);
    for (size_t i = 0; i < setup; i++)
        DIE_IF(pm_feed_ingest(sb, w.ev[i]->raw, w.ev[i]->raw_len) != PM_OK);
    const uint8_t *raws[BATCH];
    size_t lens[BATCH];
    int results[BATCH];
    size_t batches = 0, done = 0;
    t0 = now();
    for (size_t at = setup; at < w.n; at += BATCH) {
        size_t m = w.n - at < BATCH ? w.n - at : BATCH;
        for (size_t i = 0; i < m; i++) {
            raws[i] = w.ev[at + i]->raw;
            lens[i] = w.ev[at + i]->raw_len;
        }
        DIE_IF(pm_feed_ingest_batch(sb, raws, lens, m, results) != PM_OK);
        for (size_t i = 0; i < m; i++)
            DIE_IF(results[i] != PM_OK);
        batches++;
        done += m;
    }
    t1 = now();
    double ingest_rate = done / (t1 - t0);
    printf("pm_feed_ingest_batch (batches of %d, one durable transaction per batch)\n", BATCH);
    printf("  ingest               %10.0f events/s  (%zu in %.2f s)\n", ingest_rate, done, t1 - t0);
    printf("  batches              %10.1f /s\n", batches / (t1 - t0));
    printf("ratio ingest / raw verify: %.2f (target >= 0.50)\n", ingest_rate / raw_verify);
    printf("ratio parse  / raw verify: %.2f\n", parse_rate / raw_verify);

    pm_store_close(&sb);
    for (size_t i = 0; i < w.n; i++)
        pm_event_destroy(&w.ev[i]);
    free(w.ev);
    pm_event_destroy(&genesis);
    for (int i = 0; i < ORIGINS; i++)
        pm_identity_destroy(&authors[i].id);
    rm_tree(tmp);
    return 0;
}
