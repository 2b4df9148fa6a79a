/* /dicom-web: which PS3.18 resource a path names. */
#include "node/http/dicomweb.h"

#include <stdio.h>
#include <string.h>

void pm_dw_base_url(pm_http_req *r, char *out, size_t len)
{
    const char *host = pm_http_header(r, "Host");
    snprintf(out, len, "%s://%s/dicom-web", r->srv->tls ? "https" : "http",
             host && strlen(host) < 200 && !strpbrk(host, "\"<> ") ? host : "localhost");
}

static int is(const pm_http_req *r, int i, const char *name)
{
    return i < r->nseg && strcmp(r->seg[i], name) == 0;
}

enum MHD_Result pm_http_dicomweb(pm_http_req *r)
{
    int n = r->nseg; /* seg[0] is "dicom-web" */
    if (n > 1 && !*r->seg[n - 1])
        n--; /* a trailing slash */
    int get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    const char *s = n > 2 ? r->seg[2] : NULL, *se = n > 4 ? r->seg[4] : NULL;
    const char *in = n > 6 ? r->seg[6] : NULL;
    if (strcmp(r->method, "POST") == 0 && is(r, 1, "studies") && (n == 2 || n == 3))
        return pm_dw_stow(r, n == 3 ? s : NULL);
    if (!get)
        return pm_http_error(r, 405, "%s is not supported here", r->method);
    if (n == 2 && is(r, 1, "studies"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_STUDY, NULL, NULL);
    if (n == 2 && is(r, 1, "series"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_SERIES, NULL, NULL);
    if (n == 2 && is(r, 1, "instances"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_IMAGE, NULL, NULL);
    if (!is(r, 1, "studies") || n < 3)
        return pm_http_error(r, 404, "no such DICOMweb resource");
    if (n == 4 && is(r, 3, "series"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_SERIES, s, NULL);
    if (n == 4 && is(r, 3, "instances"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_IMAGE, s, NULL);
    if (n == 6 && is(r, 3, "series") && is(r, 5, "instances"))
        return pm_dw_qido(r, PM_DICOM_LEVEL_IMAGE, s, se);
    /* WADO-RS */
    if (n == 3)
        return pm_dw_wado(r, s, NULL, NULL, "", NULL);
    if (n == 4 && is(r, 3, "metadata"))
        return pm_dw_wado(r, s, NULL, NULL, "metadata", NULL);
    if (n == 5 && is(r, 3, "series"))
        return pm_dw_wado(r, s, se, NULL, "", NULL);
    if (n == 6 && is(r, 3, "series") && is(r, 5, "metadata"))
        return pm_dw_wado(r, s, se, NULL, "metadata", NULL);
    if (n == 7 && is(r, 3, "series") && is(r, 5, "instances"))
        return pm_dw_wado(r, s, se, in, "", NULL);
    if (n == 8 && is(r, 3, "series") && is(r, 5, "instances") && is(r, 7, "metadata"))
        return pm_dw_wado(r, s, se, in, "metadata", NULL);
    if (n == 9 && is(r, 3, "series") && is(r, 5, "instances") && is(r, 7, "frames"))
        return pm_dw_wado(r, s, se, in, "frames", r->seg[8]);
    if (n == 9 && is(r, 3, "series") && is(r, 5, "instances") && is(r, 7, "bulk"))
        return pm_dw_wado(r, s, se, in, "bulk", r->seg[8]);
    return pm_http_error(r, 404, "no such DICOMweb resource");
}
