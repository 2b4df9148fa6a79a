/* The C-STORE service of the DICOM edge: each instance is spooled to a file as it
 * arrives, checked to parse and to be the instance announced, then handed to the
 * provider; refusals (no store right, a full disk) read the data set to its end and
 * answer with a status. */
#include "node/dicom/shim_internal.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

struct store_ctx {
    pm_dicom_assoc *a;
    std::string path;
    bool handed_over = false;
    DcmDataset *detail = nullptr;
    Uint16 refuse_status = 0; /* refuse_callback's answer */
    std::string refuse_why;
};

static void store_fail(store_ctx *s, T_DIMSE_C_StoreRSP *rsp, Uint16 status, const std::string &why)
{
    rsp->DimseStatus = status;
    delete s->detail;
    s->detail = pm_dicom_edge_error_detail(why);
}

static void store_callback(void *data, T_DIMSE_StoreProgress *progress, T_DIMSE_C_StoreRQ *req,
                           char *, DcmDataset **, T_DIMSE_C_StoreRSP *rsp,
                           DcmDataset **status_detail)
{
    store_ctx *s = static_cast<store_ctx *>(data);
    if (progress->state != DIMSE_StoreEnd)
        return;
    try {
        /* The data set was written to s->path as it arrived. Check it parses and is the
         * instance announced before the provider makes it durable. */
        pm_dicom_meta meta;
        char err[256];
        if (pm_dicom_read_meta(s->path.c_str(), &meta, err, sizeof err) != PM_OK) {
            pm_warn(LOG_MOD, "C-STORE from %s: %s", s->a->label.c_str(), err);
            store_fail(s, rsp, STATUS_STORE_Error_CannotUnderstand, err);
        } else if (strcmp(meta.sop_uid, req->AffectedSOPInstanceUID) != 0 ||
                   strcmp(meta.sop_class_uid, req->AffectedSOPClassUID) != 0) {
            pm_warn(LOG_MOD, "C-STORE from %s: data set UIDs differ from the request",
                    s->a->label.c_str());
            store_fail(s, rsp, STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
                       "SOP Class/Instance UID differ from the C-STORE request");
        } else {
            const pm_dicom_provider &p = s->a->srv->provider;
            err[0] = '\0';
            s->handed_over = true;
            pm_dicom_store_rq rq = {
                s->a->calling_ae.c_str(), s->a->host.c_str(), s->path.c_str(), &meta, 0, 0};
            int rc = p.store ? p.store(p.ctx, &rq, err, sizeof err) : PM_E_INVAL;
            if (rc == PM_OK) {
                rsp->DimseStatus = STATUS_STORE_Success;
                if (!rq.quarantined)
                    s->a->stored++;
            } else {
                std::string why = err[0] ? err : pm_strerror(rc);
                pm_warn(LOG_MOD, "C-STORE from %s%s%s", s->a->label.c_str(),
                        why.compare(0, 7, "refused") == 0 ? ": " : " refused: ", why.c_str());
                bool resources =
                    rc == PM_E_MAPFULL || rc == PM_E_NOMEM || rc == PM_E_IO || rc == PM_E_STORE;
                store_fail(s, rsp,
                           rq.status   ? rq.status
                           : resources ? STATUS_STORE_Refused_OutOfResources
                                       : STATUS_STORE_Error_CannotUnderstand,
                           why);
            }
        }
    } catch (...) {
        store_fail(s, rsp, STATUS_STORE_Refused_OutOfResources, "internal error");
    }
    if (s->detail)
        *status_detail = s->detail;
}

/* Below this much free space on the spool's file system, C-STORE answers "out of
 * resources" rather than start writing an instance it may not be able to finish (a
 * write failing midway would end the association without an answer). */
enum { SPOOL_RESERVE_BYTES = 16 * 1024 * 1024 };

/* The data set of a C-STORE that cannot be stored: read to its end (so that the
 * association goes on), answered with s->refuse_status and why. */
static void refuse_callback(void *data, T_DIMSE_StoreProgress *progress, T_DIMSE_C_StoreRQ *,
                            char *, DcmDataset **, T_DIMSE_C_StoreRSP *rsp, DcmDataset **detail)
{
    store_ctx *s = static_cast<store_ctx *>(data);
    if (progress->state != DIMSE_StoreEnd)
        return;
    try {
        store_fail(s, rsp, s->refuse_status, s->refuse_why);
        *detail = s->detail;
    } catch (...) {
        rsp->DimseStatus = STATUS_STORE_Refused_OutOfResources;
    }
}

/* Reads the data set of a C-STORE that cannot be stored and answers status and why. */
static OFCondition refuse_store(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid,
                                T_DIMSE_C_StoreRQ *req, Uint16 status, const char *why)
{
    store_ctx s;
    s.a = &a;
    s.refuse_status = status;
    s.refuse_why = why;
    OFCondition c =
        DIMSE_storeProvider(a.assoc, pcid, req, NULL_DEVICE_NAME, 0, nullptr, refuse_callback, &s,
                            DIMSE_NONBLOCKING, pm_dicom_edge_dimse_timeout(a.srv));
    delete s.detail;
    return c;
}

/* Whether the spool's file system has less than SPOOL_RESERVE_BYTES free (logged). */
static bool spool_full(const pm_dicom_assoc &a)
{
    struct statvfs fs;
    if (statvfs(a.srv->spool_dir.c_str(), &fs) != 0 ||
        (uint64_t)fs.f_bavail * fs.f_frsize >= SPOOL_RESERVE_BYTES)
        return false;
    pm_error(LOG_MOD, "C-STORE from %s refused: the disk of %s is full (%llu KiB free)",
             a.label.c_str(), a.srv->spool_dir.c_str(),
             (unsigned long long)((uint64_t)fs.f_bavail * fs.f_frsize / 1024));
    return true;
}

OFCondition pm_dicom_edge_store(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid,
                                T_DIMSE_C_StoreRQ *req)
{
    if (!pm_dicom_edge_may(a, PM_ACCESS_STORE, "C-STORE"))
        return refuse_store(a, pcid, req, PM_DICOM_STATUS_NOT_AUTHORIZED,
                            "Refused: not authorized (no store right for this AE)");
    if (spool_full(a))
        return refuse_store(a, pcid, req, STATUS_STORE_Refused_OutOfResources,
                            "Out of resources: disk full");
    store_ctx s;
    s.a = &a;
    s.path = pm_dicom_spool_take(a.srv->spool);
    /* writeMetaheader: the data set bytes go to the file exactly as received, in the
     * presentation context's transfer syntax, behind a meta header made for them. */
    OFCondition c =
        DIMSE_storeProvider(a.assoc, pcid, req, s.path.c_str(), 1, nullptr, store_callback, &s,
                            DIMSE_NONBLOCKING, pm_dicom_edge_dimse_timeout(a.srv));
    if (!s.handed_over)
        unlink(s.path.c_str());
    delete s.detail;
    if (c.bad())
        pm_warn(LOG_MOD, "C-STORE from %s failed: %s%s", a.label.c_str(), c.text(),
                c == DIMSE_OUTOFRESOURCES ? "" : " (association aborted)");
    return c;
}
