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

/* The states an item moves through, in order (NULL-terminated); a withdrawn study
 * leaves the worklist in whichever it was. */
extern const char *const PM_WL_STATES[];
enum { PM_WL_N_STATES = 4 };

/* Whether state is open work: unreported or claimed ("open" in filters). */
int pm_wl_state_open(const char *state);

/* Why a transition is not allowed; 0 (PM_WL_ALLOWED) when it is. */
typedef enum {
    PM_WL_ALLOWED = 0,
    PM_WL_ALREADY_REPORTED, /* claim: the item is reported or verified */
    PM_WL_HELD_BY_OTHER,    /* claim: another reporter holds an unexpired lease */
    PM_WL_NOT_HOLDER,       /* release: the item is not claimed by this reporter */
    PM_WL_NOT_REPORTED,     /* verify: the item is not in state reported */
    PM_WL_NO_SECOND_READER, /* verify: every report on it is the verifier's own */
    PM_WL_WITHDRAWN,        /* any: the acquiring trust withdrew the study */
    PM_WL_DUPLICATE,        /* report: the same reporter already submitted this text */
    PM_WL_NOTHING_TO_AMEND, /* addendum: no report with that SR UID */
    PM_WL_NOT_ORIGIN,       /* withdraw: only the acquiring node may */
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

/* May reporter submit text on the item at at_ms? A report needs the claim, or takes
 * the item when nobody holds it; the same text twice from one reporter is one
 * report (PM_WL_DUPLICATE). amends ("" for none) makes it an addendum to the report
 * whose SR SOP Instance UID it names: allowed whoever holds the claim. */
pm_wl_verdict pm_wl_may_report(const Pm__StudyView *sv, const char *state, const char *reporter,
                               const char *text, const char *amends, uint64_t at_ms);

/* May a coordinator assign the item (to anyone)? Any open item: an assignment takes
 * the item from a current holder. */
pm_wl_verdict pm_wl_may_assign(const Pm__StudyView *sv, const char *state);

/* May the node with id origin (PM_ID_BYTES) withdraw the study? Only its acquiring
 * node, the origin of its first announcement. */
pm_wl_verdict pm_wl_may_withdraw(const Pm__StudyView *sv, const uint8_t *origin);

/* The report an addendum amends by default: the SR UID of the latest report that is
 * not itself an addendum, or NULL when there is none (borrowed from sv). */
const char *pm_wl_amendable_report(const Pm__StudyView *sv);

/* The item's priority and due time now (flags applied by the fold). */
const char *pm_wl_priority(const Pm__StudyView *sv);
uint64_t pm_wl_due_ms(const Pm__StudyView *sv);

/* The item's state at now_ms: the fold's state, except that a claim whose lease has
 * lapsed reads as unreported (anyone may claim it again). */
const char *pm_wl_state(const Pm__StudyView *sv, uint64_t now_ms);

/* Open (unreported or claimed, a lapsed lease reading as unreported) and past due. */
int pm_wl_overdue(const Pm__StudyView *sv, uint64_t now_ms);

/* At risk: unclaimed, with less than a quarter of its due window (from arrival to
 * due) left, or none. Levelling puts these ahead of routine work. */
int pm_wl_at_risk(const Pm__StudyView *sv, uint64_t now_ms);

/* When the item's report became final, or 0 while it is not: verified where the rules
 * ask for a second read, else reported (the first report). A final report is what the
 * acquiring trust's RIS receives. */
uint64_t pm_wl_final_ms(const Pm__StudyView *sv);

/* A short sentence for a verdict, for messages ("only a second reader may verify"). */
const char *pm_wl_verdict_text(pm_wl_verdict v);

#endif
