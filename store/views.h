/* Reading the materialised views. Records handed to callbacks are borrowed for the
 * duration of the call only (they are unpacked copies, freed after the call returns).
 * A callback returning non-zero stops the walk and that value is returned. */
#ifndef PM_VIEWS_H
#define PM_VIEWS_H

#include "store/store.h"
#include "store/turnaround.h"

typedef int (*pm_member_fn)(void *ctx, const Pm__MemberView *m);
typedef int (*pm_study_fn)(void *ctx, const Pm__StudyView *s);
typedef int (*pm_reporter_fn)(void *ctx, const Pm__ReporterView *r);

/* Every member, pending and revoked ones included, in id order. */
int pm_views_members(pm_store *store, pm_member_fn fn, void *ctx);

/* One member; *out is the caller's (pm__member_view__free_unpacked). PM_E_NOTFOUND. */
int pm_views_member(pm_store *store, const uint8_t id[PM_ID_BYTES], Pm__MemberView **out);

/* Studies: just study_uid if non-NULL, else just patient_id's if non-NULL (indexed),
 * else all, in study UID order. */
int pm_views_studies(pm_store *store, const char *study_uid, const char *patient_id, pm_study_fn fn,
                     void *ctx);

/* Studies whose StudyDate lies within [from, to] (YYYYMMDD, inclusive; "" or NULL
 * leaves that end open), by the date index, in date order. */
int pm_views_studies_dated(pm_store *store, const char *from, const char *to, pm_study_fn fn,
                           void *ctx);

/* Open items (unreported or claimed) due before before_ms, soonest due first, by the
 * due index: what `worklist --overdue` needs without reading every study. */
int pm_views_studies_due_before(pm_store *store, uint64_t before_ms, pm_study_fn fn, void *ctx);

/* Items whose report became final at or after since_ms, in that order (the final
 * index): what the RIS sender needs without reading every study. */
int pm_views_studies_final_since(pm_store *store, uint64_t since_ms, pm_study_fn fn, void *ctx);

/* The turnaround records (store/turnaround.h) of the items final at or after from_ms
 * and before until_ms, in that order (what `tat --from --to` reads). */
typedef int (*pm_turnaround_fn)(void *ctx, const pm_turnaround *t);
int pm_views_turnarounds_between(pm_store *store, uint64_t from_ms, uint64_t until_ms,
                                 pm_turnaround_fn fn, void *ctx);

/* The attributes of the attribute index (store/study_index.c). Values are
 * kept as DICOM matching compares them: trailing spaces dropped; names and
 * descriptions upper-cased, so that a case-insensitive prefix is a range scan. */
enum {
    PM_ATTR_ACCESSION = 'A',
    PM_ATTR_PATIENT_NAME = 'N',
    PM_ATTR_MODALITY = 'M', /* one entry per distinct modality of the study's series */
    PM_ATTR_REFERRER = 'R',
    PM_ATTR_DESCRIPTION = 'D',
    PM_ATTR_STUDY_TIME = 'T',
    PM_ATTR_STATE = 'S',        /* the fold's state: unreported, claimed, reported ... */
    PM_ATTR_PRIORITY = 'P',     /* the item's priority now (flags applied) */
    PM_ATTR_SUBSPECIALTY = 'U', /* upper-cased: the worklist compares it case-insensitively */
    PM_ATTR_SITE = 'Z',         /* the acquiring node's id, 64 hex digits (any case) */
    PM_ATTR_LEASE = 'L',        /* a claimed item's lease end: 16 hex digits, time order */
    /* PatientID, as sent (case-sensitive): walked in the patient index, not this one;
     * only pm_views_studies_by_attr takes it (a prefix: PatientID=P12*). */
    PM_ATTR_PATIENT_ID = 'I',
};

/* Longest value kept in a key; longer values are indexed by this prefix (the matcher
 * that reads the view decides). */
#define PM_ATTR_VALUE_MAX 200

/* Studies by an attribute of the attribute index (store/study_index.h: 'A' accession,
 * 'N' patient name, 'M' modality, 'R' referring physician, 'D' description, 'T' study
 * time; 'I' PatientID, from the patient index): those whose value equals value (exact)
 * or starts with it, compared as the index keeps values (names and descriptions
 * case-insensitively). Each study once, in value order. A study whose value is empty is never
 * visited: an empty key is a universal match, which walks every study instead. */
int pm_views_studies_by_attr(pm_store *store, char attr, const char *value, int exact,
                             pm_study_fn fn, void *ctx);

/* Every open item (unreported or claimed), in study UID order, as the open-items table
 * keeps it: a StudyView holding only what ranking it for `next` reads (state, claim,
 * priority, due and announcement times, withdrawn, site, and the study's UID and
 * worklist terms; store/study_index.c). Read the whole view with pm_views_study. */
int pm_views_open_items(pm_store *store, pm_study_fn fn, void *ctx);

/* How many open items (unreported or claimed) were due before now, and how many of those
 * read as unreported at now (their lease lapsed, or none): from the due index's keys and
 * values, no view read. */
int pm_views_count_overdue(pm_store *store, uint64_t now_ms, uint64_t *overdue, uint64_t *orphans);

/* How many claimed items' leases have ended at now_ms (they read as unreported), from
 * the lease index's keys. */
int pm_views_count_lapsed(pm_store *store, uint64_t now_ms, uint64_t *count);

/* How many studies the attribute index lists under value (exact) or a value starting
 * with it, counting keys only (no view is read). */
int pm_views_count_by_attr(pm_store *store, char attr, const char *value, int exact,
                           uint64_t *count);

/* The stored bytes of every event about one study (announcements, claims, reports,
 * reads ...), in the total order, from the per-key event index: what an auditor's
 * "who opened this patient's images" needs without reading every event. fn gets each
 * event's Envelope bytes, borrowed for the call. */
typedef int (*pm_event_bytes_fn)(void *ctx, const uint8_t *raw, size_t len);
int pm_views_study_events(pm_store *store, const char *study_uid, pm_event_bytes_fn fn, void *ctx);

/* As pm_views_study_events for the events that name one reporter: claims, releases,
 * reports, verifications, accesses, flags and its registrations (the per-key index's
 * KIND_NAMING entries, store/apply_internal.h). */
int pm_views_reporter_events(pm_store *store, const char *reporter, pm_event_bytes_fn fn,
                             void *ctx);

/* As pm_views_study_events for every study of one patient (the patient index, by
 * PatientID), their events together in the total order (store/patient_events.c). */
int pm_views_patient_events(pm_store *store, const char *patient_id, pm_event_bytes_fn fn,
                            void *ctx);

/* One study; *out is the caller's (pm__study_view__free_unpacked). PM_E_NOTFOUND. */
int pm_views_study(pm_store *store, const char *study_uid, Pm__StudyView **out);

/* The roster: every registered reporter, in id order. */
int pm_views_reporters(pm_store *store, pm_reporter_fn fn, void *ctx);

/* One reporter; *out is the caller's (pm__reporter_view__free_unpacked). PM_E_NOTFOUND. */
int pm_views_reporter(pm_store *store, const char *id, Pm__ReporterView **out);

/* Whether id is a member now (state "member"). */
int pm_views_is_member(pm_store *store, const uint8_t id[PM_ID_BYTES]);

/* The worklist state a reader sees at now_ms: a claim whose lease ran out without a
 * report reads as "unreported". Borrowed from s. */
const char *pm_views_item_state(const Pm__StudyView *s, uint64_t now_ms);

#endif
