/* ModalitiesInStudy (0008,0061): the distinct modalities of a study's series, in the
 * order first seen, backslash-separated as DICOM lists them. One function, used by
 * C-FIND answers, the worklist rules a new study is given, and the worklist's output,
 * so that all three always agree. */
#ifndef PM_STUDY_MODALITIES_H
#define PM_STUDY_MODALITIES_H

#include <stddef.h>

#include "proto/event.pb-c.h"

/* Room for every modality a study can list: a CS value is at most 16 characters, and
 * DICOM defines fewer than 64 modalities. */
#define PM_STUDY_MODALITIES_MAX 1100

/* Writes st's distinct modalities into out (outlen bytes, at least 1), always
 * NUL-terminated. Modalities are compared whole ("OCT" never hides "CT"). A
 * modality that does not fit is left out; returns how many were left out (0 when
 * outlen >= PM_STUDY_MODALITIES_MAX and the series carry valid CS values). */
size_t pm_study_modalities(const Pm__StudyAnnounced *st, char *out, size_t outlen);

#endif
