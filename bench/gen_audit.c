/* Writes a valid audit export (docs/audit-format.md) of N signed events for the
 * verify benchmark, and measures the raw single-core Ed25519 verify rate of this
 * machine in the same run:
 *
 *   bench/gen_audit N FILE [SITES]     (default 10 sites)
 *
 * The log: a genesis by site 0, the admission of sites 1..SITES-1, then per study an
 * announcement (one CT series, 4 instances) by its site, a claim and a report by a
 * reporter's site: realistic sizes and a realistic mix for the views. Events are built
 * and written one at a time, so memory stays flat for any N. Prints, last,
 * "raw_verify_per_s R" for bench_verify.sh. */
#include "bench/bench_common.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SITES = 64 };

typedef struct {
    pm_identity *id;
    uint64_t seq;
    uint8_t head[PM_HASH_BYTES];
} author;

static FILE *out;
static pm_hasher hasher;
static uint64_t lamport, written;
static uint8_t mesh[PM_HASH_BYTES];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void put(const void *p, size_t n)
{
    DIE_IF(fwrite(p, 1, n, out) != n);
    pm_hasher_update(&hasher, p, n);
}

static void put_event(const pm_event *ev)
{
    uint8_t head[5] = {'E', (uint8_t)(ev->raw_len >> 24), (uint8_t)(ev->raw_len >> 16),
                       (uint8_t)(ev->raw_len >> 8), (uint8_t)ev->raw_len};
    put(head, 5);
    put(ev->raw, ev->raw_len);
    written++;
}

static void emit(author *a, Pm__EventBody *b)
{
    static const uint8_t zeros[PM_HASH_BYTES];
    b->origin.data = (uint8_t *)pm_identity_public(a->id);
    b->origin.len = PM_ID_BYTES;
    b->seq = ++a->seq;
    b->prev.data = a->seq == 1 ? (uint8_t *)zeros : a->head;
    b->prev.len = PM_HASH_BYTES;
    b->lamport = ++lamport;
    b->wall_ms = 1700000000000ull + lamport * 10;
    b->mesh.data = mesh;
    b->mesh.len = PM_HASH_BYTES;
    pm_event *ev = NULL;
    DIE_IF(pm_event_build(a->id, b, &ev) != PM_OK);
    memcpy(a->head, ev->hash, PM_HASH_BYTES);
    put_event(ev);
    pm_event_destroy(&ev);
}

static void study_event(author *a, size_t study, int kind)
{
    char uid[64], pid[16];
    snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.8.498.%zu", study);
    snprintf(pid, sizeof pid, "SYN%07zu", study % 9999999);
    bench_event e;
    bench_sample_event(&e, kind, uid, pid);
    emit(a, &e.body);
}

static double raw_verify_rate(void)
{
    enum { N = 20000 };
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    uint8_t msg[300];
    randombytes_buf(msg, sizeof msg);
    static uint8_t sigs[N][crypto_sign_BYTES];
    for (size_t i = 0; i < N; i++) {
        msg[0] = (uint8_t)i;
        crypto_sign_detached(sigs[i], NULL, msg, sizeof msg, sk);
    }
    double t0 = now();
    for (size_t i = 0; i < N; i++) {
        msg[0] = (uint8_t)i;
        DIE_IF(crypto_sign_verify_detached(sigs[i], msg, sizeof msg, pk) != 0);
    }
    sodium_memzero(sk, sizeof sk);
    return N / (now() - t0);
}

int main(int argc, char **argv)
{
    DIE_IF(argc < 3 || sodium_init() < 0);
    size_t n = strtoul(argv[1], NULL, 10);
    int sites = argc > 3 ? atoi(argv[3]) : 10;
    DIE_IF(sites < 1 || sites > MAX_SITES || n < (size_t)sites);
    pm_log_set_level(PM_LOG_WARN);
    author a[MAX_SITES];
    for (int i = 0; i < sites; i++) {
        memset(&a[i], 0, sizeof a[i]);
        DIE_IF(pm_identity_generate(&a[i].id) != PM_OK);
    }
    /* The genesis through a scratch store: it fixes the mesh id. */
    char tmp[] = "/tmp/pm-gen-audit-XXXXXX";
    DIE_IF(!mkdtemp(tmp));
    pm_store *s = NULL;
    DIE_IF(pm_store_open(tmp, 0, &s) != PM_OK);
    Pm__EventBody gb = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.quorum = 1;
    g.mesh_name = "bench";
    gb.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    gb.genesis = &g;
    pm_event *genesis = NULL;
    DIE_IF(pm_feed_append(s, a[0].id, &gb, &genesis) != PM_OK);
    pm_store_close(&s);
    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", tmp);
    unlink(path);
    rmdir(tmp);
    memcpy(mesh, genesis->hash, PM_HASH_BYTES);
    lamport = genesis->body->lamport;
    a[0].seq = genesis->body->seq;
    memcpy(a[0].head, genesis->hash, PM_HASH_BYTES);

    DIE_IF(!(out = fopen(argv[2], "wb")));
    pm_hasher_init(&hasher);
    static const char magic[] = "PACSMESH-AUDIT\n1\n";
    put(magic, strlen(magic));
    put_event(genesis);
    for (int i = 1; i < sites; i++) {
        Pm__EventBody b = PM__EVENT_BODY__INIT;
        Pm__MemberAdmitted ma = PM__MEMBER_ADMITTED__INIT;
        ma.node_id.data = (uint8_t *)pm_identity_public(a[i].id);
        ma.node_id.len = PM_ID_BYTES;
        ma.name = "site";
        ma.endpoint = "tcp://127.0.0.1:9";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
        b.member_admitted = &ma;
        emit(&a[0], &b);
    }
    double t0 = now();
    for (size_t i = 0; written < n; i++) {
        size_t study = i / 3;
        int kind = (int)(i % 3);
        /* Announced by the study's site; claimed and reported at another site. */
        author *by = kind == 0 ? &a[study % sites] : &a[(study + 1) % sites];
        study_event(by, study, kind);
    }
    uint8_t hash[PM_HASH_BYTES];
    pm_hasher_final(&hasher, hash);
    DIE_IF(fputc('Z', out) == EOF || fwrite(hash, 1, sizeof hash, out) != sizeof hash);
    DIE_IF(fclose(out) != 0);
    fprintf(stderr, "gen_audit: %llu events (%d sites) in %.1f s -> %s\n",
            (unsigned long long)written, sites, now() - t0, argv[2]);
    pm_event_destroy(&genesis);
    for (int i = 0; i < sites; i++)
        pm_identity_destroy(&a[i].id);
    printf("raw_verify_per_s %.0f\n", raw_verify_rate());
    return 0;
}
