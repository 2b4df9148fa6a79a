/* The patient consistency rule of node/studies/patient.h. */
#include "node/studies/patient.h"
#include "proto/error.h"
#include "store/views.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define INSTANCE_PREFIX "i/" /* ingest.c's local instance records */

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

static void of_announced(const Pm__StudyAnnounced *a, pm_patient *out)
{
    memset(out, 0, sizeof *out);
    copy(out->id, sizeof out->id, a->patient_id);
    copy(out->issuer, sizeof out->issuer, a->issuer_of_patient_id);
    copy(out->name, sizeof out->name, a->patient_name);
    copy(out->birth_date, sizeof out->birth_date, a->patient_birth_date);
}

void pm_patient_of_meta(const pm_dicom_meta *m, pm_patient *out)
{
    memset(out, 0, sizeof *out);
    copy(out->id, sizeof out->id, m->patient_id);
    copy(out->issuer, sizeof out->issuer, m->issuer_of_patient_id);
    copy(out->name, sizeof out->name, m->patient_name);
    copy(out->birth_date, sizeof out->birth_date, m->patient_birth_date);
}

static int first_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen;
    Pm__StudyAnnounced *a = pm__study_announced__unpack(NULL, vlen, val);
    if (!a)
        return 0; /* unreadable: look at the next */
    of_announced(a, ctx);
    pm__study_announced__free_unpacked(a, NULL);
    return 1;
}

int pm_patient_of_study(pm_store *store, const char *study_uid, pm_patient *out)
{
    /* Instances taken in here first: they were checked against the views when they
     * came (or defined the study's patient), and reading one is cheap, where a view
     * holds every instance of the study. */
    char prefix[2 + PM_DICOM_UID_MAX + 2];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, INSTANCE_PREFIX "%s", study_uid) + 1;
    if (plen <= sizeof prefix && pm_store_local_each(store, prefix, plen, first_record, out) == 1)
        return PM_OK;
    Pm__StudyView *v = NULL;
    if (pm_views_study(store, study_uid, &v) == PM_OK) {
        int have = v->study != NULL;
        if (have)
            of_announced(v->study, out);
        pm__study_view__free_unpacked(v, NULL);
        if (have)
            return PM_OK;
    }
    return PM_E_NOTFOUND;
}

/* The first component group, letters upper-cased, spaces around '^' and trailing '^'
 * and spaces dropped. */
static void normalize_name(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = in; *p && *p != '=' && k + 1 < n; p++) {
        if (*p == ' ' && (p[1] == '^' || (k > 0 && out[k - 1] == '^')))
            continue;
        out[k++] = (char)toupper((unsigned char)*p);
    }
    while (k > 0 && (out[k - 1] == '^' || out[k - 1] == ' '))
        k--;
    out[k] = 0;
}

const char *pm_patient_differs(const pm_patient *known, const pm_patient *incoming)
{
    if (strcmp(known->id, incoming->id) != 0)
        return "PatientID";
    if (known->issuer[0] && incoming->issuer[0] && strcmp(known->issuer, incoming->issuer) != 0)
        return "IssuerOfPatientID";
    char a[PM_DICOM_TEXT_MAX + 1], b[PM_DICOM_TEXT_MAX + 1];
    normalize_name(known->name, a, sizeof a);
    normalize_name(incoming->name, b, sizeof b);
    if (a[0] && b[0] && strcmp(a, b) != 0)
        return "PatientName";
    if (known->birth_date[0] && incoming->birth_date[0] &&
        strcmp(known->birth_date, incoming->birth_date) != 0)
        return "PatientBirthDate";
    return NULL;
}
