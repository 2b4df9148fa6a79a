/* Signed events: parsing with limits, verification, and building new ones.
 *
 * An event travels and is stored as its serialized Envelope. Parsing checks, in this
 * order, and refuses with a distinct code: size (PM_E_TOOBIG), envelope syntax
 * (PM_E_PARSE), format version (PM_E_FORMAT), body syntax and field shapes
 * (PM_E_PARSE, PM_E_SEQ), payload type (PM_E_UNKNOWN), signature (PM_E_SIG). Chain,
 * sequence and membership are the feed's business (store/feed.h). */
#ifndef PM_EVENT_H
#define PM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/hash.h"
#include "crypto/identity.h"
#include "proto/event.pb-c.h"

#define PM_EVENT_FORMAT 1
#define PM_EVENT_MAX_BYTES (4u << 20)    /* a study of ~20,000 instances fits */
#define PM_UID_MAX 64                    /* DICOM UI value length limit */
#define PM_TEXT_MAX (1u << 20)           /* report text */
#define PM_LAMPORT_STEP_MAX (1ull << 32) /* largest rise of the Lamport clock along a feed */

/* A parsed, verified event. body and raw are owned; free with pm_event_destroy. */
typedef struct {
    uint32_t format;
    Pm__EventBody *body;
    uint8_t hash[PM_HASH_BYTES]; /* BLAKE2b-256 of raw: what the next event's prev names */
    uint8_t *raw;                /* the serialized envelope */
    size_t raw_len;
} pm_event;

/* Position of an event in the total order (lamport, origin, seq) that every node
 * uses to fold events into views. */
typedef struct {
    uint64_t lamport;
    uint8_t origin[PM_ID_BYTES];
    uint64_t seq;
} pm_position;

/* Parses and verifies bytes (copied). On success *out is the caller's. */
int pm_event_parse(const uint8_t *bytes, size_t len, pm_event **out)
    __attribute__((warn_unused_result));

/* As pm_event_parse but without the signature check, for bytes read back from this
 * node's own store, which were verified when they were stored. */
int pm_event_parse_stored(const uint8_t *bytes, size_t len, pm_event **out)
    __attribute__((warn_unused_result));

/* Checks the signature of an event parsed with pm_event_parse_stored: PM_OK or PM_E_SIG. */
int pm_event_verify(const pm_event *ev) __attribute__((warn_unused_result));

/* Signs and serializes body as the identity's event. The caller fills the payload and
 * origin/seq/prev/lamport/wall_ms/mesh (origin must be the identity's key). */
int pm_event_build(const pm_identity *id, const Pm__EventBody *body, pm_event **out);

void pm_event_destroy(pm_event **self_p);

/* The SPEC's event type name: "genesis", "member-admitted", ... */
const char *pm_event_type(const Pm__EventBody *body);

/* The i-th type name pm_event_type gives (from 0), NULL past the last: the names
 * `audit log --type` accepts. */
const char *pm_event_type_name(size_t i);

/* The study UID the event is about, or NULL. Borrowed from body. */
const char *pm_event_study_uid(const Pm__EventBody *body);

/* 1 if p is a worklist priority: "immediate", "urgent" or "routine". */
int pm_event_priority_known(const char *p);

/* The reporter the event names, or NULL. Borrowed from body. */
const char *pm_event_reporter(const Pm__EventBody *body);

pm_position pm_event_position(const pm_event *ev);

/* <0, 0, >0 as a sorts before, equal to, after b. */
int pm_position_cmp(const pm_position *a, const pm_position *b);

#endif
