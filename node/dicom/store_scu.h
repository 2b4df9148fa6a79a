/* Sending one DICOM file to another AE with C-STORE (the node as a Storage SCU), over
 * dcmtk's DcmSCU in a C++ file that catches every exception at this C boundary. Used
 * to send the report's SR home to the trust's PACS (node/ris/sr_sender.h). */
#ifndef PM_DICOM_STORE_SCU_H
#define PM_DICOM_STORE_SCU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens an association from calling_ae to called_ae at host:port, proposes the file's
 * SOP class with Explicit and Implicit VR Little Endian, sends the Part-10 file at path
 * with C-STORE and releases. Every network step waits at most timeout_ms.
 *
 * Returns 0 (PM_OK) when the peer answered Success or a Warning (0xB000, 0xB007,
 * 0xB006: stored, with coercion); PM_E_NET when it cannot be reached, refuses the
 * association or the SOP class, or answers with a failure status (*status, when not
 * NULL, receives the DIMSE status, 0 if none came); PM_E_IO or PM_E_DICOM when the file
 * cannot be read. err (errlen bytes) holds one line saying why. Never throws. */
int pm_dicom_store_send(const char *host, int port, const char *calling_ae, const char *called_ae,
                        const char *path, unsigned timeout_ms, uint16_t *status, char *err,
                        size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
