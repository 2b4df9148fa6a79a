/* The worklist rules: what a new study gets from the `rule = CONDITIONS : SETTINGS`
 * lines of node.conf's [worklist] section (priority, subspecialty, double read, due
 * time), and the syntax of one such line.
 *
 * The config loader calls pm_worklist_rule_parse for each rule line and keeps the
 * rules in pm_config; ingest (and anything else that announces a study) calls
 * pm_worklist_terms. Pure: no I/O, no store. */
#ifndef PM_WORKLIST_RULES_H
#define PM_WORKLIST_RULES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_WORKLIST_PRIORITY_MAX 16
#define PM_WORKLIST_SUBSPECIALTY_MAX 64
/* Longest condition pattern. */
#define PM_WORKLIST_PATTERN_MAX 128

/* One `rule = CONDITIONS : SETTINGS` line of [worklist]. Patterns are NULL when the
 * rule puts no condition on that field; they match case-insensitively with `*` and `?`.
 * Every pointer is owned by the rule and freed by pm_worklist_rule_free. */
typedef struct {
    char *conditions_text; /* everything after "rule =", as written, for display */
    int line;              /* line of node.conf it came from */
    char *modality;        /* pattern; matches if any element of the study's list does */
    char *body_part;       /* pattern */
    char *description;     /* pattern */
    char priority[PM_WORKLIST_PRIORITY_MAX];         /* "" = the default priority */
    char subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX]; /* "" = none */
    int double_read;                                 /* 1 = second read required */
    uint64_t due_ms;                                 /* 0 = use the priority's default */
} pm_worklist_rule;

struct pm_config;

/* Parses text (the value of one `rule =` line, from line of node.conf) into *r.
 * Returns PM_OK; PM_E_CONFIG with the reason in why (one line, the bad part quoted);
 * PM_E_NOMEM. On failure *r is left zeroed, owning nothing. */
int pm_worklist_rule_parse(const char *text, int line, pm_worklist_rule *r, char *why, size_t wl);

/* Reads the next KEY=VALUE token of the text at *sp (VALUE may be "double quoted"),
 * cutting it in place: *key and *val point into it. Returns 1 and advances *sp, 0 at
 * the end, or PM_E_CONFIG with a reason in why. Shared with ai_rules.h. */
int pm_worklist_rule_token(char **sp, char **key, char **val, char *why, size_t wl);

/* Frees what r owns and zeroes it. Safe on a zeroed rule and twice. */
void pm_worklist_rule_free(pm_worklist_rule *r);

/* Applies the [worklist] rules of cfg to a study: the first matching rule wins, fields
 * it does not set (and every field when none matches) take the defaults:
 * default_priority, no subspecialty, no double read, due after the priority's due_*
 * duration. modality may be a backslash-separated list ("CT\\SR"); NULL strings count
 * as empty. now_ms is the announcement time (ms since the epoch); *due_ms receives
 * now_ms + the duration. */
void pm_worklist_terms(const struct pm_config *cfg, const char *modality, const char *body_part,
                       const char *description, uint64_t now_ms,
                       char priority[PM_WORKLIST_PRIORITY_MAX],
                       char subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX], int *double_read,
                       uint64_t *due_ms);

/* The default due duration of a priority ("immediate", "urgent", "routine"); that of
 * cfg's default priority for any other string, NULL included. */
uint64_t pm_worklist_due_for(const struct pm_config *cfg, const char *priority);

#ifdef __cplusplus
}
#endif
#endif
