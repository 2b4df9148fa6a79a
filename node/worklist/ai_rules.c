/* The AI rules: parsing one `ai_rule =` line and matching a study's contents. */
#include "node/worklist/ai_rules.h"
#include "node/config/value.h"
#include "proto/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SETTINGS_HELP "priority, by, reason"
#define CONDITIONS_HELP "code, meaning, series_description, description"

void pm_ai_rule_free(pm_ai_rule *r)
{
    free(r->text);
    free(r->code_scheme);
    free(r->code_value);
    free(r->meaning);
    free(r->series_description);
    free(r->description);
    free(r->by);
    free(r->reason);
    memset(r, 0, sizeof *r);
}

/* code=VALUE or code=SCHEME:VALUE. */
static int set_code(pm_ai_rule *r, const char *val)
{
    const char *colon = strchr(val, ':');
    if (colon && !(r->code_scheme = strndup(val, (size_t)(colon - val))))
        return PM_E_NOMEM;
    return (r->code_value = strdup(colon ? colon + 1 : val)) ? PM_OK : PM_E_NOMEM;
}

static char **condition_slot(pm_ai_rule *r, const char *key)
{
    return strcmp(key, "meaning") == 0              ? &r->meaning
           : strcmp(key, "series_description") == 0 ? &r->series_description
           : strcmp(key, "description") == 0        ? &r->description
                                                    : NULL;
}

static int parse_conditions(char *s, pm_ai_rule *r, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX], *key, *val;
    int t, any = 0;
    while ((t = pm_worklist_rule_token(&s, &key, &val, why, wl)) == 1) {
        any = 1;
        int code = strcmp(key, "code") == 0;
        char **slot = code ? &r->code_value : condition_slot(r, key);
        if (!slot) {
            pm_config_errf(why, wl, "unknown condition %s (" CONDITIONS_HELP ")",
                           pm_config_quote(key, q));
            return PM_E_CONFIG;
        }
        if (*slot) {
            pm_config_errf(why, wl, "condition %s given twice", key);
            return PM_E_CONFIG;
        }
        if (strlen(val) > PM_WORKLIST_PATTERN_MAX || pm_config_has_control(val) ||
            (code && (val[0] == ':' || val[strlen(val) - 1] == ':'))) {
            pm_config_errf(
                why, wl, "%s=%s: not a %s (at most %d characters)", key, pm_config_quote(val, q),
                code ? "code (VALUE or SCHEME:VALUE)" : "pattern", PM_WORKLIST_PATTERN_MAX);
            return PM_E_CONFIG;
        }
        if (code ? set_code(r, val) != PM_OK : !(*slot = strdup(val)))
            return PM_E_NOMEM;
    }
    if (t < 0)
        return PM_E_CONFIG;
    if (!any) {
        pm_config_errf(why, wl, "no conditions before ':' (" CONDITIONS_HELP ")");
        return PM_E_CONFIG;
    }
    return PM_OK;
}

static int parse_setting(pm_ai_rule *r, const char *key, const char *val, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX];
    char **slot = strcmp(key, "by") == 0 ? &r->by : strcmp(key, "reason") == 0 ? &r->reason : NULL;
    if (strcmp(key, "priority") == 0) {
        if (r->priority[0] || pm_config_priority_index(val) < 0) {
            pm_config_errf(why, wl, "priority=%s: %s", pm_config_quote(val, q),
                           r->priority[0] ? "given twice" : "not immediate, urgent or routine");
            return PM_E_CONFIG;
        }
        snprintf(r->priority, sizeof r->priority, "%s", val);
        return PM_OK;
    }
    if (!slot) {
        pm_config_errf(why, wl, "unknown setting %s (" SETTINGS_HELP ")", pm_config_quote(key, q));
        return PM_E_CONFIG;
    }
    if (*slot || strlen(val) > 256 || pm_config_has_control(val)) {
        pm_config_errf(why, wl, "%s=%s: %s", key, pm_config_quote(val, q),
                       *slot ? "given twice" : "not 1-256 characters of text");
        return PM_E_CONFIG;
    }
    return (*slot = strdup(val)) ? PM_OK : PM_E_NOMEM;
}

static int parse_settings(char *s, pm_ai_rule *r, char *why, size_t wl)
{
    char *key, *val;
    int t;
    while ((t = pm_worklist_rule_token(&s, &key, &val, why, wl)) == 1)
        if (parse_setting(r, key, val, why, wl) != PM_OK)
            return PM_E_CONFIG;
    if (t < 0)
        return PM_E_CONFIG;
    if (!r->priority[0] || !r->by) {
        pm_config_errf(why, wl,
                       "an ai_rule needs priority=P and by=NAME (the AI product) after ':'");
        return PM_E_CONFIG;
    }
    return PM_OK;
}

int pm_ai_rule_parse(const char *text, int line, pm_ai_rule *r, char *why, size_t wl)
{
    char q[PM_CONFIG_QUOTE_MAX];
    memset(r, 0, sizeof *r);
    r->line = line;
    char *copy = strdup(text), *sep = NULL;
    int rc = PM_E_NOMEM;
    if (!copy || !(r->text = strdup(text)))
        goto fail;
    /* The last ':' outside double quotes separates conditions from settings: a code
     * condition may hold one (SCHEME:VALUE). */
    bool inq = false;
    for (char *p = copy; *p; p++) {
        if (*p == '"')
            inq = !inq;
        else if (*p == ':' && !inq && (p[1] == ' ' || p[1] == '\t' || !p[1]) &&
                 (p == copy || p[-1] == ' ' || p[-1] == '\t'))
            sep = p;
    }
    rc = PM_E_CONFIG;
    if (!sep) {
        pm_config_errf(why, wl,
                       "%s is not CONDITIONS : SETTINGS (e.g. code=SCT:50960005 : "
                       "priority=immediate by=ai:ich); put spaces around the ':'",
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
    pm_ai_rule_free(r);
    return rc;
}

int pm_ai_rule_needs_sr(const pm_ai_rule *r)
{
    return r->code_value || r->meaning;
}

void pm_ai_match_code(const pm_ai_rule *r, pm_ai_match *m, const char *scheme, const char *value,
                      const char *meaning)
{
    if (m->sr_hit || !pm_ai_rule_needs_sr(r))
        return;
    if (r->code_value && (strcmp(r->code_value, value) != 0 ||
                          (r->code_scheme && strcasecmp(r->code_scheme, scheme) != 0)))
        return;
    if (r->meaning && !pm_config_wildcard_match(r->meaning, meaning))
        return;
    m->sr_hit = 1;
    snprintf(m->what, sizeof m->what, "%s%s%s%s%s%s", *meaning ? meaning : "", *meaning ? " (" : "",
             scheme, *scheme ? ":" : "", value, *meaning ? ")" : "");
}

void pm_ai_match_series(const pm_ai_rule *r, pm_ai_match *m, const char *series_description)
{
    if (!m->series_hit && r->series_description &&
        pm_config_wildcard_match(r->series_description, series_description)) {
        m->series_hit = 1;
        if (!m->what[0])
            snprintf(m->what, sizeof m->what, "series \"%s\"", series_description);
    }
}

void pm_ai_match_study(const pm_ai_rule *r, pm_ai_match *m, const char *description)
{
    if (r->description && pm_config_wildcard_match(r->description, description))
        m->description_hit = 1;
}

int pm_ai_match_holds(const pm_ai_rule *r, const pm_ai_match *m)
{
    return (!pm_ai_rule_needs_sr(r) || m->sr_hit) && (!r->series_description || m->series_hit) &&
           (!r->description || m->description_hit);
}

void pm_ai_match_reason(const pm_ai_rule *r, const pm_ai_match *m, char *out, size_t outlen)
{
    if (r->reason)
        snprintf(out, outlen, "%s", r->reason);
    else
        snprintf(out, outlen, "AI result: %s", m->what[0] ? m->what : r->text);
}
