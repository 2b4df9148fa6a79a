/* The worklist's state transitions (node/worklist/states.h). */
#include "node/worklist/states.h"

#include <string.h>

static int is_state(const char *state, const char *name)
{
    return strcmp(state, name) == 0;
}

pm_wl_verdict pm_wl_may_claim(const Pm__StudyView *sv, const char *state, const char *reporter,
                              uint64_t at_ms)
{
    if (sv->withdrawn)
        return PM_WL_WITHDRAWN;
    if (is_state(state, "reported") || is_state(state, "verified"))
        return PM_WL_ALREADY_REPORTED;
    if (is_state(state, "claimed") && sv->claim && strcmp(sv->claim->reporter, reporter) != 0 &&
        sv->claim->lease_until_ms > at_ms)
        return PM_WL_HELD_BY_OTHER;
    return PM_WL_ALLOWED;
}

pm_wl_verdict pm_wl_may_release(const Pm__StudyView *sv, const char *state, const char *reporter)
{
    if (!is_state(state, "claimed") || !sv->claim || strcmp(sv->claim->reporter, reporter) != 0)
        return PM_WL_NOT_HOLDER;
    return PM_WL_ALLOWED;
}

pm_wl_verdict pm_wl_may_verify(const Pm__StudyView *sv, const char *state, const char *verifier)
{
    if (!is_state(state, "reported"))
        return PM_WL_NOT_REPORTED;
    for (size_t i = 0; i < sv->n_reports; i++)
        if (strcmp(sv->reports[i]->reporter, verifier) != 0)
            return PM_WL_ALLOWED;
    return PM_WL_NO_SECOND_READER;
}

static int held_by_other(const Pm__StudyView *sv, const char *state, const char *reporter,
                         uint64_t at_ms)
{
    return is_state(state, "claimed") && sv->claim && strcmp(sv->claim->reporter, reporter) != 0 &&
           sv->claim->lease_until_ms > at_ms;
}

static const Pm__ReportView *report_with_sr(const Pm__StudyView *sv, const char *sr_uid)
{
    for (size_t i = 0; i < sv->n_reports; i++)
        if (*sr_uid && strcmp(sv->reports[i]->sr_sop_instance_uid, sr_uid) == 0)
            return sv->reports[i];
    return NULL;
}

pm_wl_verdict pm_wl_may_report(const Pm__StudyView *sv, const char *state, const char *reporter,
                               const char *text, const char *amends, uint64_t at_ms)
{
    if (sv->withdrawn)
        return PM_WL_WITHDRAWN;
    for (size_t i = 0; i < sv->n_reports; i++) {
        const Pm__ReportView *r = sv->reports[i];
        if (strcmp(r->reporter, reporter) == 0 && strcmp(r->text, text) == 0 &&
            strcmp(r->amends, amends) == 0)
            return PM_WL_DUPLICATE;
    }
    if (*amends)
        return report_with_sr(sv, amends) ? PM_WL_ALLOWED : PM_WL_NOTHING_TO_AMEND;
    if (held_by_other(sv, state, reporter, at_ms))
        return PM_WL_HELD_BY_OTHER;
    return PM_WL_ALLOWED;
}

pm_wl_verdict pm_wl_may_assign(const Pm__StudyView *sv, const char *state)
{
    if (sv->withdrawn)
        return PM_WL_WITHDRAWN;
    if (is_state(state, "reported") || is_state(state, "verified"))
        return PM_WL_ALREADY_REPORTED;
    return PM_WL_ALLOWED;
}

pm_wl_verdict pm_wl_may_withdraw(const Pm__StudyView *sv, const uint8_t *origin)
{
    if (sv->site.len != 32 || memcmp(sv->site.data, origin, 32) != 0)
        return PM_WL_NOT_ORIGIN;
    return PM_WL_ALLOWED;
}

const char *pm_wl_amendable_report(const Pm__StudyView *sv)
{
    for (size_t i = sv->n_reports; i-- > 0;)
        if (!*sv->reports[i]->amends && *sv->reports[i]->sr_sop_instance_uid)
            return sv->reports[i]->sr_sop_instance_uid;
    return NULL;
}

const char *pm_wl_priority(const Pm__StudyView *sv)
{
    if (sv->priority && *sv->priority)
        return sv->priority;
    const Pm__WorklistTerms *t = sv->study ? sv->study->terms : NULL;
    return t && *t->priority ? t->priority : "routine";
}

uint64_t pm_wl_due_ms(const Pm__StudyView *sv)
{
    if (sv->due_ms)
        return sv->due_ms;
    const Pm__WorklistTerms *t = sv->study ? sv->study->terms : NULL;
    return t ? t->due_ms : 0;
}

const char *pm_wl_state(const Pm__StudyView *sv, uint64_t now_ms)
{
    if (is_state(sv->state, "claimed") && sv->claim && sv->claim->lease_until_ms <= now_ms)
        return "unreported";
    return sv->state;
}

const char *const PM_WL_STATES[PM_WL_N_STATES + 1] = {"unreported", "claimed", "reported",
                                                      "verified", NULL};

int pm_wl_state_open(const char *state)
{
    return is_state(state, "unreported") || is_state(state, "claimed");
}

int pm_wl_overdue(const Pm__StudyView *sv, uint64_t now_ms)
{
    uint64_t due = pm_wl_due_ms(sv);
    return pm_wl_state_open(pm_wl_state(sv, now_ms)) && due && due < now_ms;
}

int pm_wl_at_risk(const Pm__StudyView *sv, uint64_t now_ms)
{
    uint64_t due = pm_wl_due_ms(sv);
    if (!is_state(pm_wl_state(sv, now_ms), "unreported") || !due)
        return 0;
    if (due <= now_ms)
        return 1;
    uint64_t window = due > sv->announced_ms ? due - sv->announced_ms : 0;
    return due - now_ms < window / 4;
}

uint64_t pm_wl_final_ms(const Pm__StudyView *sv)
{
    int double_read = sv->study && sv->study->terms && sv->study->terms->double_read;
    if (is_state(sv->state, "verified"))
        return double_read ? sv->verified_ms : sv->reported_ms;
    if (is_state(sv->state, "reported") && !double_read)
        return sv->reported_ms;
    return 0;
}

const char *pm_wl_verdict_text(pm_wl_verdict v)
{
    switch (v) {
    case PM_WL_ALLOWED: return "allowed";
    case PM_WL_ALREADY_REPORTED: return "the study is already reported";
    case PM_WL_HELD_BY_OTHER: return "another reporter holds the claim";
    case PM_WL_NOT_HOLDER: return "only the claim's holder may release it";
    case PM_WL_NOT_REPORTED: return "only a reported study can be verified";
    case PM_WL_NO_SECOND_READER: return "only a second reader (not the report's author) may verify";
    case PM_WL_WITHDRAWN: return "the study was withdrawn by the trust that acquired it";
    case PM_WL_DUPLICATE: return "the same report was already submitted";
    case PM_WL_NOTHING_TO_AMEND: return "there is no report to amend";
    case PM_WL_NOT_ORIGIN: return "only the trust that acquired the study may withdraw it";
    }
    return "not allowed";
}
