/* pm_dicom_ts_of_uid (node/dicom/scan.h): which encoding a transfer syntax UID names,
 * as dcmtk 3.6.7 reads it. The structure scan picks its walk by it, and the wire guard
 * (conn.cc) learns each accepted presentation context's encoding from it. */
#include "node/dicom/dicom.h"
#include "node/dicom/scan.h"

#include <stdlib.h>
#include <string.h>

pm_dicom_ts pm_dicom_ts_of_uid(const char *uid)
{
    char u[PM_DICOM_UID_MAX + 1];
    size_t n = 0;
    if (!uid)
        return PM_DICOM_TS_UNKNOWN;
    for (; uid[n] && n < sizeof u - 1; n++)
        u[n] = uid[n];
    while (n > 0 && (u[n - 1] == ' ' || u[n - 1] == '\0'))
        n--;
    u[n] = 0;
    if (!strcmp(u, "1.2.840.10008.1.2") || !strcmp(u, "1.2.840.113619.5.2"))
        return PM_DICOM_TS_IMPLICIT_LE;
    if (!strcmp(u, "1.2.840.10008.1.2.2"))
        return PM_DICOM_TS_EXPLICIT_BE;
    if (!strcmp(u, "1.2.840.10008.1.2.1.99") || !strcmp(u, "1.2.840.10008.1.2.4.95"))
        return PM_DICOM_TS_DEFLATED;
    if (!strcmp(u, "1.2.840.10008.1.2.1") || !strcmp(u, "1.2.840.10008.1.2.5"))
        return PM_DICOM_TS_EXPLICIT_LE;
    /* The compressed syntaxes dcmtk 3.6.7 knows: JPEG, JPEG-LS, JPEG 2000, JPIP, MPEG,
     * HEVC (1.2.840.10008.1.2.4.50-66, 70, 80-81, 90-94, 100-108). */
    const char *p = "1.2.840.10008.1.2.4.";
    if (!strncmp(u, p, strlen(p))) {
        char *endp;
        long k = strtol(u + strlen(p), &endp, 10);
        if (*endp == 0 && ((k >= 50 && k <= 66) || k == 70 || k == 80 || k == 81 ||
                           (k >= 90 && k <= 94) || (k >= 100 && k <= 108)))
            return PM_DICOM_TS_EXPLICIT_LE;
    }
    return PM_DICOM_TS_UNKNOWN;
}
