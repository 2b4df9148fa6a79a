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
#include <dcmtk/dcmnet/dcmlayer.h>
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
    int fd = -1;           /* the association's socket; -1 once dcmtk has closed it */
    int sub_fd = -1;       /* a C-MOVE sub-association's socket while one is open */
    std::string host;      /* the calling address */
    std::string label;     /* "AE (host)" once the A-ASSOCIATE-RQ is read; under mu */
    void *guard = nullptr; /* its guarded connection (conn.cc), while dcmtk has it */
};

/* A connection refused at accept (too many associations): answered with an
 * A-ASSOCIATE-RJ, then drained until the client closes or a deadline passes. */
struct pm_dicom_rejected {
    int fd;
    int64_t deadline_ms;
};

struct pm_dicom_server {
    std::string ae_title;
    std::string bind_address;
    int port = 0;
    std::vector<std::string> allowed_aes;
    std::vector<pm_dicom_destination> destinations;
    std::string spool_dir;
    unsigned max_pdu = 0;
    unsigned idle_timeout_ms = 30000, read_timeout_ms = 30000;
    unsigned max_associations = 200, max_associations_per_host = 32;
    unsigned max_nesting = 0;
    unsigned long max_elements = 0;
    pm_dicom_provider provider{};
    DcmTransportLayer *layer = nullptr; /* conn.cc's, for every association */

    int listen_fd = -1;
    T_ASC_Network *net = nullptr;
    std::atomic<bool> stopping{false};
    std::thread acceptor;
    std::mutex mu; /* guards conns, their fd and label fields, the counters */
    std::list<std::unique_ptr<pm_dicom_conn>> conns;
    std::vector<pm_dicom_rejected> rejected; /* the acceptor's only */
    unsigned long guard_refusals = 0, limit_rejections = 0, idle_closed = 0;
};

/* What the DIMSE handlers of one association share. */
struct pm_dicom_assoc {
    pm_dicom_server *srv;
    pm_dicom_conn *conn;
    T_ASC_Association *assoc;
    std::string calling_ae;
    std::string host;  /* the calling address */
    std::string label; /* "AE (host)", for logs */
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

/* conn.cc: the transport layer every association is read through (whole PDUs with a
 * deadline, the wire guard), set on the server's network. */
DcmTransportLayer *pm_dicom_edge_transport_new(pm_dicom_server *srv);
/* Around ASC_receiveAssociation on the association's thread: the connection being
 * received, and the held lock serializing dcmExternalSocketHandle, which the layer
 * releases as soon as dcmtk has taken the socket. (NULL, NULL) afterwards. */
void pm_dicom_edge_receiving(pm_dicom_conn *conn, std::unique_lock<std::mutex> *hold);
/* After negotiation: tells the guard each accepted context's transfer syntax. */
void pm_dicom_edge_guard_contexts(pm_dicom_conn *conn, T_ASC_Parameters *params);
/* Whether the guard has ended the connection (it logged why). */
bool pm_dicom_edge_guard_failed(pm_dicom_conn *conn);
/* Before dcmtk destroys the association: the guard forgets conn. */
void pm_dicom_edge_guard_detach(pm_dicom_conn *conn);

/* Quietens dcmtk's own logger once: the edge logs what matters through proto/log.h. */
void pm_dicom_edge_quiet_dcmtk(void);

#endif
