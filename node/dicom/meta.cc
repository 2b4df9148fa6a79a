/* pm_dicom_read_meta: the metadata the node needs from one DICOM file, read with dcmtk.
 * The file comes from a peer, an import or a DICOM client, so every failure is a
 * one-line reason, never an exception or an abort. */
#include "node/dicom/shim_internal.h"

#include <dcmtk/oflog/oflog.h>

#include <cstdio>
#include <cstring>
#include <new>

extern "C" {
#include "proto/error.h"
}

void pm_dicom_edge_quiet_dcmtk(void)
{
    static std::once_flag once;
    std::call_once(once, [] { OFLog::configure(OFLogger::FATAL_LOG_LEVEL); });
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Copies the attribute's value, all values joined by backslashes, without padding. */
static void get_str(DcmItem *item, const DcmTagKey &tag, char *out, size_t outlen)
{
    OFString v;
    out[0] = '\0';
    if (item->findAndGetOFStringArray(tag, v).bad())
        return;
    size_t b = 0, e = v.length();
    while (b < e && (v[b] == ' ' || v[b] == '\0'))
        b++;
    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\0'))
        e--;
    size_t n = e - b < outlen - 1 ? e - b : outlen - 1;
    memcpy(out, v.c_str() + b, n);
    out[n] = '\0';
}

static int get_int(DcmItem *item, const DcmTagKey &tag)
{
    Sint32 v = 0;
    if (item->findAndGetSint32(tag, v).bad())
        return 0;
    return (int)v;
}

/* Did the file start like a DICOM Part-10 file or a raw data set? Used to tell "not a
 * DICOM file" from "truncated" when dcmtk gives up. */
static bool looks_like_dicom(const char *path)
{
    unsigned char buf[132];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf && memcmp(buf + 128, "DICM", 4) == 0)
        return true;
    /* A raw data set usually starts with a group 0x0008 tag (either byte order). */
    return n >= 4 && ((buf[0] == 0x08 && buf[1] == 0x00) || (buf[0] == 0x00 && buf[1] == 0x08));
}

static int read_meta(const char *path, pm_dicom_meta *out, char *err, size_t errlen)
{
    DcmFileFormat ff;
    /* Values over 4 KiB (pixel data) are left on disk: only the header matters here. */
    OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
    if (c.bad()) {
        char msg[256];
        if (!looks_like_dicom(path))
            snprintf(msg, sizeof msg, "not a DICOM file (%s)", c.text());
        else if (c == EC_StreamNotifyClient || c == EC_InvalidStream || c == EC_ItemEnd ||
                 c == EC_SequEnd)
            snprintf(msg, sizeof msg, "truncated (%s)", c.text());
        else
            snprintf(msg, sizeof msg, "unreadable DICOM (%s)", c.text());
        set_err(err, errlen, msg);
        return PM_E_DICOM;
    }
    DcmDataset *ds = ff.getDataset();
    DcmMetaInfo *mi = ff.getMetaInfo();
    if (!ds) {
        set_err(err, errlen, "no data set");
        return PM_E_DICOM;
    }
    get_str(ds, DCM_StudyInstanceUID, out->study_uid, sizeof out->study_uid);
    get_str(ds, DCM_SeriesInstanceUID, out->series_uid, sizeof out->series_uid);
    get_str(ds, DCM_SOPInstanceUID, out->sop_uid, sizeof out->sop_uid);
    get_str(ds, DCM_SOPClassUID, out->sop_class_uid, sizeof out->sop_class_uid);
    if (mi) {
        if (!out->sop_uid[0])
            get_str(mi, DCM_MediaStorageSOPInstanceUID, out->sop_uid, sizeof out->sop_uid);
        if (!out->sop_class_uid[0])
            get_str(mi, DCM_MediaStorageSOPClassUID, out->sop_class_uid, sizeof out->sop_class_uid);
        get_str(mi, DCM_TransferSyntaxUID, out->transfer_syntax_uid,
                sizeof out->transfer_syntax_uid);
    }
    if (!out->transfer_syntax_uid[0]) {
        DcmXfer x(ds->getOriginalXfer());
        if (x.getXfer() != EXS_Unknown)
            snprintf(out->transfer_syntax_uid, sizeof out->transfer_syntax_uid, "%s",
                     x.getXferID());
    }
    get_str(ds, DCM_PatientID, out->patient_id, sizeof out->patient_id);
    get_str(ds, DCM_PatientName, out->patient_name, sizeof out->patient_name);
    get_str(ds, DCM_PatientBirthDate, out->patient_birth_date, sizeof out->patient_birth_date);
    get_str(ds, DCM_PatientSex, out->patient_sex, sizeof out->patient_sex);
    get_str(ds, DCM_StudyDate, out->study_date, sizeof out->study_date);
    get_str(ds, DCM_StudyTime, out->study_time, sizeof out->study_time);
    get_str(ds, DCM_AccessionNumber, out->accession_number, sizeof out->accession_number);
    get_str(ds, DCM_StudyDescription, out->study_description, sizeof out->study_description);
    get_str(ds, DCM_ReferringPhysicianName, out->referring_physician,
            sizeof out->referring_physician);
    get_str(ds, DCM_StudyID, out->study_id, sizeof out->study_id);
    get_str(ds, DCM_Modality, out->modality, sizeof out->modality);
    get_str(ds, DCM_SeriesDescription, out->series_description, sizeof out->series_description);
    get_str(ds, DCM_BodyPartExamined, out->body_part, sizeof out->body_part);
    out->series_number = get_int(ds, DCM_SeriesNumber);
    out->instance_number = get_int(ds, DCM_InstanceNumber);

    const char *missing = !out->sop_uid[0]         ? "missing SOPInstanceUID"
                          : !out->sop_class_uid[0] ? "missing SOPClassUID"
                          : !out->study_uid[0]     ? "missing StudyInstanceUID"
                          : !out->series_uid[0]    ? "missing SeriesInstanceUID"
                                                   : NULL;
    if (missing) {
        set_err(err, errlen, looks_like_dicom(path) ? missing : "not a DICOM file");
        return PM_E_DICOM;
    }
    return PM_OK;
}

extern "C" int pm_dicom_read_meta(const char *path, pm_dicom_meta *out, char *err, size_t errlen)
{
    if (!path || !out) {
        set_err(err, errlen, "bad argument");
        return PM_E_INVAL;
    }
    memset(out, 0, sizeof *out);
    set_err(err, errlen, "");
    pm_dicom_edge_quiet_dcmtk();
    try {
        int rc = read_meta(path, out, err, errlen);
        if (rc != PM_OK) {
            /* Never hand back half-filled metadata next to an error. */
            memset(out, 0, sizeof *out);
        }
        return rc;
    } catch (const std::bad_alloc &) {
        memset(out, 0, sizeof *out);
        set_err(err, errlen, "out of memory");
        return PM_E_NOMEM;
    } catch (...) {
        memset(out, 0, sizeof *out);
        set_err(err, errlen, "unreadable DICOM (exception)");
        return PM_E_DICOM;
    }
}
