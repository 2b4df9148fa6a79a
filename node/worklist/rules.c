/* The worklist rules: parsing one rule line, and the first-match-wins choice of a
 * new study's terms. */
#include "node/worklist/rules.h"
#include "node/config/config.h"
#include "node/config/value.h"
#include "proto/error.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECOND PM_CONFIG_SECOND_MS
#define DAY PM_CONFIG_DAY_MS

int pm_worklist_rule_token(char **sp, char **key, char **val, char *why, size_t wl)
{
    char *s = *sp, q[PM_CONFIG_QUOTE_MAX];
    while (isspace((unsigned char)*s))
        s++;
    if (!*s)
        return 0;
    char *start = s;
    while (*s && *s != '=' && !isspace((unsigned char)*s))
        s++;
    if (*s != '=' || s == start) {
        char *e = s;
        while (*e && !isspace((unsigned char)*e))
            e++;
        *e = '\0';
        pm_config_errf(why, wl, "%s is not name=value", pm_config_quote(start, q));
        return PM_E_CONFIG;
    }
    *s++ = '\0';
    *key = start;
    if (*s == '"') {
        *val = ++s;
        char *close = strchr(s, '"');
        if (!close) {
            pm_config_errf(why, wl, "%s=: missing closing quote", pm_config_quote(start, q));
            return PM_E_CONFIG;
        }
        *close = '\0';
        s = close + 1;
        if (*s && !isspace((unsigned char)*s)) {
            pm_config_errf(why, wl, "%s=: text after closing quote", pm_config_quote(start, q));
            return PM_E_CONFIG;
        }
    } else {
        *val = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (*s)
            *s++ = '\0';
    }
    if (!**val) {
        pm_config_errf(why, wl, "%s has an empty value", pm_config_quote(start, q));
        return PM_E_CONFIG;
    }
    *sp = s;
    return 1;
}

void pm_worklist_rule_free(pm_worklist_rule *r)
{
    free(r->conditions_text);
    free(r->modality);
    free(r->body_part);
    free(r->description);
    memset(r, 0, sizeof *r);
}

/* Reads the KEY=VALUE conditions of s into r's patterns. */
static int parse_conditions(char *s, pm_worklist_rule *r, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX], *key, *val;
    int t;
    while ((t = pm_worklist_rule_token(&s, &key, &val, why, wl)) == 1) {
        char **slot = strcmp(key, "modality") == 0      ? &r->modality
                      : strcmp(key, "body_part") == 0   ? &r->body_part
                      : strcmp(key, "description") == 0 ? &r->description
                                                        : NULL;
        if (!slot) {
            pm_config_errf(why, wl, "unknown condition %s (modality, body_part, description)",
                           pm_config_quote(key, q));
            return PM_E_CONFIG;
        }
        if (*slot) {
            pm_config_errf(why, wl, "condition %s given twice", key);
            return PM_E_CONFIG;
        }
        if (strlen(val) > PM_WORKLIST_PATTERN_MAX || pm_config_has_control(val)) {
            pm_config_errf(why, wl, "%s=%s: not a pattern (at most %d characters)", key,
                           pm_config_quote(val, q), PM_WORKLIST_PATTERN_MAX);
            return PM_E_CONFIG;
        }
        if (!(*slot = strdup(val)))
            return PM_E_NOMEM;
    }
    return t < 0 ? PM_E_CONFIG : PM_OK;
}

enum { S_PRIORITY, S_SUBSPECIALTY, S_DOUBLE_READ, S_DUE, S_COUNT };

/* Stores one setting into r; *which receives the setting's S_* index. */
static int parse_setting(const char *key, const char *val, pm_worklist_rule *r, int *which,
                         char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX];
    if (strcmp(key, "priority") == 0) {
        *which = S_PRIORITY;
        if (pm_config_priority_index(val) < 0) {
            pm_config_errf(why, wl, "priority=%s is not a priority (immediate, urgent, routine)",
                           pm_config_quote(val, q));
            return PM_E_CONFIG;
        }
        strcpy(r->priority, val);
    } else if (strcmp(key, "subspecialty") == 0) {
        *which = S_SUBSPECIALTY;
        if (strlen(val) >= sizeof r->subspecialty || pm_config_has_control(val)) {
            pm_config_errf(why, wl, "subspecialty=%s is longer than %zu characters",
                           pm_config_quote(val, q), sizeof r->subspecialty - 1);
            return PM_E_CONFIG;
        }
        strcpy(r->subspecialty, val);
    } else if (strcmp(key, "double_read") == 0) {
        *which = S_DOUBLE_READ;
        if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0) {
            pm_config_errf(why, wl, "double_read=%s is not yes or no", pm_config_quote(val, q));
            return PM_E_CONFIG;
        }
        r->double_read = strcmp(val, "yes") == 0;
    } else if (strcmp(key, "due") == 0) {
        *which = S_DUE;
        if (pm_config_parse_duration(val, &r->due_ms) != PM_OK || r->due_ms < SECOND ||
            r->due_ms > 3650 * DAY) {
            pm_config_errf(why, wl, "due=%s is not a duration (1s..3650d, e.g. 90s, 15m, 1h, 28d)",
                           pm_config_quote(val, q));
            return PM_E_CONFIG;
        }
    } else {
        pm_config_errf(why, wl, "unknown setting %s (priority, subspecialty, double_read, due)",
                       pm_config_quote(key, q));
        return PM_E_CONFIG;
    }
    return PM_OK;
}

/* Reads the KEY=VALUE settings of s into r: at least one, each at most once. */
static int parse_settings(char *s, pm_worklist_rule *r, char *why, size_t wl)
{
    bool any = false, seen[S_COUNT] = {false};
    char *key, *val;
    int t, which = 0;
    while ((t = pm_worklist_rule_token(&s, &key, &val, why, wl)) == 1) {
        any = true;
        if (parse_setting(key, val, r, &which, why, wl) != PM_OK)
            return PM_E_CONFIG;
        if (seen[which]) {
            pm_config_errf(why, wl, "setting %s given twice", key);
            return PM_E_CONFIG;
        }
        seen[which] = true;
    }
    if (t < 0)
        return PM_E_CONFIG;
    if (!any) {
        pm_config_errf(why, wl, "no settings after ':' (priority, subspecialty, double_read, due)");
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_worklist_rule_parse(const char *text, int line, pm_worklist_rule *r, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX];
    int rc = PM_E_CONFIG;
    memset(r, 0, sizeof *r);
    r->line = line;
    char *copy = strdup(text);
    r->conditions_text = strdup(text);
    if (!copy || !r->conditions_text) {
        rc = PM_E_NOMEM;
        goto fail;
    }
    /* The first ':' outside double quotes separates conditions from settings. */
    char *sep = NULL;
    bool inq = false;
    for (char *p = copy; *p && !sep; p++) {
        if (*p == '"')
            inq = !inq;
        else if (*p == ':' && !inq)
            sep = p;
    }
    if (!sep) {
        pm_config_errf(why, wl,
                       "%s is not CONDITIONS : SETTINGS (e.g. modality=CT body_part=HEAD : "
                       "priority=urgent subspecialty=neuro)",
                       pm_config_quote(text, q));
        goto fail;
    }
    *sep = '\0';
    if ((rc = parse_conditions(copy, r, why, wl)) != PM_OK ||
        (rc = parse_settings(sep + 1, r, why, wl)) != PM_OK)
        goto fail;
    free(copy);
    return PM_OK;
fail:
    free(copy);
    pm_worklist_rule_free(r);
    return rc;
}

static bool rule_matches(const pm_worklist_rule *r, const char *modality, const char *body_part,
                         const char *description)
{
    if (r->modality) {
        /* Any element of a backslash-separated list of modalities may match. */
        const char *m = modality ? modality : "";
        bool hit = false;
        char item[PM_WORKLIST_PATTERN_MAX + 1];
        for (;;) {
            const char *end = strchr(m, '\\');
            size_t len = end ? (size_t)(end - m) : strlen(m);
            while (len && m[0] == ' ')
                m++, len--;
            while (len && m[len - 1] == ' ')
                len--;
            if (len < sizeof item) {
                memcpy(item, m, len);
                item[len] = '\0';
                if (pm_config_wildcard_match(r->modality, item)) {
                    hit = true;
                    break;
                }
            }
            if (!end)
                break;
            m = end + 1;
        }
        if (!hit)
            return false;
    }
    if (r->body_part && !pm_config_wildcard_match(r->body_part, body_part))
        return false;
    if (r->description && !pm_config_wildcard_match(r->description, description))
        return false;
    return true;
}

uint64_t pm_worklist_due_for(const pm_config *cfg, const char *priority)
{
    int p = priority ? pm_config_priority_index(priority) : -1;
    if (p < 0)
        p = pm_config_priority_index(cfg->default_priority);
    return p == 0 ? cfg->due_immediate_ms : p == 1 ? cfg->due_urgent_ms : cfg->due_routine_ms;
}

void pm_worklist_terms(const pm_config *cfg, const char *modality, const char *body_part,
                       const char *description, uint64_t now_ms,
                       char priority[PM_WORKLIST_PRIORITY_MAX],
                       char subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX], int *double_read,
                       uint64_t *due_ms)
{
    const pm_worklist_rule *hit = NULL;
    for (size_t i = 0; i < cfg->n_rules && !hit; i++)
        if (rule_matches(&cfg->rules[i], modality, body_part, description))
            hit = &cfg->rules[i];
    const char *prio = hit && hit->priority[0] ? hit->priority : cfg->default_priority;
    snprintf(priority, PM_WORKLIST_PRIORITY_MAX, "%s", prio);
    snprintf(subspecialty, PM_WORKLIST_SUBSPECIALTY_MAX, "%s", hit ? hit->subspecialty : "");
    *double_read = hit ? hit->double_read : 0;
    uint64_t due = hit && hit->due_ms ? hit->due_ms : pm_worklist_due_for(cfg, prio);
    *due_ms = now_ms > UINT64_MAX - due ? UINT64_MAX : now_ms + due;
}
