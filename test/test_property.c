/* Property test of docs/design.md invariant 2: views are a pure function of the set of
 * events. A random history is generated on several nodes' stores (genesis with
 * quorum 2, admissions that need two approvals, a revocation, announcements with
 * series and instances, claims, releases, reports, verifications, accesses, and
 * events of a node never admitted), with nodes syncing from each other at random so
 * that Lamport clocks interleave and claims race. Then the whole set of events is
 * ingested into many fresh stores, each in its own random order: shuffle, ingest in
 * small batches, retry what was refused for a gap on the next pass, until a pass
 * accepts nothing more. Every store must end with the same digest and event count.
 *
 * PM_PROPERTY_SEED=<n> replays one seed; PM_PROPERTY_ORDERS=<n> changes the number
 * of orders (default 24). */
#include "test/check.h"

#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"

#include <sodium.h>
#include <sys/time.h>
#include <time.h>

enum { NODES = 6, FOUNDER = 0, REVOKED = 4, OUTSIDER = 5, STEPS = 420, MAX_STUDIES = 64 };

static char *tmp;
static uint64_t seed;

/* splitmix64: small, seedable, good enough to shuffle. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static unsigned below(unsigned n)
{
    return (unsigned)(rnd() % n);
}

#define PCHECK(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "test_property: seed %llu (PM_PROPERTY_SEED=%llu replays)\n",          \
                    (unsigned long long)seed, (unsigned long long)seed);                           \
            CHECK(cond);                                                                           \
        }                                                                                          \
    } while (0)

typedef struct {
    pm_identity *id;
    pm_store *store;
} node;

static node nodes[NODES];
static char study_uids[MAX_STUDIES][48];
static int n_studies;
static const char *reporters[] = {"dr.ahmed", "dr.baker", "dr.chen", "dr.diaz"};

static pm_store *open_scratch(const char *name, int i)
{
    char sub[64];
    snprintf(sub, sizeof sub, "%s-%d", name, i);
    char *dir = check_path(tmp, sub);
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 30, &s));
    pm_store_set_nosync(s); /* scratch stores: durability is test_crash's business */
    free(dir);
    return s;
}

static uint64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- the event set -------------------------------------------------------------- */

typedef struct {
    uint8_t *raw;
    size_t len;
} blob;

typedef struct {
    blob *b;
    size_t n, cap;
} blob_list;

static void blob_push(blob_list *l, const uint8_t *raw, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->b = realloc(l->b, l->cap * sizeof *l->b);
        CHECK(l->b);
    }
    l->b[l->n].raw = malloc(len);
    CHECK(l->b[l->n].raw);
    memcpy(l->b[l->n].raw, raw, len);
    l->b[l->n++].len = len;
}

static void blob_list_free(blob_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->b[i].raw);
    free(l->b);
    memset(l, 0, sizeof *l);
}

static int collect(void *ctx, const uint8_t *raw, size_t len)
{
    blob_push(ctx, raw, len);
    return 0;
}

/* Pulls everything src holds into dst, oldest first (one batch). Refusals are
 * expected here: events of the revoked node, and what follows them. */
static void sync_from(pm_store *dst, pm_store *src)
{
    blob_list l = {0};
    CHECK_RC(pm_feed_for_each(src, collect, &l));
    const uint8_t **raws = malloc((l.n + 1) * sizeof *raws);
    size_t *lens = malloc((l.n + 1) * sizeof *lens);
    int *results = malloc((l.n + 1) * sizeof *results);
    CHECK(raws && lens && results);
    for (size_t i = 0; i < l.n; i++) {
        raws[i] = l.b[i].raw;
        lens[i] = l.b[i].len;
    }
    CHECK_RC(pm_feed_ingest_batch(dst, raws, lens, l.n, results));
    for (size_t i = 0; i < l.n; i++)
        PCHECK(results[i] == PM_OK || results[i] == PM_ALREADY_HELD || results[i] == PM_E_REVOKED ||
               results[i] == PM_E_GAP);
    free(raws);
    free(lens);
    free(results);
    blob_list_free(&l);
}

/* ---- generating a history --------------------------------------------------------- */

static int append(node *n, Pm__EventBody *b)
{
    int rc = pm_feed_append(n->store, n->id, b, NULL);
    /* A revoked node that has heard of its revocation cannot append any more. */
    PCHECK(rc == PM_OK || rc == PM_E_REVOKED);
    return rc;
}

static void member_event(node *n, int who, int admit)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__MemberAdmitted a = PM__MEMBER_ADMITTED__INIT;
    Pm__MemberRevoked r = PM__MEMBER_REVOKED__INIT;
    ProtobufCBinaryData id = {PM_ID_BYTES, (uint8_t *)pm_identity_public(nodes[who].id)};
    if (admit) {
        a.node_id = id;
        a.name = "node";
        a.endpoint = "tcp://127.0.0.1:1";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
        b.member_admitted = &a;
    } else {
        r.node_id = id;
        r.reason = "lost laptop";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED;
        b.member_revoked = &r;
    }
    append(n, &b);
}

static void announce(node *n)
{
    int k;
    if (n_studies < MAX_STUDIES && (n_studies == 0 || below(3) == 0)) {
        k = n_studies++;
        snprintf(study_uids[k], sizeof study_uids[k], "1.2.826.0.1.3680043.9.%llu.%d",
                 (unsigned long long)(seed % 100000), k);
    } else {
        k = (int)below((unsigned)n_studies); /* a re-announcement, possibly by another node */
    }
    Pm__Series series[3], *sp[3];
    Pm__Instance inst[3][4], *ip[3][4];
    char sop[3][4][64], ser[3][64];
    uint8_t h[3][4][PM_HASH_BYTES];
    unsigned ns = 1 + below(3);
    for (unsigned i = 0; i < ns; i++) {
        pm__series__init(&series[i]);
        snprintf(ser[i], sizeof ser[i], "%s.%u", study_uids[k], i + 1);
        series[i].series_instance_uid = ser[i];
        series[i].modality = i ? "MR" : "CT";
        series[i].series_number = (int)i + 1;
        unsigned ni = 1 + below(4);
        for (unsigned j = 0; j < ni; j++) {
            pm__instance__init(&inst[i][j]);
            snprintf(sop[i][j], sizeof sop[i][j], "%s.%u", ser[i], j + 1);
            pm_hash(sop[i][j], strlen(sop[i][j]), h[i][j]);
            inst[i][j].sop_instance_uid = sop[i][j];
            inst[i][j].instance_number = (int)j + 1;
            inst[i][j].size = 1000 + below(100000);
            inst[i][j].hash.data = h[i][j];
            inst[i][j].hash.len = PM_HASH_BYTES;
            ip[i][j] = &inst[i][j];
        }
        series[i].n_instances = ni;
        series[i].instances = ip[i];
        sp[i] = &series[i];
    }
    Pm__WorklistTerms terms = PM__WORKLIST_TERMS__INIT;
    terms.priority = below(2) ? "routine" : "urgent";
    terms.due_ms = now_ms() + 3600000;
    terms.double_read = below(4) == 0;
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    char pid[16];
    snprintf(pid, sizeof pid, "P%d", k % 7);
    a.study_instance_uid = study_uids[k];
    a.patient_id = pid;
    a.patient_name = "TEST^PATIENT";
    a.n_series = ns;
    a.series = sp;
    a.terms = &terms;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    append(n, &b);
}

static void worklist_event(node *n)
{
    if (!n_studies)
        return;
    char *uid = study_uids[below((unsigned)n_studies)];
    char *reporter = (char *)reporters[below(4)];
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
    Pm__ItemReleased r = PM__ITEM_RELEASED__INIT;
    Pm__ReportSubmitted rs = PM__REPORT_SUBMITTED__INIT;
    Pm__ReportVerified rv = PM__REPORT_VERIFIED__INIT;
    Pm__StudyAccessed ac = PM__STUDY_ACCESSED__INIT;
    ProtobufCBinaryData served[2];
    switch (below(6)) {
    case 0:
    case 1:
        c.study_instance_uid = uid;
        c.reporter = reporter;
        c.lease_until_ms = now_ms() + below(4); /* some leases lapse between events */
        b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
        b.item_claimed = &c;
        break;
    case 2:
        r.study_instance_uid = uid;
        r.reporter = reporter;
        b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED;
        b.item_released = &r;
        break;
    case 3:
        rs.study_instance_uid = uid;
        rs.reporter = reporter;
        rs.text = below(2) ? "Normal study." : "Small left pleural effusion.";
        b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
        b.report_submitted = &rs;
        break;
    case 4:
        rv.study_instance_uid = uid;
        rv.reporter = reporter;
        b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
        b.report_verified = &rv;
        break;
    default:
        ac.study_instance_uid = uid;
        ac.reporter = "VIEWER";
        for (int i = 0; i < 2; i++) {
            served[i].len = PM_ID_BYTES;
            served[i].data = (uint8_t *)pm_identity_public(nodes[below(NODES)].id);
        }
        ac.n_served_by = 1 + below(2);
        ac.served_by = served;
        ac.bytes = below(1u << 30);
        b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED;
        b.study_accessed = &ac;
        break;
    }
    append(n, &b);
}

/* Generates the history; returns every event produced, each from its author's own
 * store (which always holds its whole feed). */
static void generate(blob_list *all)
{
    for (int i = 0; i < NODES; i++) {
        CHECK_RC(pm_identity_generate(&nodes[i].id));
        nodes[i].store = open_scratch("gen", i);
    }
    node *f = &nodes[FOUNDER];
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "property";
    g.quorum = 2;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(f->store, f->id, &b, NULL));
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(f->store, mesh));
    for (int i = 1; i < NODES; i++) {
        CHECK_RC(pm_store_set_mesh_id(nodes[i].store, mesh));
        sync_from(nodes[i].store, f->store);
    }
    /* Node 1 is admitted by the founder alone (one member: the quorum in effect is 1);
     * nodes 2..4 need two approvals each, node 5 is never admitted. */
    member_event(f, 1, 1);
    sync_from(nodes[1].store, f->store);
    int revoked = 0;
    for (int step = 0; step < STEPS; step++) {
        node *n = &nodes[below(NODES)];
        unsigned what = below(100);
        if (step == STEPS / 10) {
            for (int who = 2; who <= 4; who++) {
                member_event(f, who, 1);
                sync_from(nodes[1].store, f->store);
                member_event(&nodes[1], who, 1);
                sync_from(f->store, nodes[1].store);
            }
        } else if (!revoked && step > STEPS / 2) {
            /* Two members approve the revocation of node 4, on different stores.
             * Node 4 had synced with the founder just before, so the events it
             * goes on writing (not having heard of its revocation) have Lamport
             * clocks on both sides of the revocation: some stand, some must be
             * refused, whatever order they arrive in. */
            sync_from(nodes[REVOKED].store, f->store);
            member_event(f, REVOKED, 0);
            sync_from(nodes[2].store, f->store);
            member_event(&nodes[2], REVOKED, 0);
            for (int i = 0; i < 4; i++)
                worklist_event(&nodes[REVOKED]);
            revoked = 1;
        } else if (what < 25) {
            sync_from(n->store, nodes[below(NODES)].store);
        } else if (what < 40) {
            announce(n);
        } else if (what < 42) {
            member_event(n, 1 + below(NODES - 1), 1); /* a late or redundant approval */
        } else {
            worklist_event(n);
        }
    }
    for (int i = 0; i < NODES; i++)
        CHECK_RC(pm_feed_read(nodes[i].store, pm_identity_public(nodes[i].id), 1, SIZE_MAX,
                              SIZE_MAX, collect, all));
}

/* ---- replaying it in random orders ------------------------------------------------ */

static void replay(const blob_list *all, int order, uint64_t *events, char digest[PM_HASH_HEX])
{
    pm_store *s = open_scratch("order", order);
    uint8_t mesh[PM_HASH_BYTES];
    CHECK_RC(pm_store_mesh_id(nodes[FOUNDER].store, mesh));
    CHECK_RC(pm_store_set_mesh_id(s, mesh));
    size_t n = all->n;
    size_t *pending = malloc(n * sizeof *pending);
    const uint8_t **raws = malloc(n * sizeof *raws);
    size_t *lens = malloc(n * sizeof *lens);
    int *results = malloc(n * sizeof *results);
    CHECK(pending && raws && lens && results);
    for (size_t i = 0; i < n; i++)
        pending[i] = i;
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = below((unsigned)i), t = pending[i - 1];
        pending[i - 1] = pending[j];
        pending[j] = t;
    }
    size_t left = n;
    for (int pass = 0; left; pass++) {
        PCHECK(pass < 1000);
        size_t kept = 0, accepted = 0;
        /* Small batches of random size: arrival in any grouping as well as any order. */
        for (size_t at = 0; at < left;) {
            size_t m = 1 + below(8);
            if (m > left - at)
                m = left - at;
            for (size_t i = 0; i < m; i++) {
                raws[i] = all->b[pending[at + i]].raw;
                lens[i] = all->b[pending[at + i]].len;
            }
            CHECK_RC(pm_feed_ingest_batch(s, raws, lens, m, results));
            for (size_t i = 0; i < m; i++) {
                int r = results[i];
                PCHECK(r == PM_OK || r == PM_E_GAP || r == PM_E_REVOKED);
                if (r == PM_OK)
                    accepted++;
                else if (r == PM_E_GAP) /* retried on the next pass */
                    pending[kept++] = pending[at + i];
            }
            at += m;
        }
        if (!accepted)
            break; /* the rest follows a refused (revoked) event: never acceptable */
        left = kept;
    }
    CHECK_RC(pm_store_count_events(s, events));
    CHECK_RC(pm_store_digest(s, digest));
    free(pending);
    free(raws);
    free(lens);
    free(results);
    pm_store_close(&s);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("PM_PROPERTY_SEED");
    seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) << 20 ^ (uint64_t)getpid());
    rng_state = seed;
    env = getenv("PM_PROPERTY_ORDERS");
    int orders = env ? atoi(env) : 24;
    printf("test_property: seed %llu\n", (unsigned long long)seed);
    tmp = check_tmpdir("property");

    blob_list all = {0};
    generate(&all);
    printf("test_property: %zu events from %d nodes, %d studies\n", all.n, NODES, n_studies);
    PCHECK(all.n >= 200);

    uint64_t ref_events = 0, events;
    char ref[PM_HASH_HEX], digest[PM_HASH_HEX];
    for (int o = 0; o < orders; o++) {
        replay(&all, o, &events, digest);
        if (o == 0) {
            ref_events = events;
            memcpy(ref, digest, sizeof ref);
            PCHECK(events > all.n / 2);
            continue;
        }
        if (events != ref_events || strcmp(digest, ref) != 0)
            fprintf(stderr, "order %d: %llu events, digest %s; order 0: %llu events, %s\n", o,
                    (unsigned long long)events, digest, (unsigned long long)ref_events, ref);
        PCHECK(strcmp(digest, ref) == 0);
        PCHECK(events == ref_events);
    }
    /* The generating stores, once fully synced with each other, agree too. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < NODES; i++)
            for (int j = 0; j < NODES; j++)
                if (i != j)
                    sync_from(nodes[i].store, nodes[j].store);
    for (int i = 0; i < NODES; i++) {
        CHECK_RC(pm_store_digest(nodes[i].store, digest));
        PCHECK(strcmp(digest, ref) == 0);
    }
    printf("test_property: %d orders converged on %llu events, digest %.16s...\n", orders,
           (unsigned long long)ref_events, ref);
    for (int i = 0; i < NODES; i++) {
        pm_store_close(&nodes[i].store);
        pm_identity_destroy(&nodes[i].id);
    }
    blob_list_free(&all);
    check_tmpdir_remove(&tmp);
    return 0;
}
