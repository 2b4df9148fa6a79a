/* What a structured report says, as codes: reading the coded concepts of a DICOM SR
 * that arrived from outside (an AI product's result, typically), so that a rule of the
 * trust ([worklist] ai_rule, node/worklist/ai_rules.h) can raise the study's priority
 * from a finding it names. Over dcmtk in a C++ file that catches every exception at
 * this C boundary. */
#ifndef PM_DICOM_SR_CODES_H
#define PM_DICOM_SR_CODES_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Content items visited in one SR at most; deeper or further items are ignored. */
#define PM_DICOM_SR_CODES_MAX_ITEMS 10000
#define PM_DICOM_SR_CODES_MAX_DEPTH 32

/* Calls fn for every code of the SR at path: the document's Concept Name, then, depth
 * first, each content item's Concept Name and, for CODE items, its Concept Code
 * (scheme: Coding Scheme Designator; value: Code Value, or Long Code Value or URN
 * Code Value when that is empty; meaning: Code Meaning; each "" when absent; borrowed
 * for the call). The file is scanned within the DICOM edge's structure limits
 * (node/dicom/scan.h) before dcmtk reads it. fn returns 0 to go on, non-zero to stop
 * (that value is returned).
 *
 * Returns 0 (PM_OK) when the file was read (an SR without a content tree simply has
 * fewer codes); PM_E_DICOM with err (errlen bytes, one line) when it is not DICOM, is
 * refused by the scan or is not an SR (Modality other than SR); PM_E_NOMEM. Never
 * throws. */
int pm_dicom_sr_codes(const char *path,
                      int (*fn)(void *ctx, const char *scheme, const char *value,
                                const char *meaning),
                      void *ctx, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
