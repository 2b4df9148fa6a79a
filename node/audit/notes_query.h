/* The C-FIND hook of the DICOM edge: who queried what. A query is no change of state,
 * so it is not an event of the signed log (which every node replicates); it is logged
 * here and sent to the trust's audit repository (journal.h). The log line names the
 * calling AE, its address, the level, the keys asked (their names only: values are
 * patient identifiers) and the matches; the audit message carries the values too. */
#ifndef PM_AUDIT_NOTES_QUERY_H
#define PM_AUDIT_NOTES_QUERY_H

#include "node/dicom/query.h"

#ifdef __cplusplus
extern "C" {
#endif

/* "QueryRetrieveLevel=STUDY\nPatientID=123\n..." for the keys present in q (universal
 * ones as "Key="): the caller's to free; NULL when out of memory. */
char *pm_audit_query_keys(const pm_dicom_query *q);

void pm_audit_note_find(const char *calling_ae, const char *host, const char *sop_class,
                        const pm_dicom_query *q, size_t matches, int failed);

#ifdef __cplusplus
}
#endif

#endif
