/* Unit test of the patient consistency rule (node/studies/patient.h,
 * pm_patient_differs): each attribute that differs is named, in the rule's order;
 * what is absent on either side never conflicts; names compare as normalized. */
#include "test/check.h"

#include "node/studies/patient.h"

#include <string.h>

static pm_patient patient(const char *id, const char *issuer, const char *name, const char *dob)
{
    pm_patient p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.issuer, sizeof p.issuer, "%s", issuer);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.birth_date, sizeof p.birth_date, "%s", dob);
    return p;
}

static int differs_by(const pm_patient *a, const pm_patient *b, const char *attr)
{
    const char *d = pm_patient_differs(a, b);
    return attr ? d && strcmp(d, attr) == 0 : d == NULL;
}

int main(void)
{
    pm_patient known = patient("P1", "TRUSTA", "DOE^JANE", "19800101");
    pm_patient same = patient("P1", "TRUSTA", "Doe ^ Jane^^", "19800101");
    CHECK(differs_by(&known, &same, NULL));
    pm_patient other_id = patient("P2", "TRUSTA", "DOE^JANE", "19800101");
    CHECK(differs_by(&known, &other_id, "PatientID"));
    pm_patient empty_id = patient("", "TRUSTA", "DOE^JANE", "19800101");
    CHECK(differs_by(&known, &empty_id, "PatientID"));
    /* The same PatientID from another issuer is another patient. */
    pm_patient other_issuer = patient("P1", "TRUSTB", "DOE^JANE", "19800101");
    CHECK(differs_by(&known, &other_issuer, "IssuerOfPatientID"));
    pm_patient no_issuer = patient("P1", "", "DOE^JANE", "19800101");
    CHECK(differs_by(&known, &no_issuer, NULL));
    CHECK(differs_by(&no_issuer, &other_issuer, NULL));
    pm_patient other_name = patient("P1", "TRUSTA", "ROE^RICHARD", "19800101");
    CHECK(differs_by(&known, &other_name, "PatientName"));
    pm_patient ideographic = patient("P1", "TRUSTA", "DOE^JANE=ignored^part", "");
    CHECK(differs_by(&known, &ideographic, NULL));
    pm_patient other_dob = patient("P1", "TRUSTA", "", "19990909");
    CHECK(differs_by(&known, &other_dob, "PatientBirthDate"));
    /* PatientID is checked first: it is what names the patient. */
    pm_patient all_differ = patient("P9", "TRUSTB", "ROE^RICHARD", "19990909");
    CHECK(differs_by(&known, &all_differ, "PatientID"));
    printf("test_patient: ok\n");
    return 0;
}
