/* The coded concepts of an SR (see sr_codes.h), read from the raw data set: an AI
 * product's SR need not follow any one template, so the tree is walked as it is,
 * without dcmsr's template checks. */
#include "node/dicom/sr_codes.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>

#include <cstdio>
#include <new>
#include <string>

extern "C" {
#include "node/dicom/scan.h"
#include "proto/error.h"
}

namespace
{

typedef int (*code_fn)(void *, const char *, const char *, const char *);

struct walk {
    code_fn fn;
    void *ctx;
    unsigned items;
    int stopped;
};

std::string text_of(DcmItem *item, const DcmTagKey &tag)
{
    OFString v;
    if (item->findAndGetOFString(tag, v).bad())
        return "";
    return v.c_str();
}

/* The code in the first item of the sequence tag of item, if any; the walk's value. */
int visit_code(DcmItem *item, const DcmTagKey &tag, walk &w)
{
    DcmItem *code = NULL;
    if (item->findAndGetSequenceItem(tag, code, 0).bad() || !code)
        return 0;
    std::string value = text_of(code, DCM_CodeValue);
    if (value.empty())
        value = text_of(code, DCM_LongCodeValue);
    if (value.empty())
        value = text_of(code, DCM_URNCodeValue);
    std::string scheme = text_of(code, DCM_CodingSchemeDesignator);
    std::string meaning = text_of(code, DCM_CodeMeaning);
    return w.fn(w.ctx, scheme.c_str(), value.c_str(), meaning.c_str());
}

int visit_items(DcmItem *parent, unsigned depth, walk &w)
{
    DcmSequenceOfItems *seq = NULL;
    if (depth > PM_DICOM_SR_CODES_MAX_DEPTH ||
        parent->findAndGetSequence(DCM_ContentSequence, seq).bad() || !seq)
        return 0;
    for (unsigned long i = 0; i < seq->card(); i++) {
        if (++w.items > PM_DICOM_SR_CODES_MAX_ITEMS)
            return 0;
        DcmItem *item = seq->getItem(i);
        int rc;
        if ((rc = visit_code(item, DCM_ConceptNameCodeSequence, w)) ||
            (rc = visit_code(item, DCM_ConceptCodeSequence, w)) ||
            (rc = visit_items(item, depth + 1, w)))
            return rc;
    }
    return 0;
}

int read_codes(const char *path, walk &w, std::string &why)
{
    pm_dicom_scan_result scan;
    int rc = pm_dicom_scan_file(path, NULL, &scan);
    if (rc != PM_OK) {
        why = rc == PM_E_IO ? std::string("cannot read ") + path : scan.reason;
        return PM_E_DICOM;
    }
    DcmFileFormat file;
    OFCondition c = file.loadFile(path);
    if (c.bad()) {
        why = std::string("not a DICOM file: ") + c.text();
        return PM_E_DICOM;
    }
    DcmDataset *ds = file.getDataset();
    if (text_of(ds, DCM_Modality) != "SR") {
        why = "not a structured report (Modality is not SR)";
        return PM_E_DICOM;
    }
    if ((rc = visit_code(ds, DCM_ConceptNameCodeSequence, w)) || (rc = visit_items(ds, 1, w)))
        w.stopped = rc;
    return PM_OK;
}

} // namespace

extern "C" int pm_dicom_sr_codes(const char *path, code_fn fn, void *ctx, char *err, size_t errlen)
{
    walk w = {fn, ctx, 0, 0};
    std::string why;
    int rc;
    try {
        rc = path && fn ? read_codes(path, w, why) : (why = "no file or callback", PM_E_INVAL);
    } catch (const std::bad_alloc &) {
        rc = PM_E_NOMEM;
        why = "out of memory";
    } catch (...) {
        rc = PM_E_DICOM;
        why = "internal error";
    }
    if (rc != PM_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s", why.c_str());
        return rc;
    }
    return w.stopped;
}
