/* The secondary indexes of the study views: what lets every query a user makes walk an
 * index instead of every study (patient id, study date, open items by due time, final
 * reports by time with the fields turnaround reads, the open items with the fields that
 * rank them, and the attribute index of accession number, patient name, modality,
 * referring physician, study description and study time). They are pure functions of
 * the views, so of the events (DESIGN.md invariant 2); the digest covers the views they
 * are derived from. Not an API: runs inside the fold's write transaction
 * (store/studies.c) or the rebuild at open (store/store.c). */
#ifndef PM_STORE_STUDY_INDEX_H
#define PM_STORE_STUDY_INDEX_H

#include "store/store_internal.h"
#include "store/views.h"

/* Bumped when an index is added or its keys or values change (6: the final-reports
 * index carries the turnaround fields): a store opened with an older version has every
 * index rebuilt from the views once (pm_study_indexes_rebuild). */
#define PM_STUDY_INDEX_VERSION 6

/* Replaces the index entries of view prev of study uid by those of view next (either
 * NULL: none), writing only the entries that differ. */
int pm_study_indexes_update(MDB_txn *txn, pm_store *s, const Pm__StudyView *prev,
                            const Pm__StudyView *next, const char *uid);

/* The attribute value as it is kept in the index, into out (PM_ATTR_VALUE_MAX + 1). */
void pm_study_index_normalize(char attr, const char *value, char *out);

/* A lease end as the lease index keeps it (PM_ATTR_LEASE): 16 hex digits of its
 * big-endian value, so text order is time order; out has 17 bytes. */
void pm_study_index_lease_text(uint64_t ms, char out[17]);

/* Empties every secondary index and writes them again from the study views. */
int pm_study_indexes_rebuild(MDB_txn *txn, pm_store *s);

#endif
