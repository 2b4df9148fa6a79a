/* Shared by the files of the query matcher only (query.c: keys, matching one value and
 * what a query may ask; query_walk.c: walking the views). Not an API. */
#ifndef PM_DICOM_QUERY_INTERNAL_H
#define PM_DICOM_QUERY_INTERNAL_H

#include <stddef.h>

/* A borrowed slice of a string: DICOM values are compared as slices so that padding and
 * backslash-separated values never need copying. */
typedef struct {
    const char *p;
    size_t n;
} pm_dicom_slice;

/* The n bytes at p without DICOM padding (spaces and NULs) at either end. */
pm_dicom_slice pm_dicom_slice_trim(const char *p, size_t n);

/* Splits *rest at the next backslash: returns the first value (trimmed), advances *rest
 * past it. */
pm_dicom_slice pm_dicom_slice_next(pm_dicom_slice *rest);

/* 1 if s holds a "*" or "?" wildcard. */
int pm_dicom_slice_has_wildcard(pm_dicom_slice s);

#endif
