/* A bounded look at the structure of DICOM bytes before dcmtk reads them.
 *
 * dcmtk 3.6.7 reads sequences recursively, without a depth limit: a data set nesting a
 * few thousand undefined-length sequences overflows the reading thread's stack. This
 * scanner walks the same element headers without recursion into values it does not
 * need (pixel data is skipped, never read), with its own depth bounded by the limit,
 * and says whether the bytes stay within a nesting depth and an element count. It is
 * run on every data set from outside before dcmtk parses it: files received by
 * C-STORE or imported (pm_dicom_scan_file) and identifiers of C-FIND, C-GET and
 * C-MOVE (pm_dicom_scan_buffer).
 *
 * It is deliberately conservative: wherever dcmtk's reading depends on its data
 * dictionary (an implicit VR element of defined length may be a sequence), a value
 * that starts like a sequence is scanned as one. It reports structure dcmtk would
 * refuse as malformed (an item where an element belongs, an element running past the
 * end of its item); a data set that simply ends early is not an error here (dcmtk
 * reports it as truncated). Plain C, no dcmtk: unit-tested and fuzzed on its own. */
#ifndef PM_DICOM_SCAN_H
#define PM_DICOM_SCAN_H

#include "node/dicom/defaults.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PM_DICOM_MAX_DEPTH_LIMIT 1000 /* the most a configuration may allow */
/* Tests only, through pm_dicom_set_limits: pm_dicom_read_meta skips the scan (to show
 * what the parser process boundary does with what the scan would have refused). */
#define PM_DICOM_UNCHECKED 0xFFFFFFFFu

typedef struct {
    unsigned max_depth;         /* sequence nesting levels; 0: the default */
    unsigned long max_elements; /* element headers, items included; 0: the default */
} pm_dicom_limits;

/* Encodings of a data set's bytes. */
typedef enum {
    PM_DICOM_TS_IMPLICIT_LE = 0,
    PM_DICOM_TS_EXPLICIT_LE,
    PM_DICOM_TS_EXPLICIT_BE,
    PM_DICOM_TS_DEFLATED, /* explicit little endian, deflated (files only) */
    PM_DICOM_TS_UNKNOWN   /* not known: every plausible encoding is scanned */
} pm_dicom_ts;

/* Why a scan refused. */
typedef enum {
    PM_DICOM_SCAN_OK = 0,
    PM_DICOM_SCAN_LIMIT,     /* nests too deep or holds too many elements */
    PM_DICOM_SCAN_MALFORMED, /* structure dcmtk would refuse */
    PM_DICOM_SCAN_TRUNCATED  /* a value runs past the end of the data */
} pm_dicom_scan_refusal;

typedef struct {
    pm_dicom_scan_refusal refusal;
    unsigned depth;         /* deepest sequence nesting seen */
    unsigned long elements; /* element headers seen */
    int truncated;          /* the bytes ended inside an element or an item */
    uint64_t offset;        /* where a refused scan stopped (byte of the stream) */
    char reason[128];       /* why a scan was refused: one line */
} pm_dicom_scan_result;

/* The encoding a transfer syntax UID implies (trailing padding allowed). Unknown UIDs
 * give PM_DICOM_TS_UNKNOWN. In node/dicom/transfer_syntax.c. */
pm_dicom_ts pm_dicom_ts_of_uid(const char *uid);

/* Scans the file at path: a Part-10 file (preamble, meta group, data set in the meta
 * group's transfer syntax) or a raw data set. PM_OK when it stays within lim (NULL:
 * the defaults); PM_E_DICOM with res->reason when it nests too deep, holds too many
 * elements or is malformed; PM_E_IO when it cannot be read. res may be NULL. */
int pm_dicom_scan_file(const char *path, const pm_dicom_limits *lim, pm_dicom_scan_result *res);

/* Scans len bytes of a data set in encoding ts (not PM_DICOM_TS_DEFLATED). Same
 * returns as pm_dicom_scan_file. */
int pm_dicom_scan_buffer(const void *data, size_t len, pm_dicom_ts ts, const pm_dicom_limits *lim,
                         pm_dicom_scan_result *res);

/* Where the data set of the file at path starts: after its preamble and meta group as
 * dcmtk reads them (0 for a raw data set). PM_OK, PM_E_IO, PM_E_DICOM. */
int pm_dicom_dataset_offset(const char *path, uint64_t *offset);

/* The limits pm_dicom_read_meta and the DICOM edge apply, process-wide (set once at
 * start from [dicom] max_nesting and max_elements; the defaults until then). */
void pm_dicom_set_limits(const pm_dicom_limits *lim);
void pm_dicom_get_limits(pm_dicom_limits *out);

#ifdef __cplusplus
}
#endif
#endif
