/* Unit test of the worklist's shared rules: the state transitions that the fold and
 * the commands both call (node/worklist/states.h), and ModalitiesInStudy as C-FIND,
 * the worklist rules and the worklist's output all take it (node/studies/modalities.h).
 * Each case here is one that two copies of a rule once answered differently. */
#include "node/config/config.h"
#include "node/studies/modalities.h"
#include "node/worklist/ai_rules.h"
#include "node/worklist/next.h"
#include "node/worklist/states.h"
#include "test/check.h"

static Pm__ReportView report_by(const char *reporter)
{
    Pm__ReportView r = PM__REPORT_VIEW__INIT;
    r.reporter = (char *)reporter;
    return r;
}

static void test_second_reader(void)
{
    Pm__ReportView r1 = report_by("dr.cole"), r2 = report_by("dr.cole");
    Pm__ReportView *reports[] = {&r1, &r2};
    Pm__StudyView sv = PM__STUDY_VIEW__INIT;
    sv.reports = reports;
    sv.n_reports = 2;
    /* dr.cole reported twice: still the only author, so not a second reader. */
    CHECK_EQ_INT(pm_wl_may_verify(&sv, "reported", "dr.cole"), PM_WL_NO_SECOND_READER);
    CHECK_EQ_INT(pm_wl_may_verify(&sv, "reported", "dr.bell"), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_verify(&sv, "claimed", "dr.bell"), PM_WL_NOT_REPORTED);
    Pm__ReportView r3 = report_by("dr.bell");
    reports[1] = &r3; /* two authors: each is a second reader of the other's report */
    CHECK_EQ_INT(pm_wl_may_verify(&sv, "reported", "dr.cole"), PM_WL_ALLOWED);
}

static void test_claim_and_release(void)
{
    Pm__ClaimView claim = PM__CLAIM_VIEW__INIT;
    claim.reporter = "dr.bell";
    claim.lease_until_ms = 1000;
    Pm__StudyView sv = PM__STUDY_VIEW__INIT;
    sv.claim = &claim;
    CHECK_EQ_INT(pm_wl_may_claim(&sv, "claimed", "dr.cole", 999), PM_WL_HELD_BY_OTHER);
    CHECK_EQ_INT(pm_wl_may_claim(&sv, "claimed", "dr.cole", 1000), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_claim(&sv, "claimed", "dr.bell", 10), PM_WL_ALLOWED); /* renew */
    CHECK_EQ_INT(pm_wl_may_claim(&sv, "reported", "dr.bell", 10), PM_WL_ALREADY_REPORTED);
    CHECK_EQ_INT(pm_wl_may_release(&sv, "claimed", "dr.cole"), PM_WL_NOT_HOLDER);
    CHECK_EQ_INT(pm_wl_may_release(&sv, "claimed", "dr.bell"), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_release(&sv, "unreported", "dr.bell"), PM_WL_NOT_HOLDER);
    sv.claim = NULL;
    CHECK_EQ_INT(pm_wl_may_release(&sv, "claimed", "dr.bell"), PM_WL_NOT_HOLDER);
}

static void test_report_rules(void)
{
    Pm__ClaimView claim = PM__CLAIM_VIEW__INIT;
    claim.reporter = "dr.bell";
    claim.lease_until_ms = 1000;
    Pm__ReportView r1 = report_by("dr.bell");
    r1.text = "clear";
    r1.sr_sop_instance_uid = "1.2.3";
    Pm__ReportView *reports[] = {&r1};
    Pm__StudyView sv = PM__STUDY_VIEW__INIT;
    sv.claim = &claim;
    /* Claimed by dr.bell: dr.cole may not report, the holder may. */
    CHECK_EQ_INT(pm_wl_may_report(&sv, "claimed", "dr.cole", "x", "", 10), PM_WL_HELD_BY_OTHER);
    CHECK_EQ_INT(pm_wl_may_report(&sv, "claimed", "dr.bell", "x", "", 10), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_report(&sv, "claimed", "dr.cole", "x", "", 1000), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_report(&sv, "unreported", "dr.cole", "x", "", 10), PM_WL_ALLOWED);
    sv.reports = reports;
    sv.n_reports = 1;
    CHECK_EQ_INT(pm_wl_may_report(&sv, "reported", "dr.bell", "clear", "", 10), PM_WL_DUPLICATE);
    CHECK_EQ_INT(pm_wl_may_report(&sv, "reported", "dr.bell", "more", "1.2.3", 10), PM_WL_ALLOWED);
    CHECK_EQ_INT(pm_wl_may_report(&sv, "reported", "dr.bell", "more", "9.9", 10),
                 PM_WL_NOTHING_TO_AMEND);
    CHECK(strcmp(pm_wl_amendable_report(&sv), "1.2.3") == 0);
    sv.withdrawn = 1;
    CHECK_EQ_INT(pm_wl_may_report(&sv, "withdrawn", "dr.bell", "y", "", 10), PM_WL_WITHDRAWN);
    CHECK_EQ_INT(pm_wl_may_claim(&sv, "withdrawn", "dr.bell", 10), PM_WL_WITHDRAWN);
}

static void test_at_risk(void)
{
    Pm__StudyView sv = PM__STUDY_VIEW__INIT;
    sv.state = "unreported";
    sv.announced_ms = 0;
    sv.due_ms = 1000;
    CHECK(!pm_wl_at_risk(&sv, 700)); /* 300 of 1000 left */
    CHECK(pm_wl_at_risk(&sv, 800));  /* 200 left: under a quarter */
    CHECK(pm_wl_at_risk(&sv, 1200) && pm_wl_overdue(&sv, 1200));
    sv.state = "reported";
    CHECK(!pm_wl_at_risk(&sv, 900) && !pm_wl_overdue(&sv, 1200));
}

/* An open item of site, sub-specialty and priority, due at due_ms. */
static Pm__StudyView item_of(Pm__StudyAnnounced *st, Pm__WorklistTerms *t, uint8_t *site,
                             const char *uid, const char *sub, const char *prio, uint64_t due)
{
    pm__study_announced__init(st);
    pm__worklist_terms__init(t);
    st->study_instance_uid = (char *)uid;
    t->subspecialty = (char *)sub;
    t->priority = (char *)prio;
    t->due_ms = due;
    st->terms = t;
    Pm__StudyView sv = PM__STUDY_VIEW__INIT;
    sv.study = st;
    sv.state = "unreported";
    sv.site = (ProtobufCBinaryData){32, site};
    return sv;
}

static void test_next(void)
{
    uint8_t site_a[32] = {1}, site_b[32] = {2};
    Pm__StudyAnnounced st[4];
    Pm__WorklistTerms t[4];
    Pm__StudyView items[4] = {
        item_of(&st[0], &t[0], site_a, "1.1", "neuro", "routine", 100000),
        item_of(&st[1], &t[1], site_a, "1.2", "", "urgent", 100000),
        item_of(&st[2], &t[2], site_b, "1.3", "", "immediate", 100000),
        item_of(&st[3], &t[3], site_a, "1.4", "msk", "immediate", 100000),
    };
    const Pm__StudyView *ptrs[] = {&items[0], &items[1], &items[2], &items[3]};
    char *neuro[] = {"neuro"};
    ProtobufCBinaryData only_a[] = {{32, site_a}};
    Pm__ReporterView r1 = PM__REPORTER_VIEW__INIT, r2 = PM__REPORTER_VIEW__INIT;
    r1.id = "a.neuro";
    r1.subspecialties = neuro;
    r1.n_subspecialties = 1;
    r1.sites = only_a;
    r1.n_sites = 1;
    r2.id = "b.general";
    const Pm__ReporterView *roster[] = {&r1, &r2};
    /* a.neuro may take 1.1 (neuro, A) and 1.2 (general, A); not 1.3 (B), not 1.4 (msk). */
    CHECK(pm_next_eligible(&r1, &items[0], 0) && pm_next_eligible(&r1, &items[1], 0));
    CHECK(!pm_next_eligible(&r1, &items[2], 0) && !pm_next_eligible(&r1, &items[3], 0));
    /* Most urgent first: 1.2 (urgent) before 1.1 (routine). */
    CHECK_EQ_INT(pm_next_pick(&r1, roster, 2, ptrs, 4, 0), 1);
    /* b.general may take 1.2 and 1.3; 1.3 is immediate. */
    CHECK_EQ_INT(pm_next_pick(&r2, roster, 2, ptrs, 4, 0), 2);
    /* Both may take 1.2, 1.3 and 1.4 once a.neuro reads everything everywhere (and
     * b.general reads msk). Spread: a.neuro (first by id) gets the most urgent,
     * b.general the next. */
    r1.n_sites = 0;
    r1.n_subspecialties = 0;
    r1.capacity = r2.capacity = 4;
    char *msk[] = {"msk"};
    r2.subspecialties = msk;
    r2.n_subspecialties = 1;
    CHECK_EQ_INT(pm_next_pick(&r1, roster, 2, ptrs, 4, 0), 2);
    CHECK_EQ_INT(pm_next_pick(&r2, roster, 2, ptrs, 4, 0), 3);
    /* The ranking keeps ranks, not views, and works out the spread for the most urgent
     * item as it is offered: the order the walk offers items in changes nothing. */
    const Pm__StudyView *reversed[] = {&items[3], &items[2], &items[1], &items[0]};
    CHECK_EQ_INT(pm_next_pick(&r1, roster, 2, reversed, 4, 0), 1); /* 1.3 */
    CHECK_EQ_INT(pm_next_pick(&r2, roster, 2, reversed, 4, 0), 0); /* 1.4 */
    /* A reporter taking no work (capacity 0) is not spread over: with a.neuro off,
     * b.general is first and gets the most urgent. */
    r1.capacity = 0;
    r2.subspecialties = msk;
    r2.n_subspecialties = 1;
    CHECK_EQ_INT(pm_next_pick(&r2, roster, 2, ptrs, 4, 0), 2);
    r1.capacity = 4;
    CHECK_EQ_INT(pm_next_pick(&r2, roster, 2, ptrs, 4, 0), 3);
    /* A claimed item is offered to nobody; claims are counted for capacity. */
    Pm__ClaimView claim = PM__CLAIM_VIEW__INIT;
    claim.reporter = "b.general";
    claim.lease_until_ms = 1000;
    items[2].state = "claimed";
    items[2].claim = &claim;
    CHECK(!pm_next_eligible(&r1, &items[2], 0));
    CHECK_EQ_INT(pm_next_claims_held(&r2, ptrs, 4, 0), 1);
    CHECK_EQ_INT(pm_next_claims_held(&r2, ptrs, 4, 1000), 0); /* the lease lapsed */
}

static void study_of(Pm__StudyAnnounced *st, Pm__Series *series, Pm__Series **ptrs,
                     const char *const *modalities, size_t n)
{
    pm__study_announced__init(st);
    for (size_t i = 0; i < n; i++) {
        pm__series__init(&series[i]);
        series[i].modality = (char *)modalities[i];
        ptrs[i] = &series[i];
    }
    st->series = ptrs;
    st->n_series = n;
}

static void test_modalities(void)
{
    static const char *const mods[] = {"OCT", "CT", "OCT", "", "SR", "CT"};
    Pm__Series series[6];
    Pm__Series *ptrs[6];
    Pm__StudyAnnounced st;
    study_of(&st, series, ptrs, mods, 6);
    char out[PM_STUDY_MODALITIES_MAX];
    CHECK_EQ_INT(pm_study_modalities(&st, out, sizeof out), 0);
    CHECK(strcmp(out, "OCT\\CT\\SR") == 0); /* "OCT" must not hide "CT" */
    char tiny[7];
    CHECK_EQ_INT(pm_study_modalities(&st, tiny, sizeof tiny), 1); /* SR left out, counted */
    CHECK(strcmp(tiny, "OCT\\CT") == 0);
}

/* The worklist rules see every modality: a CT rule matches a study of OCT then CT. */
static void test_rule_sees_second_modality(void)
{
    static const char conf[] = "[node]\nname = T\n[worklist]\n"
                               "rule = modality=CT : priority=urgent subspecialty=ct\n";
    pm_config *cfg = NULL;
    char err[256];
    CHECK_RC(pm_config_parse("node.conf", conf, sizeof conf - 1, "/tmp", &cfg, err, sizeof err));
    static const char *const mods[] = {"OCT", "CT"};
    Pm__Series series[2];
    Pm__Series *ptrs[2];
    Pm__StudyAnnounced st;
    study_of(&st, series, ptrs, mods, 2);
    char list[PM_STUDY_MODALITIES_MAX], prio[PM_WORKLIST_PRIORITY_MAX];
    char sub[PM_WORKLIST_SUBSPECIALTY_MAX];
    int double_read;
    uint64_t due;
    pm_study_modalities(&st, list, sizeof list);
    pm_worklist_terms(cfg, list, "EYE", "", 0, prio, sub, &double_read, &due);
    CHECK(strcmp(prio, "urgent") == 0);
    CHECK(strcmp(sub, "ct") == 0);
    pm_config_destroy(&cfg);
}

/* ai_rule lines: what parses, what is refused, and what matches. */
static void test_ai_rules(void)
{
    pm_ai_rule r;
    char why[256];
    CHECK_RC(pm_ai_rule_parse("code=SCT:50960005 meaning=*hem* : priority=immediate by=ai:ich", 3,
                              &r, why, sizeof why));
    CHECK(strcmp(r.code_scheme, "SCT") == 0 && strcmp(r.code_value, "50960005") == 0);
    CHECK(pm_ai_rule_needs_sr(&r));
    pm_ai_match m = {0};
    pm_ai_match_code(&r, &m, "SCT", "50960005", "Normal"); /* the meaning must match too */
    CHECK(!pm_ai_match_holds(&r, &m));
    pm_ai_match_code(&r, &m, "sct", "50960005", "Hemorrhage"); /* scheme: any case */
    CHECK(pm_ai_match_holds(&r, &m));
    pm_ai_match_reason(&r, &m, why, sizeof why);
    CHECK(strcmp(why, "AI result: Hemorrhage (sct:50960005)") == 0);
    pm_ai_rule_free(&r);

    CHECK_RC(pm_ai_rule_parse("series_description=\"AI ICH*\" description=CT* : priority=urgent "
                              "by=ai:x reason=\"a: b\"",
                              4, &r, why, sizeof why));
    CHECK(!pm_ai_rule_needs_sr(&r) && strcmp(r.reason, "a: b") == 0);
    memset(&m, 0, sizeof m);
    pm_ai_match_series(&r, &m, "ai ich positive");
    CHECK(!pm_ai_match_holds(&r, &m)); /* and the study description */
    pm_ai_match_study(&r, &m, "CT HEAD");
    CHECK(pm_ai_match_holds(&r, &m));
    pm_ai_rule_free(&r);

    const char *bad[] = {"code=SCT:1 priority=urgent by=x", /* no ' : ' */
                         " : priority=urgent by=x",         /* no condition */
                         "code=1 : by=x",                   /* no priority */
                         "code=1 : priority=urgent",        /* no source */
                         "code=1 : priority=soon by=x",
                         "colour=red : priority=urgent by=x",
                         "code=SCT: : priority=urgent by=x",
                         "code=1 code=2 : priority=urgent by=x",
                         "code=1 : priority=urgent by=x weight=3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = 0;
        CHECK_EQ_INT(pm_ai_rule_parse(bad[i], 1, &r, why, sizeof why), PM_E_CONFIG);
        CHECK(why[0] != 0);
        CHECK(r.text == NULL && r.code_value == NULL);
    }
}

int main(void)
{
    test_ai_rules();
    test_second_reader();
    test_claim_and_release();
    test_report_rules();
    test_at_risk();
    test_next();
    test_modalities();
    test_rule_sees_second_modality();
    puts("test_worklist_rules: ok");
    return 0;
}
