/* AI triage: the [worklist] ai_rule lines (ai_rules.h) applied to a study this node
 * acquired, after each announcement of it (an AI product usually sends its result, an
 * SR or a result series, in an association of its own after the images, and the study
 * is announced again). The first rule whose conditions hold raises the item's
 * priority with a flag (pm_wl_flag_by_rule) naming the rule's AI product as its source
 * and carrying the rule: its due time is recomputed from the new priority, every node
 * re-orders its worklist, and the worklist shows the flag as raised by AI.
 *
 * Never lowers a priority and never flags twice: nothing is done when the item is
 * already as urgent as the rule says, or when the same product already flagged it so
 * (a person may lower it afterwards, and a later announcement does not undo that).
 * Only open items (unreported, claimed) are raised. */
#ifndef PM_WORKLIST_AI_TRIAGE_H
#define PM_WORKLIST_AI_TRIAGE_H

#include "node/worklist/actions.h"

/* Applies n->cfg's AI rules to study uid. The SRs are read from n->blobs (NULL: only
 * the rules without SR conditions can match). Returns PM_OK (raised or not; logged),
 * or the error of reading or flagging the study. */
int pm_ai_triage_study(const pm_wl_node *n, const char *uid);

#endif
