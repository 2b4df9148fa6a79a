/* C-FIND for the DICOM edge, and the translation between query identifiers and the plain
 * C matcher of dicom_query.c (which C-GET and C-MOVE use too). */
#include "node/audit/notes_query.h"
#include "node/dicom/shim_internal.h"

#include <condition_variable>
#include <cstring>
#include <deque>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

bool pm_dicom_edge_is_patient_root(const char *sop_class)
{
    return strcmp(sop_class, UID_FINDPatientRootQueryRetrieveInformationModel) == 0 ||
           strcmp(sop_class, UID_GETPatientRootQueryRetrieveInformationModel) == 0 ||
           strcmp(sop_class, UID_MOVEPatientRootQueryRetrieveInformationModel) == 0;
}

int pm_dicom_edge_parse_query(DcmDataset *ids, const char *sop_class, pm_dicom_query *q,
                              std::vector<std::string> &strings, std::string &reason)
{
    memset(q, 0, sizeof *q);
    if (!ids) {
        reason = "no identifier";
        return PM_E_INVAL;
    }
    OFString level;
    if (ids->findAndGetOFString(DCM_QueryRetrieveLevel, level).bad() ||
        pm_dicom_query_parse_level(level.c_str(), &q->level) != PM_OK) {
        reason = "missing or unknown QueryRetrieveLevel";
        return PM_E_INVAL;
    }
    if (q->level == PM_DICOM_LEVEL_PATIENT && !pm_dicom_edge_is_patient_root(sop_class)) {
        reason = "PATIENT level needs the Patient Root model";
        return PM_E_INVAL;
    }
    /* Keep the values alive in strings; q points into it once it stops growing. */
    strings.clear();
    strings.reserve(PM_DK_COUNT);
    int idx[PM_DK_COUNT];
    for (int k = 0; k < PM_DK_COUNT; k++) {
        idx[k] = -1;
        const pm_dicom_key_info *ki = pm_dicom_query_key_info((pm_dicom_key)k);
        DcmElement *el = nullptr;
        if (ids->findAndGetElement(DcmTagKey(ki->group, ki->element), el).bad() || !el)
            continue;
        OFString v;
        if (el->getLength() > 0 && el->getOFStringArray(v).bad())
            v.clear();
        strings.push_back(v.c_str());
        idx[k] = (int)strings.size() - 1;
    }
    for (int k = 0; k < PM_DK_COUNT; k++)
        q->value[k] = idx[k] >= 0 ? strings[idx[k]].c_str() : nullptr;
    char why[128];
    if (pm_dicom_query_validate(q, why, sizeof why) != PM_OK) {
        reason = why;
        return PM_E_INVAL;
    }
    return PM_OK;
}

/* ---- responses ---- */

static const char *const level_names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};

static bool non_ascii(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* One response identifier: every key of the request, with our value or empty, plus the
 * unique keys of the row's level and those above it. */
static DcmDataset *make_response(DcmDataset *req, const pm_dicom_row *row, const char *ae)
{
    DcmDataset *rsp = new DcmDataset;
    bool utf8 = false;
    for (unsigned long i = 0; i < req->card(); i++) {
        DcmElement *el = req->getElement(i);
        if (!el)
            continue;
        DcmTagKey tag = el->getTag();
        if (tag == DCM_SpecificCharacterSet || tag == DCM_QueryRetrieveLevel)
            continue;
        int k = pm_dicom_query_key_by_tag(tag.getGroup(), tag.getElement());
        if (k >= 0 && row->value[k]) {
            rsp->putAndInsertString(tag, row->value[k]);
            utf8 = utf8 || non_ascii(row->value[k]);
        } else if (tag == DCM_RetrieveAETitle) {
            rsp->putAndInsertString(tag, ae);
        } else {
            rsp->insertEmptyElement(tag);
        }
    }
    static const pm_dicom_key unique[] = {PM_DK_PATIENT_ID, PM_DK_STUDY_UID, PM_DK_SERIES_UID,
                                          PM_DK_SOP_UID};
    for (int l = 0; l <= (int)row->level; l++) {
        const pm_dicom_key_info *ki = pm_dicom_query_key_info(unique[l]);
        DcmTagKey tag(ki->group, ki->element);
        /* PatientID is unique only at PATIENT level; above it in Study Root it is not
         * required, but returning it does no harm and helps clients group studies. */
        if (!rsp->tagExists(tag) && row->value[unique[l]])
            rsp->putAndInsertString(tag, row->value[unique[l]]);
    }
    rsp->putAndInsertString(DCM_QueryRetrieveLevel, level_names[row->level]);
    /* The views hold the bytes the sender used; non-ASCII ones are declared as UTF-8,
     * the character set the node stores text in. */
    if (utf8)
        rsp->putAndInsertString(DCM_SpecificCharacterSet, "ISO_IR 192");
    return rsp;
}

/* Matches are streamed: the query runs on a thread of its own (a producer) that hands
 * each response identifier through a short queue to the DIMSE callback, which sends it
 * at once. The first match of a universal or leading-'*' query, which scans, goes out
 * as soon as it is found rather than after the scan, and memory stays bounded by the
 * queue whatever the number of matches. */
#define FIND_QUEUE_MAX 64

struct find_ctx {
    pm_dicom_assoc *a;
    bool started = false;
    pm_dicom_query q;
    std::vector<std::string> strings; /* the values q points into */
    DcmDataset *req_ids = nullptr;    /* dcmtk's, alive for the whole C-FIND */
    std::mutex mu;
    std::condition_variable cv;
    std::deque<DcmDataset *> queue;
    bool done = false, stop = false; /* under mu */
    bool limited = false;            /* under mu: the walk met more than max_find_results */
    size_t sent = 0;
    size_t matched = 0;    /* under mu: matches the walk produced, for the audit record */
    std::string sop_class; /* of the request, for the audit record */
    Uint16 final_status = STATUS_FIND_Success;
    std::string error;
    std::thread producer;

    /* Identifiers handed to dcmtk are its to delete (DIMSE_findProvider deletes both the
     * response identifiers and the status detail after sending); the queued are ours. */
    ~find_ctx()
    {
        {
            std::lock_guard<std::mutex> g(mu);
            stop = true;
        }
        cv.notify_all();
        if (producer.joinable())
            producer.join();
        for (DcmDataset *d : queue)
            delete d;
    }
};

/* Producer side: waits for room, or for the end of the C-FIND (then stops the walk). */
static int collect_row(void *ctx, const pm_dicom_row *row)
{
    find_ctx *f = static_cast<find_ctx *>(ctx);
    DcmDataset *rsp;
    try {
        rsp = make_response(f->req_ids, row, f->a->srv->ae_title.c_str());
    } catch (...) {
        return PM_E_NOMEM;
    }
    std::unique_lock<std::mutex> g(f->mu);
    f->cv.wait(g, [f] { return f->stop || f->queue.size() < FIND_QUEUE_MAX; });
    unsigned limit = f->a->srv->max_find_results;
    if (!f->stop && limit && f->matched >= limit)
        f->limited = true; /* a match past the limit: the answer is known to be partial */
    if (f->stop || f->limited) {
        delete rsp;
        return 1; /* cancelled, the association went, or the limit: not an error */
    }
    f->queue.push_back(rsp);
    f->matched++;
    f->cv.notify_all();
    return 0;
}

static void produce(find_ctx *f)
{
    int rc;
    try {
        rc = pm_dicom_query_find(&f->q, &f->a->srv->provider, collect_row, f);
    } catch (...) {
        rc = PM_E_NOMEM;
    }
    std::lock_guard<std::mutex> g(f->mu);
    if (f->limited) {
        f->final_status = STATUS_FIND_Cancel_MatchingTerminatedDueToCancelRequest;
        f->error = "more matches than [dicom] max_find_results (" +
                   std::to_string(f->a->srv->max_find_results) + "); narrow the query";
        pm_warn(LOG_MOD, "C-FIND from %s: stopped after %zu matches (max_find_results)",
                f->a->calling_ae.c_str(), f->matched);
    } else if (rc != PM_OK && !f->stop) {
        f->final_status = rc == PM_E_NOMEM ? STATUS_FIND_Refused_OutOfResources
                                           : STATUS_FIND_Failed_UnableToProcess;
        f->error = pm_strerror(rc);
        pm_warn(LOG_MOD, "C-FIND from %s: %s", f->a->calling_ae.c_str(), f->error.c_str());
        for (DcmDataset *d : f->queue)
            delete d;
        f->queue.clear();
    }
    pm_audit_note_find(f->a->calling_ae.c_str(), f->a->host.c_str(), f->sop_class.c_str(), &f->q,
                       f->matched, rc != PM_OK && !f->stop && !f->limited);
    f->done = true;
    f->cv.notify_all();
}

static void start_query(find_ctx *f, T_DIMSE_C_FindRQ *req, DcmDataset *ids)
{
    std::string reason;
    if (!pm_dicom_edge_may(*f->a, PM_ACCESS_FIND, "C-FIND")) {
        f->final_status = PM_DICOM_STATUS_NOT_AUTHORIZED;
        f->error = "Refused: not authorized (no find right for this AE)";
        f->done = true;
        return;
    }
    f->sop_class = req->AffectedSOPClassUID;
    if (pm_dicom_edge_parse_query(ids, req->AffectedSOPClassUID, &f->q, f->strings, reason) !=
        PM_OK) {
        f->final_status = STATUS_FIND_Error_DataSetDoesNotMatchSOPClass;
        f->error = reason;
        f->done = true;
        pm_warn(LOG_MOD, "C-FIND from %s refused: %s", f->a->label.c_str(), reason.c_str());
        return;
    }
    f->req_ids = ids;
    f->producer = std::thread(produce, f);
}

/* Consumer side, on the association's thread: the next match, or the final status. */
static void find_callback(void *data, OFBool cancelled, T_DIMSE_C_FindRQ *req, DcmDataset *ids, int,
                          T_DIMSE_C_FindRSP *rsp, DcmDataset **rsp_ids, DcmDataset **status_detail)
{
    find_ctx *f = static_cast<find_ctx *>(data);
    *rsp_ids = nullptr;
    *status_detail = nullptr;
    try {
        if (!f->started) {
            f->started = true;
            start_query(f, req, ids);
        }
        std::unique_lock<std::mutex> g(f->mu);
        if (cancelled) {
            f->stop = true;
            f->cv.notify_all();
            rsp->DimseStatus = STATUS_FIND_Cancel_MatchingTerminatedDueToCancelRequest;
            return;
        }
        f->cv.wait(g, [f] { return f->done || !f->queue.empty(); });
        if (!f->queue.empty()) {
            *rsp_ids = f->queue.front();
            f->queue.pop_front();
            f->sent++;
            f->cv.notify_all();
            rsp->DimseStatus = STATUS_FIND_Pending_MatchesAreContinuing;
            return;
        }
        rsp->DimseStatus = f->final_status;
        if (!f->error.empty())
            *status_detail = pm_dicom_edge_error_detail(f->error);
    } catch (...) {
        rsp->DimseStatus = STATUS_FIND_Failed_UnableToProcess;
    }
}

void pm_dicom_edge_find(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_FindRQ *req)
{
    find_ctx f;
    f.a = &a;
    OFCondition c = DIMSE_findProvider(a.assoc, pcid, req, find_callback, &f, DIMSE_NONBLOCKING,
                                       pm_dicom_edge_dimse_timeout(a.srv));
    if (c.bad())
        pm_warn(LOG_MOD, "C-FIND from %s failed: %s", a.calling_ae.c_str(), c.text());
    else
        pm_debug(LOG_MOD, "C-FIND from %s: %zu matches", a.calling_ae.c_str(), f.sent);
}
