/* Internal to the DICOM edge's C++ shim: the server object and one association's state,
 * shared by dicom_shim.cc (associations, C-ECHO, C-STORE), dicom_find.cc (C-FIND and
 * query parsing) and dicom_retrieve.cc (C-GET, C-MOVE). Not part of the C interface. */
#ifndef PM_DICOM_EDGE_H
#define PM_DICOM_EDGE_H

#ifndef __cplusplus
#error "dicom_edge.h is C++ only"
#endif

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/dimse.h>

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/dicom/dicom.h"
#include "node/dicom/query.h"

/* One accepted connection: its thread, and the sockets stop() may shut down. */
struct pm_dicom_conn {
    std::thread thread;
    std::atomic<bool> done{false};
    int fd = -1;     /* the association's socket; -1 once dcmtk has closed it */
    int sub_fd = -1; /* a C-MOVE sub-association's socket while one is open */
};

struct pm_dicom_server {
    std::string ae_title;
    std::string bind_address;
    int port = 0;
    std::vector<std::string> allowed_aes;
    std::vector<pm_dicom_destination> destinations;
    std::string spool_dir;
    unsigned max_pdu = 0;
    pm_dicom_provider provider{};

    int listen_fd = -1;
    T_ASC_Network *net = nullptr;
    std::atomic<bool> stopping{false};
    std::thread acceptor;
    std::mutex mu; /* guards conns and their fd fields */
    std::list<std::unique_ptr<pm_dicom_conn>> conns;
};

/* What the DIMSE handlers of one association share. */
struct pm_dicom_assoc {
    pm_dicom_server *srv;
    pm_dicom_conn *conn;
    T_ASC_Association *assoc;
    std::string calling_ae;
    unsigned stored = 0;
};

/* Largest PDU we receive: settings->max_pdu clamped to what dcmtk handles. */
unsigned long pm_dicom_edge_max_pdu(const pm_dicom_server *srv);

/* Disables Nagle on the association's socket: dcmtk does so only when the environment
 * says TCP_NODELAY=1, and every small DIMSE exchange otherwise waits ~40 ms for the
 * peer's delayed ACK. Returns the socket, or -1. */
int pm_dicom_edge_nodelay(T_ASC_Association *assoc);

/* Parses a C-FIND/C-GET/C-MOVE identifier into q. strings keeps the values q points at.
 * sop_class tells the information model (Patient Root allows PATIENT level, Study Root
 * does not). PM_OK, or PM_E_INVAL with a reason for an ErrorComment. */
int pm_dicom_edge_parse_query(DcmDataset *ids, const char *sop_class, pm_dicom_query *q,
                              std::vector<std::string> &strings, std::string &reason);

/* An ErrorComment status detail (owned by the caller), or nullptr. */
DcmDataset *pm_dicom_edge_error_detail(const std::string &comment);

void pm_dicom_edge_find(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_FindRQ *req);
void pm_dicom_edge_get(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_GetRQ *req);
void pm_dicom_edge_move(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid, T_DIMSE_C_MoveRQ *req);

/* Quietens dcmtk's own logger once: the edge logs what matters through proto/log.h. */
void pm_dicom_edge_quiet_dcmtk(void);

#endif
