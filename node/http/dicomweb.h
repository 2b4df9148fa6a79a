/* DICOMweb under /dicom-web (PS3.18): the dispatcher (dicomweb.c), QIDO-RS (qido.c)
 * and WADO-RS (wado.c). Internal to node/http. */
#ifndef PM_HTTP_DICOMWEB_H
#define PM_HTTP_DICOMWEB_H

#include "node/dicom/query.h"
#include "node/http/internal.h"

/* "XXXXYYYY" of a tag. */
void pm_dw_tag(uint16_t group, uint16_t element, char out[9]);
/* {"vr", "Value"} for a DICOM string value (backslash-separated values). */
json_t *pm_dw_attr(const char *vr, const char *value);
/* The query key a parameter names (keyword or tag), or -1. */
int pm_dw_key_by_name(const char *name);
/* "http(s)://host/dicom-web" as the client reached it. */
void pm_dw_base_url(pm_http_req *r, char *out, size_t len);

enum MHD_Result pm_dw_qido(pm_http_req *r, pm_dicom_level level, const char *study,
                           const char *series);

/* WADO-RS: what = "" (instances), "metadata", "frames" (frames: the list). */
enum MHD_Result pm_dw_wado(pm_http_req *r, const char *study, const char *series,
                           const char *instance, const char *what, const char *frames);

/* STOW-RS: stores the spooled multipart body (r->spool_fd); study: the path's, or NULL. */
enum MHD_Result pm_dw_stow(pm_http_req *r, const char *study);

#endif
