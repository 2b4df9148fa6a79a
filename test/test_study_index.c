/* Unit test of the attribute index of the study views (store/study_index.c, read by
 * pm_views_studies_by_attr): accession exact and prefix (ACC1 is not ACC10 when
 * exact), patient name case-insensitively by prefix, every modality of a study (CT
 * behind OCT), each study once on a prefix walk, empty values left out, entries moved
 * when a study is announced again, and the indexes rebuilt from the views when a store
 * lacks them (a store written by an older build). */
#include "test/check.h"

#include "node/studies/modalities.h"
#include "node/worklist/present.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"
#include "store/views.h"

#include <lmdb.h>
#include <sodium.h>

typedef struct {
    const char *uid, *accession, *name, *description, *modalities[3];
} study;

static void announce(pm_store *s, const pm_identity *id, const study *st)
{
    Pm__Series series[3], *ptrs[3];
    size_t n = 0;
    for (; n < 3 && st->modalities[n]; n++) {
        pm__series__init(&series[n]);
        series[n].series_instance_uid = (char *)(n == 0 ? "9.1" : n == 1 ? "9.2" : "9.3");
        series[n].modality = (char *)st->modalities[n];
        ptrs[n] = &series[n];
    }
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    a.study_instance_uid = (char *)st->uid;
    a.accession_number = (char *)st->accession;
    a.patient_name = (char *)st->name;
    a.study_description = (char *)st->description;
    a.series = ptrs;
    a.n_series = n;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    CHECK_RC(pm_feed_append(s, id, &b, NULL));
}

static int collect(void *ctx, const Pm__StudyView *sv)
{
    char *seen = ctx;
    size_t o = strlen(seen);
    snprintf(seen + o, 512 - o, "%s%s", o ? "," : "", sv->study->study_instance_uid);
    return 0;
}

static const char *by(pm_store *s, char attr, const char *value, int exact, char seen[512])
{
    seen[0] = '\0';
    CHECK_RC(pm_views_studies_by_attr(s, attr, value, exact, collect, seen));
    return seen;
}

#define EXPECT(s, attr, value, exact, want)                                                        \
    do {                                                                                           \
        char seen_[512];                                                                           \
        const char *got_ = by(s, attr, value, exact, seen_);                                       \
        if (strcmp(got_, want) != 0) {                                                             \
            fprintf(stderr, "%s:%d: %c %s%s gave '%s', not '%s'\n", __FILE__, __LINE__, attr,      \
                    value, exact ? "" : "*", got_, want);                                          \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void genesis(pm_store *s, const pm_identity *id)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "index-mesh";
    g.quorum = 1;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(s, id, &b, NULL));
}

static void check_queries(pm_store *s)
{
    EXPECT(s, PM_ATTR_ACCESSION, "ACC1", 1, "1.1");
    EXPECT(s, PM_ATTR_ACCESSION, "ACC1", 0, "1.1,1.2");
    EXPECT(s, PM_ATTR_ACCESSION, "", 1, "");                /* empty values are not indexed */
    EXPECT(s, PM_ATTR_PATIENT_NAME, "smith", 0, "1.2,1.1"); /* value order: SMITHERS < SMITH^ */
    EXPECT(s, PM_ATTR_PATIENT_NAME, "SMITH^JOHN", 1, "1.1");
    EXPECT(s, PM_ATTR_PATIENT_NAME, "Smith^John ", 1, "1.1"); /* DICOM's trailing pad */
    EXPECT(s, PM_ATTR_MODALITY, "CT", 1, "1.1,1.3");
    EXPECT(s, PM_ATTR_MODALITY, "C", 0, "1.1,1.2,1.3"); /* 1.1 has CT and CR: once */
    EXPECT(s, PM_ATTR_DESCRIPTION, "head", 0, "1.1");
}

/* ---- worklist counts from the indexes, against a walk of every study ---------------- */

static void event(pm_store *s, const pm_identity *id, Pm__EventBody *b)
{
    CHECK_RC(pm_feed_append(s, id, b, NULL));
}

static void open_item(pm_store *s, const pm_identity *id, const char *uid, uint64_t due)
{
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    Pm__WorklistTerms t = PM__WORKLIST_TERMS__INIT;
    a.study_instance_uid = (char *)uid;
    t.priority = "urgent";
    t.due_ms = due;
    a.terms = &t;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    event(s, id, &b);
}

static void claim_item(pm_store *s, const pm_identity *id, const char *uid, uint64_t until)
{
    Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
    c.study_instance_uid = (char *)uid;
    c.reporter = "dr.bell";
    c.lease_until_ms = until;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = &c;
    event(s, id, &b);
}

static void report_item(pm_store *s, const pm_identity *id, const char *uid)
{
    Pm__ReportSubmitted r = PM__REPORT_SUBMITTED__INIT;
    r.study_instance_uid = (char *)uid;
    r.reporter = "dr.bell";
    r.text = "normal";
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    b.report_submitted = &r;
    event(s, id, &b);
}

/* The reference: every study read, the rules applied one by one. */
static int count_one(void *ctx, const Pm__StudyView *s)
{
    pm_worklist_counts *w = ctx;
    const char *state = pm_views_item_state(s, w->now);
    w->studies++;
    w->unreported += strcmp(state, "unreported") == 0;
    w->claimed += strcmp(state, "claimed") == 0;
    w->reported += strcmp(state, "reported") == 0;
    w->verified += strcmp(state, "verified") == 0;
    if (pm_wl_overdue(s, w->now)) {
        w->overdue++;
        w->orphans += strcmp(state, "unreported") == 0;
    }
    return 0;
}

/* The open items of a full scan, as UIDs joined by commas in UID order, and the same
 * of the open-items table; each projection must rank like its whole view. */
typedef struct {
    pm_store *s;
    uint64_t now;
    char uids[512];
} open_walk;

static void add_uid(open_walk *w, const char *uid)
{
    size_t n = strlen(w->uids);
    snprintf(w->uids + n, sizeof w->uids - n, "%s%s", n ? "," : "", uid);
}

static int open_in_scan(void *ctx, const Pm__StudyView *sv)
{
    if (pm_wl_state_open(sv->state))
        add_uid(ctx, sv->study->study_instance_uid);
    return 0;
}

static int open_in_table(void *ctx, const Pm__StudyView *item)
{
    open_walk *w = ctx;
    const char *uid = item->study->study_instance_uid;
    add_uid(w, uid);
    Pm__StudyView *whole = NULL;
    CHECK_RC(pm_views_study(w->s, uid, &whole));
    CHECK_EQ_STR(pm_wl_state(item, w->now), pm_wl_state(whole, w->now));
    CHECK_EQ_STR(pm_wl_priority(item), pm_wl_priority(whole));
    CHECK_EQ_INT(pm_wl_due_ms(item), pm_wl_due_ms(whole));
    CHECK_EQ_INT(pm_wl_at_risk(item, w->now), pm_wl_at_risk(whole, w->now));
    CHECK_EQ_INT(item->withdrawn, whole->withdrawn);
    CHECK_EQ_INT(item->announced_ms, whole->announced_ms);
    CHECK(item->site.len == whole->site.len &&
          memcmp(item->site.data, whole->site.data, item->site.len) == 0);
    CHECK_EQ_STR(item->claim ? item->claim->reporter : "-",
                 whole->claim ? whole->claim->reporter : "-");
    pm__study_view__free_unpacked(whole, NULL);
    return 0;
}

static void check_open_items(pm_store *s, uint64_t now)
{
    open_walk scan = {.s = s, .now = now}, table = {.s = s, .now = now};
    CHECK_RC(pm_views_studies(s, NULL, NULL, open_in_scan, &scan));
    CHECK_RC(pm_views_open_items(s, open_in_table, &table));
    CHECK_EQ_STR(table.uids, scan.uids);
}

/* Every final item as one line of what turnaround reads, the lines sorted and joined:
 * from a full scan with the rules applied to each view, and from the final-reports
 * index's records. */
typedef struct {
    char lines[8][1536];
    size_t n;
    char joined[8 * 1536];
} final_lines;

static void add_line(final_lines *f, uint64_t final_ms, uint64_t announced, uint64_t reported,
                     uint64_t due, const uint8_t *site, const char *priority,
                     const char *modalities, const char *reporter)
{
    CHECK(f->n < 8);
    char hex[2 * PM_ID_BYTES + 1];
    pm_hex_encode(site, PM_ID_BYTES, hex);
    snprintf(f->lines[f->n++], sizeof f->lines[0], "%llu %llu %llu %llu %s %s [%s] %s",
             (unsigned long long)final_ms, (unsigned long long)announced,
             (unsigned long long)reported, (unsigned long long)due, hex, priority, modalities,
             reporter);
}

static int final_in_scan(void *ctx, const Pm__StudyView *sv)
{
    uint64_t final_ms = pm_wl_final_ms(sv);
    char modalities[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(sv->study, modalities, sizeof modalities);
    if (final_ms)
        add_line(ctx, final_ms, sv->announced_ms, sv->reported_ms, pm_wl_due_ms(sv), sv->site.data,
                 pm_wl_priority(sv), modalities, sv->reports[0]->reporter);
    return 0;
}

static int final_in_index(void *ctx, const pm_turnaround *t)
{
    add_line(ctx, t->final_ms, t->announced_ms, t->reported_ms, t->due_ms, t->site, t->priority,
             t->modalities, t->reporter);
    return 0;
}

static int by_text(const void *a, const void *b)
{
    return strcmp(a, b);
}

static const char *joined(final_lines *f)
{
    qsort(f->lines, f->n, sizeof f->lines[0], by_text);
    f->joined[0] = 0;
    for (size_t i = 0; i < f->n; i++)
        snprintf(f->joined + strlen(f->joined), sizeof f->joined - strlen(f->joined), "%s\n",
                 f->lines[i]);
    return f->joined;
}

static void check_turnarounds(pm_store *s, size_t expected)
{
    final_lines scan = {0}, index = {0};
    CHECK_RC(pm_views_studies(s, NULL, NULL, final_in_scan, &scan));
    CHECK_RC(pm_views_turnarounds_between(s, 0, UINT64_MAX, final_in_index, &index));
    CHECK_EQ_INT(scan.n, expected);
    CHECK_EQ_STR(joined(&index), joined(&scan));
}

static void test_counts(pm_store *s, const pm_identity *id)
{
    uint64_t now = pm_now_ms();
    open_item(s, id, "2.1", now - 1000);  /* overdue orphan */
    open_item(s, id, "2.2", now + 99999); /* open, not due */
    open_item(s, id, "2.3", now - 1000);  /* claimed, overdue, not an orphan */
    claim_item(s, id, "2.3", now + 99999);
    open_item(s, id, "2.4", now + 99999); /* claimed, lease lapsed: unreported */
    claim_item(s, id, "2.4", now - 1);
    open_item(s, id, "2.5", now - 1000); /* reported: not overdue */
    report_item(s, id, "2.5");
    open_item(s, id, "2.6", now - 1000); /* claimed, overdue, lease ended at now: an orphan */
    claim_item(s, id, "2.6", now);
    pm_worklist_counts fast = {.now = now}, slow = {.now = now};
    CHECK_RC(pm_items_counts(s, &fast));
    CHECK_RC(pm_views_studies(s, NULL, NULL, count_one, &slow));
    CHECK_EQ_INT(fast.studies, slow.studies);
    CHECK_EQ_INT(fast.unreported, slow.unreported);
    CHECK_EQ_INT(fast.claimed, slow.claimed);
    CHECK_EQ_INT(fast.reported, slow.reported);
    CHECK_EQ_INT(fast.verified, slow.verified);
    CHECK_EQ_INT(fast.overdue, slow.overdue);
    CHECK_EQ_INT(fast.orphans, slow.orphans);
    CHECK_EQ_INT(slow.claimed, 1);
    CHECK_EQ_INT(slow.orphans, 2);
    CHECK_EQ_INT(slow.overdue, 3);
    EXPECT(s, PM_ATTR_STATE, "claimed", 1, "2.3,2.4,2.6"); /* as folded: 2.4, 2.6 lapse */
    EXPECT(s, PM_ATTR_PRIORITY, "urgent", 1, "2.1,2.2,2.3,2.4,2.5,2.6");
    /* The open-items table: every open item (2.5 was reported), ranked as its view. */
    check_open_items(s, now);
    /* The final-reports index's records: as the views give them, for a study of three
     * modalities too. */
    report_item(s, id, "1.1");
    check_turnarounds(s, 2);
}

static int count_event(void *ctx, const uint8_t *raw, size_t len)
{
    (void)raw, (void)len;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t reporter_events(pm_store *s, const char *reporter)
{
    size_t n = 0;
    CHECK_RC(pm_views_reporter_events(s, reporter, count_event, &n));
    return n;
}

/* A store from a build without the naming index (KIND_NAMING, 'N'): its entries gone
 * and its version forgotten, as such a store would be; opening indexes the events
 * again, and the reporter's claims and reports are found as before. */
static void test_naming_index_rebuilt(const char *dir)
{
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    size_t before = reporter_events(s, "dr.bell");
    CHECK(before >= 4); /* test_counts: three claims and two reports */
    CHECK_EQ_INT(reporter_events(s, "dr.nobody"), 0);
    pm_store_close(&s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi bykey, meta;
    MDB_cursor *cur;
    CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 24) == 0);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0 && mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "bykey", 0, &bykey) == 0 && mdb_cursor_open(txn, bykey, &cur) == 0);
    MDB_val k = {1, "N"}, v;
    size_t removed = 0;
    while (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && ((char *)k.mv_data)[0] == 'N') {
        CHECK(mdb_cursor_del(cur, 0) == 0);
        removed++;
        k.mv_size = 1;
        k.mv_data = "N";
    }
    mdb_cursor_close(cur);
    CHECK_EQ_INT(removed, before);
    CHECK(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val key = {20, "naming_index_version"};
    CHECK(mdb_del(txn, meta, &key, NULL) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    CHECK_EQ_INT(reporter_events(s, "dr.bell"), before);
    pm_store_close(&s);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    char *tmp = check_tmpdir("study_index"), *dir = check_path(tmp, "store");
    pm_identity *f = NULL;
    CHECK_RC(pm_identity_generate(&f));
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    genesis(s, f);
    const study studies[] = {
        {"1.1", "ACC1", "Smith^John", "Head CT", {"OCT", "CT", "CR"}},
        {"1.2", "ACC10", "smithers^m", "Chest", {"CR", NULL}},
        {"1.3", "", "Jones", "", {"CT", NULL}},
    };
    for (size_t i = 0; i < 3; i++)
        announce(s, f, &studies[i]);
    check_queries(s);

    /* Announced again with another accession: the old entry goes. */
    study moved = studies[2];
    moved.accession = "ACC3";
    announce(s, f, &moved);
    EXPECT(s, PM_ATTR_ACCESSION, "ACC3", 1, "1.3");
    moved.accession = "";
    announce(s, f, &moved);
    EXPECT(s, PM_ATTR_ACCESSION, "ACC3", 1, "");
    pm_store_close(&s);

    /* A store from a build without the attribute index: empty it and forget the index
     * version, as such a store would be; opening rebuilds it from the views. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi attr, meta;
    CHECK(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 24) == 0);
    CHECK(mdb_env_open(env, dir, 0, 0600) == 0 && mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CHECK(mdb_dbi_open(txn, "byattr", 0, &attr) == 0 && mdb_drop(txn, attr, 0) == 0);
    CHECK(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
    MDB_val key = {13, "index_version"};
    CHECK(mdb_del(txn, meta, &key, NULL) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    check_queries(s);
    test_counts(s, f);
    pm_store_close(&s);
    test_naming_index_rebuilt(dir);

    pm_identity_destroy(&f);
    free(dir);
    check_tmpdir_remove(&tmp);
    puts("test_study_index: ok");
    return 0;
}
