/* The PDU guard of node/dicom/wire.h. */
#include "node/dicom/wire.h"
#include "node/dicom/defaults.h"
#include "proto/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W_COMMAND, W_DATA_PASS, W_DATA_GUARD };

typedef struct {
    uint8_t *p;
    size_t n, cap, off; /* off: bytes already taken (ready only) */
} bytes;

struct pm_dicom_wire {
    pm_dicom_wire_limits lim;
    pm_dicom_ts ts[256];
    uint8_t ts_set[256];
    bytes ready, pending, msg;
    int state;
    uint8_t msg_pcid;
    unsigned last_command;
};

static int grow(bytes *b, size_t more)
{
    if (b->n + more <= b->cap)
        return PM_OK;
    if (b->off > 0) { /* drop what was taken before growing */
        memmove(b->p, b->p + b->off, b->n - b->off);
        b->n -= b->off;
        b->off = 0;
        if (b->n + more <= b->cap)
            return PM_OK;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return PM_E_NOMEM;
    b->p = p;
    b->cap = cap;
    return PM_OK;
}

static int append(bytes *b, const void *d, size_t n)
{
    if (grow(b, n))
        return PM_E_NOMEM;
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
    return PM_OK;
}

static int refuse(int code, char *why, size_t wl, const char *fmt, ...)
{
    if (why && wl) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, wl, fmt, ap);
        va_end(ap);
    }
    return code;
}

pm_dicom_wire *pm_dicom_wire_new(const pm_dicom_wire_limits *lim)
{
    pm_dicom_wire *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->lim = *lim;
    if (!w->lim.max_pdu)
        w->lim.max_pdu = PM_DICOM_DEFAULT_MAX_PDU;
    if (!w->lim.max_command)
        w->lim.max_command = 64 * 1024;
    if (!w->lim.max_identifier)
        w->lim.max_identifier = 4 * 1024 * 1024;
    w->state = W_COMMAND;
    return w;
}

void pm_dicom_wire_free(pm_dicom_wire *w)
{
    if (!w)
        return;
    free(w->ready.p);
    free(w->pending.p);
    free(w->msg.p);
    free(w);
}

void pm_dicom_wire_set_ts(pm_dicom_wire *w, uint8_t pcid, pm_dicom_ts ts)
{
    w->ts[pcid] = ts;
    w->ts_set[pcid] = 1;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static const char *pdu_name(uint8_t type)
{
    switch (type) {
    case 1: return "A-ASSOCIATE-RQ";
    case 2: return "A-ASSOCIATE-AC";
    case 3: return "A-ASSOCIATE-RJ";
    case 4: return "P-DATA-TF";
    case 5: return "A-RELEASE-RQ";
    case 6: return "A-RELEASE-RP";
    case 7: return "A-ABORT";
    default: return "unknown";
    }
}

int pm_dicom_wire_header(pm_dicom_wire *w, const uint8_t h[6], uint32_t *body_len, char *why,
                         size_t wl)
{
    uint32_t len = be32(h + 2), max;
    switch (h[0]) {
    case 1: max = 256 * 1024; break; /* hundreds of presentation contexts fit */
    case 2:
    case 3: max = 64 * 1024; break;
    case 4: max = w->lim.max_pdu + 64; break;
    case 5:
    case 6:
    case 7: max = 64; break;
    default: return refuse(PM_E_DICOM, why, wl, "unknown PDU type 0x%02x", h[0]);
    }
    if (len > max)
        return refuse(PM_E_TOOBIG, why, wl, "%s PDU of %lu bytes (at most %lu)", pdu_name(h[0]),
                      (unsigned long)len, (unsigned long)max);
    *body_len = len;
    return PM_OK;
}

/* The command field and data set type of a complete command (flat implicit VR LE). */
static void read_command(const uint8_t *c, size_t n, unsigned *field, unsigned *dataset_type)
{
    *field = 0;
    *dataset_type = 0x0101;
    for (size_t i = 0; i + 8 <= n;) {
        unsigned g = c[i] | c[i + 1] << 8, e = c[i + 2] | c[i + 3] << 8;
        uint32_t len = c[i + 4] | c[i + 5] << 8 | c[i + 6] << 16 | (uint32_t)c[i + 7] << 24;
        if (len == 0xFFFFFFFFu || len > n - i - 8)
            return;
        if (g == 0 && e == 0x0100 && len >= 2)
            *field = c[i + 8] | c[i + 9] << 8;
        if (g == 0 && e == 0x0800 && len >= 2)
            *dataset_type = c[i + 8] | c[i + 9] << 8;
        i += 8 + len;
    }
}

static const char *command_name(unsigned f)
{
    switch (f) {
    case 0x0001: return "C-STORE-RQ";
    case 0x0010: return "C-GET-RQ";
    case 0x0020: return "C-FIND-RQ";
    case 0x0021: return "C-MOVE-RQ";
    case 0x0030: return "C-ECHO-RQ";
    default: return "DIMSE";
    }
}

/* One PDV of a P-DATA-TF PDU. */
static int pdv(pm_dicom_wire *w, uint8_t pcid, uint8_t mch, const uint8_t *frag, size_t n,
               char *why, size_t wl)
{
    int is_command = mch & 1, last = (mch & 2) != 0;
    switch (w->state) {
    case W_COMMAND:
        if (!is_command)
            return refuse(PM_E_DICOM, why, wl, "a data set fragment without its command");
        if (w->msg.n == 0)
            w->msg_pcid = pcid;
        else if (pcid != w->msg_pcid)
            return refuse(PM_E_DICOM, why, wl, "one command on two presentation contexts");
        if (w->msg.n + n > w->lim.max_command)
            return refuse(PM_E_TOOBIG, why, wl, "a command of more than %lu bytes",
                          (unsigned long)w->lim.max_command);
        if (append(&w->msg, frag, n))
            return PM_E_NOMEM;
        if (!last)
            return PM_OK;
        {
            /* A command holds a handful of flat elements. */
            pm_dicom_limits cl = {1, 1000};
            pm_dicom_scan_result r;
            if (pm_dicom_scan_buffer(w->msg.p, w->msg.n, PM_DICOM_TS_IMPLICIT_LE, &cl, &r) != PM_OK)
                return refuse(PM_E_DICOM, why, wl, "command refused: %s", r.reason);
            unsigned field, dtype;
            read_command(w->msg.p, w->msg.n, &field, &dtype);
            w->last_command = field;
            w->msg.n = 0;
            if (dtype != 0x0101)
                w->state = field == 0x0001 ? W_DATA_PASS : W_DATA_GUARD;
        }
        return PM_OK;
    case W_DATA_PASS:
        if (is_command)
            return refuse(PM_E_DICOM, why, wl, "a command before the end of a data set");
        if (last)
            w->state = W_COMMAND;
        return PM_OK;
    default: /* W_DATA_GUARD */
        if (is_command)
            return refuse(PM_E_DICOM, why, wl, "a command before the end of a data set");
        if (w->msg.n == 0)
            w->msg_pcid = pcid;
        else if (pcid != w->msg_pcid)
            return refuse(PM_E_DICOM, why, wl, "one data set on two presentation contexts");
        if (w->msg.n + n > w->lim.max_identifier)
            return refuse(PM_E_TOOBIG, why, wl, "%s data set of more than %lu bytes",
                          command_name(w->last_command), (unsigned long)w->lim.max_identifier);
        if (append(&w->msg, frag, n))
            return PM_E_NOMEM;
        if (!last)
            return PM_OK;
        {
            pm_dicom_ts ts = w->ts_set[pcid] ? w->ts[pcid] : PM_DICOM_TS_UNKNOWN;
            if (ts == PM_DICOM_TS_DEFLATED)
                ts = PM_DICOM_TS_UNKNOWN;
            pm_dicom_scan_result r;
            int rc = pm_dicom_scan_buffer(w->msg.p, w->msg.n, ts, &w->lim.data_limits, &r);
            if (rc != PM_OK)
                return refuse(PM_E_DICOM, why, wl, "%s identifier refused: %s",
                              command_name(w->last_command), r.reason);
            w->msg.n = 0;
            w->state = W_COMMAND;
        }
        return PM_OK;
    }
}

static int release(pm_dicom_wire *w, const uint8_t *pdu, size_t len)
{
    if (append(&w->ready, w->pending.p, w->pending.n) || append(&w->ready, pdu, len))
        return PM_E_NOMEM;
    w->pending.n = 0;
    return PM_OK;
}

int pm_dicom_wire_pdu(pm_dicom_wire *w, const uint8_t *pdu, size_t len, char *why, size_t wl)
{
    if (len < 6 || be32(pdu + 2) != len - 6)
        return refuse(PM_E_DICOM, why, wl, "malformed PDU header");
    if (pdu[0] != 4)
        return release(w, pdu, len);
    const uint8_t *p = pdu + 6, *end = pdu + len;
    if (p == end)
        return refuse(PM_E_DICOM, why, wl, "a P-DATA-TF PDU without a PDV");
    while (p < end) {
        if (end - p < 6)
            return refuse(PM_E_DICOM, why, wl, "malformed P-DATA-TF PDU");
        uint32_t il = be32(p);
        if (il < 2 || il > (size_t)(end - p) - 4)
            return refuse(PM_E_DICOM, why, wl, "malformed PDV item (length %lu)",
                          (unsigned long)il);
        int rc = pdv(w, p[4], p[5], p + 6, il - 2, why, wl);
        if (rc)
            return rc;
        p += 4 + il;
    }
    /* Held while a command or an in-memory data set is incomplete. */
    if ((w->state == W_COMMAND && w->msg.n > 0) || w->state == W_DATA_GUARD) {
        if (w->pending.n + len > (size_t)w->lim.max_identifier + w->lim.max_command + 65536)
            return refuse(PM_E_TOOBIG, why, wl, "too much held back");
        return append(&w->pending, pdu, len) ? PM_E_NOMEM : PM_OK;
    }
    return release(w, pdu, len);
}

size_t pm_dicom_wire_ready(const pm_dicom_wire *w)
{
    return w->ready.n - w->ready.off;
}

size_t pm_dicom_wire_take(pm_dicom_wire *w, void *buf, size_t n)
{
    size_t k = pm_dicom_wire_ready(w);
    if (k > n)
        k = n;
    if (k == 0)
        return 0;
    memcpy(buf, w->ready.p + w->ready.off, k);
    w->ready.off += k;
    if (w->ready.off == w->ready.n)
        w->ready.off = w->ready.n = 0;
    return k;
}

unsigned pm_dicom_wire_last_command(const pm_dicom_wire *w)
{
    return w->last_command;
}
