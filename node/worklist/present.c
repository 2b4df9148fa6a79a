#include "node/worklist/present.h"
#include "crypto/hash.h"
#include "node/cli/cli.h"
#include "node/studies/modalities.h"
#include "node/worklist/states.h"
#include "store/views.h"

#include <string.h>

int pm_items_viewable(const Pm__StudyView *s, const uint8_t *self, const pm_liveness *liveness,
                      int (*is_local)(void *ctx, const uint8_t *hash), void *ctx)
{
    int all_local = is_local != NULL;
    for (size_t i = 0; all_local && s->study && i < s->study->n_series; i++)
        for (size_t j = 0; all_local && j < s->study->series[i]->n_instances; j++)
            all_local = is_local(ctx, s->study->series[i]->instances[j]->hash.data);
    if (all_local)
        return 1;
    if (!liveness)
        return 0;
    for (size_t i = 0; i < s->n_holders; i++) {
        if (memcmp(s->holders[i].data, self, PM_ID_BYTES) != 0 &&
            pm_liveness_is_up(liveness, s->holders[i].data))
            return 1;
    }
    return 0;
}

static json_t *flags_json(const Pm__StudyView *s)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->n_flags; i++) {
        const Pm__FlagView *f = s->flags[i];
        char when[32];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "priority",
                                              f->priority, "reason", f->reason, "by", f->by, "time",
                                              pm_cli_time(f->time_ms, when), "raised_by_ai",
                                              *f->ai_rule != 0, "ai_rule", f->ai_rule));
    }
    return list;
}

json_t *pm_items_worklist_json(const Pm__StudyView *s, uint64_t now, int viewable)
{
    const Pm__StudyAnnounced *st = s->study;
    const Pm__WorklistTerms *t = st->terms;
    const char *state = pm_views_item_state(s, now);
    uint64_t due = pm_wl_due_ms(s);
    char site[PM_ID_HEX], due_text[32], announced[32], lease[32];
    pm_hex_encode(s->site.data, PM_ID_BYTES, site);
    char modality[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(st, modality, sizeof modality);
    int claimed = strcmp(state, "claimed") == 0 && s->claim;
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:s, s:i, "
        "s:i}",
        "study_uid", st->study_instance_uid, "site", site, "patient_id", st->patient_id,
        "patient_name", st->patient_name, "accession", st->accession_number, "modality", modality,
        "description", st->study_description, "priority", pm_wl_priority(s), "subspecialty",
        t ? t->subspecialty : "", "state", state, "due", pm_cli_time(due, due_text), "overdue",
        pm_wl_overdue(s, now), "conflict", s->conflict, "viewable", viewable, "double_read",
        t ? t->double_read : 0, "announced", pm_cli_time(s->announced_ms, announced), "reports",
        (int)s->n_reports, "instances", (int)s->instance_count);
    json_object_set_new(o, "claimed_by", claimed ? json_string(s->claim->reporter) : json_null());
    json_object_set_new(o, "lease_until",
                        claimed ? json_string(pm_cli_time(s->claim->lease_until_ms, lease))
                                : json_null());
    json_object_set_new(o, "assigned_by",
                        claimed && *s->claim->assigned_by ? json_string(s->claim->assigned_by)
                                                          : json_null());
    json_object_set_new(o, "at_risk", json_boolean(pm_wl_at_risk(s, now)));
    json_object_set_new(o, "flags", flags_json(s));
    if (s->withdrawn)
        json_object_set_new(o, "withdraw_reason", json_string(s->withdraw_reason));
    return o;
}

json_t *pm_items_study_json(const Pm__StudyView *s, int viewable, int cached)
{
    const Pm__StudyAnnounced *st = s->study;
    char site[PM_ID_HEX], announced[32];
    pm_hex_encode(s->site.data, PM_ID_BYTES, site);
    json_t *holders = json_array();
    for (size_t i = 0; i < s->n_holders; i++) {
        char hex[PM_ID_HEX];
        pm_hex_encode(s->holders[i].data, PM_ID_BYTES, hex);
        json_array_append_new(holders, json_string(hex));
    }
    char modality[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(st, modality, sizeof modality);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:b, s:s, s:o}",
                     "study_uid", st->study_instance_uid, "site", site, "patient_id",
                     st->patient_id, "patient_name", st->patient_name, "study_date", st->study_date,
                     "accession", st->accession_number, "modality", modality, "description",
                     st->study_description, "series", (json_int_t)st->n_series, "instances",
                     (json_int_t)s->instance_count, "bytes", (json_int_t)s->total_bytes, "viewable",
                     viewable, "cached", cached, "announced",
                     pm_cli_time(s->announced_ms, announced), "holders", holders);
}

int pm_items_counts(struct pm_store *store, pm_worklist_counts *w)
{
    uint64_t now = w->now, claimed = 0, lapsed = 0;
    memset(w, 0, sizeof *w);
    w->now = now;
    /* Keys only, no view read: a claimed item whose lease has ended reads as
     * unreported (pm_wl_state), counted from the lease index. */
    int rc = pm_views_count_by_attr(store, PM_ATTR_STATE, "", 0, &w->studies);
    if (!rc)
        rc = pm_views_count_by_attr(store, PM_ATTR_STATE, "unreported", 1, &w->unreported);
    if (!rc)
        rc = pm_views_count_by_attr(store, PM_ATTR_STATE, "reported", 1, &w->reported);
    if (!rc)
        rc = pm_views_count_by_attr(store, PM_ATTR_STATE, "verified", 1, &w->verified);
    if (!rc)
        rc = pm_views_count_by_attr(store, PM_ATTR_STATE, "claimed", 1, &claimed);
    if (!rc)
        rc = pm_views_count_lapsed(store, now, &lapsed);
    if (!rc) {
        lapsed = lapsed < claimed ? lapsed : claimed;
        w->claimed = claimed - lapsed;
        w->unreported += lapsed;
        rc = pm_views_count_overdue(store, now, &w->overdue, &w->orphans);
    }
    return rc;
}
