/* C-GET and C-MOVE for the DICOM edge: match instances with dicom_query.c, have the
 * provider begin making each study's bytes local, then send every instance's stored file
 * by C-STORE sub-operations, on the requester's association (C-GET) or on a new one to
 * the configured destination (C-MOVE), each as soon as it has arrived and been verified,
 * in series and instance order, while the rest of the study is still coming. Files go out as
 * stored: dcmtk streams a file's data set bytes unchanged when the presentation context has its
 * transfer syntax, and for C-MOVE we propose exactly the syntaxes the files are stored in. */
#include "node/dicom/shim_internal.h"
#include "node/dicom/tls.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <set>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

/* Statuses shared by C-GET and C-MOVE (PS3.4 C.4.2.1.5, C.4.3.1.4). */
enum : Uint16 {
    RETRIEVE_SUCCESS = 0x0000,
    RETRIEVE_PENDING = 0xFF00,
    RETRIEVE_CANCEL = 0xFE00,
    RETRIEVE_WARNING_FAILURES = 0xB000,
    RETRIEVE_REFUSED_SUBOPS = 0xA702,
    RETRIEVE_MOVE_DESTINATION_UNKNOWN = 0xA801,
    RETRIEVE_IDENTIFIER_MISMATCH = 0xA900,
    RETRIEVE_UNABLE_TO_PROCESS = 0xC000,
};

enum { SUBOP_TIMEOUT = 30 };

struct retrieve_item {
    std::string study, sop_class, sop_uid, ts;
    uint8_t hash[32];
    bool has_hash;
};

struct retrieve_job {
    pm_dicom_assoc *a = nullptr;
    bool move = false;
    DIC_US move_msg_id = 0;
    bool started = false;
    std::vector<retrieve_item> items;
    size_t next = 0;
    unsigned completed = 0, failed = 0, warning = 0;
    std::vector<std::string> failed_uids;
    std::map<std::string, int> unprepared;   /* study: why it could not be made local */
    std::map<std::string, uint64_t> fetches; /* study -> the provider's begun fetch */
    unsigned repairs = 0;                    /* damaged copies fetched again during this job */
    Uint16 refuse = 0;                       /* non-zero: answer with this final status at once */
    std::string error;
    const pm_dicom_destination *dest = nullptr;
    T_ASC_Network *sub_net = nullptr;
    T_ASC_Association *sub = nullptr;
    DcmTransportLayer *sub_tls = nullptr; /* a TLS destination's; outlives sub_net */

    ~retrieve_job()
    {
        close_sub();
        delete sub_tls;
    }

    void close_sub()
    {
        if (sub) {
            ASC_releaseAssociation(sub);
            {
                std::lock_guard<std::mutex> g(a->srv->mu);
                a->conn->sub_fd = -1;
                ASC_destroyAssociation(&sub);
            }
        }
        if (sub_net)
            ASC_dropNetwork(&sub_net);
    }
};

static int collect_instance(void *ctx, const pm_dicom_row *row)
{
    retrieve_job *j = static_cast<retrieve_job *>(ctx);
    const Pm__Instance *in = row->instance;
    if (!in)
        return 0;
    try {
        retrieve_item it;
        it.study = row->value[PM_DK_STUDY_UID] ? row->value[PM_DK_STUDY_UID] : "";
        it.sop_class = in->sop_class_uid ? in->sop_class_uid : "";
        it.sop_uid = in->sop_instance_uid ? in->sop_instance_uid : "";
        it.ts = in->transfer_syntax_uid ? in->transfer_syntax_uid : "";
        it.has_hash = in->hash.len == sizeof it.hash;
        memset(it.hash, 0, sizeof it.hash);
        if (it.has_hash)
            memcpy(it.hash, in->hash.data, sizeof it.hash);
        j->items.push_back(it);
    } catch (...) {
        return PM_E_NOMEM;
    }
    return 0;
}

static const pm_dicom_destination *find_destination(const pm_dicom_assoc *a, const char *ae)
{
    std::string want(ae);
    while (!want.empty() && want.back() == ' ')
        want.pop_back();
    for (const pm_dicom_destination &d : a->access->destinations)
        if (want == d.destination_ae)
            return &d;
    return nullptr;
}

/* Opens the C-MOVE sub-association, proposing for every SOP class each transfer syntax
 * its files are stored in (so they go out as stored), plus the uncompressed little
 * endian syntaxes as a fallback dcmtk can convert to. */
static bool open_sub(retrieve_job *j)
{
    pm_dicom_server *srv = j->a->srv;
    OFCondition c = ASC_initializeNetwork(NET_REQUESTOR, 0, SUBOP_TIMEOUT, &j->sub_net);
    if (c.bad()) {
        j->error = c.text();
        return false;
    }
    if (j->dest->tls) {
        std::string why;
        if (!(j->sub_tls = pm_dicom_tls_client(srv->tls, why)) ||
            ASC_setTransportLayer(j->sub_net, j->sub_tls, 0).bad()) {
            j->error = std::string("destination ") + j->dest->destination_ae + ": " +
                       (why.empty() ? "cannot set up TLS" : why);
            return false;
        }
    }
    T_ASC_Parameters *params = nullptr;
    c = ASC_createAssociationParameters(&params, (long)pm_dicom_edge_max_pdu(srv));
    if (c.bad()) {
        j->error = c.text();
        return false;
    }
    ASC_setAPTitles(params, srv->ae_title.c_str(), j->dest->destination_ae, nullptr);
    char peer[300];
    snprintf(peer, sizeof peer, "%s:%d", j->dest->host, j->dest->port);
    ASC_setPresentationAddresses(params, "localhost", peer);
    if (j->dest->tls)
        ASC_setTransportLayerType(params, OFTrue);

    std::set<std::pair<std::string, std::string>> pairs;
    std::set<std::string> classes;
    for (const retrieve_item &it : j->items) {
        classes.insert(it.sop_class);
        if (!it.ts.empty())
            pairs.insert({it.sop_class, it.ts});
    }
    static const char *fallback[] = {UID_LittleEndianExplicitTransferSyntax,
                                     UID_LittleEndianImplicitTransferSyntax};
    int id = 1;
    for (const auto &p : pairs) {
        if (id > 255)
            break;
        const char *ts[] = {p.second.c_str()};
        if (ASC_addPresentationContext(params, (T_ASC_PresentationContextID)id, p.first.c_str(), ts,
                                       1)
                .good())
            id += 2;
    }
    for (const std::string &cl : classes) {
        if (id > 255)
            break;
        if (ASC_addPresentationContext(params, (T_ASC_PresentationContextID)id, cl.c_str(),
                                       fallback, 2)
                .good())
            id += 2;
    }
    c = ASC_requestAssociation(j->sub_net, params, &j->sub);
    if (c.bad() || !j->sub) {
        j->error = std::string("destination ") + j->dest->destination_ae + ": " + c.text();
        if (!j->sub)
            ASC_destroyAssociationParameters(&params);
        else
            ASC_destroyAssociation(&j->sub);
        return false;
    }
    int fd = pm_dicom_edge_nodelay(j->sub);
    {
        std::lock_guard<std::mutex> g(srv->mu);
        j->a->conn->sub_fd = fd;
    }
    if (ASC_countAcceptedPresentationContexts(j->sub->params) == 0) {
        j->error = std::string("destination ") + j->dest->destination_ae +
                   " accepted no presentation context";
        return false;
    }
    pm_debug(LOG_MOD, "C-MOVE sub-association to %s (%s), max PDU %lu/%lu", j->dest->destination_ae,
             peer, pm_dicom_edge_max_pdu(srv),
             (unsigned long)j->sub->params->theirMaxPDUReceiveSize);
    return true;
}

static void start_job(retrieve_job *j, const char *sop_class, DcmDataset *ids,
                      const char *move_dest)
{
    pm_dicom_server *srv = j->a->srv;
    pm_dicom_query q;
    std::vector<std::string> strings;
    std::string reason;
    const char *service = j->move ? "C-MOVE" : "C-GET";
    if (!pm_dicom_edge_may(*j->a, j->move ? PM_ACCESS_MOVE : PM_ACCESS_GET, service)) {
        j->refuse = PM_DICOM_STATUS_NOT_AUTHORIZED;
        j->error = std::string("Refused: not authorized (no ") + (j->move ? "move" : "get") +
                   " right for this AE)";
        return;
    }
    if (pm_dicom_edge_parse_query(ids, sop_class, &q, strings, reason) != PM_OK) {
        j->refuse = RETRIEVE_IDENTIFIER_MISMATCH;
        j->error = reason;
        return;
    }
    char why[200];
    if (pm_dicom_query_check_retrieve(&q, pm_dicom_edge_is_patient_root(sop_class), why,
                                      sizeof why) != PM_OK) {
        pm_warn(LOG_MOD, "%s from %s refused: %s", service, j->a->label.c_str(), why);
        pm_dicom_edge_refused(srv, PM_DICOM_REFUSED_IDENTIFIER);
        j->refuse = RETRIEVE_IDENTIFIER_MISMATCH;
        j->error = why;
        return;
    }
    if (j->move) {
        j->dest = find_destination(j->a, move_dest);
        if (!j->dest) {
            j->refuse = RETRIEVE_MOVE_DESTINATION_UNKNOWN;
            j->error = std::string("unknown move destination ") + move_dest;
            pm_warn(LOG_MOD, "C-MOVE from %s: %s", j->a->calling_ae.c_str(), j->error.c_str());
            return;
        }
    }
    int rc = pm_dicom_query_instances(&q, &srv->provider, collect_instance, j);
    if (rc != PM_OK) {
        j->refuse = RETRIEVE_UNABLE_TO_PROCESS;
        j->error = pm_strerror(rc);
        j->items.clear();
        return;
    }
    /* Begin making every study involved local; each instance is awaited as it is sent. */
    std::set<std::string> studies;
    for (const retrieve_item &it : j->items)
        studies.insert(it.study);
    const pm_dicom_provider &p = srv->provider;
    for (const std::string &s : studies) {
        uint64_t fetch = 0;
        if (p.begin_study && p.await_blob)
            rc = p.begin_study(p.ctx, j->a->reader.c_str(), s.c_str(), &fetch);
        else
            rc = p.prepare_study ? p.prepare_study(p.ctx, j->a->reader.c_str(), s.c_str()) : PM_OK;
        if (rc == PM_OK && p.begin_study && p.await_blob)
            j->fetches[s] = fetch;
        if (rc != PM_OK) {
            /* What is here is still sent; the rest become failed sub-operations. */
            pm_warn(LOG_MOD, "%s from %s: study %s not wholly available (%s): sending what is here",
                    j->move ? "C-MOVE" : "C-GET", j->a->calling_ae.c_str(), s.c_str(),
                    pm_strerror(rc));
            j->unprepared[s] = rc;
        }
    }
    if (j->move && !j->items.empty() && !open_sub(j)) {
        pm_warn(LOG_MOD, "C-MOVE from %s: %s", j->a->calling_ae.c_str(), j->error.c_str());
        j->refuse = RETRIEVE_REFUSED_SUBOPS;
        j->failed = (unsigned)j->items.size();
        for (const retrieve_item &it : j->items)
            j->failed_uids.push_back(it.sop_uid);
        j->next = j->items.size();
        j->close_sub();
    }
}

const char *pm_dicom_unavailable(int rc)
{
    switch (rc) {
    case PM_E_NET:
    case PM_E_TIMEOUT: return "instance not available (no holder reachable: peer down)";
    case PM_E_NOSPACE: return "instance not available (this node's disk is full)";
    case PM_E_HASH: return "instance not available (every copy is damaged)";
    case PM_E_BUSY:
        return "instance not available (this node may not read other trusts' data yet, or "
               "is busy)";
    case PM_E_NOTFOUND: return "instance not available (no holder has it)";
    default: return "instance not available";
    }
}

/* The local file of an instance, checked against its signed hash before it goes out:
 * nullptr and its path, or why it cannot be sent. A damaged copy (which the provider
 * sets aside) is fetched again from another holder and checked once more. */
static const char *local_copy(retrieve_job *j, const retrieve_item &it, char *path, size_t len)
{
    const pm_dicom_provider &p = j->a->srv->provider;
    if (it.has_hash && p.blob_path && p.blob_path(p.ctx, it.hash, path, len) != PM_OK) {
        auto fetch = j->fetches.find(it.study);
        int rc = fetch != j->fetches.end() ? p.await_blob(p.ctx, fetch->second, it.hash) : PM_OK;
        if (rc != PM_OK)
            return pm_dicom_unavailable(rc);
    }
    auto unprepared = j->unprepared.find(it.study);
    if (!it.has_hash || !p.blob_path || p.blob_path(p.ctx, it.hash, path, len) != PM_OK)
        return unprepared != j->unprepared.end() ? pm_dicom_unavailable(unprepared->second)
                                                 : "instance not held locally";
    if (!p.verify_blob)
        return nullptr;
    char why[256];
    int rc =
        p.verify_blob(p.ctx, it.hash, path, it.study.c_str(), it.sop_uid.c_str(), why, sizeof why);
    if (rc == PM_OK)
        return nullptr;
    if (rc != PM_E_HASH)
        return "instance cannot be served";
    if (j->repairs >= 16 || !p.prepare_study || j->unprepared.count(it.study))
        return "damaged copy (does not match its signed hash)";
    j->repairs++;
    pm_warn(LOG_MOD, "%s from %s: instance %s is damaged here: fetching it from another holder",
            j->move ? "C-MOVE" : "C-GET", j->a->calling_ae.c_str(), it.sop_uid.c_str());
    if (p.prepare_study(p.ctx, j->a->calling_ae.c_str(), it.study.c_str()) != PM_OK ||
        p.blob_path(p.ctx, it.hash, path, len) != PM_OK ||
        p.verify_blob(p.ctx, it.hash, path, it.study.c_str(), it.sop_uid.c_str(), why,
                      sizeof why) != PM_OK)
        return "damaged copy, and no other holder could provide it";
    return nullptr;
}

/* One C-STORE sub-operation; counts it as completed, warning or failed. */
static void send_one(retrieve_job *j, const retrieve_item &it)
{
    T_ASC_Association *target = j->move ? j->sub : j->a->assoc;
    char path[4096];
    const char *why = nullptr;
    T_ASC_PresentationContextID pcid = 0;
    std::string ts = it.ts;
    why = local_copy(j, it, path, sizeof path);
    if (!why && ts.empty()) {
        pm_dicom_meta meta;
        char err[128];
        if (pm_dicom_read_meta(path, &meta, err, sizeof err) == PM_OK)
            ts = meta.transfer_syntax_uid;
    }
    if (!why) {
        pcid = ASC_findAcceptedPresentationContextID(target, it.sop_class.c_str(), ts.c_str());
        if (pcid == 0)
            pcid = ASC_findAcceptedPresentationContextID(target, it.sop_class.c_str());
        if (pcid == 0)
            why = "no presentation context for its SOP class";
    }
    if (!why) {
        T_DIMSE_C_StoreRQ req;
        memset(&req, 0, sizeof req);
        req.MessageID = target->nextMsgID++;
        OFStandard::strlcpy(req.AffectedSOPClassUID, it.sop_class.c_str(),
                            sizeof req.AffectedSOPClassUID);
        OFStandard::strlcpy(req.AffectedSOPInstanceUID, it.sop_uid.c_str(),
                            sizeof req.AffectedSOPInstanceUID);
        req.DataSetType = DIMSE_DATASET_PRESENT;
        req.Priority = DIMSE_PRIORITY_MEDIUM;
        if (j->move) {
            req.opts = O_STORE_MOVEORIGINATORAETITLE | O_STORE_MOVEORIGINATORID;
            OFStandard::strlcpy(req.MoveOriginatorApplicationEntityTitle, j->a->calling_ae.c_str(),
                                sizeof req.MoveOriginatorApplicationEntityTitle);
            req.MoveOriginatorID = j->move_msg_id;
        }
        T_DIMSE_C_StoreRSP rsp;
        memset(&rsp, 0, sizeof rsp);
        DcmDataset *detail = nullptr;
        OFCondition c = DIMSE_storeUser(target, pcid, &req, path, nullptr, nullptr, nullptr,
                                        DIMSE_NONBLOCKING, SUBOP_TIMEOUT, &rsp, &detail);
        delete detail;
        if (c.bad()) {
            why = "C-STORE sub-operation failed";
            pm_warn(LOG_MOD, "C-STORE sub-operation to %s: %s",
                    j->move ? j->dest->destination_ae : j->a->calling_ae.c_str(), c.text());
        } else if (rsp.DimseStatus == STATUS_Success) {
            j->completed++;
            return;
        } else if ((rsp.DimseStatus & 0xF000) == 0xB000) {
            j->warning++;
            return;
        } else {
            why = "refused by the storage SCP";
        }
    }
    pm_info(LOG_MOD, "%s from %s: instance %s failed: %s", j->move ? "C-MOVE" : "C-GET",
            j->a->calling_ae.c_str(), it.sop_uid.c_str(), why);
    j->failed++;
    j->failed_uids.push_back(it.sop_uid);
}

static DIC_US clamp16(size_t n)
{
    return n > 0xFFFF ? 0xFFFF : (DIC_US)n;
}

/* Fills a C-GET-RSP or C-MOVE-RSP (same fields, same option bits). */
template <typename RSP>
static void step(retrieve_job *j, OFBool cancelled, const char *sop_class, DcmDataset *ids,
                 const char *move_dest, RSP *rsp, DcmDataset **detail, DcmDataset **rsp_ids)
{
    *detail = nullptr;
    *rsp_ids = nullptr;
    if (!j->started) {
        j->started = true;
        start_job(j, sop_class, ids, move_dest);
    }
    if (!cancelled && !j->refuse && j->next < j->items.size()) {
        send_one(j, j->items[j->next++]);
        rsp->DimseStatus = RETRIEVE_PENDING;
        rsp->NumberOfRemainingSubOperations = clamp16(j->items.size() - j->next);
        rsp->opts = O_MOVE_NUMBEROFREMAININGSUBOPERATIONS | O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS |
                    O_MOVE_NUMBEROFFAILEDSUBOPERATIONS | O_MOVE_NUMBEROFWARNINGSUBOPERATIONS;
    } else {
        if (cancelled)
            rsp->DimseStatus = RETRIEVE_CANCEL;
        else if (j->refuse)
            rsp->DimseStatus = j->refuse;
        else if (j->failed == 0 && j->warning == 0)
            rsp->DimseStatus = RETRIEVE_SUCCESS;
        else if (j->completed == 0 && j->warning == 0)
            rsp->DimseStatus = RETRIEVE_REFUSED_SUBOPS;
        else
            rsp->DimseStatus = RETRIEVE_WARNING_FAILURES;
        rsp->opts = O_MOVE_NUMBEROFCOMPLETEDSUBOPERATIONS | O_MOVE_NUMBEROFFAILEDSUBOPERATIONS |
                    O_MOVE_NUMBEROFWARNINGSUBOPERATIONS;
        if (cancelled) {
            rsp->NumberOfRemainingSubOperations = clamp16(j->items.size() - j->next);
            rsp->opts |= O_MOVE_NUMBEROFREMAININGSUBOPERATIONS;
        }
        if (!j->error.empty())
            *detail = pm_dicom_edge_error_detail(j->error);
        /* The final response names the instances that failed (PS3.4 C.4.2.1.3.1). */
        if (!j->failed_uids.empty()) {
            std::string list;
            for (const std::string &u : j->failed_uids)
                list += (list.empty() ? "" : "\\") + u;
            *rsp_ids = new DcmDataset;
            (*rsp_ids)->putAndInsertString(DCM_FailedSOPInstanceUIDList, list.c_str());
        }
        j->close_sub();
        pm_info(LOG_MOD, "%s from %s: %u completed, %u warning, %u failed",
                j->move ? "C-MOVE" : "C-GET", j->a->calling_ae.c_str(), j->completed, j->warning,
                j->failed);
    }
    rsp->NumberOfCompletedSubOperations = clamp16(j->completed);
    rsp->NumberOfFailedSubOperations = clamp16(j->failed);
    rsp->NumberOfWarningSubOperations = clamp16(j->warning);
}

static void get_callback(void *data, OFBool cancelled, T_DIMSE_C_GetRQ *req, DcmDataset *ids, int,
                         T_DIMSE_C_GetRSP *rsp, DcmDataset **detail, DcmDataset **rsp_ids)
{
    retrieve_job *j = static_cast<retrieve_job *>(data);
    try {
        step(j, cancelled, req->AffectedSOPClassUID, ids, "", rsp, detail, rsp_ids);
    } catch (...) {
        rsp->DimseStatus = RETRIEVE_UNABLE_TO_PROCESS;
    }
}

static void move_callback(void *data, OFBool cancelled, T_DIMSE_C_MoveRQ *req, DcmDataset *ids, int,
                          T_DIMSE_C_MoveRSP *rsp, DcmDataset **detail, DcmDataset **rsp_ids)
{
    retrieve_job *j = static_cast<retrieve_job *>(data);
    try {
        step(j, cancelled, req->AffectedSOPClassUID, ids, req->MoveDestination, rsp, detail,
             rsp_ids);
    } catch (...) {
        rsp->DimseStatus = RETRIEVE_UNABLE_TO_PROCESS;
    }
}

void pm_dicom_edge_get(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_GetRQ *req)
{
    retrieve_job j;
    j.a = &a;
    OFCondition c =
        DIMSE_getProvider(a.assoc, pcid, req, get_callback, &j, DIMSE_NONBLOCKING, SUBOP_TIMEOUT);
    if (c.bad())
        pm_warn(LOG_MOD, "C-GET from %s failed: %s", a.calling_ae.c_str(), c.text());
}

void pm_dicom_edge_move(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_MoveRQ *req)
{
    retrieve_job j;
    j.a = &a;
    j.move = true;
    j.move_msg_id = req->MessageID;
    OFCondition c =
        DIMSE_moveProvider(a.assoc, pcid, req, move_callback, &j, DIMSE_NONBLOCKING, SUBOP_TIMEOUT);
    if (c.bad())
        pm_warn(LOG_MOD, "C-MOVE from %s failed: %s", a.calling_ae.c_str(), c.text());
}
