/* Internal to the DICOM edge's C++ shim: the server object, one association's state, and
 * the functions its files share: shim.cc (start, stop, shared helpers), accept.cc (the
 * acceptor and association limits), association.cc (one association and its DIMSE
 * loop), contexts.cc (presentation contexts), cstore.cc (C-STORE), spool.cc (where it is
 * written first), find.cc (C-FIND and query parsing), retrieve.cc (C-GET, C-MOVE), admit.cc
 * (admission), conn.cc (the guarded transport). Not part of the C interface. */
#ifndef PM_DICOM_SHIM_INTERNAL_H
#define PM_DICOM_SHIM_INTERNAL_H

#ifndef __cplusplus
#error "shim_internal.h is C++ only"
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

#include "node/dicom/access.h"
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

/* Who may do what, and where C-MOVE may send: replaced whole on reload, and held by
 * each association from its start to its end. */
struct pm_dicom_access {
    std::vector<pm_access_entry> entries;
    bool store_from_any = false;
    std::vector<pm_dicom_destination> destinations;
};

struct pm_dicom_tls;   /* tls.cc */
struct pm_dicom_spool; /* spool.cc */

struct pm_dicom_server {
    std::string ae_title;
    std::string bind_address;
    int port = 0;
    std::mutex access_mu; /* guards access (the pointer; what it points at is const) */
    std::shared_ptr<const pm_dicom_access> access;
    pm_dicom_tls *tls = nullptr; /* NULL: plain TCP */
    std::string spool_dir;
    pm_dicom_spool *spool = nullptr; /* files made ahead in spool_dir */
    unsigned max_pdu = 0;
    unsigned idle_timeout_ms = PM_DICOM_DEFAULT_TIMEOUT_S * 1000;
    unsigned read_timeout_ms = PM_DICOM_DEFAULT_TIMEOUT_S * 1000;
    unsigned max_associations = PM_DICOM_DEFAULT_MAX_ASSOCIATIONS;
    unsigned max_associations_per_host = PM_DICOM_DEFAULT_MAX_ASSOCIATIONS_PER_HOST;
    unsigned max_nesting = 0;
    unsigned long max_elements = 0;
    unsigned max_find_results = 0; /* 0: no limit */
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
    std::shared_ptr<const pm_dicom_access> access; /* as it was when the association began */
    unsigned rights = 0;                           /* PM_ACCESS_* */
    std::string reader; /* who reads, for access records: the user, else "AE@host" */
    std::string calling_ae;
    std::string host;  /* the calling address */
    std::string label; /* "AE (host)", for logs */
    unsigned stored = 0;
};

/* shim.cc: the lock serializing dcmtk's process-wide dcmExternalSocketHandle, which
 * names the socket of the next association dcmtk receives: the setting is only ever
 * non-default while the lock is held. */
std::mutex &pm_dicom_edge_receive_lock();

/* Seconds dcmtk's DIMSE layer waits for the next PDV or message (read_timeout, at
 * least 1). */
int pm_dicom_edge_dimse_timeout(const pm_dicom_server *srv);

/* Milliseconds of a monotonic clock. */
int64_t pm_dicom_edge_mono_ms();

/* Disables Nagle on socket fd (a warning if that fails; fd < 0 is ignored). */
void pm_dicom_edge_nodelay_fd(int fd);

/* accept.cc: the acceptor thread's body, until srv->stopping. */
void pm_dicom_edge_accept_loop(pm_dicom_server *srv);

/* association.cc: the body of one accepted connection's thread; sets conn->done. */
void pm_dicom_edge_conn_main(pm_dicom_server *srv, pm_dicom_conn *conn);

/* contexts.cc: accepts or refuses each proposed presentation context of params. */
void pm_dicom_edge_negotiate_contexts(T_ASC_Parameters *params);

/* cstore.cc: answers one C-STORE request (stored, or refused with a status). A bad
 * condition means the association must be aborted. */
OFCondition pm_dicom_edge_store(pm_dicom_assoc &a, T_ASC_PresentationContextID pcid,
                                T_DIMSE_C_StoreRQ *req);

/* spool.cc: removes the spool files another process left in dir, and starts making empty spool
 * files ahead there. Never NULL (without its thread, every take is a new name). */
pm_dicom_spool *pm_dicom_spool_start(const std::string &dir);

/* spool.cc: the path a C-STORE's data set is written to: an empty file made ahead, or
 * a new name when none is ready. The caller removes it unless it was handed over. */
std::string pm_dicom_spool_take(pm_dicom_spool *sp);

/* spool.cc: stops the maker and removes the files it made that were not taken. */
void pm_dicom_spool_stop(pm_dicom_spool *sp);

/* PS3.7 C.5: Refused: Not Authorized, the status of a request whose service the calling
 * AE has no right to (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE alike). */
#define PM_DICOM_STATUS_NOT_AUTHORIZED 0x0124

/* admit.cc: replaces srv->access from the settings' allowed_aes, store_from_any and
 * destinations. PM_OK or PM_E_CONFIG (logged; srv->access unchanged). */
int pm_dicom_edge_set_access(pm_dicom_server *srv, const pm_dicom_settings *st);

/* Admission of a received association: called AE title, allow-list, user identity.
 * true: a.access, a.rights and a.reader are set; false: the association has been
 * rejected (logged with its source, counted). */
bool pm_dicom_edge_admit(pm_dicom_assoc &a);

/* Tells the provider (metrics) of a refusal the caller has logged. */
void pm_dicom_edge_refused(pm_dicom_server *srv, int why);

/* Whether the association may use the service right (PM_ACCESS_*); when not, logs the
 * refusal naming the AE, its address and the service, and counts it. */
bool pm_dicom_edge_may(pm_dicom_assoc &a, unsigned right, const char *service);

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

/* Whether sop_class is one of the Patient Root query/retrieve models. */
bool pm_dicom_edge_is_patient_root(const char *sop_class);

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
