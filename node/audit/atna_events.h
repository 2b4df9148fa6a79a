/* The audit record of one event of this node's own signed feed: study announced
 * (instances stored), study accessed (a read of another trust's pixel data), claims,
 * reports and flags (the patient record), membership and roster changes. The patient
 * of a study is looked up in the views when the event does not carry it. */
#ifndef PM_AUDIT_ATNA_EVENTS_H
#define PM_AUDIT_ATNA_EVENTS_H

#include "node/audit/record.h"
#include "store/event.h"
#include "store/store.h"

/* Room for the strings a record of an event points at. */
typedef struct {
    char user[256], object[80], study[PM_UID_MAX + 1], patient_id[128], patient_name[256];
    char detail[1024];
} pm_atna_event_text;

/* Fills r (its strings in *text) from ev; node_name names this node where the event
 * names no person. Returns 1 when the event is audited, 0 when it is not (none is
 * skipped today; the return leaves room for event types added later). */
int pm_atna_event_record(pm_store *store, const pm_event *ev, const char *node_name,
                         pm_audit_record *r, pm_atna_event_text *text);

/* Copies the patient of study_uid from the views into text (empty when unknown). */
void pm_atna_patient_of(pm_store *store, const char *study_uid, pm_atna_event_text *text);

#endif
