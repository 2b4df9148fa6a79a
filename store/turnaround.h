/* The final-reports index's record of one item: what turnaround statistics read
 * (`tat`, node/cli/cmd_tat.c), so that a month of them is that month's entries in key
 * order, not as many study views spread over the study table, each unpacked whole.
 * Derived from the view when it is indexed (store/study_index.c), so a pure function
 * of the events like every index. */
#ifndef PM_STORE_TURNAROUND_H
#define PM_STORE_TURNAROUND_H

#include "crypto/identity.h"
#include "proto/view.pb-c.h"

#include <stddef.h>
#include <stdint.h>

/* Strings borrowed from the record's bytes. */
typedef struct {
    uint64_t announced_ms; /* the first announcement */
    uint64_t reported_ms;  /* the first report; 0 if none */
    uint64_t final_ms;     /* when the report became final (the index's key) */
    uint64_t due_ms;       /* the due time the item had; 0 if none */
    uint8_t site[PM_ID_BYTES];
    const char *priority;   /* as pm_wl_priority gives it */
    const char *modalities; /* ModalitiesInStudy, as pm_study_modalities gives it */
    const char *reporter;   /* the first report's author; "" if none */
} pm_turnaround;

/* The record of view v, which became final at final_ms, into a new buffer (*out, *len;
 * the caller frees it). PM_E_NOMEM. */
int pm_turnaround_encode(const Pm__StudyView *v, uint64_t final_ms, uint8_t **out, size_t *len);

/* Reads a record; PM_E_STORE if the bytes are not one. */
int pm_turnaround_decode(const uint8_t *raw, size_t len, pm_turnaround *t);

#endif
