/* The C-FIND hook (node/audit/notes_query.h). */
#include "node/audit/notes_query.h"
#include "node/audit/notes.h"
#include "proto/log.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const LEVELS[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};

static const char *level_name(pm_dicom_level l)
{
    return (unsigned)l < 4 ? LEVELS[l] : "?";
}

char *pm_audit_query_keys(const pm_dicom_query *q)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "QueryRetrieveLevel=%s\n", level_name(q->level));
    for (int k = 0; k < PM_DK_COUNT; k++)
        if (q->value[k])
            fprintf(f, "%s=%s\n", pm_dicom_query_key_info((pm_dicom_key)k)->name, q->value[k]);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void log_find(const char *ae, const char *host, const pm_dicom_query *q, size_t matches)
{
    char names[512] = "";
    size_t n = 0;
    for (int k = 0; k < PM_DK_COUNT && n < sizeof names - 1; k++)
        if (q->value[k] && *q->value[k]) {
            int w = snprintf(names + n, sizeof names - n, "%s%s", n ? " " : "",
                             pm_dicom_query_key_info((pm_dicom_key)k)->name);
            n += w > 0 ? (size_t)w : 0;
        }
    if (n >= sizeof names)
        n = sizeof names - 1;
    pm_info("audit", "C-FIND from %s (%s) at %s level, keys [%s]: %zu match%s", ae,
            host ? host : "?", level_name(q->level), names, matches, matches == 1 ? "" : "es");
}

void pm_audit_note_find(const char *calling_ae, const char *host, const char *sop_class,
                        const pm_dicom_query *q, size_t matches, int failed)
{
    log_find(calling_ae, host, q, matches);
    char *keys = pm_audit_query_keys(q);
    pm_audit_note_query(calling_ae, host, sop_class, keys ? keys : "", matches, failed);
    free(keys);
}
