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

const char *pm_wl_verdict_text(pm_wl_verdict v)
{
    switch (v) {
    case PM_WL_ALLOWED: return "allowed";
    case PM_WL_ALREADY_REPORTED: return "the study is already reported";
    case PM_WL_HELD_BY_OTHER: return "another reporter holds the claim";
    case PM_WL_NOT_HOLDER: return "only the claim's holder may release it";
    case PM_WL_NOT_REPORTED: return "only a reported study can be verified";
    case PM_WL_NO_SECOND_READER: return "only a second reader (not the report's author) may verify";
    }
    return "not allowed";
}
