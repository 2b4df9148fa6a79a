/* The worklist's write operations: claim, release, report and verify, each checked
 * against the rules of states.h and written as a signed event on this node's feed.
 * One implementation for every door: the CLI (node/cli/cmd_worklist.c) and the web
 * server (node/http, through the main loop's mailbox) call these.
 *
 * Every function fills msg (one line, no newline) with what happened, the sentence the
 * CLI prints on success ("claimed ...") or on refusal ("study ... is claimed by ..."),
 * and returns PM_OK; a pm_wl_verdict (> 0, states.h) when the worklist's rules refuse
 * it, e.g. PM_WL_HELD_BY_OTHER; PM_E_NOTFOUND (no node announced the study); PM_E_INVAL
 * (bad reporter id or report text); PM_E_MESH (no mesh yet); or another PM_E_* code. The caller
 * tells a running node to push the event (the CLI kicks it; the main loop pushes). */
#ifndef PM_WORKLIST_ACTIONS_H
#define PM_WORKLIST_ACTIONS_H

#include <stddef.h>

#include "crypto/identity.h"
#include "node/config/config.h"
#include "store/blobs.h"
#include "store/store.h"

#define PM_WL_REPORT_MAX (1u << 20)

typedef struct {
    pm_store *store;
    pm_blobs *blobs; /* where a report's DICOM SR is kept */
    const pm_identity *id;
    const pm_config *cfg;
} pm_wl_node;

/* 1 if r is a reporter id: 1-64 letters, digits, '.', '_', '-', '@'. */
int pm_wl_reporter_ok(const char *r);

/* NULL if text (len bytes) is an acceptable report (non-blank UTF-8 without NUL, at
 * most PM_WL_REPORT_MAX bytes), else why not ("is empty", "is not UTF-8 text", ...). */
const char *pm_wl_report_text_problem(const char *text, size_t len);

int pm_wl_claim(const pm_wl_node *n, const char *uid, const char *reporter, char *msg,
                size_t msglen);
int pm_wl_release(const pm_wl_node *n, const char *uid, const char *reporter, char *msg,
                  size_t msglen);
int pm_wl_verify(const pm_wl_node *n, const char *uid, const char *reporter, char *msg,
                 size_t msglen);
/* A coordinator (by, a reporter id) assigns the item to reporter: a claim on their
 * behalf, which takes the item from a current holder. */
int pm_wl_assign(const pm_wl_node *n, const char *uid, const char *reporter, const char *by,
                 char *msg, size_t msglen);
/* Raises or lowers the item's priority (immediate, urgent, routine) with a reason and
 * who or what raised it (1-256 characters: an AI product, a person); the due time
 * becomes the arrival plus this node's due time for the new priority. */
int pm_wl_flag(const pm_wl_node *n, const char *uid, const char *priority, const char *reason,
               const char *by, char *msg, size_t msglen);
/* pm_wl_flag for a flag an [worklist] ai_rule raised: ai_rule (the rule as written, at
 * most 4096 characters) travels in the event, and the worklist shows the flag as
 * raised by AI. */
int pm_wl_flag_by_rule(const pm_wl_node *n, const char *uid, const char *priority,
                       const char *reason, const char *by, const char *ai_rule, char *msg,
                       size_t msglen);

/* text must satisfy pm_wl_report_text_problem; with addendum it amends the item's latest
 * report. The same text twice is one report (PM_OK, msg says nothing new was recorded).
 * A warning that does not stop the report (the SR could not be made) goes into note, ""
 * if none. */
int pm_wl_report(const pm_wl_node *n, const char *uid, const char *reporter, const char *text,
                 int addendum, char *msg, size_t msglen, char *note, size_t notelen);

#endif
