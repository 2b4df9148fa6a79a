/* The worklist's state transitions: one function per rule, shared by the fold
 * (store/studies.c, which applies events to the views) and by every command that
 * writes an event (the CLI today; the admin socket and the REST API call the same).
 * A command therefore refuses exactly what the fold would ignore, and says why.
 *
 * The functions are pure: they read a study view and a state, depend on proto/ only,
 * and may be called from store/ without a circle. The state passed in is the fold's
 * own (sv->state) when folding, or pm_views_item_state(sv, now) in a command, so that
 * an expired lease reads as unreported. */
#ifndef PM_WORKLIST_STATES_H
#define PM_WORKLIST_STATES_H

#include <stdint.h>

#include "proto/view.pb-c.h"

/* Why a transition is not allowed; 0 (PM_WL_ALLOWED) when it is. */
typedef enum {
    PM_WL_ALLOWED = 0,
    PM_WL_ALREADY_REPORTED, /* claim: the item is reported or verified */
    PM_WL_HELD_BY_OTHER,    /* claim: another reporter holds an unexpired lease */
    PM_WL_NOT_HOLDER,       /* release: the item is not claimed by this reporter */
    PM_WL_NOT_REPORTED,     /* verify: the item is not in state reported */
    PM_WL_NO_SECOND_READER, /* verify: every report on it is the verifier's own */
} pm_wl_verdict;

/* May reporter claim (or renew a claim on) the item at at_ms? */
pm_wl_verdict pm_wl_may_claim(const Pm__StudyView *sv, const char *state, const char *reporter,
                              uint64_t at_ms);

/* May reporter release the item? Only the claim's holder may. */
pm_wl_verdict pm_wl_may_release(const Pm__StudyView *sv, const char *state, const char *reporter);

/* May verifier verify the item? Only a second reader may: someone other than the
 * author of at least one of its reports. A reporter who reported twice is still the
 * only author. */
pm_wl_verdict pm_wl_may_verify(const Pm__StudyView *sv, const char *state, const char *verifier);

/* A short sentence for a verdict, for messages ("only a second reader may verify"). */
const char *pm_wl_verdict_text(pm_wl_verdict v);

#endif
