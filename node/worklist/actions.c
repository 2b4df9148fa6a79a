#include "node/worklist/actions.h"
#include "node/dicom/sr.h"
#include "node/studies/ingest.h"
#include "node/worklist/rules.h"
#include "node/worklist/states.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/views.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int say(char *msg, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t len, int rc, const char *fmt, ...)
{
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const char *iso(uint64_t ms, char buf[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    buf[0] = 0;
    if (ms && gmtime_r(&t, &tm))
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int pm_wl_reporter_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)r[i]) && !strchr("._-@", r[i]))
            return 0;
    return 1;
}

const char *pm_wl_report_text_problem(const char *text, size_t len)
{
    if (len > PM_WL_REPORT_MAX)
        return "is larger than 1 MiB";
    if (len == 0 || strspn(text, " \t\r\n") == len)
        return "is empty";
    if (strlen(text) != len)
        return "contains NUL bytes";
    /* A report that is not text must not enter the signed log. */
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        int n = *p < 0x80             ? 0
                : (*p & 0xE0) == 0xC0 ? 1
                : (*p & 0xF0) == 0xE0 ? 2
                : (*p & 0xF8) == 0xF0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *p < 0xC2))
            return "is not UTF-8 text";
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return "is not UTF-8 text";
        p += n + 1;
    }
    return NULL;
}

/* Reads the item; *sv is the caller's on PM_OK. */
static int open_item(const pm_wl_node *n, const char *uid, const char *reporter, Pm__StudyView **sv,
                     char *msg, size_t len)
{
    if (!pm_wl_reporter_ok(reporter))
        return say(msg, len, PM_E_INVAL,
                   "'%s' is not a reporter id (1-64 letters, digits, '.', '_', '-', '@')",
                   reporter ? reporter : "");
    int r = pm_views_study(n->store, uid, sv);
    if (r == PM_OK && !(*sv)->study) {
        pm__study_view__free_unpacked(*sv, NULL);
        *sv = NULL;
        r = PM_E_NOTFOUND;
    }
    if (r == PM_E_NOTFOUND)
        return say(msg, len, r, "unknown study %s: no node of the mesh has announced it", uid);
    if (r)
        return say(msg, len, r, "cannot read study %s: %s", uid, pm_strerror(r));
    return PM_OK;
}

static int append(const pm_wl_node *n, Pm__EventBody *body, char *msg, size_t len)
{
    int r = pm_feed_append(n->store, n->id, body, NULL);
    if (r == PM_E_MESH)
        return say(msg, len, r, "this node does not belong to a mesh yet");
    if (r)
        return say(msg, len, r, "cannot write the event: %s", pm_strerror(r));
    return PM_OK;
}

int pm_wl_claim(const pm_wl_node *n, const char *uid, const char *reporter, char *msg, size_t len)
{
    Pm__StudyView *sv = NULL;
    int rc = open_item(n, uid, reporter, &sv, msg, len);
    if (rc)
        return rc;
    uint64_t now = pm_now_ms();
    const char *state = pm_views_item_state(sv, now);
    char until[32];
    pm_wl_verdict v = pm_wl_may_claim(sv, state, reporter, now);
    if (v == PM_WL_ALREADY_REPORTED) {
        rc = say(msg, len, v, "study %s is already %s; nothing to claim", uid, state);
    } else if (v == PM_WL_HELD_BY_OTHER) {
        rc = say(msg, len, v, "study %s is claimed by %s until %s", uid, sv->claim->reporter,
                 iso(sv->claim->lease_until_ms, until));
    } else if (v != PM_WL_ALLOWED) {
        rc = say(msg, len, v, "cannot claim %s: %s", uid, pm_wl_verdict_text(v));
    } else {
        Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
        c.study_instance_uid = (char *)uid;
        c.reporter = (char *)reporter;
        c.lease_until_ms = now + n->cfg->lease_ms;
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
        body.item_claimed = &c;
        if (!(rc = append(n, &body, msg, len)))
            say(msg, len, 0, "claimed %s for %s until %s", uid, reporter,
                iso(c.lease_until_ms, until));
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

int pm_wl_release(const pm_wl_node *n, const char *uid, const char *reporter, char *msg, size_t len)
{
    Pm__StudyView *sv = NULL;
    int rc = open_item(n, uid, reporter, &sv, msg, len);
    if (rc)
        return rc;
    const char *state = pm_views_item_state(sv, pm_now_ms());
    int claimed = strcmp(state, "claimed") == 0;
    pm_wl_verdict v = pm_wl_may_release(sv, state, reporter);
    if (v != PM_WL_ALLOWED) {
        rc = say(msg, len, v, "study %s is not claimed by %s (it is %s%s%s)", uid, reporter, state,
                 claimed ? " by " : "", claimed ? sv->claim->reporter : "");
    } else {
        Pm__ItemReleased r = PM__ITEM_RELEASED__INIT;
        r.study_instance_uid = (char *)uid;
        r.reporter = (char *)reporter;
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_RELEASED;
        body.item_released = &r;
        if (!(rc = append(n, &body, msg, len)))
            say(msg, len, 0, "released %s", uid);
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

int pm_wl_verify(const pm_wl_node *n, const char *uid, const char *reporter, char *msg, size_t len)
{
    Pm__StudyView *sv = NULL;
    int rc = open_item(n, uid, reporter, &sv, msg, len);
    if (rc)
        return rc;
    const char *state = pm_views_item_state(sv, pm_now_ms());
    pm_wl_verdict verdict = pm_wl_may_verify(sv, state, reporter);
    if (verdict == PM_WL_NOT_REPORTED) {
        rc = say(msg, len, verdict, "study %s is %s: only a reported study can be verified", uid,
                 state);
    } else if (verdict == PM_WL_NO_SECOND_READER) {
        rc =
            say(msg, len, verdict, "%s wrote the report: a second reader must verify it", reporter);
    } else {
        Pm__ReportVerified v = PM__REPORT_VERIFIED__INIT;
        v.study_instance_uid = (char *)uid;
        v.reporter = (char *)reporter;
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_VERIFIED;
        body.report_verified = &v;
        if (!(rc = append(n, &body, msg, len)))
            say(msg, len, 0, "verified %s by %s", uid, reporter);
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

/* The report also becomes a DICOM Basic Text SR instance of the study, held by this
 * node and announced with it, so any viewer or PACS that retrieves the study sees the
 * report. sop_uid (65 bytes) receives its SOP Instance UID, "" if it could not be made
 * (the report itself is never held back for that; note says why). */
static void add_report_sr(const pm_wl_node *n, const Pm__StudyView *sv, const char *reporter,
                          const char *text, char *sop_uid, char *note, size_t notelen)
{
    sop_uid[0] = 0;
    if (!n->blobs)
        return;
    char tmp[4096], study[PM_DICOM_UID_MAX + 1], err[256] = "";
    const Pm__StudyAnnounced *st = sv->study;
    pm_blobs_temp_path(n->blobs, tmp, sizeof tmp);
    int rc = pm_dicom_write_report_sr(
        tmp, st->study_instance_uid, st->patient_id, st->patient_name, st->patient_birth_date,
        st->patient_sex, st->accession_number, st->study_date, st->study_time, st->study_id,
        st->referring_physician, reporter, text, pm_now_ms(), sop_uid, err, sizeof err);
    pm_ingest_ctx ingest = {n->store, n->blobs, n->id, n->cfg};
    if (!rc)
        rc = pm_ingest_file(&ingest, tmp, 1, study, err, sizeof err);
    if (rc) {
        say(note, notelen, 0,
            "warning: the report is recorded, but its DICOM SR could not be added to the "
            "study: %s",
            *err ? err : pm_strerror(rc));
        sop_uid[0] = 0;
    }
}

/* Whether the report may go in; PM_OK to go on, else the refusal (or, for the same text
 * twice, PM_WL_DUPLICATE with the "nothing new" sentence: the caller reports success). */
static int report_verdict(const Pm__StudyView *sv, const char *uid, const char *reporter,
                          const char *text, int addendum, const char **amends, char *msg,
                          size_t len)
{
    char until[32];
    uint64_t now = pm_now_ms();
    const char *state = pm_views_item_state(sv, now);
    *amends = "";
    if (addendum && !(*amends = pm_wl_amendable_report(sv)))
        return say(msg, len, PM_WL_NOT_REPORTED,
                   "study %s is %s: there is no report to add an addendum to", uid, state);
    pm_wl_verdict v = pm_wl_may_report(sv, state, reporter, text, *amends, now);
    if (v == PM_WL_DUPLICATE)
        return say(msg, len, v, "%s already submitted this %s for %s; nothing new recorded",
                   reporter, addendum ? "addendum" : "report", uid);
    if (v == PM_WL_HELD_BY_OTHER)
        return say(msg, len, v, "study %s is claimed by %s until %s: only the holder may report it",
                   uid, sv->claim->reporter, iso(sv->claim->lease_until_ms, until));
    if (v != PM_WL_ALLOWED)
        return say(msg, len, v, "study %s: %s", uid, pm_wl_verdict_text(v));
    return PM_OK;
}

int pm_wl_report(const pm_wl_node *n, const char *uid, const char *reporter, const char *text,
                 int addendum, char *msg, size_t len, char *note, size_t notelen)
{
    say(note, notelen, 0, "%s", "");
    const char *problem = text ? pm_wl_report_text_problem(text, strlen(text)) : "is missing";
    if (problem)
        return say(msg, len, PM_E_INVAL, "the report %s", problem);
    Pm__StudyView *sv = NULL;
    int rc = open_item(n, uid, reporter, &sv, msg, len);
    if (rc)
        return rc;
    const char *amends = "";
    rc = report_verdict(sv, uid, reporter, text, addendum, &amends, msg, len);
    if (rc) {
        pm__study_view__free_unpacked(sv, NULL);
        return rc == PM_WL_DUPLICATE ? PM_OK : rc; /* the same text twice is one report */
    }
    char sr_uid[65];
    add_report_sr(n, sv, reporter, text, sr_uid, note, notelen);
    Pm__ReportSubmitted r = PM__REPORT_SUBMITTED__INIT;
    r.study_instance_uid = (char *)uid;
    r.reporter = (char *)reporter;
    r.text = (char *)text;
    r.sr_sop_instance_uid = sr_uid;
    r.amends = (char *)amends;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_REPORT_SUBMITTED;
    body.report_submitted = &r;
    if (!(rc = append(n, &body, msg, len))) {
        /* The study, now with the SR this node holds, is announced again. */
        pm_ingest_ctx ingest = {n->store, NULL, n->id, n->cfg};
        unsigned announced = 0;
        if (*sr_uid && pm_ingest_announce(&ingest, &announced) != PM_OK)
            say(note, notelen, 0,
                "warning: the report SR will be announced when the node next starts");
        say(msg, len, 0, "%s by %s recorded for %s%s%s", addendum ? "addendum" : "report", reporter,
            uid, *sr_uid ? "; DICOM SR " : "", sr_uid);
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

int pm_wl_assign(const pm_wl_node *n, const char *uid, const char *reporter, const char *by,
                 char *msg, size_t len)
{
    if (!pm_wl_reporter_ok(by))
        return say(msg, len, PM_E_INVAL, "'%s' is not a coordinator id (a reporter id)",
                   by ? by : "");
    Pm__StudyView *sv = NULL;
    int rc = open_item(n, uid, reporter, &sv, msg, len);
    if (rc)
        return rc;
    uint64_t now = pm_now_ms();
    pm_wl_verdict v = pm_wl_may_assign(sv, pm_views_item_state(sv, now));
    const char *held = strcmp(sv->state, "claimed") == 0 && sv->claim ? sv->claim->reporter : "";
    if (v != PM_WL_ALLOWED) {
        rc = say(msg, len, v, "cannot assign %s: %s", uid, pm_wl_verdict_text(v));
    } else {
        Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
        c.study_instance_uid = (char *)uid;
        c.reporter = (char *)reporter;
        c.assigned_by = (char *)by;
        c.lease_until_ms = now + n->cfg->lease_ms;
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
        body.item_claimed = &c;
        int taken = *held && strcmp(held, reporter) != 0;
        if (!(rc = append(n, &body, msg, len)))
            say(msg, len, 0, "assigned %s to %s by %s%s%s", uid, reporter, by,
                taken ? "; taken from " : "", taken ? held : "");
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}

int pm_wl_flag(const pm_wl_node *n, const char *uid, const char *priority, const char *reason,
               const char *by, char *msg, size_t len)
{
    return pm_wl_flag_by_rule(n, uid, priority, reason, by, "", msg, len);
}

int pm_wl_flag_by_rule(const pm_wl_node *n, const char *uid, const char *priority,
                       const char *reason, const char *by, const char *ai_rule, char *msg,
                       size_t len)
{
    if (!pm_event_priority_known(priority))
        return say(msg, len, PM_E_INVAL, "the priority is one of immediate, urgent, routine");
    if (!reason || !*reason || strlen(reason) > 4096 || !by || !*by || strlen(by) > 256)
        return say(msg, len, PM_E_INVAL,
                   "a flag needs a reason (1-4096 characters) and who raised it (1-256)");
    Pm__StudyView *sv = NULL;
    int r = pm_views_study(n->store, uid, &sv);
    if (r == PM_OK && !sv->study)
        r = PM_E_NOTFOUND;
    if (r) {
        if (sv)
            pm__study_view__free_unpacked(sv, NULL);
        return r == PM_E_NOTFOUND
                   ? say(msg, len, r, "unknown study %s: no node of the mesh has announced it", uid)
                   : say(msg, len, r, "cannot read study %s: %s", uid, pm_strerror(r));
    }
    int rc;
    char due[32];
    if (sv->withdrawn) {
        rc = say(msg, len, PM_WL_WITHDRAWN, "cannot flag %s: %s", uid,
                 pm_wl_verdict_text(PM_WL_WITHDRAWN));
    } else {
        /* The due time travels in the event, so every node derives the same one. */
        Pm__ItemFlagged f = PM__ITEM_FLAGGED__INIT;
        f.study_instance_uid = (char *)uid;
        f.priority = (char *)priority;
        f.reason = (char *)reason;
        f.by = (char *)by;
        f.ai_rule = (char *)(ai_rule ? ai_rule : "");
        f.due_ms = sv->announced_ms + pm_worklist_due_for(n->cfg, priority);
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_FLAGGED;
        body.item_flagged = &f;
        if (!(rc = append(n, &body, msg, len)))
            say(msg, len, 0, "flagged %s %s (was %s) by %s; due %s", uid, priority,
                pm_wl_priority(sv), by, iso(f.due_ms, due));
    }
    pm__study_view__free_unpacked(sv, NULL);
    return rc;
}
