/* DICOM TLS for the edge, with dcmtk's TLS layer over OpenSSL (BCP 195 profile: TLS 1.2
 * or later, its cipher suites): the server side of the DICOM port when [dicom]
 * tls_cert and tls_key are set, and the client side of C-MOVE sub-associations to
 * destinations marked tls. C++ internal to the shim. */
#ifndef PM_DICOM_TLS_H
#define PM_DICOM_TLS_H

#ifndef __cplusplus
#error "tls.h is C++ only"
#endif

#include <string>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmnet/dcmlayer.h>

#include "node/dicom/dicom.h"

struct pm_dicom_tls;

/* The TLS settings of st checked and loaded (the key must match the certificate, the
 * files must be PEM): a new object in *out, or nullptr in *out when st sets no TLS.
 * PM_OK, or PM_E_CONFIG with why naming the file and what is wrong with it. */
int pm_dicom_tls_new(const pm_dicom_settings *st, pm_dicom_tls **out, std::string &why);

void pm_dicom_tls_free(pm_dicom_tls *t);

/* The server-side layer: its createConnection(sock, OFTrue) makes a TLS connection
 * whose serverSideHandshake() verifies the client per require_client_cert. Owned by t. */
DcmTransportLayer *pm_dicom_tls_server(pm_dicom_tls *t);

/* A new client-side layer for a C-MOVE sub-association to a TLS destination: our
 * certificate and key, the destination's certificate verified against tls_ca. The
 * caller owns it and must keep it until the network using it is dropped. nullptr and
 * why when t is nullptr (the node has no TLS certificate) or it cannot be made. */
DcmTransportLayer *pm_dicom_tls_client(const pm_dicom_tls *t, std::string &why);

#endif
