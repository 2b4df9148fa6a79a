/* The report as a DICOM Basic Text SR, written with dcmtk's dcmsr (see dicom_sr.h).
 * Everything dcmtk may throw (std::bad_alloc above all) is caught at the two C entry
 * points; dcmtk's own errors come back as OFCondition and are turned into one line. */
#include "node/dicom/sr.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmsr/dsrdoc.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <unistd.h>

extern "C" {
#include "proto/error.h"
}

namespace
{

/* The report's codes: LOINC "Radiology Report" as the document title, as most
 * radiology SR templates do, and DICOM's own codes for the rest (PS3.16). */
const DSRCodedEntryValue kTitle("11528-7", "LN", "Radiology Report");
const DSRCodedEntryValue kFindings("121070", "DCM", "Findings");
const DSRCodedEntryValue kObserverType("121005", "DCM", "Observer Type");
const DSRCodedEntryValue kPerson("121006", "DCM", "Person");
const DSRCodedEntryValue kObserverName("121008", "DCM", "Person Observer Name");

/* What one call writes; strings already defaulted (never NULL). */
struct sr_fields {
    const char *path, *study_uid, *patient_id, *patient_name, *birth_date, *sex, *accession,
        *study_date, *study_time, *study_id, *referring, *reporter, *text;
    uint64_t time_ms;
    const char *verifier, *organization; /* verifier NULL: unverified */
    uint64_t verify_time_ms;
    const char *series_uid, *sop_uid; /* NULL: new ones */
};

void set_err(char *err, size_t errlen, const std::string &msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg.c_str());
}

const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* DICOM DA, TM and DT of a UTC instant: the node's clocks are UTC everywhere and the
 * SR says so with Timezone Offset From UTC +0000. */
void utc_strings(uint64_t ms, std::string &da, std::string &tm, std::string &dt)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm t;
    gmtime_r(&secs, &t);
    char d[16], h[24];
    strftime(d, sizeof d, "%Y%m%d", &t);
    snprintf(h, sizeof h, "%02d%02d%02d.%03u", t.tm_hour, t.tm_min, t.tm_sec,
             (unsigned)(ms % 1000));
    da = d;
    tm = h;
    dt = da + tm + "+0000";
}

/* Turns a failed step into err and the return code; true if c is good. */
bool ok(OFCondition c, const char *what, int &rc, std::string &why)
{
    if (c.good())
        return true;
    why = std::string(what) + ": " + c.text();
    rc = PM_E_DICOM;
    return false;
}

/* The study's attributes are copied as the views hold them, unchecked: they came in
 * DICOM already, and a strict check here would lose a report over a sender's quirk. */
const OFBool kCopyUnchecked = OFFalse;

/* Patient, study and series attributes of the report's document. */
bool set_header(DSRDocument &doc, const sr_fields &f, int &rc, std::string &why)
{
    const OFBool copy = kCopyUnchecked;
    std::string da, tm, dt;
    utc_strings(f.time_ms, da, tm, dt);
    return ok(doc.setSpecificCharacterSetType(DSRTypes::CS_UTF8), "character set", rc, why) &&
           ok(doc.createNewSeriesInStudy(f.study_uid), "new series", rc, why) &&
           ok(doc.setPatientID(f.patient_id, copy), "PatientID", rc, why) &&
           ok(doc.setPatientName(f.patient_name, copy), "PatientName", rc, why) &&
           ok(doc.setPatientBirthDate(f.birth_date, copy), "PatientBirthDate", rc, why) &&
           ok(doc.setPatientSex(f.sex, copy), "PatientSex", rc, why) &&
           ok(doc.setAccessionNumber(f.accession, copy), "AccessionNumber", rc, why) &&
           ok(doc.setStudyDate(f.study_date, copy), "StudyDate", rc, why) &&
           ok(doc.setStudyTime(f.study_time, copy), "StudyTime", rc, why) &&
           ok(doc.setStudyID(f.study_id, copy), "StudyID", rc, why) &&
           ok(doc.setReferringPhysicianName(f.referring, copy), "ReferringPhysicianName", rc,
              why) &&
           ok(doc.setManufacturer("pacsmesh"), "Manufacturer", rc, why) &&
           ok(doc.setSeriesDescription("Report"), "SeriesDescription", rc, why) &&
           ok(doc.setSeriesNumber("9001"), "SeriesNumber", rc, why) &&
           ok(doc.setInstanceNumber("1"), "InstanceNumber", rc, why) &&
           ok(doc.setTimezoneOffsetFromUTC("+0000"), "TimezoneOffsetFromUTC", rc, why) &&
           ok(doc.setSeriesDate(da.c_str()), "SeriesDate", rc, why) &&
           ok(doc.setSeriesTime(tm.c_str()), "SeriesTime", rc, why) &&
           ok(doc.setContentDate(da.c_str()), "ContentDate", rc, why) &&
           ok(doc.setContentTime(tm.c_str()), "ContentTime", rc, why) &&
           ok(doc.setPreliminaryFlag(DSRTypes::PF_Final), "PreliminaryFlag", rc, why);
}

/* The content tree: title, who observed, what they wrote. */
bool set_content(DSRDocument &doc, const sr_fields &f, int &rc, std::string &why)
{
    const OFBool copy = kCopyUnchecked;
    DSRDocumentTree &tree = doc.getTree();
    if (!tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container)) {
        why = "cannot add the root container";
        rc = PM_E_DICOM;
        return false;
    }
    if (!ok(tree.getCurrentContentItem().setConceptName(kTitle), "title", rc, why))
        return false;
    /* The observer, when there is one: an empty Person Observer Name is not allowed. */
    bool below = true;
    if (*f.reporter) {
        if (!ok(tree.addChildContentItem(DSRTypes::RT_hasObsContext, DSRTypes::VT_Code,
                                         kObserverType),
                "observer type", rc, why) ||
            !ok(tree.getCurrentContentItem().setCodeValue(kPerson), "observer type value", rc,
                why) ||
            !ok(tree.addContentItem(DSRTypes::RT_hasObsContext, DSRTypes::VT_PName, kObserverName),
                "observer name", rc, why) ||
            !ok(tree.getCurrentContentItem().setStringValue(f.reporter, copy),
                "observer name value", rc, why))
            return false;
        below = false;
    }
    OFCondition c =
        below ? tree.addChildContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, kFindings)
              : tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, kFindings);
    return ok(c, "findings", rc, why) &&
           ok(tree.getCurrentContentItem().setStringValue(f.text, copy), "findings text", rc, why);
}

/* The document encoded, with the caller's series and SOP UIDs if given, written to
 * f.path whole or not at all (a temporary file renamed); its SOP UID into sop. */
int save_sr(DSRDocument &doc, const sr_fields &f, OFString &sop, std::string &why)
{
    int rc = PM_OK;
    DcmFileFormat file;
    if (!ok(doc.write(*file.getDataset()), "encoding the SR", rc, why))
        return rc;
    DcmDataset *ds = file.getDataset();
    if ((f.series_uid &&
         !ok(ds->putAndInsertString(DCM_SeriesInstanceUID, f.series_uid), "series UID", rc, why)) ||
        (f.sop_uid &&
         !ok(ds->putAndInsertString(DCM_SOPInstanceUID, f.sop_uid), "SOP instance UID", rc, why)))
        return rc;
    if (f.sop_uid)
        sop = f.sop_uid;
    else
        doc.getSOPInstanceUID(sop);
    std::string tmp = std::string(f.path) + ".tmp";
    OFCondition c = file.saveFile(tmp.c_str(), EXS_LittleEndianExplicit);
    if (c.bad()) {
        unlink(tmp.c_str());
        why = std::string("cannot write ") + tmp + ": " + c.text();
        return PM_E_IO;
    }
    if (rename(tmp.c_str(), f.path) != 0) {
        why = std::string("cannot rename ") + tmp + " to " + f.path + ": " + strerror(errno);
        unlink(tmp.c_str());
        return PM_E_IO;
    }
    return PM_OK;
}

int write_sr(const sr_fields &f, char sop_uid_out[65], std::string &why)
{
    int rc = PM_OK;
    if (!f.path || !*f.path || !*f.study_uid || !*f.text) {
        why = "path, study UID and report text are required";
        return PM_E_INVAL;
    }
    const char *uids[3] = {f.study_uid, f.series_uid, f.sop_uid};
    for (const char *u : uids)
        if (u && DcmUniqueIdentifier::checkStringValue(u, "1").bad()) {
            why = std::string("'") + u + "' is not a valid UID";
            return PM_E_INVAL;
        }
    std::string vda, vtm, vdt;
    utc_strings(f.verify_time_ms, vda, vtm, vdt);
    DSRDocument doc;
    if (!ok(doc.createNewDocument(DSRTypes::DT_BasicTextSR), "new document", rc, why) ||
        !set_header(doc, f, rc, why) || !set_content(doc, f, rc, why))
        return rc;
    /* A submitted report is complete; it is verified only once a second reader says so. */
    if (!ok(doc.completeDocument(), "completion flag", rc, why))
        return rc;
    if (f.verifier &&
        !ok(doc.verifyDocument(f.verifier, f.organization, vdt.c_str(), kCopyUnchecked),
            "verification", rc, why))
        return rc;
    OFString sop;
    if ((rc = save_sr(doc, f, sop, why)) != PM_OK)
        return rc;
    if (sop_uid_out)
        snprintf(sop_uid_out, 65, "%s", sop.c_str());
    return PM_OK;
}

int write_caught(const sr_fields &f, char sop_uid_out[65], char *err, size_t errlen)
{
    if (sop_uid_out)
        sop_uid_out[0] = '\0';
    std::string why;
    int rc;
    try {
        rc = write_sr(f, sop_uid_out, why);
    } catch (const std::bad_alloc &) {
        rc = PM_E_NOMEM;
        why = "out of memory";
    } catch (const std::exception &e) {
        rc = PM_E_DICOM;
        why = std::string("internal error: ") + e.what();
    } catch (...) {
        rc = PM_E_DICOM;
        why = "internal error";
    }
    if (rc != PM_OK) {
        if (f.path)
            unlink((std::string(f.path) + ".tmp").c_str());
        set_err(err, errlen, why);
    }
    return rc;
}

} // namespace

extern "C" int pm_dicom_write_report_sr(const char *path_out, const char *study_uid,
                                        const char *patient_id, const char *patient_name,
                                        const char *patient_birth_date, const char *patient_sex,
                                        const char *accession, const char *study_date,
                                        const char *study_time, const char *study_id,
                                        const char *referring, const char *reporter,
                                        const char *text, uint64_t time_ms, char sop_uid_out[65],
                                        char *err, size_t errlen)
{
    sr_fields f = {path_out,
                   or_empty(study_uid),
                   or_empty(patient_id),
                   or_empty(patient_name),
                   or_empty(patient_birth_date),
                   or_empty(patient_sex),
                   or_empty(accession),
                   or_empty(study_date),
                   or_empty(study_time),
                   or_empty(study_id),
                   or_empty(referring),
                   or_empty(reporter),
                   or_empty(text),
                   time_ms,
                   nullptr,
                   nullptr,
                   0,
                   nullptr,
                   nullptr};
    return write_caught(f, sop_uid_out, err, errlen);
}

extern "C" int pm_dicom_write_verified_sr(const char *path_out, const char *study_uid,
                                          const char *patient_id, const char *patient_name,
                                          const char *patient_birth_date, const char *patient_sex,
                                          const char *accession, const char *study_date,
                                          const char *study_time, const char *study_id,
                                          const char *referring, const char *reporter,
                                          const char *text, uint64_t time_ms, const char *verifier,
                                          const char *organization, uint64_t verify_time_ms,
                                          char sop_uid_out[65], char *err, size_t errlen)
{
    if (!verifier || !*verifier) {
        if (sop_uid_out)
            sop_uid_out[0] = '\0';
        set_err(err, errlen, "a verified report needs the verifier's name");
        return PM_E_INVAL;
    }
    sr_fields f = {path_out,
                   or_empty(study_uid),
                   or_empty(patient_id),
                   or_empty(patient_name),
                   or_empty(patient_birth_date),
                   or_empty(patient_sex),
                   or_empty(accession),
                   or_empty(study_date),
                   or_empty(study_time),
                   or_empty(study_id),
                   or_empty(referring),
                   or_empty(reporter),
                   or_empty(text),
                   time_ms,
                   verifier,
                   organization && *organization ? organization : "pacsmesh",
                   verify_time_ms,
                   nullptr,
                   nullptr};
    return write_caught(f, sop_uid_out, err, errlen);
}

extern "C" int pm_dicom_write_sr(const char *path_out, const pm_dicom_sr_content *c,
                                 char sop_uid_out[65], char *err, size_t errlen)
{
    bool verified = c->verifier && *c->verifier;
    sr_fields f = {path_out,
                   or_empty(c->study_uid),
                   or_empty(c->patient_id),
                   or_empty(c->patient_name),
                   or_empty(c->patient_birth_date),
                   or_empty(c->patient_sex),
                   or_empty(c->accession),
                   or_empty(c->study_date),
                   or_empty(c->study_time),
                   or_empty(c->study_id),
                   or_empty(c->referring),
                   or_empty(c->reporter),
                   or_empty(c->text),
                   c->time_ms,
                   verified ? c->verifier : nullptr,
                   c->organization && *c->organization ? c->organization : "pacsmesh",
                   c->verify_time_ms,
                   c->series_uid && *c->series_uid ? c->series_uid : nullptr,
                   c->sop_uid && *c->sop_uid ? c->sop_uid : nullptr};
    return write_caught(f, sop_uid_out, err, errlen);
}
