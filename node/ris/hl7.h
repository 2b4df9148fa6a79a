/* HL7 v2.5 for the report's way home: an ORU^R01 carrying a final report to the
 * acquiring trust's RIS, and reading the RIS's acknowledgement. Pure: strings in,
 * strings out. Debian ships no HL7 library for C; the subset written here is small
 * (one message type, the standard delimiters |^~\&) and its escaping is tested
 * against python3-hl7, which parses what we send in the integration test. */
#ifndef PM_RIS_HL7_H
#define PM_RIS_HL7_H

#include <stddef.h>
#include <stdint.h>

/* What one ORU^R01 says. Strings are borrowed; none may be NULL ("" for none). */
typedef struct {
    const char *sending_facility, *receiving_application;
    const char *control_id; /* MSH-10, echoed by the acknowledgement (at most 20 chars) */
    uint64_t time_ms;       /* MSH-7 and OBR-22: when the report became final */
    const char *patient_id, *patient_name, *birth_date, *sex; /* DICOM PN "Family^Given" */
    const char *accession, *study_uid, *description, *study_date;
    const char *reporter;     /* OBR-32, the principal result interpreter */
    int correction;           /* OBR-25 and OBX-11: "C" (an addendum came) instead of "F" */
    const char *const *texts; /* the report, then any addenda, each one or more lines */
    size_t n_texts;
} pm_hl7_report;

/* Writes s into out with HL7's escapes for the field, component, repetition, escape
 * and sub-component characters (\F\ \S\ \R\ \E\ \T\); other control characters become
 * spaces. Returns the length written, or (size_t)-1 if out (outlen) is too small. */
size_t pm_hl7_escape(const char *s, char *out, size_t outlen);

/* The message, segments ended by CR, in a new string (the caller's), or NULL when out
 * of memory. */
char *pm_hl7_oru(const pm_hl7_report *r);

/* Reads an acknowledgement: 1 when its MSA segment says AA for control_id, 0 when it
 * says anything else (why receives the RIS's reason, or a description of what was
 * wrong with the message), -1 when it is not an HL7 acknowledgement. */
int pm_hl7_ack_accepted(const char *msg, size_t len, const char *control_id, char *why,
                        size_t whylen);

#endif
