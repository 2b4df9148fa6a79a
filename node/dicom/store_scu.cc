/* C-STORE of one file to another AE (see store_scu.h), over dcmtk's DcmSCU. */
#include "node/dicom/store_scu.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/scu.h>

#include <cstdio>
#include <new>
#include <string>

extern "C" {
#include "proto/error.h"
}

namespace
{

/* Success, or one of the warnings that still mean "stored" (PS3.4 B.2.3). */
bool stored(Uint16 status)
{
    return status == 0x0000 || status == 0xB000 || status == 0xB007 || status == 0xB006;
}

int send_file(const char *host, int port, const char *calling, const char *called, const char *path,
              unsigned timeout_ms, uint16_t *status_out, std::string &why)
{
    DcmFileFormat file;
    OFCondition c = file.loadFile(path);
    if (c.bad()) {
        why = std::string("cannot read ") + path + ": " + c.text();
        return PM_E_DICOM;
    }
    OFString sop_class;
    if (file.getDataset()->findAndGetOFString(DCM_SOPClassUID, sop_class).bad() ||
        sop_class.empty()) {
        why = std::string(path) + " has no SOP Class UID";
        return PM_E_DICOM;
    }
    Uint32 secs = timeout_ms < 1000 ? 1 : timeout_ms / 1000;
    DcmSCU scu;
    scu.setAETitle(calling);
    scu.setPeerAETitle(called);
    scu.setPeerHostName(host);
    scu.setPeerPort((Uint16)port);
    scu.setConnectionTimeout((Sint32)secs);
    scu.setACSETimeout(secs);
    scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    scu.setDIMSETimeout(secs);
    OFList<OFString> syntaxes;
    syntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
    syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
    const std::string where = std::string(called) + " at " + host + ":" + std::to_string(port);
    if ((c = scu.addPresentationContext(sop_class, syntaxes)).bad() ||
        (c = scu.initNetwork()).bad() || (c = scu.negotiateAssociation()).bad()) {
        why = "cannot open an association with " + where + ": " + c.text();
        return PM_E_NET;
    }
    T_ASC_PresentationContextID pc = scu.findPresentationContextID(sop_class, "");
    if (pc == 0) {
        why = where + " does not accept SOP class " + sop_class.c_str();
        scu.releaseAssociation();
        return PM_E_NET;
    }
    Uint16 status = 0;
    c = scu.sendSTORERequest(pc, OFFilename(), file.getDataset(), status);
    if (status_out)
        *status_out = c.good() ? status : 0;
    if (c.bad()) {
        why = "C-STORE to " + where + " failed: " + c.text();
        scu.abortAssociation();
        return PM_E_NET;
    }
    scu.releaseAssociation();
    if (!stored(status)) {
        char hex[8];
        snprintf(hex, sizeof hex, "%04X", status);
        why = where + " answered the C-STORE with status 0x" + hex;
        return PM_E_NET;
    }
    return PM_OK;
}

} // namespace

extern "C" int pm_dicom_store_send(const char *host, int port, const char *calling_ae,
                                   const char *called_ae, const char *path, unsigned timeout_ms,
                                   uint16_t *status, char *err, size_t errlen)
{
    if (status)
        *status = 0;
    std::string why;
    int rc;
    try {
        rc = host && calling_ae && called_ae && path && port > 0 && port < 65536
                 ? send_file(host, port, calling_ae, called_ae, path, timeout_ms, status, why)
                 : (why = "host, port, AE titles and file are required", PM_E_INVAL);
    } catch (const std::bad_alloc &) {
        rc = PM_E_NOMEM;
        why = "out of memory";
    } catch (...) {
        rc = PM_E_DICOM;
        why = "internal error";
    }
    if (rc != PM_OK && err && errlen)
        snprintf(err, errlen, "%s", why.c_str());
    return rc;
}
