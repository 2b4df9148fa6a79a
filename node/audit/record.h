/* One audit record: what the node did or refused, for whom, about which study, in the
 * plain terms the DICOM audit message (atna_message.h) is built from. A plain value
 * struct: every string is borrowed and may be NULL (absent). */
#ifndef PM_AUDIT_RECORD_H
#define PM_AUDIT_RECORD_H

#include <stdint.h>

typedef enum {
    PM_AUDIT_QUERY,      /* a C-FIND answered (who asked what) */
    PM_AUDIT_RETRIEVE,   /* a C-GET/C-MOVE of a study's instances by a DICOM client */
    PM_AUDIT_STORE,      /* instances stored (the study announced) */
    PM_AUDIT_ACCESS,     /* a read of another trust's pixel data (study-accessed) */
    PM_AUDIT_SERVED,     /* pixel data served to a peer node */
    PM_AUDIT_SIGNIN,     /* a web sign-in, successful or not */
    PM_AUDIT_ALERT,      /* refused: an association, a handshake, a revoked peer */
    PM_AUDIT_RECORD,     /* a worklist or report event (claim, report, verify ...) */
    PM_AUDIT_MEMBERSHIP, /* the mesh or the roster changed (admit, revoke, reporter) */
    PM_AUDIT_KIND_COUNT
} pm_audit_kind;

typedef struct {
    pm_audit_kind kind;
    uint64_t time_ms; /* when it happened, ms since the epoch (UTC) */
    int failed;       /* the outcome: 0 success, 1 failure (refused, wrong password) */
    const char *user; /* who asked: a person, a calling AE title, a peer node's id */
    const char *host; /* their network address */
    const char *study_uid;
    const char *patient_id;
    const char *patient_name;
    const char *object_id; /* QUERY: the SOP class; MEMBERSHIP: the node or reporter id */
    const char *detail;    /* QUERY: the keys; ALERT: why; RECORD: the event type and text */
} pm_audit_record;

/* The short name of a kind in the journal ("query", "retrieve" ...), and back
 * (-1 when unknown). */
const char *pm_audit_kind_name(pm_audit_kind kind);
int pm_audit_kind_parse(const char *name);

#endif
