/* The DICOM audit message (PS3.15 A.5, the IHE ATNA format) of one audit record: an
 * AuditMessage with its EventIdentification (EventID and EventTypeCode from the DCM
 * code system), the ActiveParticipants (who asked, and this node), the
 * AuditSourceIdentification and the ParticipantObjectIdentifications (study, patient,
 * query). Every value is XML-escaped; bytes that are not UTF-8 or not allowed in XML
 * 1.0 are replaced, so the document is always well-formed. */
#ifndef PM_AUDIT_ATNA_MESSAGE_H
#define PM_AUDIT_ATNA_MESSAGE_H

#include <stddef.h>

#include "node/audit/record.h"

/* This node as the audit source and as a participant. Borrowed strings. */
typedef struct {
    const char *source_id; /* AuditSourceID: the node's name */
    const char *site_id;   /* AuditEnterpriseSiteID: the node's id (hex) */
    const char *ae_title;  /* the node's DICOM AE title: its UserID as a participant */
    const char *host;      /* its host name: NetworkAccessPointID */
} pm_atna_source;

/* The XML document (UTF-8, no BOM, no XML declaration), the caller's to free; NULL when
 * out of memory. */
char *pm_atna_message(const pm_audit_record *r, const pm_atna_source *src);

/* Writes s into out (outlen bytes, NUL-terminated, cut if too long) escaped for XML
 * text and attribute values; for tests. Returns the length it needed. */
size_t pm_atna_escape(const char *s, char *out, size_t outlen);

#endif
