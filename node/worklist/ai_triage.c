/* AI triage of one study (node/worklist/ai_triage.h). */
#include "node/worklist/ai_triage.h"
#include "crypto/hash.h"
#include "node/config/value.h"
#include "node/dicom/sr_codes.h"
#include "node/worklist/ai_rules.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

#define SR_CLASS_PREFIX "1.2.840.10008.5.1.4.1.1.88."

typedef struct {
    const pm_config *cfg;
    pm_ai_match *m; /* one per rule */
} code_feed;

static int feed_code(void *ctx, const char *scheme, const char *value, const char *meaning)
{
    code_feed *f = ctx;
    for (size_t i = 0; i < f->cfg->n_ai_rules; i++)
        pm_ai_match_code(&f->cfg->ai_rules[i], &f->m[i], scheme, value, meaning);
    return 0;
}

/* An SR the node wrote itself for a report: not an AI result. */
static int own_report_sr(const Pm__StudyView *sv, const char *sop_uid)
{
    for (size_t i = 0; i < sv->n_reports; i++)
        if (strcmp(sv->reports[i]->sr_sop_instance_uid, sop_uid) == 0)
            return 1;
    return 0;
}

static int wants_sr(const pm_config *cfg)
{
    for (size_t i = 0; i < cfg->n_ai_rules; i++)
        if (pm_ai_rule_needs_sr(&cfg->ai_rules[i]))
            return 1;
    return 0;
}

/* Feeds every rule what the study holds: descriptions, and the codes of its SRs. */
static void feed_study(const pm_wl_node *n, const Pm__StudyView *sv, pm_ai_match *m)
{
    const pm_config *cfg = n->cfg;
    const Pm__StudyAnnounced *st = sv->study;
    code_feed f = {cfg, m};
    int read_srs = n->blobs && wants_sr(cfg);
    for (size_t i = 0; i < cfg->n_ai_rules; i++)
        pm_ai_match_study(&cfg->ai_rules[i], &m[i], st->study_description);
    for (size_t s = 0; s < st->n_series; s++) {
        const Pm__Series *se = st->series[s];
        for (size_t i = 0; i < cfg->n_ai_rules; i++)
            pm_ai_match_series(&cfg->ai_rules[i], &m[i], se->description);
        for (size_t k = 0; read_srs && k < se->n_instances; k++) {
            const Pm__Instance *in = se->instances[k];
            char path[4096], err[256];
            if (strncmp(in->sop_class_uid, SR_CLASS_PREFIX, strlen(SR_CLASS_PREFIX)) != 0 ||
                own_report_sr(sv, in->sop_instance_uid) || in->hash.len != PM_HASH_BYTES ||
                pm_blobs_path(n->blobs, in->hash.data, path, sizeof path) != PM_OK)
                continue;
            if (pm_dicom_sr_codes(path, feed_code, &f, err, sizeof err) < 0)
                pm_warn("ai", "SR %s of study %s not read: %s", in->sop_instance_uid,
                        st->study_instance_uid, err);
        }
    }
}

/* Whether the rule's flag would change anything: the item is less urgent than the
 * rule says, and the rule's product has not flagged it so already. */
static int would_raise(const pm_ai_rule *r, const Pm__StudyView *sv)
{
    if (pm_config_priority_index(r->priority) >= pm_config_priority_index(pm_wl_priority(sv)))
        return 0;
    for (size_t i = 0; i < sv->n_flags; i++)
        if (strcmp(sv->flags[i]->by, r->by) == 0 &&
            strcmp(sv->flags[i]->priority, r->priority) == 0)
            return 0;
    return 1;
}

static int open_item_of(const pm_wl_node *n, const Pm__StudyView *sv)
{
    const char *state = pm_wl_state(sv, pm_now_ms());
    return sv->study && !sv->withdrawn && sv->site.len == PM_ID_BYTES &&
           memcmp(sv->site.data, pm_identity_public(n->id), PM_ID_BYTES) == 0 &&
           (strcmp(state, "unreported") == 0 || strcmp(state, "claimed") == 0);
}

int pm_ai_triage_study(const pm_wl_node *n, const char *uid)
{
    if (!n->cfg->n_ai_rules)
        return PM_OK;
    Pm__StudyView *sv = NULL;
    int rc = pm_views_study(n->store, uid, &sv);
    if (rc)
        return rc;
    pm_ai_match *m = open_item_of(n, sv) ? calloc(n->cfg->n_ai_rules, sizeof *m) : NULL;
    if (m) {
        feed_study(n, sv, m);
        size_t i = 0;
        while (i < n->cfg->n_ai_rules && !pm_ai_match_holds(&n->cfg->ai_rules[i], &m[i]))
            i++;
        const pm_ai_rule *r = i < n->cfg->n_ai_rules ? &n->cfg->ai_rules[i] : NULL;
        if (r && would_raise(r, sv)) {
            char reason[512], msg[512];
            pm_ai_match_reason(r, &m[i], reason, sizeof reason);
            rc = pm_wl_flag_by_rule(n, uid, r->priority, reason, r->by, r->text, msg, sizeof msg);
            if (rc)
                pm_warn("ai", "ai_rule of line %d matched study %s, but: %s", r->line, uid, msg);
            else
                pm_info("ai", "%s (ai_rule of line %d: %s)", msg, r->line, reason);
        }
    }
    free(m);
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}
