/* The DICOM edge's transport layer: the connection dcmtk reads every association
 * through. It is what makes a slow, stalled or hostile client a problem of its own
 * association only:
 *
 *   - Whole PDUs are read from the socket, each within read_timeout of its first byte
 *     being awaited: a half-sent A-ASSOCIATE-RQ, PDU or message ends its association
 *     after read_timeout, never blocks it longer (dcmtk alone awaits only the first
 *     byte of a PDU with a timeout, then reads the rest blocking).
 *   - Each PDU goes through the wire guard (node/dicom/wire.h) before dcmtk sees a byte
 *     of it: lengths, and the commands and in-memory identifiers dcmtk would parse
 *     recursively are scanned within the nesting and element limits.
 *   - createConnection() is where dcmtk has taken the socket of the association it is
 *     receiving from the process-wide setting that names it (dcmExternalSocketHandle):
 *     the lock that serializes that setting is released right there, before a single
 *     byte of the A-ASSOCIATE-RQ is read.
 *   - With DICOM TLS (node/dicom/tls.h) the bytes come through the TLS connection
 *     dcmtk's TLS layer makes for the socket: the guard sees the plaintext PDUs. */
#include "node/dicom/shim_internal.h"
#include "node/dicom/tls.h"
#include "node/dicom/wire.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <dcmtk/dcmnet/dcmlayer.h>
#include <dcmtk/dcmnet/dcmtrans.h>

extern "C" {
#include "node/audit/notes.h"
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

/* The association being received on this thread, and the lock to release once dcmtk
 * holds its socket. */
static thread_local pm_dicom_conn *receiving;
static thread_local std::unique_lock<std::mutex> *receive_hold;

/* A TCP connection whose bytes go through the TLS connection dcmtk's TLS layer made for
 * the socket when there is one (DICOM TLS), and straight through the socket otherwise. */
class tls_or_tcp_connection : public DcmTCPConnection
{
  public:
    /* tls: the TLS connection over sock (owned from now on), or nullptr for plain TCP. */
    tls_or_tcp_connection(DcmNativeSocketType sock, DcmTransportConnection *tls)
        : DcmTCPConnection(sock), tls_(tls)
    {
    }
    ~tls_or_tcp_connection() override
    {
        if (tls_) {
            delete tls_; /* closes the socket */
            setSocket(DCMNET_INVALID_SOCKET);
        }
    }

    ssize_t write(void *buf, size_t nbyte) override
    {
        return tls_ ? tls_->write(buf, nbyte) : DcmTCPConnection::write(buf, nbyte);
    }
    void close() override { closeTransportConnection(); }
    void closeTransportConnection() override
    {
        if (tls_) {
            tls_->closeTransportConnection();
            setSocket(DCMNET_INVALID_SOCKET);
        } else {
            DcmTCPConnection::closeTransportConnection();
        }
    }
    unsigned long getPeerCertificateLength() override
    {
        return tls_ ? tls_->getPeerCertificateLength() : 0;
    }
    unsigned long getPeerCertificate(void *buf, unsigned long len) override
    {
        return tls_ ? tls_->getPeerCertificate(buf, len) : 0;
    }
    OFBool isTransparentConnection() override { return tls_ ? OFFalse : OFTrue; }
    OFString &dumpConnectionParameters(OFString &str) override
    {
        return tls_ ? tls_->dumpConnectionParameters(str)
                    : DcmTCPConnection::dumpConnectionParameters(str);
    }

  protected:
    /* Up to n bytes from the peer, decrypted under TLS: as recv(2). */
    ssize_t recv_some(uint8_t *p, size_t n)
    {
        return tls_ ? tls_->read(p, n) : ::recv(getSocket(), p, n, 0);
    }
    /* Whether TLS holds decrypted bytes (or a record is arriving) that the socket may no
     * longer show as readable. */
    bool tls_pending() { return tls_ && tls_->networkDataAvailable(0); }

    DcmTransportConnection *tls_;
};

/* The connection dcmtk reads an association through: whole PDUs by a deadline, each
 * through the wire guard before dcmtk sees it. */
class guarded_connection : public tls_or_tcp_connection
{
  public:
    guarded_connection(DcmNativeSocketType sock, pm_dicom_server *srv, pm_dicom_conn *conn,
                       DcmTransportConnection *tls);
    ~guarded_connection() override
    {
        if (conn_)
            conn_->guard = nullptr;
        pm_dicom_wire_free(wire_);
    }

    OFCondition serverSideHandshake() override;
    ssize_t read(void *buf, size_t nbyte) override;
    OFBool networkDataAvailable(int timeout) override;

    /* After negotiation: each accepted context's transfer syntax, for the guard. */
    void set_contexts(T_ASC_Parameters *params);
    void forget_conn() { conn_ = nullptr; }
    bool failed() const { return failed_; }

  private:
    ssize_t recv_all(uint8_t *p, size_t n, int64_t deadline, bool eof_ok);
    int next_pdu();
    std::string who() const;
    int fail_io(const char *what);
    int refuse(const char *why);

    pm_dicom_server *srv_;
    pm_dicom_conn *conn_;
    pm_dicom_wire *wire_ = nullptr;
    int timeout_ms_;
    bool failed_ = false;
    std::vector<uint8_t> pdu_;
};

guarded_connection::guarded_connection(DcmNativeSocketType sock, pm_dicom_server *srv,
                                       pm_dicom_conn *conn, DcmTransportConnection *tls)
    : tls_or_tcp_connection(sock, tls), srv_(srv), conn_(conn)
{
    pm_dicom_wire_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.max_pdu = (uint32_t)pm_dicom_edge_max_pdu(srv);
    lim.data_limits.max_depth = srv->max_nesting;
    lim.data_limits.max_elements = srv->max_elements;
    wire_ = pm_dicom_wire_new(&lim);
    timeout_ms_ = (int)srv->read_timeout_ms;
}

OFCondition guarded_connection::serverSideHandshake()
{
    if (!tls_)
        return EC_Normal;
    OFCondition c = tls_->serverSideHandshake();
    if (c.bad()) {
        pm_warn(LOG_MOD, "TLS handshake with %s failed: %s", who().c_str(), c.text());
        pm_dicom_edge_refused(srv_, PM_DICOM_REFUSED_TLS);
        /* A refused certificate is a security alert for the trust's audit repository,
         * like any refused association (no AE is known before the handshake). */
        std::string why = std::string("DICOM TLS handshake refused: ") + c.text();
        pm_audit_note_alert(conn_->host.c_str(), conn_->host.c_str(), why.c_str());
    }
    return c;
}

void guarded_connection::set_contexts(T_ASC_Parameters *params)
{
    int n = ASC_countPresentationContexts(params);
    for (int i = 0; i < n; i++) {
        T_ASC_PresentationContext pc;
        if (ASC_getPresentationContext(params, i, &pc).good() &&
            pc.resultReason == ASC_P_ACCEPTANCE)
            pm_dicom_wire_set_ts(wire_, pc.presentationContextID,
                                 pm_dicom_ts_of_uid(pc.acceptedTransferSyntax));
    }
}

ssize_t guarded_connection::read(void *buf, size_t nbyte)
{
    if (failed_ || !wire_) {
        errno = ECONNABORTED;
        return -1;
    }
    while (pm_dicom_wire_ready(wire_) == 0) {
        int rc = next_pdu();
        if (rc <= 0)
            return rc;
    }
    return (ssize_t)pm_dicom_wire_take(wire_, buf, nbyte);
}

OFBool guarded_connection::networkDataAvailable(int timeout)
{
    if (wire_ && pm_dicom_wire_ready(wire_) > 0)
        return OFTrue;
    if (failed_)
        return OFTrue; /* the next read reports the failure */
    if (tls_pending())
        return OFTrue; /* decrypted bytes buffered, or a record arriving */
    struct pollfd p = {getSocket(), POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, timeout * 1000);
    while (r < 0 && errno == EINTR);
    return r > 0 ? OFTrue : OFFalse;
}

/* Reads n bytes by the deadline: n, 0 on a clean end before any byte (only when eof_ok),
 * -1 with errno otherwise. */
ssize_t guarded_connection::recv_all(uint8_t *p, size_t n, int64_t deadline, bool eof_ok)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline - pm_dicom_edge_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (!tls_pending()) {
            struct pollfd pfd = {getSocket(), POLLIN, 0};
            int r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
            if (r < 0 && errno != EINTR)
                return -1;
            if (r <= 0)
                continue;
        }
        ssize_t k = recv_some(p + got, n - got);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0)
            return -1;
        if (k == 0) {
            if (got == 0 && eof_ok)
                return 0;
            errno = ECONNRESET;
            return -1;
        }
        got += (size_t)k;
    }
    return (ssize_t)n;
}

/* 1: a PDU went through the guard; 0: the peer closed between PDUs; -1: failed. */
int guarded_connection::next_pdu()
{
    int64_t deadline = pm_dicom_edge_mono_ms() + timeout_ms_;
    uint8_t h[6];
    ssize_t k = recv_all(h, sizeof h, deadline, true);
    if (k <= 0)
        return k < 0 ? fail_io("PDU header") : 0;
    uint32_t len;
    char why[256];
    int rc = pm_dicom_wire_header(wire_, h, &len, why, sizeof why);
    if (rc != PM_OK)
        return refuse(why);
    pdu_.resize(6 + (size_t)len);
    memcpy(pdu_.data(), h, 6);
    if (len && recv_all(pdu_.data() + 6, len, deadline, false) < 0)
        return fail_io("PDU");
    rc = pm_dicom_wire_pdu(wire_, pdu_.data(), pdu_.size(), why, sizeof why);
    if (rc != PM_OK)
        return refuse(rc == PM_E_NOMEM ? "out of memory" : why);
    return 1;
}

std::string guarded_connection::who() const
{
    std::lock_guard<std::mutex> g(srv_->mu);
    if (!conn_)
        return "a client";
    return conn_->label.empty() ? conn_->host : conn_->label;
}

int guarded_connection::fail_io(const char *what)
{
    int e = errno;
    if (e == ETIMEDOUT)
        pm_warn(LOG_MOD, "association with %s: no complete %s within %d s: closed", who().c_str(),
                what, timeout_ms_ / 1000);
    failed_ = true;
    errno = e;
    return -1;
}

int guarded_connection::refuse(const char *why)
{
    pm_warn(LOG_MOD, "association with %s: %s: aborted", who().c_str(), why);
    {
        std::lock_guard<std::mutex> g(srv_->mu);
        srv_->guard_refusals++;
    }
    failed_ = true;
    errno = EPROTO;
    return -1;
}

class guarded_layer : public DcmTransportLayer
{
  public:
    explicit guarded_layer(pm_dicom_server *srv) : srv_(srv) {}

    DcmTransportConnection *createConnection(DcmNativeSocketType sock, OFBool) override
    {
        /* dcmtk has read dcmExternalSocketHandle: let the next association be received. */
        if (receive_hold && receive_hold->owns_lock()) {
            dcmExternalSocketHandle.set(DCMNET_INVALID_SOCKET);
            receive_hold->unlock();
        }
        try {
            DcmTransportConnection *tls = nullptr;
            if (srv_->tls &&
                !(tls = pm_dicom_tls_server(srv_->tls)->createConnection(sock, OFTrue)))
                return nullptr;
            guarded_connection *c = new guarded_connection(sock, srv_, receiving, tls);
            if (receiving)
                receiving->guard = c;
            return c;
        } catch (...) {
            return nullptr;
        }
    }

  private:
    pm_dicom_server *srv_;
};

DcmTransportLayer *pm_dicom_edge_transport_new(pm_dicom_server *srv)
{
    return new guarded_layer(srv);
}

void pm_dicom_edge_receiving(pm_dicom_conn *conn, std::unique_lock<std::mutex> *hold)
{
    receiving = conn;
    receive_hold = hold;
}

void pm_dicom_edge_guard_contexts(pm_dicom_conn *conn, T_ASC_Parameters *params)
{
    if (conn->guard)
        static_cast<guarded_connection *>(conn->guard)->set_contexts(params);
}

bool pm_dicom_edge_guard_failed(pm_dicom_conn *conn)
{
    return conn->guard && static_cast<guarded_connection *>(conn->guard)->failed();
}

void pm_dicom_edge_guard_detach(pm_dicom_conn *conn)
{
    if (conn->guard)
        static_cast<guarded_connection *>(conn->guard)->forget_conn();
    conn->guard = nullptr;
}
