#include "store/event.h"
#include "crypto/sign.h"
#include "proto/error.h"

#include <stdlib.h>
#include <string.h>

static int check_string(const char *s, size_t max)
{
    return s && strlen(s) <= max ? PM_OK : PM_E_PARSE;
}

int pm_event_priority_known(const char *p)
{
    return p &&
           (strcmp(p, "immediate") == 0 || strcmp(p, "urgent") == 0 || strcmp(p, "routine") == 0);
}

static int check_id(ProtobufCBinaryData id)
{
    return id.len == PM_ID_BYTES ? PM_OK : PM_E_PARSE;
}

/* Field shapes of each payload: everything later code relies on without re-checking. */
static int check_payload(const Pm__EventBody *b)
{
    int rc = PM_OK;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_GENESIS:
        if (b->genesis->quorum < 1 || b->genesis->quorum > 100 || b->mesh.len != 0)
            return PM_E_PARSE;
        rc = check_string(b->genesis->mesh_name, 256);
        return rc ? rc : check_string(b->genesis->founder_name, 256);
    case PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED:
        rc = check_id(b->member_admitted->node_id);
        return rc ? rc : check_string(b->member_admitted->name, 256);
    case PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED:
        rc = check_id(b->member_revoked->node_id);
        return rc ? rc : check_string(b->member_revoked->reason, 4096);
    case PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED: {
        const Pm__StudyAnnounced *s = b->study_announced;
        if (!s->study_instance_uid || !*s->study_instance_uid)
            return PM_E_PARSE;
        rc = check_string(s->study_instance_uid, PM_UID_MAX);
        for (size_t i = 0; !rc && i < s->n_series; i++) {
            rc = check_string(s->series[i]->series_instance_uid, PM_UID_MAX);
            for (size_t j = 0; !rc && j < s->series[i]->n_instances; j++) {
                const Pm__Instance *in = s->series[i]->instances[j];
                rc = check_string(in->sop_instance_uid, PM_UID_MAX);
                if (!rc && in->hash.len != PM_HASH_BYTES)
                    rc = PM_E_PARSE;
            }
        }
        return rc;
    }
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED:
        return check_string(b->item_claimed->study_instance_uid, PM_UID_MAX);
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED:
        return check_string(b->item_released->study_instance_uid, PM_UID_MAX);
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED:
        rc = check_string(b->report_submitted->study_instance_uid, PM_UID_MAX);
        if (!rc)
            rc = check_string(b->report_submitted->amends, PM_UID_MAX);
        return rc ? rc : check_string(b->report_submitted->text, PM_TEXT_MAX);
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED:
        return check_string(b->report_verified->study_instance_uid, PM_UID_MAX);
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED:
        for (size_t i = 0; i < b->study_accessed->n_served_by; i++)
            if (check_id(b->study_accessed->served_by[i]))
                return PM_E_PARSE;
        return check_string(b->study_accessed->study_instance_uid, PM_UID_MAX);
    case PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED: {
        const Pm__ItemFlagged *f = b->item_flagged;
        if (!pm_event_priority_known(f->priority))
            return PM_E_PARSE;
        rc = check_string(f->study_instance_uid, PM_UID_MAX);
        if (!rc)
            rc = check_string(f->reason, 4096);
        if (!rc)
            rc = check_string(f->ai_rule, 4096);
        return rc ? rc : check_string(f->by, 256);
    }
    case PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN:
        rc = check_string(b->study_withdrawn->study_instance_uid, PM_UID_MAX);
        return rc ? rc : check_string(b->study_withdrawn->reason, 4096);
    case PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED: {
        const Pm__ReporterRegistered *r = b->reporter_registered;
        if (!r->reporter_id || !*r->reporter_id || r->n_subspecialties > 64 || r->n_sites > 1024)
            return PM_E_PARSE;
        rc = check_string(r->reporter_id, 64);
        if (!rc)
            rc = check_string(r->name, 256);
        for (size_t i = 0; !rc && i < r->n_subspecialties; i++)
            rc = check_string(r->subspecialties[i], 64);
        for (size_t i = 0; !rc && i < r->n_sites; i++)
            rc = check_id(r->sites[i]);
        return rc;
    }
    case PM__EVENT_BODY__PAYLOAD__NOT_SET:
    default:
        /* A payload this build does not know: refuse rather than misread (SPEC). */
        return PM_E_UNKNOWN;
    }
}

static int parse(const uint8_t *bytes, size_t len, int verify, pm_event **out)
{
    if (len > PM_EVENT_MAX_BYTES)
        return PM_E_TOOBIG;
    if (len == 0)
        return PM_E_PARSE;
    Pm__Envelope *env = pm__envelope__unpack(NULL, len, bytes);
    if (!env)
        return PM_E_PARSE;
    int rc = PM_OK;
    pm_event *ev = NULL;
    Pm__EventBody *body = NULL;
    if (env->format != PM_EVENT_FORMAT) {
        rc = PM_E_FORMAT;
        goto fail;
    }
    if (env->sig.len != PM_SIG_BYTES || env->body.len == 0) {
        rc = PM_E_PARSE;
        goto fail;
    }
    body = pm__event_body__unpack(NULL, env->body.len, env->body.data);
    if (!body) {
        rc = PM_E_PARSE;
        goto fail;
    }
    if (body->origin.len != PM_ID_BYTES || body->prev.len != PM_HASH_BYTES ||
        (body->mesh.len != 0 && body->mesh.len != PM_HASH_BYTES)) {
        rc = PM_E_PARSE;
        goto fail;
    }
    /* Every event but the genesis names its mesh (the genesis' hash is the mesh id). */
    if (body->payload_case != PM__EVENT_BODY__PAYLOAD_GENESIS && body->mesh.len != PM_HASH_BYTES) {
        rc = PM_E_PARSE;
        goto fail;
    }
    if (body->seq == 0 || body->seq > (UINT64_MAX >> 1)) {
        rc = PM_E_SEQ;
        goto fail;
    }
    if (body->lamport == 0 || body->lamport > (UINT64_MAX >> 1)) {
        rc = PM_E_TIME;
        goto fail;
    }
    if ((rc = check_payload(body)) != PM_OK)
        goto fail;
    if (verify && (rc = pm_verify_event(body->origin.data, env->format, env->body.data,
                                        env->body.len, env->sig.data)) != PM_OK)
        goto fail;
    ev = calloc(1, sizeof *ev);
    if (!ev || !(ev->raw = malloc(len))) {
        rc = PM_E_NOMEM;
        goto fail;
    }
    memcpy(ev->raw, bytes, len);
    ev->raw_len = len;
    ev->format = env->format;
    ev->body = body;
    pm_hash(bytes, len, ev->hash);
    pm__envelope__free_unpacked(env, NULL);
    *out = ev;
    return PM_OK;
fail:
    if (ev)
        free(ev);
    if (body)
        pm__event_body__free_unpacked(body, NULL);
    pm__envelope__free_unpacked(env, NULL);
    return rc;
}

int pm_event_parse(const uint8_t *bytes, size_t len, pm_event **out)
{
    return parse(bytes, len, 1, out);
}

int pm_event_parse_stored(const uint8_t *bytes, size_t len, pm_event **out)
{
    return parse(bytes, len, 0, out);
}

int pm_event_verify(const pm_event *ev)
{
    Pm__Envelope *env = pm__envelope__unpack(NULL, ev->raw_len, ev->raw);
    if (!env)
        return PM_E_PARSE;
    int rc = pm_verify_event(ev->body->origin.data, env->format, env->body.data, env->body.len,
                             env->sig.data);
    pm__envelope__free_unpacked(env, NULL);
    return rc;
}

int pm_event_build(const pm_identity *id, const Pm__EventBody *body, pm_event **out)
{
    size_t body_len = pm__event_body__get_packed_size(body);
    if (body_len + 128 > PM_EVENT_MAX_BYTES)
        return PM_E_TOOBIG;
    uint8_t *body_bytes = malloc(body_len ? body_len : 1);
    if (!body_bytes)
        return PM_E_NOMEM;
    pm__event_body__pack(body, body_bytes);
    uint8_t sig[PM_SIG_BYTES];
    int rc = pm_sign_event(id, PM_EVENT_FORMAT, body_bytes, body_len, sig);
    if (rc) {
        free(body_bytes);
        return rc;
    }
    Pm__Envelope env = PM__ENVELOPE__INIT;
    env.format = PM_EVENT_FORMAT;
    env.body.data = body_bytes;
    env.body.len = body_len;
    env.sig.data = sig;
    env.sig.len = sizeof sig;
    size_t raw_len = pm__envelope__get_packed_size(&env);
    uint8_t *raw = malloc(raw_len);
    if (!raw) {
        free(body_bytes);
        return PM_E_NOMEM;
    }
    pm__envelope__pack(&env, raw);
    free(body_bytes);
    /* Round-trip through the parser: what we store is exactly what peers will check. */
    rc = pm_event_parse(raw, raw_len, out);
    free(raw);
    return rc;
}

void pm_event_destroy(pm_event **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm__event_body__free_unpacked((*self_p)->body, NULL);
    free((*self_p)->raw);
    free(*self_p);
    *self_p = NULL;
}

/* Each payload's type name, as `audit log` prints it and `--type` takes it. */
static const struct {
    Pm__EventBody__PayloadCase payload;
    const char *name;
} event_types[] = {
    {PM__EVENT_BODY__PAYLOAD_GENESIS, "genesis"},
    {PM__EVENT_BODY__PAYLOAD_MEMBER_ADMITTED, "member-admitted"},
    {PM__EVENT_BODY__PAYLOAD_MEMBER_REVOKED, "member-revoked"},
    {PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED, "study-announced"},
    {PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED, "item-claimed"},
    {PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED, "item-released"},
    {PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED, "report-submitted"},
    {PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED, "report-verified"},
    {PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED, "study-accessed"},
    {PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED, "item-flagged"},
    {PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN, "study-withdrawn"},
    {PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED, "reporter-registered"},
};

const char *pm_event_type(const Pm__EventBody *b)
{
    for (size_t i = 0; i < sizeof event_types / sizeof *event_types; i++)
        if (event_types[i].payload == b->payload_case)
            return event_types[i].name;
    return "unknown";
}

const char *pm_event_type_name(size_t i)
{
    return i < sizeof event_types / sizeof *event_types ? event_types[i].name : NULL;
}

const char *pm_event_study_uid(const Pm__EventBody *b)
{
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED: return b->study_announced->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED: return b->item_claimed->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED: return b->item_released->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED: return b->report_submitted->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED: return b->report_verified->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED: return b->study_accessed->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED: return b->item_flagged->study_instance_uid;
    case PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN: return b->study_withdrawn->study_instance_uid;
    default: return NULL;
    }
}

const char *pm_event_reporter(const Pm__EventBody *b)
{
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED: return b->item_claimed->reporter;
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED: return b->item_released->reporter;
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED: return b->report_submitted->reporter;
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED: return b->report_verified->reporter;
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED: return b->study_accessed->reporter;
    case PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED: return b->item_flagged->by;
    case PM__EVENT_BODY__PAYLOAD_REPORTER_REGISTERED: return b->reporter_registered->reporter_id;
    default: return NULL;
    }
}

pm_position pm_event_position(const pm_event *ev)
{
    pm_position p;
    p.lamport = ev->body->lamport;
    memcpy(p.origin, ev->body->origin.data, PM_ID_BYTES);
    p.seq = ev->body->seq;
    return p;
}

int pm_position_cmp(const pm_position *a, const pm_position *b)
{
    if (a->lamport != b->lamport)
        return a->lamport < b->lamport ? -1 : 1;
    int c = memcmp(a->origin, b->origin, PM_ID_BYTES);
    if (c)
        return c;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}
