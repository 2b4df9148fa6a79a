/* C-FIND/C-GET/C-MOVE matching over the mesh's StudyViews, in plain C so that it can be
 * unit-tested and fuzzed without dcmtk. The dcmtk shim turns a query identifier into a
 * pm_dicom_query (one optional string per known key), and turns each pm_dicom_row back
 * into a response identifier.
 *
 * Matching follows DICOM PS3.4 C.2.2.2: universal (empty or "*"), single value, "*" and
 * "?" wildcards, date and time ranges, UID lists; values separated by backslashes match
 * when any of them matches (an empty value in such a list matches nothing: only a wholly
 * empty pattern is universal). Malformed date and time values are refused before any
 * matching (pm_dicom_query_validate). PatientName is matched case-insensitively, other strings
 * case-sensitively. Count keys (NumberOf...) are return keys only. */
#ifndef PM_DICOM_QUERY_H
#define PM_DICOM_QUERY_H

#include <stdint.h>

#include "node/dicom/dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PM_DICOM_LEVEL_PATIENT = 0,
    PM_DICOM_LEVEL_STUDY,
    PM_DICOM_LEVEL_SERIES,
    PM_DICOM_LEVEL_IMAGE
} pm_dicom_level;

/* The keys the edge can answer. Any other key of a query is returned empty. */
typedef enum {
    PM_DK_PATIENT_ID = 0,
    PM_DK_PATIENT_NAME,
    PM_DK_PATIENT_BIRTH_DATE,
    PM_DK_PATIENT_SEX,
    PM_DK_PATIENT_NSTUDIES,
    PM_DK_PATIENT_NSERIES,
    PM_DK_PATIENT_NINSTANCES,
    PM_DK_STUDY_UID,
    PM_DK_STUDY_DATE,
    PM_DK_STUDY_TIME,
    PM_DK_ACCESSION,
    PM_DK_STUDY_DESCRIPTION,
    PM_DK_REFERRING_PHYSICIAN,
    PM_DK_STUDY_ID,
    PM_DK_MODALITIES_IN_STUDY,
    PM_DK_STUDY_NSERIES,
    PM_DK_STUDY_NINSTANCES,
    PM_DK_SERIES_UID,
    PM_DK_MODALITY,
    PM_DK_SERIES_NUMBER,
    PM_DK_SERIES_DESCRIPTION,
    PM_DK_BODY_PART,
    PM_DK_SERIES_NINSTANCES,
    PM_DK_SOP_UID,
    PM_DK_SOP_CLASS_UID,
    PM_DK_INSTANCE_NUMBER,
    PM_DK_COUNT
} pm_dicom_key;

/* How a key is matched. */
typedef enum {
    PM_DICOM_MATCH_STRING = 0, /* wildcards, case-sensitive */
    PM_DICOM_MATCH_NAME,       /* wildcards, case-insensitive (PN) */
    PM_DICOM_MATCH_UID,        /* single UID or backslash-separated list */
    PM_DICOM_MATCH_DATE,       /* YYYYMMDD, ranges */
    PM_DICOM_MATCH_TIME,       /* HHMMSS.FFFFFF, ranges */
    PM_DICOM_MATCH_NUMBER,     /* IS: numeric equality */
    PM_DICOM_MATCH_MULTI,      /* multi-valued attribute: matches if any value does */
    PM_DICOM_MATCH_NONE        /* return key only */
} pm_dicom_match_kind;

typedef struct {
    uint16_t group;
    uint16_t element;
    pm_dicom_level level;
    pm_dicom_match_kind kind;
    const char *name; /* DICOM keyword, for logs and tests */
} pm_dicom_key_info;

/* The static description of key k (k < PM_DK_COUNT). */
const pm_dicom_key_info *pm_dicom_query_key_info(pm_dicom_key k);

/* The key with this tag, or -1 when the edge does not know it. */
int pm_dicom_query_key_by_tag(uint16_t group, uint16_t element);

/* Parses a QueryRetrieveLevel value ("PATIENT", "STUDY", "SERIES", "IMAGE", trailing
 * padding allowed). PM_OK or PM_E_INVAL. */
int pm_dicom_query_parse_level(const char *text, pm_dicom_level *out);

/* 1 if value matches pattern under kind, else 0. Both are trimmed of DICOM padding; an
 * empty pattern (or "*") matches everything, including an empty value. */
int pm_dicom_query_match(pm_dicom_match_kind kind, const char *pattern, const char *value);

typedef struct {
    pm_dicom_level level;
    /* NULL: key absent from the identifier; "" universal; else the pattern. Borrowed. */
    const char *value[PM_DK_COUNT];
} pm_dicom_query;

/* One answer. value[k] is set for every key at or above the row's level (possibly ""),
 * NULL for keys below it. Borrowed for the duration of the callback only. */
typedef struct {
    pm_dicom_level level;
    const char *value[PM_DK_COUNT];
    /* Set for IMAGE level rows (and during pm_dicom_query_instances). */
    const Pm__Instance *instance;
} pm_dicom_row;

typedef int (*pm_dicom_row_fn)(void *ctx, const pm_dicom_row *row);

/* Refuses what no matching rule gives a meaning to: a date or time key whose value
 * is neither a date (YYYYMMDD, month and day in range) or time (HH[MM[SS[.F{1,6}]]], in
 * range), nor a range of them with at least one end, nor empty or "*" (e.g. "abc-xyz",
 * "20241301", "2024-"). PM_OK, or PM_E_INVAL with a one-line reason naming the key. */
int pm_dicom_query_validate(const pm_dicom_query *q, char *why, size_t wl);

/* C-GET/C-MOVE identifiers, as PS3.4 C.4.2.2.1 and C.4.3.2.1 say (the one place of
 * this rule): the unique key of each level from the top of the model (PATIENT with
 * patient_root, else STUDY) down to q->level is present and names entities: at the
 * levels above one value, at q->level one value or a backslash-separated list. An
 * empty (universal) value, a wildcard, or a list with an empty element is refused.
 * PM_OK, or PM_E_INVAL with a one-line reason naming the key. */
int pm_dicom_query_check_retrieve(const pm_dicom_query *q, int patient_root, char *why, size_t wl);

/* C-FIND: calls fn once per entity at q->level that matches every key of q at or above
 * that level. PATIENT rows aggregate all matching studies of one PatientID. Returns
 * PM_OK, the provider's error, PM_E_NOMEM, or fn's non-zero value (which stops it). */
int pm_dicom_query_find(const pm_dicom_query *q, const pm_dicom_provider *p, pm_dicom_row_fn fn,
                        void *ctx);

/* C-GET/C-MOVE: calls fn with an IMAGE level row for every instance under the entities
 * at q->level that match q. Same returns as pm_dicom_query_find. */
int pm_dicom_query_instances(const pm_dicom_query *q, const pm_dicom_provider *p,
                             pm_dicom_row_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
