/* Signed events as audit records (node/audit/atna_events.h). */
#include "node/audit/atna_events.h"
#include "crypto/hash.h"
#include "store/views.h"

#include <stdio.h>
#include <string.h>

static int copy_patient(void *ctx, const Pm__StudyView *s)
{
    pm_atna_event_text *t = ctx;
    if (s->study) {
        snprintf(t->patient_id, sizeof t->patient_id, "%s", s->study->patient_id);
        snprintf(t->patient_name, sizeof t->patient_name, "%s", s->study->patient_name);
    }
    return 1;
}

void pm_atna_patient_of(pm_store *store, const char *study_uid, pm_atna_event_text *text)
{
    pm_views_studies(store, study_uid, NULL, copy_patient, text);
}

static void node_object(pm_atna_event_text *t, const ProtobufCBinaryData *id)
{
    if (id->len == PM_ID_BYTES)
        pm_hex_encode(id->data, PM_ID_BYTES, t->object);
}

/* The kind, user and detail of event types about the mesh or the roster. */
static void membership(const Pm__EventBody *b, pm_audit_record *r, pm_atna_event_text *t)
{
    r->kind = PM_AUDIT_MEMBERSHIP;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_GENESIS:
        node_object(t, &b->origin);
        snprintf(t->detail, sizeof t->detail, "genesis of mesh %s", b->genesis->mesh_name);
        break;
    case PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED:
        node_object(t, &b->member_admitted->node_id);
        snprintf(t->detail, sizeof t->detail, "member-admitted: %s at %s", b->member_admitted->name,
                 b->member_admitted->endpoint);
        break;
    case PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED:
        node_object(t, &b->member_revoked->node_id);
        snprintf(t->detail, sizeof t->detail, "member-revoked: %s", b->member_revoked->reason);
        break;
    case PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED:
        snprintf(t->object, sizeof t->object, "%s", b->reporter_registered->reporter_id);
        snprintf(t->detail, sizeof t->detail, "reporter-%s: %s",
                 b->reporter_registered->removed ? "removed" : "registered",
                 b->reporter_registered->name);
        break;
    default: /* a type added later: named, so it is not lost */
        snprintf(t->detail, sizeof t->detail, "%s", pm_event_type(b));
        break;
    }
}

/* The person an event about a study names, and what it says. */
static void study_event(const Pm__EventBody *b, pm_audit_record *r, pm_atna_event_text *t)
{
    const char *who = NULL, *why = "";
    r->kind = PM_AUDIT_RECORD;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED: {
        const Pm__StudyAnnounced *s = b->study_announced;
        r->kind = PM_AUDIT_STORE;
        snprintf(t->patient_id, sizeof t->patient_id, "%s", s->patient_id);
        snprintf(t->patient_name, sizeof t->patient_name, "%s", s->patient_name);
        size_t n = 0;
        for (size_t i = 0; i < s->n_series; i++)
            n += s->series[i]->n_instances;
        snprintf(t->detail, sizeof t->detail, "study-announced: %zu instance%s", n,
                 n == 1 ? "" : "s");
        return;
    }
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED:
        r->kind = PM_AUDIT_ACCESS;
        who = b->study_accessed->reporter;
        break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED: who = b->item_claimed->reporter; break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED: who = b->item_released->reporter; break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED: who = b->report_submitted->reporter; break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED: who = b->report_verified->reporter; break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED:
        who = b->item_flagged->by, why = b->item_flagged->reason;
        break;
    case PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN: why = b->study_withdrawn->reason; break;
    default: break;
    }
    if (who && *who)
        snprintf(t->user, sizeof t->user, "%s", who);
    snprintf(t->detail, sizeof t->detail, "%s%s%s", pm_event_type(b), *why ? ": " : "", why);
}

int pm_atna_event_record(pm_store *store, const pm_event *ev, const char *node_name,
                         pm_audit_record *r, pm_atna_event_text *t)
{
    const Pm__EventBody *b = ev->body;
    memset(r, 0, sizeof *r);
    memset(t, 0, sizeof *t);
    snprintf(t->user, sizeof t->user, "%s", node_name);
    r->time_ms = b->wall_ms;
    const char *uid = pm_event_study_uid(b);
    if (uid && *uid) {
        snprintf(t->study, sizeof t->study, "%s", uid);
        study_event(b, r, t);
        if (!*t->patient_id)
            pm_views_studies(store, uid, NULL, copy_patient, t);
    } else {
        membership(b, r, t);
    }
    r->user = t->user;
    r->study_uid = *t->study ? t->study : NULL;
    r->patient_id = *t->patient_id ? t->patient_id : NULL;
    r->patient_name = *t->patient_name ? t->patient_name : NULL;
    r->object_id = *t->object ? t->object : NULL;
    r->detail = t->detail;
    return 1;
}
