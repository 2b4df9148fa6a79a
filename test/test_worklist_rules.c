/* Unit test of the worklist's shared rules: the state transitions that the fold and
 * the commands both call (node/worklist/states.h), and ModalitiesInStudy as C-FIND,
 * the worklist rules and the worklist's output all take it (node/studies/modalities.h).
 * Each case here is one that two copies of a rule once answered differently. */
#include "node/config/config.h"
#include "node/studies/modalities.h"
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

int main(void)
{
    test_second_reader();
    test_claim_and_release();
    test_modalities();
    test_rule_sees_second_modality();
    puts("test_worklist_rules: ok");
    return 0;
}
