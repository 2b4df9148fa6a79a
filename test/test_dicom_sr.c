/* Unit test of node/dicom/sr.h: the report as a DICOM Basic Text SR.
 *
 * Writes SR files and reads them back three ways: with pm_dicom_read_meta (what the
 * ingest path will see: study UID, SOP class, patient), with dcmtk's dsrdump (which
 * parses the file as an SR document, checking the IOD's tree constraints, and prints
 * the flags and the text) and with dcmdump +P for single attributes. Also the errors:
 * a missing text, a study UID that is not a UID, an unwritable path; and that every
 * call makes a new series and a new instance. */
#include <stdint.h>

#include "node/dicom/dicom.h"
#include "node/dicom/sr.h"
#include "test/check.h"

#define STUDY "1.2.826.0.1.3680043.99.7.1"
/* Multi-line UTF-8 with non-ASCII letters, as `report` accepts it. */
#define TEXT                                                                                       \
    "CT head: no acute intracranial abnormality.\nPatient Zo\xc3\xab Bj\xc3\xb8rk, "               \
    "\xc2\xb5-calcification 2 mm."

static char *tmp;

/* Runs cmd and returns its stdout (the caller's); exits on failure or non-zero status. */
static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    CHECK(p);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    CHECK(out);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            out = realloc(out, cap);
            CHECK(out);
        }
    }
    out[len] = '\0';
    int status = pclose(p);
    if (status != 0) {
        fprintf(stderr, "command failed (status %d): %s\n%s\n", status, cmd, out);
        exit(1);
    }
    return out;
}

/* The value of one attribute as dcmdump +P prints it: "(gggg,eeee) VR [value] ...". */
static void attr(const char *path, const char *name, char *value, size_t len)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "dcmdump -q -Un +P %s '%s'", name, path);
    char *out = run(cmd);
    char *b = strchr(out, '['), *e = b ? strchr(b, ']') : NULL;
    value[0] = '\0';
    if (b && e)
        snprintf(value, len, "%.*s", (int)(e - b - 1), b + 1);
    free(out);
}

static int write_one(const char *path, const char *study, const char *text, char sop[65], char *err,
                     size_t errlen)
{
    return pm_dicom_write_report_sr(path, study, "PID-7", "Bjork^Zoe", "19700101", "F", "ACC7",
                                    "20240102", "101500", "S7", "Referrer^Rita", "dr.jones", text,
                                    UINT64_C(1718000000123), sop, err, errlen);
}

static void test_report(void)
{
    char *path = check_path(tmp, "report.dcm");
    char sop[65], err[256] = "";
    CHECK_RC(write_one(path, STUDY, TEXT, sop, err, sizeof err));
    CHECK(strncmp(sop, "1.", 2) == 0 || strncmp(sop, "2.", 2) == 0);

    /* What the ingest path reads from it. */
    pm_dicom_meta m;
    CHECK_RC(pm_dicom_read_meta(path, &m, err, sizeof err));
    CHECK(strcmp(m.study_uid, STUDY) == 0);
    CHECK(strcmp(m.sop_class_uid, PM_DICOM_SR_BASIC_TEXT_CLASS) == 0);
    CHECK(strcmp(m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.88.11") == 0);
    CHECK(strcmp(m.sop_uid, sop) == 0);
    CHECK(strcmp(m.modality, "SR") == 0);
    CHECK(strcmp(m.patient_id, "PID-7") == 0);
    CHECK(strcmp(m.patient_name, "Bjork^Zoe") == 0);
    CHECK(strcmp(m.accession_number, "ACC7") == 0);
    CHECK(strcmp(m.study_date, "20240102") == 0);
    CHECK(m.series_uid[0] && strcmp(m.series_uid, STUDY) != 0);

    /* As an SR document: dsrdump parses it against the Basic Text SR constraints. */
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "dsrdump +Pl +Pc '%s' 2>&1", path);
    char *out = run(cmd);
    CHECK(strstr(out, "Basic Text SR"));
    CHECK(strstr(out, "Completion Flag    : COMPLETE") || strstr(out, "COMPLETE"));
    CHECK(strstr(out, "UNVERIFIED"));
    CHECK(strstr(out, "Radiology Report"));
    CHECK(strstr(out, "dr.jones"));
    CHECK(strstr(out, "no acute intracranial abnormality"));
    CHECK(strstr(out, "Zo\xc3\xab Bj\xc3\xb8rk")); /* UTF-8 kept as it is */
    /* dsrdump warns that its VR checker cannot check ISO_IR 192; errors are errors. */
    CHECK(!strstr(out, "E: "));
    free(out);

    char v[256];
    attr(path, "StudyInstanceUID", v, sizeof v);
    CHECK(strcmp(v, STUDY) == 0);
    attr(path, "SOPClassUID", v, sizeof v);
    CHECK(strcmp(v, "1.2.840.10008.5.1.4.1.1.88.11") == 0);
    attr(path, "SpecificCharacterSet", v, sizeof v);
    CHECK(strcmp(v, "ISO_IR 192") == 0);
    attr(path, "CompletionFlag", v, sizeof v);
    CHECK(strcmp(v, "COMPLETE") == 0);
    attr(path, "VerificationFlag", v, sizeof v);
    CHECK(strcmp(v, "UNVERIFIED") == 0);
    attr(path, "PreliminaryFlag", v, sizeof v);
    CHECK(strcmp(v, "FINAL") == 0);
    attr(path, "ContentDate", v, sizeof v); /* 1718000000123 ms = 2024-06-10T06:13:20.123Z */
    CHECK(strcmp(v, "20240610") == 0);
    attr(path, "ContentTime", v, sizeof v);
    CHECK(strcmp(v, "061320.123") == 0);
    attr(path, "TimezoneOffsetFromUTC", v, sizeof v);
    CHECK(strcmp(v, "+0000") == 0);
    snprintf(cmd, sizeof cmd, "dcmdump -q +P TextValue '%s'", path);
    out = run(cmd);
    CHECK(strstr(out, "CT head: no acute intracranial abnormality."));
    free(out);
    snprintf(cmd, sizeof cmd, "%s.tmp", path);
    CHECK(access(cmd, F_OK) != 0); /* the temporary file was renamed */

    /* A second report: same study, a new series and a new instance. */
    char *path2 = check_path(tmp, "report2.dcm");
    char sop2[65];
    CHECK_RC(write_one(path2, STUDY, "Addendum.", sop2, err, sizeof err));
    pm_dicom_meta m2;
    CHECK_RC(pm_dicom_read_meta(path2, &m2, err, sizeof err));
    CHECK(strcmp(m2.study_uid, STUDY) == 0);
    CHECK(strcmp(m2.series_uid, m.series_uid) != 0);
    CHECK(strcmp(sop2, sop) != 0);
    free(path2);
    free(path);
}

static void test_verified(void)
{
    char *path = check_path(tmp, "verified.dcm");
    char sop[65], err[256] = "", v[256];
    CHECK_RC(pm_dicom_write_verified_sr(path, STUDY, "PID-7", "Bjork^Zoe", "", "", "", "", "", "",
                                        "", "dr.jones", "Verified text.", UINT64_C(1718000000123),
                                        "Second^Reader", NULL, UINT64_C(1718000600000), sop, err,
                                        sizeof err));
    attr(path, "VerificationFlag", v, sizeof v);
    CHECK(strcmp(v, "VERIFIED") == 0);
    attr(path, "VerifyingObserverName", v, sizeof v);
    CHECK(strcmp(v, "Second^Reader") == 0);
    attr(path, "VerificationDateTime", v, sizeof v);
    CHECK(strncmp(v, "20240610062320", 14) == 0);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "dsrdump +Pl +Pc '%s' 2>&1", path);
    char *out = run(cmd);
    CHECK(strstr(out, "Verified text."));
    free(out);
    /* No verifier: refused. */
    CHECK_CODE(pm_dicom_write_verified_sr(path, STUDY, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                          NULL, NULL, "dr.jones", "x", 0, "", NULL, 0, sop, err,
                                          sizeof err),
               PM_E_INVAL);
    free(path);
}

static void test_errors(void)
{
    char *path = check_path(tmp, "bad.dcm");
    char sop[65] = "x", err[256] = "";
    CHECK_CODE(write_one(path, STUDY, "", sop, err, sizeof err), PM_E_INVAL);
    CHECK(err[0] && sop[0] == '\0');
    CHECK(access(path, F_OK) != 0);
    err[0] = '\0';
    CHECK_CODE(write_one(path, "not a uid", "text", sop, err, sizeof err), PM_E_INVAL);
    CHECK(strstr(err, "not a uid"));
    CHECK(access(path, F_OK) != 0);
    CHECK_CODE(write_one(path, NULL, "text", sop, err, sizeof err), PM_E_INVAL);
    CHECK_CODE(write_one(NULL, STUDY, "text", sop, err, sizeof err), PM_E_INVAL);
    /* NULL optional strings are fine. */
    CHECK_RC(pm_dicom_write_report_sr(path, STUDY, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                      NULL, NULL, "text only", 0, sop, NULL, 0));
    char *missing = check_path(tmp, "no/such/dir/r.dcm");
    err[0] = '\0';
    CHECK_CODE(write_one(missing, STUDY, "text", sop, err, sizeof err), PM_E_IO);
    CHECK(err[0]);
    free(missing);
    free(path);
}

int main(void)
{
    if (system("command -v dsrdump >/dev/null && command -v dcmdump >/dev/null") != 0) {
        printf("SKIP: dcmtk's dsrdump and dcmdump are needed\n");
        return 77;
    }
    tmp = check_tmpdir("dicom_sr");
    test_report();
    test_verified();
    test_errors();
    check_tmpdir_remove(&tmp);
    printf("PASS: test_dicom_sr\n");
    return 0;
}
