/* Patient consistency: which patient a study belongs to, and the rule for an instance
 * whose patient differs from its study's.
 *
 * The study's patient is what its first instance taken in here said (instances are
 * checked when they come, so that agrees with the views), else what the mesh's views
 * say under its Study Instance UID. An instance differs from it when:
 *   - its PatientID differs (compared exactly, after DICOM padding is trimmed; an empty
 *     PatientID differs from a non-empty one), or
 *   - both carry IssuerOfPatientID and the issuers differ, or
 *   - both carry PatientName and the names differ once normalized (the first component
 *     group only, before any '='; ASCII letters compared case-insensitively; spaces
 *     around '^' and trailing '^' and spaces ignored: "Doe^John^^^" = "DOE^JOHN"), or
 *   - both carry PatientBirthDate and the dates differ.
 * What is absent on either side never conflicts. Such an instance is refused or
 * quarantined ([dicom] patient_conflict), never stored inside the study. */
#ifndef PM_PATIENT_H
#define PM_PATIENT_H

#include "node/dicom/dicom.h"
#include "store/store.h"

typedef struct {
    char id[PM_DICOM_TEXT_MAX + 1];
    char issuer[PM_DICOM_TEXT_MAX + 1];
    char name[PM_DICOM_TEXT_MAX + 1];
    char birth_date[PM_DICOM_TEXT_MAX + 1];
} pm_patient;

/* The patient of an instance, from its metadata. */
void pm_patient_of_meta(const pm_dicom_meta *m, pm_patient *out);

/* The patient of study_uid as this node knows it (see above): PM_OK, or PM_E_NOTFOUND
 * when the study is known neither to the mesh nor here. */
int pm_patient_of_study(pm_store *store, const char *study_uid, pm_patient *out);

/* NULL when incoming agrees with known by the rule above, else the keyword of the first
 * attribute that differs ("PatientID", "IssuerOfPatientID", "PatientName",
 * "PatientBirthDate"). */
const char *pm_patient_differs(const pm_patient *known, const pm_patient *incoming);

#endif
