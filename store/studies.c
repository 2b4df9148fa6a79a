/* The study fold: a study and its worklist item from every valid event about its UID
 * (announcements merged per origin, claims and leases, releases, reports, verification,
 * accesses), written with its patient and date indexes. */
#include "node/worklist/states.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/apply_internal.h"
#include "store/study_index.h"
#include "store/study_union.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t id[PM_ID_BYTES];
    Pm__MemberView *view; /* NULL: not a known member */
} author_cache_entry;

typedef struct {
    author_cache_entry *e;
    size_t n;
} author_cache;

static int author_valid(MDB_txn *txn, pm_store *s, author_cache *c, const pm_event *ev)
{
    const uint8_t *id = ev->body->origin.data;
    author_cache_entry *hit = NULL;
    for (size_t i = 0; i < c->n && !hit; i++)
        if (memcmp(c->e[i].id, id, PM_ID_BYTES) == 0)
            hit = &c->e[i];
    if (!hit) {
        author_cache_entry *grown = realloc(c->e, (c->n + 1) * sizeof *grown);
        if (!grown)
            return 0;
        c->e = grown;
        hit = &c->e[c->n++];
        memcpy(hit->id, id, PM_ID_BYTES);
        hit->view = NULL;
        MDB_val k = {PM_ID_BYTES, (void *)id}, v;
        if (mdb_get(txn, s->members, &k, &v) == 0)
            hit->view = pm__member_view__unpack(NULL, v.mv_size, v.mv_data);
    }
    pm_position pos = pm_event_position(ev);
    return pm_apply_author_valid(hit->view, &pos);
}

static void author_cache_free(author_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].view)
            pm__member_view__free_unpacked(c->e[i].view, NULL);
    free(c->e);
}

/* Everything a study view points into while it is being built. */
typedef struct {
    Pm__StudyView sv;
    Pm__ClaimView claim;
    Pm__ClaimView **lost;
    Pm__ReportView **reports;
    Pm__FlagView **flags;
    ProtobufCBinaryData *holders;
    size_t n_holders;
    Pm__Position *positions[64];
    size_t n_positions;
    uint8_t origins[64][PM_ID_BYTES];
    /* Every announcement, and the origins in the order they first announced. */
    const Pm__StudyAnnounced **anns;
    size_t *ann_origin; /* each one's index in origins_announcing */
    size_t n_anns;
    const uint8_t **origins_announcing;
    size_t n_origins_announcing;
    pm_study_union merged; /* when there is more than one announcement */
    int failed;            /* out of memory while folding */
} study_fold;

/* Remembers an announcement and its origin. */
static int note_announcement(study_fold *f, const uint8_t *origin, const Pm__StudyAnnounced *a)
{
    size_t i = 0;
    while (i < f->n_origins_announcing &&
           memcmp(f->origins_announcing[i], origin, PM_ID_BYTES) != 0)
        i++;
    if (i == f->n_origins_announcing) {
        const uint8_t **o =
            realloc(f->origins_announcing, (f->n_origins_announcing + 1) * sizeof *o);
        if (!o)
            return PM_E_NOMEM;
        f->origins_announcing = o;
        f->origins_announcing[f->n_origins_announcing++] = origin;
    }
    const Pm__StudyAnnounced **l = realloc(f->anns, (f->n_anns + 1) * sizeof *l);
    if (l)
        f->anns = l;
    size_t *ao = realloc(f->ann_origin, (f->n_anns + 1) * sizeof *ao);
    if (ao)
        f->ann_origin = ao;
    if (!l || !ao)
        return PM_E_NOMEM;
    f->anns[f->n_anns] = a;
    f->ann_origin[f->n_anns++] = i;
    return PM_OK;
}

/* The study as the mesh holds it (store/study_union.h): the acquiring site's latest
 * announcement for the patient and study fields and worklist terms, and every
 * instance any announcement of any origin lists, each once. Origins are taken in the
 * order they first announced, so the result does not depend on arrival order. */
static int merge_announcements(study_fold *f)
{
    if (f->n_anns <= 1) {
        f->sv.study = f->n_anns ? (Pm__StudyAnnounced *)f->anns[0] : NULL;
        return PM_OK;
    }
    const Pm__StudyAnnounced **ordered = calloc(f->n_anns, sizeof *ordered);
    if (!ordered)
        return PM_E_NOMEM;
    const Pm__StudyAnnounced *fields = NULL;
    size_t k = 0;
    for (size_t o = 0; o < f->n_origins_announcing; o++)
        for (size_t i = 0; i < f->n_anns; i++)
            if (f->ann_origin[i] == o) {
                ordered[k++] = f->anns[i];
                if (o == 0)
                    fields = f->anns[i]; /* the site's latest */
            }
    int rc = pm_study_union_build(&f->merged, fields, ordered, k);
    free(ordered);
    if (!rc)
        f->sv.study = &f->merged.study;
    return rc;
}

static Pm__Position *fold_position(study_fold *f, const pm_event *ev)
{
    if (f->n_positions == 64)
        return NULL; /* positions beyond 64 claims/reports are left out of the record */
    pm_position p = pm_event_position(ev);
    size_t i = f->n_positions;
    Pm__Position *pos = pm_apply_position_new(&p, f->origins[i]);
    if (pos)
        f->positions[f->n_positions++] = pos;
    return pos;
}

static int add_holder(study_fold *f, const ProtobufCBinaryData *id)
{
    for (size_t i = 0; i < f->n_holders; i++)
        if (memcmp(f->holders[i].data, id->data, PM_ID_BYTES) == 0)
            return PM_OK;
    ProtobufCBinaryData *grown = realloc(f->holders, (f->n_holders + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    f->holders = grown;
    f->holders[f->n_holders++] = *id;
    return PM_OK;
}

static int holder_cmp(const void *a, const void *b)
{
    return memcmp(((const ProtobufCBinaryData *)a)->data, ((const ProtobufCBinaryData *)b)->data,
                  PM_ID_BYTES);
}

static void fold_claim(study_fold *f, const pm_event *ev)
{
    const Pm__ItemClaimed *c = ev->body->item_claimed;
    Pm__StudyView *sv = &f->sv;
    int assigned = c->assigned_by && *c->assigned_by;
    pm_wl_verdict v = assigned ? pm_wl_may_assign(sv, sv->state)
                               : pm_wl_may_claim(sv, sv->state, c->reporter, ev->body->wall_ms);
    if (v == PM_WL_ALLOWED) {
        pm__claim_view__init(&f->claim);
        f->claim.assigned_by = c->assigned_by;
        f->claim.reporter = c->reporter;
        f->claim.node = ev->body->origin;
        f->claim.time_ms = ev->body->wall_ms;
        f->claim.lease_until_ms = c->lease_until_ms;
        f->claim.at = fold_position(f, ev);
        sv->claim = &f->claim;
        sv->state = "claimed";
        return;
    }
    /* Lost: someone else holds the item, or it is already reported. Kept so the loser
     * can be told. */
    Pm__ClaimView *lost = calloc(1, sizeof *lost);
    Pm__ClaimView **grown = lost ? realloc(f->lost, (sv->n_lost_claims + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(lost);
        return;
    }
    pm__claim_view__init(lost);
    lost->reporter = c->reporter;
    lost->node = ev->body->origin;
    lost->time_ms = ev->body->wall_ms;
    lost->lease_until_ms = c->lease_until_ms;
    lost->assigned_by = c->assigned_by;
    lost->at = fold_position(f, ev);
    f->lost = grown;
    f->lost[sv->n_lost_claims++] = lost;
    sv->lost_claims = f->lost;
}

/* Appends a report view for ev; NULL when out of memory. */
static Pm__ReportView *add_report(study_fold *f, const pm_event *ev)
{
    const Pm__ReportSubmitted *r = ev->body->report_submitted;
    Pm__StudyView *sv = &f->sv;
    Pm__ReportView *rv = calloc(1, sizeof *rv);
    Pm__ReportView **grown = rv ? realloc(f->reports, (sv->n_reports + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(rv);
        return NULL;
    }
    pm__report_view__init(rv);
    rv->reporter = r->reporter;
    rv->node = ev->body->origin;
    rv->time_ms = ev->body->wall_ms;
    rv->text = r->text;
    rv->sr_sop_instance_uid = r->sr_sop_instance_uid;
    rv->amends = r->amends;
    rv->at = fold_position(f, ev);
    f->reports = grown;
    f->reports[sv->n_reports++] = rv;
    sv->reports = f->reports;
    return rv;
}

/* A report is never lost: every submission but a duplicate is kept. Only a report by
 * the claim's holder, or on an item nobody holds, moves the item to reported; one
 * submitted while another reporter held the claim (possible only across a partition
 * or from a node that skipped the check) is kept, marked out of turn, and the item is
 * flagged as a conflict with the holder's claim left in place. */
static void fold_report(study_fold *f, const pm_event *ev)
{
    const Pm__ReportSubmitted *r = ev->body->report_submitted;
    Pm__StudyView *sv = &f->sv;
    pm_wl_verdict v =
        pm_wl_may_report(sv, sv->state, r->reporter, r->text, r->amends, ev->body->wall_ms);
    if (v == PM_WL_DUPLICATE)
        return;
    Pm__ReportView *rv = add_report(f, ev);
    if (!rv || *r->amends || v == PM_WL_WITHDRAWN)
        return; /* an addendum changes no state; a withdrawn study stays withdrawn */
    if (v == PM_WL_HELD_BY_OTHER) {
        rv->out_of_turn = 1;
        sv->conflict = 1;
        return;
    }
    if (!sv->reported_ms)
        sv->reported_ms = ev->body->wall_ms;
    /* A second report by someone else is flagged until a verification reconciles. */
    for (size_t i = 0; i + 1 < sv->n_reports; i++)
        if (!*sv->reports[i]->amends && strcmp(sv->reports[i]->reporter, r->reporter) != 0)
            sv->conflict = 1;
    if (strcmp(sv->state, "verified") != 0)
        sv->state = "reported";
}

static void fold_flag(study_fold *f, const pm_event *ev)
{
    const Pm__ItemFlagged *fl = ev->body->item_flagged;
    Pm__StudyView *sv = &f->sv;
    Pm__FlagView *fv = calloc(1, sizeof *fv);
    Pm__FlagView **grown = fv ? realloc(f->flags, (sv->n_flags + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(fv);
        return;
    }
    pm__flag_view__init(fv);
    fv->priority = fl->priority;
    fv->reason = fl->reason;
    fv->by = fl->by;
    fv->ai_rule = fl->ai_rule;
    fv->time_ms = ev->body->wall_ms;
    fv->node = ev->body->origin;
    f->flags = grown;
    f->flags[sv->n_flags++] = fv;
    sv->flags = f->flags;
    /* The latest flag in the total order sets the priority and due time. */
    sv->priority = fl->priority;
    sv->due_ms = fl->due_ms;
}

static void fold_withdraw(study_fold *f, const pm_event *ev)
{
    Pm__StudyView *sv = &f->sv;
    if (!sv->study || pm_wl_may_withdraw(sv, ev->body->origin.data) != PM_WL_ALLOWED)
        return; /* only the acquiring node withdraws; kept in the log all the same */
    sv->withdrawn = 1;
    sv->withdraw_reason = ev->body->study_withdrawn->reason;
    sv->state = "withdrawn";
    sv->claim = NULL;
}

static void fold_study_event(study_fold *f, const pm_event *ev)
{
    const Pm__EventBody *b = ev->body;
    Pm__StudyView *sv = &f->sv;
    switch (b->payload_case) {
    case PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED:
        if (!sv->study) {
            sv->site = b->origin;
            sv->announced_ms = b->wall_ms;
        }
        /* Each announcement lists what its origin newly holds; merged after the fold. */
        if (note_announcement(f, b->origin.data, b->study_announced))
            f->failed = 1;
        sv->study = b->study_announced;
        add_holder(f, &b->origin);
        break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED: fold_claim(f, ev); break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED:
        if (pm_wl_may_release(sv, sv->state, b->item_released->reporter) == PM_WL_ALLOWED) {
            sv->state = "unreported";
            sv->claim = NULL;
        }
        break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED: fold_report(f, ev); break;
    case PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED: fold_flag(f, ev); break;
    case PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN: fold_withdraw(f, ev); break;
    case PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED:
        if (pm_wl_may_verify(sv, sv->state, b->report_verified->reporter) == PM_WL_ALLOWED) {
            sv->state = "verified";
            sv->verified_by = b->report_verified->reporter;
            sv->verified_ms = b->wall_ms;
            sv->conflict = 0;
        }
        break;
    case PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED:
        /* The reader's node now caches the study and can serve it. */
        add_holder(f, &b->origin);
        sv->access_count++;
        break;
    default: break;
    }
}

static void study_fold_free(study_fold *f)
{
    for (size_t i = 0; i < f->sv.n_lost_claims; i++)
        free(f->lost[i]);
    for (size_t i = 0; i < f->sv.n_reports; i++)
        free(f->reports[i]);
    for (size_t i = 0; i < f->sv.n_flags; i++)
        free(f->flags[i]);
    free(f->flags);
    for (size_t i = 0; i < f->n_positions; i++)
        free(f->positions[i]);
    free(f->lost);
    free(f->reports);
    free(f->holders);
    pm_study_union_free(&f->merged);
    free(f->anns);
    free(f->ann_origin);
    free(f->origins_announcing);
}

int pm_apply_derive_study(MDB_txn *txn, pm_store *s, const char *uid)
{
    pm_event_list evs = {0};
    author_cache authors = {0};
    study_fold f;
    memset(&f, 0, sizeof f);
    pm__study_view__init(&f.sv);
    f.sv.state = "unreported";
    uint8_t *buf = NULL;
    Pm__StudyView *prev = NULL; /* the view this one replaces, with its index entries */
    int rc = pm_apply_load_key_events(txn, s, KIND_STUDY, uid, &evs);
    for (size_t i = 0; !rc && i < evs.n; i++)
        if (author_valid(txn, s, &authors, evs.items[i]))
            fold_study_event(&f, evs.items[i]);
    if (!rc && f.failed)
        rc = PM_E_NOMEM;
    if (!rc)
        rc = merge_announcements(&f);
    if (rc)
        goto done;

    MDB_val k = {strlen(uid), (void *)uid}, old;
    if (mdb_get(txn, s->studies, &k, &old) == 0)
        prev = pm__study_view__unpack(NULL, old.mv_size, old.mv_data);
    if (!f.sv.study) { /* nothing valid announces it (yet): no view */
        rc = pm_view_write(txn, s, s->studies, 's', uid, strlen(uid), NULL, 0);
        if (!rc)
            rc = pm_study_indexes_update(txn, s, prev, NULL, uid);
        goto done;
    }
    if (f.n_holders > 1)
        qsort(f.holders, f.n_holders, sizeof *f.holders, holder_cmp);
    f.sv.holders = f.holders;
    f.sv.n_holders = f.n_holders;
    for (size_t i = 0; i < f.sv.study->n_series; i++) {
        const Pm__Series *se = f.sv.study->series[i];
        f.sv.instance_count += se->n_instances;
        for (size_t j = 0; j < se->n_instances; j++)
            f.sv.total_bytes += se->instances[j]->size;
    }
    size_t len = pm__study_view__get_packed_size(&f.sv);
    if (!(buf = malloc(len))) {
        rc = PM_E_NOMEM;
        goto done;
    }
    pm__study_view__pack(&f.sv, buf);
    rc = pm_study_indexes_update(txn, s, prev, &f.sv, uid);
    if (!rc)
        rc = pm_view_write(txn, s, s->studies, 's', uid, strlen(uid), buf, len);
done:
    if (prev)
        pm__study_view__free_unpacked(prev, NULL);
    free(buf);
    study_fold_free(&f);
    author_cache_free(&authors);
    pm_event_list_free(&evs);
    return rc;
}

int pm_apply_rederive_studies(MDB_txn *txn, pm_store *s)
{
    /* The keys first: deriving writes the table a cursor would be walking. */
    char **uids = NULL;
    size_t n = 0;
    MDB_cursor *cur;
    int rc = pm_store_mdb_error(mdb_cursor_open(txn, s->studies, &cur), "open cursor");
    if (rc)
        return rc;
    MDB_val k, v;
    for (int op = MDB_FIRST; !rc && mdb_cursor_get(cur, &k, &v, op) == 0; op = MDB_NEXT) {
        if (k.mv_size > PM_UID_MAX)
            continue;
        char **grown = realloc(uids, (n + 1) * sizeof *grown);
        char *uid = malloc(k.mv_size + 1);
        if (grown)
            uids = grown;
        if (!grown || !uid) {
            free(uid);
            rc = PM_E_NOMEM;
            break;
        }
        memcpy(uid, k.mv_data, k.mv_size);
        uid[k.mv_size] = '\0';
        uids[n++] = uid;
    }
    mdb_cursor_close(cur);
    for (size_t i = 0; !rc && i < n; i++)
        rc = pm_apply_derive_study(txn, s, uids[i]);
    for (size_t i = 0; i < n; i++)
        free(uids[i]);
    free(uids);
    return rc;
}
