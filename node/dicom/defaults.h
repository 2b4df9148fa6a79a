/* The DICOM edge's defaults, written once: what [dicom] gives a key that is not set
 * (node/config/table.c writes them as text with PM_DICOM_TEXT_OF) and what 0 means in
 * pm_dicom_settings and the lower layers' limits. */
#ifndef PM_DICOM_DEFAULTS_H
#define PM_DICOM_DEFAULTS_H

#define PM_DICOM_DEFAULT_MAX_PDU 131072 /* bytes */
#define PM_DICOM_DEFAULT_TIMEOUT_S 30   /* idle_timeout and read_timeout */
#define PM_DICOM_DEFAULT_MAX_ASSOCIATIONS 200
#define PM_DICOM_DEFAULT_MAX_ASSOCIATIONS_PER_HOST 32
/* dcmtk's own later default nesting limit (DCMTK_MAX_SEQUENCE_NESTING, 64; real data
 * rarely exceeds 5-10 levels), and an element count far above any real header
 * (enhanced multi-frame and RT structure sets reach a few hundred thousand). */
#define PM_DICOM_DEFAULT_MAX_DEPTH 64
#define PM_DICOM_DEFAULT_MAX_ELEMENTS 1000000

/* A default as the text node.conf would say it: PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_X). */
#define PM_DICOM_TEXT_OF(x) PM_DICOM_TEXT_OF_(x)
#define PM_DICOM_TEXT_OF_(x) #x

#endif
