/* The AI rules: `ai_rule = CONDITIONS : SETTINGS` lines of node.conf's [worklist]
 * section, which raise an item's priority from an AI product's result, and the match
 * of one study against them. Pure: no I/O, no store (node/worklist/ai_triage.h reads
 * the study and flags it).
 *
 * Conditions (all must hold; at least one):
 *   code=VALUE or code=SCHEME:VALUE   an SR of the study holds this code (a content
 *                                     item's concept name or coded value; the scheme,
 *                                     e.g. SCT, DCM, 99AIDOC, compared case-insensitively)
 *   meaning=PATTERN                   an SR code's meaning matches (with code=: the
 *                                     same code's)
 *   series_description=PATTERN        a series of the study is so described (an AI
 *                                     product's result series, e.g. "AI ICH POSITIVE*")
 *   description=PATTERN               the study description
 * Patterns match case-insensitively with `*` and `?`. Settings: priority (required:
 * immediate, urgent, routine), by (required: the AI product, named in the flag, e.g.
 * ai:aidoc-ich), reason (default "AI result: " and what matched). */
#ifndef PM_WORKLIST_AI_RULES_H
#define PM_WORKLIST_AI_RULES_H

#include <stddef.h>

#include "node/worklist/rules.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One `ai_rule =` line. Every pointer is owned by the rule (NULL: no such condition)
 * and freed by pm_ai_rule_free. */
typedef struct {
    char *text; /* everything after "ai_rule =", as written */
    int line;
    char *code_scheme, *code_value; /* code= (scheme NULL: any) */
    char *meaning, *series_description, *description;
    char priority[PM_WORKLIST_PRIORITY_MAX];
    char *by, *reason;
} pm_ai_rule;

/* Parses text (one `ai_rule =` value, from line of node.conf) into *r. PM_OK;
 * PM_E_CONFIG with the reason in why; PM_E_NOMEM. On failure *r owns nothing. */
int pm_ai_rule_parse(const char *text, int line, pm_ai_rule *r, char *why, size_t wl);
void pm_ai_rule_free(pm_ai_rule *r);

/* 1 if the rule reads SR content (has a code or meaning condition). */
int pm_ai_rule_needs_sr(const pm_ai_rule *r);

/* Match state of one rule over one study, fed what the study holds. */
typedef struct {
    int sr_hit, series_hit, description_hit;
    char what[256]; /* what matched, for the default reason */
} pm_ai_match;

/* Feeds one SR code (strings may be empty, never NULL). */
void pm_ai_match_code(const pm_ai_rule *r, pm_ai_match *m, const char *scheme, const char *value,
                      const char *meaning);
/* Feeds one series description, and the study description. */
void pm_ai_match_series(const pm_ai_rule *r, pm_ai_match *m, const char *series_description);
void pm_ai_match_study(const pm_ai_rule *r, pm_ai_match *m, const char *description);

/* 1 if every condition of r held for what was fed to m. */
int pm_ai_match_holds(const pm_ai_rule *r, const pm_ai_match *m);

/* The flag's reason: the rule's, or "AI result: " and what matched. */
void pm_ai_match_reason(const pm_ai_rule *r, const pm_ai_match *m, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
