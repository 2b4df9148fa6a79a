/* The report as a DICOM Basic Text SR (SPEC.md, "report"): a submitted report is also
 * added to its study as one Basic Text SR instance, so that any viewer or PACS that
 * retrieves the study sees it. Written with dcmtk's dcmsr in a C++ file that catches
 * every exception at this C boundary.
 *
 * Each call makes a new SR series in the study (new Series Instance UID) holding one
 * new instance (new SOP Instance UID): reports are never edited in place, so a later
 * report or a verification is a new instance beside the earlier ones. */
#ifndef PM_DICOM_SR_H
#define PM_DICOM_SR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SOP Class UID of Basic Text SR (PS3.4 B.5). */
#define PM_DICOM_SR_BASIC_TEXT_CLASS "1.2.840.10008.5.1.4.1.1.88.11"

/* Writes a Part-10 file (Explicit VR Little Endian, Specific Character Set ISO_IR 192)
 * at path_out holding the report of study study_uid as a Basic Text SR:
 *   root CONTAINER "Radiology Report" (LOINC 11528-7)
 *     HAS OBS CONTEXT  Observer Type = Person, Person Observer Name = reporter
 *     CONTAINS TEXT    "Findings" (DCM 121070) = text
 * Completion Flag COMPLETE, Verification Flag UNVERIFIED, Preliminary Flag FINAL: a
 * submitted report is the reporter's final word but has had no second read yet (see
 * pm_dicom_write_verified_sr for a verified one).
 *
 * study_uid and text are required (text: UTF-8, as `report` accepts it). Every other
 * string may be NULL or empty (then the attribute is written empty, as a type 2
 * attribute of the IOD); they are the study's attributes as the views hold them and
 * are copied as they are. reporter is the reporter id (a login), written as the
 * observer's and author's name. time_ms is the report's time (ms since the Unix
 * epoch): Content Date/Time, Series Date/Time and Instance Creation in UTC, with
 * Timezone Offset From UTC +0000.
 *
 * sop_uid_out (65 bytes) receives the new SOP Instance UID. The file is written to
 * path_out.tmp and renamed, so a crash leaves no half-written path_out.
 *
 * Returns 0 (PM_OK); PM_E_INVAL if path_out, study_uid or text is missing or study_uid
 * is not a valid UID (the other values are copied unchecked: they came in DICOM
 * already, and a report must not be lost over a sender's quirk); PM_E_IO if the file
 * cannot be written;
 * PM_E_DICOM for any other dcmtk failure; PM_E_NOMEM. On failure err (errlen bytes)
 * holds one line saying why and nothing is left at path_out. Never throws. */
int pm_dicom_write_report_sr(const char *path_out, const char *study_uid, const char *patient_id,
                             const char *patient_name, const char *patient_birth_date,
                             const char *patient_sex, const char *accession, const char *study_date,
                             const char *study_time, const char *study_id, const char *referring,
                             const char *reporter, const char *text, uint64_t time_ms,
                             char sop_uid_out[65], char *err, size_t errlen);

/* As pm_dicom_write_report_sr, for a report that a second reader has verified:
 * Verification Flag VERIFIED, with a Verifying Observer Sequence naming verifier
 * (required) of organization (may be NULL: "pacsmesh") at verify_time_ms. */
int pm_dicom_write_verified_sr(const char *path_out, const char *study_uid, const char *patient_id,
                               const char *patient_name, const char *patient_birth_date,
                               const char *patient_sex, const char *accession,
                               const char *study_date, const char *study_time, const char *study_id,
                               const char *referring, const char *reporter, const char *text,
                               uint64_t time_ms, const char *verifier, const char *organization,
                               uint64_t verify_time_ms, char sop_uid_out[65], char *err,
                               size_t errlen);

/* Everything one SR says, for pm_dicom_write_sr. NULL strings count as empty. */
typedef struct {
    const char *study_uid, *patient_id, *patient_name, *patient_birth_date, *patient_sex,
        *accession, *study_date, *study_time, *study_id, *referring;
    const char *reporter, *text;
    uint64_t time_ms;
    const char *verifier, *organization; /* verifier NULL or "": not verified */
    uint64_t verify_time_ms;
    /* NULL or "": new UIDs. Given, the same report written twice is the same instance
     * (a PACS that gets it again keeps one copy). Must be valid UIDs. */
    const char *series_uid, *sop_uid;
} pm_dicom_sr_content;

/* pm_dicom_write_report_sr, or pm_dicom_write_verified_sr when c->verifier is set,
 * from one struct, with the Series and SOP Instance UIDs optionally given. Returns as
 * they do (PM_E_INVAL also for a given UID that is not valid). */
int pm_dicom_write_sr(const char *path_out, const pm_dicom_sr_content *c, char sop_uid_out[65],
                      char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
