/* The study as the mesh holds it, from every announcement of it (store/studies.c's fold).
 *
 * An origin announces what it has newly taken in of a study (node/studies/announce.c),
 * so a study grown over many associations, or too large for one event, is announced in
 * several; and instances held at more than one trust (a report SR added at another,
 * instances sent to two) are announced by each. The union lists every instance once
 * (by series, SOP Instance UID and content hash: a flagged second data set under one
 * UID is kept beside the first), series in the order they were first announced and
 * instances in instance-number order within each, so the result does not depend on
 * how the announcements were split or in what order they arrived. */
#ifndef PM_STORE_STUDY_UNION_H
#define PM_STORE_STUDY_UNION_H

#include "proto/event.pb-c.h"

#include <stddef.h>

/* The version of the study fold's rule, kept in the store: a store whose views an
 * older rule derived (2: each origin's latest announcement replaced its earlier ones)
 * has them derived again when it is opened. */
#define PM_STUDY_VIEW_VERSION 3

typedef struct {
    Pm__StudyAnnounced study; /* borrows the announcements' strings and instances */
    Pm__Series *series;
    Pm__Series **series_ptrs;
    Pm__Instance **instances;
} pm_study_union;

/* Builds u from n announcements, taken in the order given (the earlier one wins the
 * series fields); the study fields and worklist terms are fields's. The announcements
 * must outlive u. PM_E_NOMEM. */
int pm_study_union_build(pm_study_union *u, const Pm__StudyAnnounced *fields,
                         const Pm__StudyAnnounced *const *anns, size_t n);
void pm_study_union_free(pm_study_union *u);

#endif
