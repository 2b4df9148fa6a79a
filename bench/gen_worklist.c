/* Fills a real node directory (made by `pacsmesh init` and `genesis`) with a generated
 * mesh history for the worklist benchmark (issue 5):
 *
 *   bench/gen_worklist [-s SITES] [-b BATCH] [-A] [-r SEED] DIR STUDIES
 *
 * The node (DIR/identity.key) is site 0. SITES-1 (default 9) further site identities
 * are generated and admitted by the node (MemberAdmitted events it signs and appends
 * to its own feed: the genesis quorum must be 1). Then, per study, its site (round
 * robin) announces it (one series, one instance with a 32-byte hash and a size, and
 * WorklistTerms: priority, subspecialty, due_ms from the acquisition time and the
 * default due durations, sometimes double_read); and, as a reporting workflow would
 * have it by now, a reporter at some site claims it, reports it and, for double reads,
 * another verifies it. Acquisition times are spread over the last 60 days and
 * turnaround times per priority, so that some items are reported, some are open,
 * some claims have expired, and some open items are overdue. -A: announcements only.
 *
 * Every event is a real signed envelope, built by its author with the author's own
 * sequence, chain and a Lamport clock above every event before it, and handed to
 * the node's store with pm_feed_ingest_batch (full checks: mesh, chain, signature,
 * membership; one durable transaction per batch), which is what gossip does with a
 * peer's events. The node's store therefore ends up exactly as if gossip had
 * delivered them. A producer thread signs while the main thread ingests.
 *
 * Prints progress and, last, "studies S events E seconds T events_per_s R". */
#include "bench/bench_common.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/store.h"
#include "store/views.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { MAX_SITES = 64, QUEUE_DEPTH = 4 };

#define MIN_MS 60000ull
#define HOUR_MS 3600000ull
#define DAY_MS (24 * HOUR_MS)

typedef struct {
    pm_identity *id;
    uint64_t seq;
    uint8_t head[PM_HASH_BYTES];
} author;

/* A batch of built events, handed from the producer to the ingesting thread. */
typedef struct {
    pm_event **evs;
    size_t n;
} batch;

static struct {
    author a[MAX_SITES];
    int sites;
    size_t studies, batch_size;
    int announce_only;
    uint64_t lamport, now, rng;
    uint8_t mesh[PM_HASH_BYTES];
    batch cur;
    /* the queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch q[QUEUE_DEPTH];
    size_t qhead, qlen;
    int done;
    /* counts, by the producer */
    size_t n_announced, n_claims, n_reports, n_verifies;
} g = {.sites = 10, .batch_size = 2000, .rng = 0x9E3779B97F4A7C15ull};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static uint64_t rnd(void) /* xorshift64*: deterministic for a given seed */
{
    g.rng ^= g.rng >> 12;
    g.rng ^= g.rng << 25;
    g.rng ^= g.rng >> 27;
    return g.rng * 2685821657736338717ull;
}

static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static uint64_t between(uint64_t lo, uint64_t hi)
{
    return lo + (uint64_t)(unif() * (double)(hi - lo));
}

/* ---- the producer -------------------------------------------------------------- */

static void push_batch(void)
{
    pthread_mutex_lock(&g.mu);
    while (g.qlen == QUEUE_DEPTH)
        pthread_cond_wait(&g.cv, &g.mu);
    g.q[(g.qhead + g.qlen++) % QUEUE_DEPTH] = g.cur;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    g.cur.evs = calloc(g.batch_size, sizeof *g.cur.evs);
    DIE_IF(!g.cur.evs);
    g.cur.n = 0;
}

/* Fills in the author's feed fields, signs, and queues the event. */
static void emit(author *a, Pm__EventBody *b, uint64_t when_ms)
{
    static const uint8_t zeros[PM_HASH_BYTES];
    b->origin.data = (uint8_t *)pm_identity_public(a->id);
    b->origin.len = PM_ID_BYTES;
    b->seq = ++a->seq;
    b->prev.data = a->seq == 1 ? (uint8_t *)zeros : a->head;
    b->prev.len = PM_HASH_BYTES;
    b->lamport = ++g.lamport;
    b->wall_ms = when_ms;
    b->mesh.data = g.mesh;
    b->mesh.len = PM_HASH_BYTES;
    pm_event *ev = NULL;
    DIE_IF(pm_event_build(a->id, b, &ev) != PM_OK);
    memcpy(a->head, ev->hash, PM_HASH_BYTES);
    g.cur.evs[g.cur.n++] = ev;
    if (g.cur.n == g.batch_size)
        push_batch();
}

typedef struct {
    const char *name, *modality, *body_part, *description;
    unsigned weight; /* percent */
} subspecialty;

static const subspecialty subspecialties[] = {
    {"neuro", "MR", "HEAD", "MR BRAIN WITH CONTRAST", 10},
    {"neuro", "CT", "HEAD", "CT HEAD NON-CONTRAST", 10},
    {"chest", "CT", "CHEST", "CT CHEST PE PROTOCOL", 12},
    {"chest", "CR", "CHEST", "XR CHEST PA", 13},
    {"msk", "MR", "KNEE", "MR KNEE LEFT", 10},
    {"msk", "CR", "HAND", "XR HAND RIGHT", 10},
    {"abdo", "CT", "ABDOMEN", "CT ABDOMEN PELVIS", 15},
    {"abdo", "US", "ABDOMEN", "US ABDOMEN", 5},
    {"breast", "MG", "BREAST", "MAMMOGRAPHY SCREENING", 5},
    {"paeds", "CR", "CHEST", "XR CHEST PAEDIATRIC", 5},
    {"cardiac", "MR", "HEART", "MR CARDIAC FUNCTION", 5},
};

static const subspecialty *pick_subspecialty(void)
{
    unsigned r = (unsigned)(rnd() % 100), acc = 0;
    for (size_t i = 0; i < sizeof subspecialties / sizeof *subspecialties; i++)
        if (r < (acc += subspecialties[i].weight))
            return &subspecialties[i];
    return &subspecialties[0];
}

/* Patient names from lists, a function of the patient id so that every study of one
 * patient names them alike: surname prefixes (a reporter types "SMI") then select a
 * realistic share of the studies. */
static const char *const surnames[] = {
    "SMITH",    "JONES",    "TAYLOR",   "BROWN",  "WILLIAMS",   "WILSON",   "JOHNSON",
    "DAVIES",   "PATEL",    "ROBINSON", "WRIGHT", "THOMPSON",   "EVANS",    "WALKER",
    "WHITE",    "ROBERTS",  "GREEN",    "HALL",   "WOOD",       "JACKSON",  "CLARKE",
    "KHAN",     "LEWIS",    "HARRIS",   "MARTIN", "COOPER",     "KING",     "LEE",
    "BAKER",    "HARRISON", "MORGAN",   "ALLEN",  "JAMES",      "SCOTT",    "PHILLIPS",
    "WATSON",   "DAVIS",    "PARKER",   "PRICE",  "BENNETT",    "YOUNG",    "GRIFFITHS",
    "MITCHELL", "KELLY",    "COOK",     "CARTER", "RICHARDSON", "BAILEY",   "COLLINS",
    "BELL",     "SHAW",     "MURPHY",   "MILLER", "COX",        "RICHARDS", "KHALID",
    "MARSHALL", "ANDERSON", "SIMPSON",  "ELLIS",  "ADAMS",      "SINGH",    "BEGUM",
    "WARD"};
static const char *const given[] = {"OLIVER",  "AMELIA", "GEORGE",   "ISLA",  "HARRY",  "AVA",
                                    "NOAH",    "MIA",    "JACK",     "IVY",   "LEO",    "LILY",
                                    "ARTHUR",  "ROSIE",  "MUHAMMAD", "GRACE", "OSCAR",  "FREYA",
                                    "CHARLIE", "EMILY",  "JACOB",    "ELLA",  "THOMAS", "SOPHIA"};

static void patient_name(unsigned long long patient, char *out, size_t len)
{
    size_t ns = sizeof surnames / sizeof *surnames, ng = sizeof given / sizeof *given;
    snprintf(out, len, "%s^%s", surnames[patient % ns], given[(patient / ns) % ng]);
}

/* One study: its announcement and whatever its reporting workflow has done by now. */
static void study(size_t i)
{
    int site = (int)(i % (size_t)g.sites);
    author *origin = &g.a[site];
    char uid[64], series_uid[72], sop[80], pid[24], accession[24], reporter[32], reader2[32];
    snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.8.498.%d.%zu", site, i);
    snprintf(series_uid, sizeof series_uid, "%s.1", uid);
    snprintf(sop, sizeof sop, "%s.1.1", uid);
    unsigned long long patient = (unsigned long long)(rnd() % 4000000);
    char name[64];
    snprintf(pid, sizeof pid, "S%02dP%07llu", site, patient);
    patient_name(patient * 16 + (unsigned long long)site, name, sizeof name);
    snprintf(accession, sizeof accession, "ACC%010zu", i);
    const subspecialty *sub = pick_subspecialty();
    unsigned pr = (unsigned)(rnd() % 100);
    const char *priority = pr < 8 ? "immediate" : pr < 33 ? "urgent" : "routine";
    uint64_t due_after = pr < 8 ? HOUR_MS : pr < 33 ? DAY_MS : 28 * DAY_MS; /* the defaults */
    /* Acquired within the last 60 days, oldest first (studies arrive in time order). */
    uint64_t span = 60 * DAY_MS;
    uint64_t acquired = g.now - span + (uint64_t)((double)span * (double)i / (double)g.studies) +
                        between(0, 10 * MIN_MS);
    if (acquired > g.now - MIN_MS)
        acquired = g.now - MIN_MS;
    int double_read = rnd() % 100 < (strcmp(sub->name, "breast") == 0 ? 90 : 8);

    uint8_t hash[PM_HASH_BYTES];
    pm_hash(sop, strlen(sop), hash);
    Pm__Instance in = PM__INSTANCE__INIT, *inp = &in;
    in.sop_instance_uid = sop;
    in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    in.instance_number = 1;
    in.size = between(200000, 50000000);
    in.hash.data = hash;
    in.hash.len = PM_HASH_BYTES;
    in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    Pm__Series se = PM__SERIES__INIT, *sep = &se;
    se.series_instance_uid = series_uid;
    se.modality = (char *)sub->modality;
    se.series_number = 1;
    se.description = (char *)sub->description;
    se.body_part = (char *)sub->body_part;
    se.n_instances = 1;
    se.instances = &inp;
    Pm__WorklistTerms t = PM__WORKLIST_TERMS__INIT;
    t.priority = (char *)priority;
    t.subspecialty = (char *)sub->name;
    t.due_ms = acquired + due_after;
    t.double_read = double_read;
    Pm__StudyAnnounced sa = PM__STUDY_ANNOUNCED__INIT;
    sa.study_instance_uid = uid;
    sa.patient_id = pid;
    sa.patient_name = name;
    sa.patient_sex = rnd() & 1 ? "F" : "M";
    sa.study_description = (char *)sub->description;
    sa.accession_number = accession;
    sa.n_series = 1;
    sa.series = &sep;
    sa.terms = &t;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &sa;
    emit(origin, &b, acquired);
    g.n_announced++;
    if (g.announce_only)
        return;

    /* Turnaround to the first report for this priority; 8% are never picked up. */
    uint64_t tat = pr < 8    ? between(10 * MIN_MS, 3 * HOUR_MS)
                   : pr < 33 ? between(HOUR_MS, 36 * HOUR_MS)
                             : between(2 * HOUR_MS, 12 * DAY_MS);
    int abandoned = rnd() % 100 < 8;
    int rsite = (int)(rnd() % (size_t)g.sites);
    snprintf(reporter, sizeof reporter, "dr.s%02d.%02u", rsite, (unsigned)(rnd() % 40));
    uint64_t reported = acquired + tat;
    uint64_t claimed = acquired + tat / 2;
    Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
    c.study_instance_uid = uid;
    c.reporter = reporter;
    Pm__EventBody cb = PM__EVENT_BODY__INIT;
    cb.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    cb.item_claimed = &c;
    if (!abandoned && reported < g.now - MIN_MS) {
        c.lease_until_ms = claimed + 4 * HOUR_MS;
        emit(&g.a[rsite], &cb, claimed);
        g.n_claims++;
        Pm__ReportSubmitted r = PM__REPORT_SUBMITTED__INIT;
        r.study_instance_uid = uid;
        r.reporter = reporter;
        r.text = "FINDINGS: No acute abnormality. IMPRESSION: Normal study for age.";
        Pm__EventBody rb = PM__EVENT_BODY__INIT;
        rb.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
        rb.report_submitted = &r;
        emit(&g.a[rsite], &rb, reported);
        g.n_reports++;
        uint64_t verified = reported + between(10 * MIN_MS, 8 * HOUR_MS);
        if (double_read && verified < g.now && rnd() % 100 < 75) {
            int vsite = (int)(rnd() % (size_t)g.sites);
            snprintf(reader2, sizeof reader2, "dr.s%02d.%02u", vsite, 40 + (unsigned)(rnd() % 10));
            Pm__ReportVerified v = PM__REPORT_VERIFIED__INIT;
            v.study_instance_uid = uid;
            v.reporter = reader2;
            Pm__EventBody vb = PM__EVENT_BODY__INIT;
            vb.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
            vb.report_verified = &v;
            emit(&g.a[vsite], &vb, verified);
            g.n_verifies++;
        }
    } else if (rnd() % 100 < 40) {
        /* Open and claimed in the last 8 hours: about half the leases (4 h) still hold. */
        claimed = g.now - between(MIN_MS, 8 * HOUR_MS);
        if (claimed < acquired)
            claimed = acquired;
        c.lease_until_ms = claimed + 4 * HOUR_MS;
        emit(&g.a[rsite], &cb, claimed);
        g.n_claims++;
    }
}

static void *producer(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < g.studies; i++)
        study(i);
    if (g.cur.n)
        push_batch();
    pthread_mutex_lock(&g.mu);
    g.done = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

/* ---- setup and the ingesting thread -------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: gen_worklist [-s SITES] [-b BATCH] [-A] [-r SEED] DIR STUDIES\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "s:b:Ar:")) != -1) {
        switch (opt) {
        case 's': g.sites = atoi(optarg); break;
        case 'b': g.batch_size = strtoul(optarg, NULL, 10); break;
        case 'A': g.announce_only = 1; break;
        case 'r': g.rng = strtoull(optarg, NULL, 10) | 1; break;
        default: usage();
        }
    }
    if (argc - optind != 2)
        usage();
    const char *dir = argv[optind];
    g.studies = strtoul(argv[optind + 1], NULL, 10);
    DIE_IF(g.sites < 1 || g.sites > MAX_SITES || g.batch_size < 1 || g.studies < 1);
    DIE_IF(sodium_init() < 0);
    pm_log_set_level(PM_LOG_WARN);

    char path[4096];
    snprintf(path, sizeof path, "%s/identity.key", dir);
    pm_identity *node_id = NULL;
    DIE_IF(pm_identity_load(path, &node_id) != PM_OK);
    snprintf(path, sizeof path, "%s/store", dir);
    pm_store *store = NULL;
    DIE_IF(pm_store_open(path, 0, &store) != PM_OK);
    if (pm_store_mesh_id(store, g.mesh) != PM_OK) {
        fprintf(stderr, "gen_worklist: %s has no mesh: run `pacsmesh genesis` first\n", dir);
        return 1;
    }
    if (!pm_views_is_member(store, pm_identity_public(node_id))) {
        fprintf(stderr, "gen_worklist: the node in %s is not a member of its mesh\n", dir);
        return 1;
    }

    /* Sites 1..SITES-1: fresh identities, admitted by the node. */
    g.a[0].id = node_id;
    for (int i = 1; i < g.sites; i++) {
        DIE_IF(pm_identity_generate(&g.a[i].id) != PM_OK);
        char name[32];
        snprintf(name, sizeof name, "site%02d", i);
        Pm__MemberAdmitted ma = PM__MEMBER_ADMITTED__INIT;
        ma.node_id.data = (uint8_t *)pm_identity_public(g.a[i].id);
        ma.node_id.len = PM_ID_BYTES;
        ma.name = name;
        ma.endpoint = "tcp://127.0.0.1:9"; /* never runs: loopback discard port */
        Pm__EventBody b = PM__EVENT_BODY__INIT;
        b.payload_case = PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED;
        b.member_admitted = &ma;
        DIE_IF(pm_feed_append(store, node_id, &b, NULL) != PM_OK);
        if (!pm_views_is_member(store, pm_identity_public(g.a[i].id))) {
            fprintf(stderr,
                    "gen_worklist: site %d is not a member after one approval: the "
                    "mesh quorum must be 1\n",
                    i);
            return 1;
        }
    }
    /* The node's own feed continues from its head; the Lamport clock from the
     * highest held. */
    pm_head *heads = NULL;
    size_t nheads = 0;
    DIE_IF(pm_feed_heads(store, &heads, &nheads) != PM_OK);
    for (size_t i = 0; i < nheads; i++) {
        if (heads[i].lamport > g.lamport)
            g.lamport = heads[i].lamport;
        if (memcmp(heads[i].origin, pm_identity_public(node_id), PM_ID_BYTES) == 0) {
            g.a[0].seq = heads[i].seq;
            memcpy(g.a[0].head, heads[i].hash, PM_HASH_BYTES);
        }
    }
    free(heads);
    uint64_t events_before = 0;
    DIE_IF(pm_store_count_events(store, &events_before) != PM_OK);

    g.now = wall_ms();
    g.cur.evs = calloc(g.batch_size, sizeof *g.cur.evs);
    DIE_IF(!g.cur.evs);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    pthread_t th;
    DIE_IF(pthread_create(&th, NULL, producer, NULL) != 0);

    fprintf(stderr, "gen_worklist: %zu studies, %d sites, batches of %zu, into %s\n", g.studies,
            g.sites, g.batch_size, dir);
    double t0 = mono(), last = t0, ingest_s = 0;
    size_t events = 0, step = 0;
    int *results = calloc(g.batch_size, sizeof *results);
    const uint8_t **bytes = calloc(g.batch_size, sizeof *bytes);
    size_t *lens = calloc(g.batch_size, sizeof *lens);
    DIE_IF(!results || !bytes || !lens);
    for (;;) {
        pthread_mutex_lock(&g.mu);
        while (!g.qlen && !g.done)
            pthread_cond_wait(&g.cv, &g.mu);
        if (!g.qlen && g.done) {
            pthread_mutex_unlock(&g.mu);
            break;
        }
        batch bt = g.q[g.qhead];
        g.qhead = (g.qhead + 1) % QUEUE_DEPTH;
        g.qlen--;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);

        for (size_t i = 0; i < bt.n; i++) {
            bytes[i] = bt.evs[i]->raw;
            lens[i] = bt.evs[i]->raw_len;
        }
        double ti = mono();
        int rc = pm_feed_ingest_batch(store, bytes, lens, bt.n, results);
        ingest_s += mono() - ti;
        if (rc != PM_OK) {
            fprintf(stderr, "gen_worklist: ingest failed: %s\n", pm_strerror(rc));
            return 1;
        }
        for (size_t i = 0; i < bt.n; i++) {
            if (results[i] != PM_OK) {
                fprintf(stderr, "gen_worklist: event %zu of a batch refused: %s\n", i,
                        pm_strerror(results[i]));
                return 1;
            }
            pm_event_destroy(&bt.evs[i]);
        }
        free(bt.evs);
        events += bt.n;
        double t = mono();
        if (t - last >= 10.0 || events / 200000 != step) {
            step = events / 200000;
            fprintf(stderr, "gen_worklist: %zu events (%zu studies) in %.1f s: %.0f events/s\n",
                    events, g.n_announced, t - t0, events / (t - t0));
            last = t;
        }
    }
    pthread_join(th, NULL);
    double secs = mono() - t0;
    uint64_t events_after = 0;
    DIE_IF(pm_store_count_events(store, &events_after) != PM_OK);
    DIE_IF(events_after != events_before + events);
    fprintf(stderr,
            "gen_worklist: done: %zu studies, %zu claims, %zu reports, %zu verifications; "
            "%zu events in %.1f s (%.0f events/s, %.0f studies/s; %.1f s of it in "
            "pm_feed_ingest_batch); store holds %llu events\n",
            g.studies, g.n_claims, g.n_reports, g.n_verifies, events, secs, events / secs,
            g.studies / secs, ingest_s, (unsigned long long)events_after);
    printf("studies %zu events %zu seconds %.1f events_per_s %.0f\n", g.studies, events, secs,
           events / secs);
    free(results);
    free(bytes);
    free(lens);
    free(g.cur.evs);
    pm_store_close(&store);
    for (int i = 0; i < g.sites; i++)
        pm_identity_destroy(&g.a[i].id);
    return 0;
}
