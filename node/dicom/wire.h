/* The DICOM edge's guard on what a client sends, between the socket and dcmtk.
 *
 * dcmtk 3.6.7 parses DIMSE commands and the identifiers of C-FIND, C-GET and C-MOVE in
 * memory, recursively, as their fragments arrive; it takes the length a PDU header
 * claims and allocates it. The edge's connection reads whole PDUs from the socket (with
 * a deadline per PDU) and feeds them here first. This guard:
 *   - refuses PDUs longer than their kind allows (an A-ASSOCIATE-RQ or a release PDU
 *     of megabytes, a P-DATA-TF PDU longer than the max PDU we announced);
 *   - follows the PDVs of P-DATA-TF PDUs message by message, holds back every PDU of a
 *     command, and of a data set that dcmtk would parse in memory (anything but the data
 *     set of a C-STORE, which dcmtk writes to the spool file unparsed and
 *     pm_dicom_read_meta scans), until the message is complete; then scans it
 *     (node/dicom/scan.h) and releases it to dcmtk, or refuses it with a reason;
 *   - refuses such messages past a size limit, and a data set without its command.
 * A refusal ends the association (the connection reports a read error to dcmtk).
 * Plain C without dcmtk: unit-tested and fuzzed on its own. */
#ifndef PM_DICOM_WIRE_H
#define PM_DICOM_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "node/dicom/scan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t max_pdu;            /* what we announced as our maximum PDU length */
    uint32_t max_command;        /* bytes of one DIMSE command (default 64 KiB) */
    uint32_t max_identifier;     /* bytes of one in-memory data set (default 4 MiB) */
    pm_dicom_limits data_limits; /* nesting and elements of in-memory data sets */
} pm_dicom_wire_limits;

typedef struct pm_dicom_wire pm_dicom_wire;

/* NULL when out of memory. */
pm_dicom_wire *pm_dicom_wire_new(const pm_dicom_wire_limits *lim);
void pm_dicom_wire_free(pm_dicom_wire *w);

/* The transfer syntax of an accepted presentation context (after negotiation). Data
 * sets on a context without one are scanned as PM_DICOM_TS_UNKNOWN. */
void pm_dicom_wire_set_ts(pm_dicom_wire *w, uint8_t pcid, pm_dicom_ts ts);

/* Given the 6-byte PDU header: the length of the PDU's body, or a refusal (returns
 * PM_E_TOOBIG or PM_E_DICOM with a reason in why). */
int pm_dicom_wire_header(pm_dicom_wire *w, const uint8_t header[6], uint32_t *body_len, char *why,
                         size_t wl);

/* Feeds one whole PDU (header and body, len bytes). PM_OK: its bytes are released now
 * or held until the message they belong to is complete; else a refusal with a reason
 * (PM_E_DICOM, PM_E_TOOBIG, PM_E_NOMEM). After a refusal, feed nothing more. */
int pm_dicom_wire_pdu(pm_dicom_wire *w, const uint8_t *pdu, size_t len, char *why, size_t wl);

/* Released bytes: how many there are; copy out up to n of them. */
size_t pm_dicom_wire_ready(const pm_dicom_wire *w);
size_t pm_dicom_wire_take(pm_dicom_wire *w, void *buf, size_t n);

/* The command field of the last complete command (0 before the first), for logs. */
unsigned pm_dicom_wire_last_command(const pm_dicom_wire *w);

#ifdef __cplusplus
}
#endif
#endif
