/* ModalitiesInStudy from a study's series (node/studies/modalities.h). */
#include "node/studies/modalities.h"

#include <string.h>

static const char *modality_of(const Pm__StudyAnnounced *st, size_t i)
{
    const char *m = st->series[i]->modality;
    return m ? m : "";
}

/* Whether series i repeats a modality of an earlier series: compared whole. */
static int seen_before(const Pm__StudyAnnounced *st, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(modality_of(st, j), modality_of(st, i)) == 0)
            return 1;
    return 0;
}

size_t pm_study_modalities(const Pm__StudyAnnounced *st, char *out, size_t outlen)
{
    size_t used = 0, left_out = 0;
    out[0] = '\0';
    for (size_t i = 0; i < st->n_series; i++) {
        const char *m = modality_of(st, i);
        size_t len = strlen(m);
        if (len == 0 || seen_before(st, i))
            continue;
        size_t sep = used > 0;
        if (used + sep + len + 1 > outlen) {
            left_out++;
            continue;
        }
        if (sep)
            out[used++] = '\\';
        memcpy(out + used, m, len + 1);
        used += len;
    }
    return left_out;
}
