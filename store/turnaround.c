/* The final-reports index's record (store/turnaround.h): four big-endian times
 * (announced, reported, final, due), the site's id, then the priority, modalities and
 * reporter, each ended by a NUL. */
#include "store/turnaround.h"
#include "node/studies/modalities.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

enum { TIMES_LEN = 4 * 8, FIXED_LEN = TIMES_LEN + PM_ID_BYTES, N_STRINGS = 3 };

int pm_turnaround_encode(const Pm__StudyView *v, uint64_t final_ms, uint8_t **out, size_t *len)
{
    char modalities[PM_STUDY_MODALITIES_MAX];
    pm_study_modalities(v->study, modalities, sizeof modalities);
    const char *strings[N_STRINGS] = {pm_wl_priority(v), modalities,
                                      v->n_reports ? v->reports[0]->reporter : ""};
    size_t n = FIXED_LEN;
    for (int i = 0; i < N_STRINGS; i++)
        n += strlen(strings[i]) + 1;
    uint8_t *p = malloc(n);
    if (!p)
        return PM_E_NOMEM;
    pm_put_be64(p, v->announced_ms);
    pm_put_be64(p + 8, v->n_reports ? v->reported_ms : 0);
    pm_put_be64(p + 16, final_ms);
    pm_put_be64(p + 24, pm_wl_due_ms(v));
    memset(p + TIMES_LEN, 0, PM_ID_BYTES);
    if (v->site.len == PM_ID_BYTES)
        memcpy(p + TIMES_LEN, v->site.data, PM_ID_BYTES);
    size_t o = FIXED_LEN;
    for (int i = 0; i < N_STRINGS; i++) {
        size_t sl = strlen(strings[i]) + 1;
        memcpy(p + o, strings[i], sl);
        o += sl;
    }
    *out = p;
    *len = n;
    return PM_OK;
}

int pm_turnaround_decode(const uint8_t *raw, size_t len, pm_turnaround *t)
{
    if (len < FIXED_LEN + N_STRINGS || raw[len - 1] != 0)
        return PM_E_STORE;
    t->announced_ms = pm_get_be64(raw);
    t->reported_ms = pm_get_be64(raw + 8);
    t->final_ms = pm_get_be64(raw + 16);
    t->due_ms = pm_get_be64(raw + 24);
    memcpy(t->site, raw + TIMES_LEN, PM_ID_BYTES);
    const char **strings[N_STRINGS] = {&t->priority, &t->modalities, &t->reporter};
    size_t o = FIXED_LEN;
    for (int i = 0; i < N_STRINGS; i++) {
        const uint8_t *nul = o < len ? memchr(raw + o, 0, len - o) : NULL;
        if (!nul)
            return PM_E_STORE;
        *strings[i] = (const char *)raw + o;
        o = (size_t)(nul - raw) + 1;
    }
    return PM_OK;
}
