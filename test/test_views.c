/* Unit test of the view readers (store/views.c) over a real store built by appending
 * signed events: members and membership; studies all, by UID and by patient (exact
 * patient, never a prefix); the date index (inclusive bounds, undated studies always
 * walked); the open-items index (due order, closed items left out); a callback's
 * non-zero return stopping a walk; and a lapsed lease reading as unreported. */
#include "test/check.h"

#include "proto/clock.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"
#include "store/views.h"

#include <sodium.h>

static void append(pm_store *s, const pm_identity *id, Pm__EventBody *b)
{
    CHECK_RC(pm_feed_append(s, id, b, NULL));
}

static void genesis(pm_store *s, const pm_identity *id)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "views-mesh";
    g.quorum = 1;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    append(s, id, &b);
}

static void announce(pm_store *s, const pm_identity *id, const char *uid, const char *patient,
                     const char *date, uint64_t due_ms)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    Pm__WorklistTerms t = PM__WORKLIST_TERMS__INIT;
    a.study_instance_uid = (char *)uid;
    a.patient_id = (char *)patient;
    a.study_date = (char *)date;
    t.priority = "routine";
    t.due_ms = due_ms;
    a.terms = &t;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    append(s, id, &b);
}

static void claim(pm_store *s, const pm_identity *id, const char *uid, uint64_t until)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
    c.study_instance_uid = (char *)uid;
    c.reporter = "dr.bell";
    c.lease_until_ms = until;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
    b.item_claimed = &c;
    append(s, id, &b);
}

static void report(pm_store *s, const pm_identity *id, const char *uid)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__ReportSubmitted r = PM__REPORT_SUBMITTED__INIT;
    r.study_instance_uid = (char *)uid;
    r.reporter = "dr.bell";
    r.text = "no acute findings";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    b.report_submitted = &r;
    append(s, id, &b);
}

/* Collects the UIDs a walk hands over, comma-separated; stops after stop_after. */
typedef struct {
    char seen[512];
    int n, stop_after;
} walk;

static int collect(void *ctx, const Pm__StudyView *sv)
{
    walk *w = ctx;
    size_t o = strlen(w->seen);
    snprintf(w->seen + o, sizeof w->seen - o, "%s%s", o ? "," : "", sv->study->study_instance_uid);
    return ++w->n == w->stop_after ? 42 : 0;
}

static const char *walk_all(pm_store *s, const char *uid, const char *patient, walk *w)
{
    memset(w, 0, sizeof *w);
    CHECK_RC(pm_views_studies(s, uid, patient, collect, w));
    return w->seen;
}

static const char *walk_dated(pm_store *s, const char *from, const char *to, walk *w)
{
    memset(w, 0, sizeof *w);
    CHECK_RC(pm_views_studies_dated(s, from, to, collect, w));
    return w->seen;
}

static int count_member(void *ctx, const Pm__MemberView *m)
{
    CHECK(m->state && *m->state);
    (*(int *)ctx)++;
    return 0;
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    char *tmp = check_tmpdir("views"), *dir = check_path(tmp, "store");
    pm_identity *f = NULL, *stranger = NULL;
    CHECK_RC(pm_identity_generate(&f));
    CHECK_RC(pm_identity_generate(&stranger));
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    genesis(s, f);

    /* Members. */
    int members = 0;
    CHECK_RC(pm_views_members(s, count_member, &members));
    CHECK_EQ_INT(members, 1);
    CHECK(pm_views_is_member(s, pm_identity_public(f)));
    CHECK(!pm_views_is_member(s, pm_identity_public(stranger)));
    Pm__MemberView *m = NULL;
    CHECK_RC(pm_views_member(s, pm_identity_public(f), &m));
    CHECK(strcmp(m->state, "member") == 0);
    pm__member_view__free_unpacked(m, NULL);
    CHECK_CODE(pm_views_member(s, pm_identity_public(stranger), &m), PM_E_NOTFOUND);

    /* Studies: P1 and P10 differ; one study has no date. */
    uint64_t now = pm_now_ms();
    announce(s, f, "1.2.3", "P1", "20260105", now + 3000);
    announce(s, f, "1.2.1", "P10", "20260101", now + 1000);
    announce(s, f, "1.2.2", "P1", "", now + 2000);
    announce(s, f, "1.2.4", "P2", "20260110", now + 4000);
    walk w;
    CHECK(strcmp(walk_all(s, NULL, NULL, &w), "1.2.1,1.2.2,1.2.3,1.2.4") == 0); /* UID order */
    CHECK(strcmp(walk_all(s, "1.2.3", NULL, &w), "1.2.3") == 0);
    CHECK(strcmp(walk_all(s, "9.9", NULL, &w), "") == 0);
    CHECK(strcmp(walk_all(s, NULL, "P1", &w), "1.2.2,1.2.3") == 0); /* not P10's */
    CHECK(strcmp(walk_all(s, NULL, "P", &w), "") == 0);

    /* The date index: undated first, then dated in date order, bounds inclusive. */
    CHECK(strcmp(walk_dated(s, NULL, NULL, &w), "1.2.2,1.2.1,1.2.3,1.2.4") == 0);
    CHECK(strcmp(walk_dated(s, "20260105", "20260110", &w), "1.2.2,1.2.3,1.2.4") == 0);
    CHECK(strcmp(walk_dated(s, "", "20260104", &w), "1.2.2,1.2.1") == 0);
    CHECK(strcmp(walk_dated(s, "20260106", "", &w), "1.2.2,1.2.4") == 0);

    /* A callback's non-zero return stops the walk and is returned. */
    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    CHECK_EQ_INT(pm_views_studies(s, NULL, NULL, collect, &w), 42);
    CHECK(strcmp(w.seen, "1.2.1,1.2.2") == 0);

    /* The open-items index: due order; a reported study leaves it. */
    memset(&w, 0, sizeof w);
    CHECK_RC(pm_views_studies_due_before(s, now + 3500, collect, &w));
    CHECK(strcmp(w.seen, "1.2.1,1.2.2,1.2.3") == 0);
    report(s, f, "1.2.2");
    memset(&w, 0, sizeof w);
    CHECK_RC(pm_views_studies_due_before(s, now + 3500, collect, &w));
    CHECK(strcmp(w.seen, "1.2.1,1.2.3") == 0);

    /* A lease that ran out reads as unreported; a live one as claimed. */
    claim(s, f, "1.2.4", now + 60000);
    Pm__StudyView *sv = NULL;
    CHECK_RC(pm_views_study(s, "1.2.4", &sv));
    CHECK(strcmp(sv->state, "claimed") == 0);
    CHECK(strcmp(pm_views_item_state(sv, now), "claimed") == 0);
    CHECK(strcmp(pm_views_item_state(sv, now + 60000), "unreported") == 0);
    pm__study_view__free_unpacked(sv, NULL);
    CHECK_RC(pm_views_study(s, "1.2.2", &sv));
    CHECK(strcmp(sv->state, "reported") == 0);
    CHECK(strcmp(pm_views_item_state(sv, now + 999999), "reported") == 0);
    pm__study_view__free_unpacked(sv, NULL);
    CHECK_CODE(pm_views_study(s, "9.9", &sv), PM_E_NOTFOUND);

    pm_store_close(&s);
    pm_identity_destroy(&f);
    pm_identity_destroy(&stranger);
    free(dir);
    check_tmpdir_remove(&tmp);
    printf("test_views: ok\n");
    return 0;
}
