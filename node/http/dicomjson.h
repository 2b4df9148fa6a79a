/* What WADO-RS needs from a stored DICOM file, over dcmtk (dicomjson.cc; every
 * exception is caught at this boundary). */
#ifndef PM_HTTP_DICOMJSON_H
#define PM_HTTP_DICOMJSON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The instance as a DICOM JSON object (PS3.18 F.2), without its meta header; pixel data
 * as a BulkDataURI under bulk_base (".../instances/UID/bulk/"). *out is the caller's.
 * PM_OK or PM_E_DICOM with the reason in err. */
int pm_dw_instance_json(const char *path, const char *bulk_base, char **out, size_t *outlen,
                        char *err, size_t errlen);

/* Frame number frame (1-based) of the instance's pixel data: native pixel data in
 * explicit VR little endian, or, when the file is compressed, the frame's compressed
 * bytes as stored. ts receives the transfer syntax UID of what *out holds.
 * PM_OK; PM_E_NOTFOUND (no such frame or no pixel data); PM_E_DICOM. */
int pm_dw_frame(const char *path, unsigned frame, char **out, size_t *outlen, char ts[65],
                char *err, size_t errlen);

/* The value of the binary attribute (group, element) of the data set's top level, as
 * stored (native pixel data in little endian; encapsulated pixel data as its fragments
 * one after another). PM_OK; PM_E_NOTFOUND (no such attribute, or not binary);
 * PM_E_DICOM. */
int pm_dw_bulk(const char *path, unsigned group, unsigned element, char **out, size_t *outlen,
               char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
