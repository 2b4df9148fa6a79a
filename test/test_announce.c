/* Unit test of announcing (node/studies/announce.c) and of the union the views take
 * (store/study_union.c), over a real store, with instance records written as ingest.c
 * writes them (ingest_internal.h) so that a study of 100,000 instances takes seconds:
 * - a study of 100,000 instances in three series is announced in several events, each
 *   within the event limit, and its view lists every instance once, in instance order;
 * - what grows later is announced alone: the next event lists only the new instances;
 * - a study announced one instance at a time costs a log that grows linearly (each
 *   event about the same size), and its view equals that of the study announced at once;
 * - a store written before pending marks (a mark, records, no pending marks) still
 *   announces everything it holds;
 * - a store whose views an older fold derived has them derived again when opened. */
#include "test/check.h"

#include "node/config/config.h"
#include "node/studies/ingest.h"
#include "node/studies/ingest_internal.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/views.h"

#include <lmdb.h>
#include <sodium.h>

static void genesis(pm_store *s, const pm_identity *id)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "announce-mesh";
    g.quorum = 1;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(s, id, &b, NULL));
}

/* The record ingest.c keeps of instance `number` of study: instance numbers are
 * scrambled so the order of arrival is not the order of the view. */
static uint8_t *record(const char *study, unsigned number, size_t *len, char *sop, size_t soplen)
{
    snprintf(sop, soplen, "1.2.9.0.%u", number); /* the same in every study */
    uint8_t hash[32];
    crypto_generichash(hash, sizeof hash, (const uint8_t *)sop, strlen(sop), NULL, 0);
    char series_uid[80];
    snprintf(series_uid, sizeof series_uid, "1.2.9.0.0.%u", number % 3);
    Pm__Instance in = PM__INSTANCE__INIT;
    in.sop_instance_uid = sop;
    in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    in.instance_number = (int32_t)number;
    in.size = 1000 + number;
    in.hash.data = hash;
    in.hash.len = sizeof hash;
    Pm__Instance *ins[1] = {&in};
    Pm__Series se = PM__SERIES__INIT;
    se.series_instance_uid = series_uid;
    se.modality = "CT";
    se.series_number = (int32_t)(number % 3);
    se.instances = ins;
    se.n_instances = 1;
    Pm__Series *ses[1] = {&se};
    Pm__StudyAnnounced st = PM__STUDY_ANNOUNCED__INIT;
    st.study_instance_uid = (char *)study;
    st.patient_id = "P1";
    st.patient_name = "TEST^ANNOUNCE";
    st.accession_number = "ACC1";
    st.series = ses;
    st.n_series = 1;
    *len = pm__study_announced__get_packed_size(&st);
    uint8_t *buf = malloc(*len);
    CHECK(buf != NULL);
    pm__study_announced__pack(&st, buf);
    return buf;
}

/* Records instances [from, to) of study, each with its pending mark, and the study's
 * mark, as ingest.c does (pending: 0 for a store written before pending marks). */
static void take_in(pm_store *s, const char *study, unsigned from, unsigned to, int pending)
{
    enum { BATCH = 5000 };
    static char *keys[2 * BATCH + 1];
    static size_t klens[2 * BATCH + 1], vlens[2 * BATCH + 1];
    static const void *vals[2 * BATCH + 1];
    static uint8_t *recs[BATCH];
    for (unsigned at = from; at < to;) {
        size_t n = 0, n_recs = 0;
        for (; at < to && n_recs < BATCH; at++) {
            unsigned number = (at * 7919u) % 1000003u; /* distinct, out of order */
            char sop[96];
            size_t len;
            uint8_t *rec = recs[n_recs++] = record(study, number, &len, sop, sizeof sop);
            for (int kind = 0; kind <= pending; kind++) {
                char *k = malloc(200);
                CHECK(k != NULL);
                int kl =
                    snprintf(k, 200, "%s%s",
                             kind ? PM_INGEST_PENDING_PREFIX : PM_INGEST_INSTANCE_PREFIX, study);
                size_t sl = strlen(sop);
                memcpy(k + kl + 1, sop, sl); /* PREFIX STUDY NUL SOP */
                keys[n] = k;
                klens[n] = (size_t)kl + 1 + sl;
                vals[n] = rec;
                vlens[n++] = len;
            }
        }
        char mark[2 + 80];
        keys[n] = mark;
        klens[n] = (size_t)snprintf(mark, sizeof mark, "%s%s", PM_INGEST_MARK_PREFIX, study);
        uint8_t generation[8];
        randombytes_buf(generation, sizeof generation);
        vals[n] = generation;
        vlens[n] = sizeof generation;
        CHECK_RC(pm_store_local_write(s, (const char *const *)keys, klens, vals, vlens, n + 1));
        for (size_t i = 0; i < n; i++)
            free(keys[i]);
        for (size_t i = 0; i < n_recs; i++)
            free(recs[i]);
    }
}

typedef struct {
    size_t events, instances, max_bytes, last_bytes, last_instances, first_bytes;
} event_sizes;

static int measure(void *ctx, const uint8_t *raw, size_t len)
{
    event_sizes *z = ctx;
    pm_event *ev = NULL;
    CHECK_RC(pm_event_parse(raw, len, &ev));
    if (ev->body->payload_case == PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED) {
        const Pm__StudyAnnounced *a = ev->body->study_announced;
        size_t n = 0;
        for (size_t i = 0; i < a->n_series; i++)
            n += a->series[i]->n_instances;
        if (!z->events)
            z->first_bytes = len;
        z->events++;
        z->instances += n;
        z->last_bytes = len;
        z->last_instances = n;
        if (len > z->max_bytes)
            z->max_bytes = len;
    }
    pm_event_destroy(&ev);
    return 0;
}

static event_sizes sizes(pm_store *s, const char *study)
{
    event_sizes z = {0};
    CHECK_RC(pm_views_study_events(s, study, measure, &z));
    return z;
}

static unsigned announce(const pm_ingest_ctx *c)
{
    unsigned n = 0;
    CHECK_RC(pm_ingest_announce(c, &n));
    return n;
}

static Pm__StudyView *view(pm_store *s, const char *uid)
{
    Pm__StudyView *sv = NULL;
    CHECK_RC(pm_views_study(s, uid, &sv));
    CHECK(sv->study != NULL);
    return sv;
}

/* Every instance once, each series in instance-number order; returns the count. */
static size_t check_layout(const Pm__StudyView *sv)
{
    size_t total = 0;
    for (size_t i = 0; i < sv->study->n_series; i++) {
        const Pm__Series *se = sv->study->series[i];
        for (size_t j = 1; j < se->n_instances; j++)
            CHECK(se->instances[j - 1]->instance_number < se->instances[j]->instance_number);
        total += se->n_instances;
    }
    CHECK_EQ_INT(sv->instance_count, total);
    return total;
}

/* Two views list the same series, each with the same instances in the same order
 * (the series themselves are in the order each store first saw them). */
static void check_same_study(const Pm__StudyView *a, const Pm__StudyView *b)
{
    CHECK_EQ_INT(a->study->n_series, b->study->n_series);
    for (size_t i = 0; i < a->study->n_series; i++) {
        const Pm__Series *x = a->study->series[i], *y = NULL;
        for (size_t k = 0; k < b->study->n_series && !y; k++)
            if (strcmp(b->study->series[k]->series_instance_uid, x->series_instance_uid) == 0)
                y = b->study->series[k];
        CHECK(y != NULL);
        CHECK_EQ_INT(x->n_instances, y->n_instances);
        for (size_t j = 0; j < x->n_instances; j++)
            CHECK(strcmp(x->instances[j]->sop_instance_uid, y->instances[j]->sop_instance_uid) ==
                  0);
    }
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    char *tmp = check_tmpdir("announce");
    char *dir = check_path(tmp, "store"), *blobdir = check_path(tmp, "blobs");
    pm_store *s = NULL;
    pm_blobs *b = NULL;
    pm_identity *id = NULL;
    pm_config *cfg = NULL;
    char err[512];
    static const char conf[] = "[node]\nname = announce\n";
    CHECK_RC(pm_config_parse("node.conf", conf, strlen(conf), tmp, &cfg, err, sizeof err));
    CHECK_RC(pm_store_open(dir, 1ull << 32, &s));
    CHECK_RC(pm_blobs_open(s, blobdir, &b));
    CHECK_RC(pm_identity_generate(&id));
    genesis(s, id);
    pm_ingest_ctx c = {s, b, id, cfg};

    /* 100,000 instances: several events, each within the limit; every instance once. */
    take_in(s, "1.2.9.1", 0, 100000, 1);
    CHECK_EQ_INT(announce(&c), 1);
    CHECK_EQ_INT(announce(&c), 0); /* nothing pending any more */
    event_sizes z = sizes(s, "1.2.9.1");
    CHECK(z.events >= 2);
    CHECK(z.max_bytes <= PM_EVENT_MAX_BYTES);
    CHECK_EQ_INT(z.instances, 100000);
    Pm__StudyView *sv = view(s, "1.2.9.1");
    CHECK_EQ_INT(sv->study->n_series, 3);
    CHECK_EQ_INT(check_layout(sv), 100000);
    pm__study_view__free_unpacked(sv, NULL);

    /* It grows: the next event lists only what is new. */
    take_in(s, "1.2.9.1", 100000, 100010, 1);
    CHECK_EQ_INT(announce(&c), 1);
    event_sizes grown = sizes(s, "1.2.9.1");
    CHECK_EQ_INT(grown.events, z.events + 1);
    CHECK_EQ_INT(grown.last_instances, 10);
    sv = view(s, "1.2.9.1");
    CHECK_EQ_INT(check_layout(sv), 100010);
    pm__study_view__free_unpacked(sv, NULL);

    /* One instance at a time against all at once: the same view, a linear log. */
    enum { SMALL = 300 };
    take_in(s, "1.2.9.2", 0, SMALL, 1);
    CHECK_EQ_INT(announce(&c), 1);
    for (unsigned i = 0; i < SMALL; i++) {
        take_in(s, "1.2.9.3", i, i + 1, 1);
        CHECK_EQ_INT(announce(&c), 1);
    }
    event_sizes once = sizes(s, "1.2.9.2"), each = sizes(s, "1.2.9.3");
    CHECK_EQ_INT(once.events, 1);
    CHECK_EQ_INT(each.events, SMALL);
    CHECK_EQ_INT(each.instances, SMALL);
    CHECK(each.max_bytes < 2 * each.first_bytes); /* no event repeats what came before */
    Pm__StudyView *a = view(s, "1.2.9.2"), *e = view(s, "1.2.9.3");
    CHECK_EQ_INT(check_layout(a), SMALL);
    check_same_study(a, e);
    pm__study_view__free_unpacked(a, NULL);
    pm__study_view__free_unpacked(e, NULL);

    /* A store from before pending marks: the mark alone announces all it holds. */
    take_in(s, "1.2.9.4", 0, 50, 0);
    CHECK_EQ_INT(announce(&c), 1);
    event_sizes old = sizes(s, "1.2.9.4");
    CHECK_EQ_INT(old.events, 1);
    CHECK_EQ_INT(old.instances, 50);

    /* A store whose views an older fold derived (no study_view_version; a study's view
     * not the union): opening derives them again from the events. */
    pm_blobs_close(&b);
    pm_store_close(&s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi studies, meta;
    CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 24) == 0);
    CHECK(mdb_env_set_mapsize(env, 1ull << 32) == 0);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0 && mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "studies", 0, &studies) == 0 &&
          mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val stale_key = {7, "1.2.9.4"}, stale, key = {7, "1.2.9.3"};
    CHECK(mdb_get(txn, studies, &stale_key, &stale) == 0);
    CHECK(mdb_put(txn, studies, &key, &stale, 0) == 0); /* 1.2.9.3 now reads as 50 instances */
    MDB_val version = {18, "study_view_version"};
    CHECK(mdb_del(txn, meta, &version, NULL) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK_RC(pm_store_open(dir, 1ull << 32, &s));
    e = view(s, "1.2.9.3");
    CHECK_EQ_INT(check_layout(e), SMALL);
    pm__study_view__free_unpacked(e, NULL);
    pm_store_close(&s);
    pm_identity_destroy(&id);
    pm_config_destroy(&cfg);
    free(dir);
    free(blobdir);
    check_tmpdir_remove(&tmp);
    printf("test_announce: ok (100,000 instances in %zu events, largest %zu bytes)\n", z.events,
           z.max_bytes);
    return 0;
}
