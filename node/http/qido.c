/* QIDO-RS (PS3.18 10.6): /studies, /series, /instances and the nested forms, answered
 * from the views by the C-FIND matcher (node/dicom/query.c), so a web viewer and a
 * DICOM viewer find exactly the same. Matching keys are DICOM keywords or tags
 * ("PatientID=SYN*", "00100020=SYN*"); limit and offset page the answer; includefield
 * may name any attribute (those the node holds are always returned); fuzzymatching is
 * off. The answer is application/dicom+json. */
#include "node/dicom/query.h"
#include "node/http/dicomweb.h"
#include "proto/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QIDO_LIMIT_MAX 100000

/* The VR of each key the node answers. */
static const char *const key_vr[PM_DK_COUNT] = {
    [PM_DK_PATIENT_ID] = "LO",
    [PM_DK_PATIENT_NAME] = "PN",
    [PM_DK_PATIENT_BIRTH_DATE] = "DA",
    [PM_DK_PATIENT_SEX] = "CS",
    [PM_DK_PATIENT_NSTUDIES] = "IS",
    [PM_DK_PATIENT_NSERIES] = "IS",
    [PM_DK_PATIENT_NINSTANCES] = "IS",
    [PM_DK_STUDY_UID] = "UI",
    [PM_DK_STUDY_DATE] = "DA",
    [PM_DK_STUDY_TIME] = "TM",
    [PM_DK_ACCESSION] = "SH",
    [PM_DK_STUDY_DESCRIPTION] = "LO",
    [PM_DK_REFERRING_PHYSICIAN] = "PN",
    [PM_DK_STUDY_ID] = "SH",
    [PM_DK_MODALITIES_IN_STUDY] = "CS",
    [PM_DK_STUDY_NSERIES] = "IS",
    [PM_DK_STUDY_NINSTANCES] = "IS",
    [PM_DK_SERIES_UID] = "UI",
    [PM_DK_MODALITY] = "CS",
    [PM_DK_SERIES_NUMBER] = "IS",
    [PM_DK_SERIES_DESCRIPTION] = "LO",
    [PM_DK_BODY_PART] = "CS",
    [PM_DK_SERIES_NINSTANCES] = "IS",
    [PM_DK_SOP_UID] = "UI",
    [PM_DK_SOP_CLASS_UID] = "UI",
    [PM_DK_INSTANCE_NUMBER] = "IS",
};

void pm_dw_tag(uint16_t g, uint16_t e, char out[9])
{
    snprintf(out, 9, "%04X%04X", g, e);
}

/* One attribute: {"vr": VR, "Value": [...]} with the value typed as its VR says;
 * an empty value is an attribute without "Value". */
json_t *pm_dw_attr(const char *vr, const char *value)
{
    json_t *a = json_pack("{s:s}", "vr", vr);
    if (!value || !*value)
        return a;
    json_t *vals = json_array();
    const char *p = value;
    for (;;) {
        const char *bs = strchr(p, '\\');
        size_t n = bs ? (size_t)(bs - p) : strlen(p);
        while (n && p[n - 1] == ' ')
            n--;
        while (n && *p == ' ') {
            p++;
            n--;
        }
        char *v = strndup(p, n);
        if (!v)
            break;
        if (strcmp(vr, "PN") == 0)
            json_array_append_new(vals, n ? json_pack("{s:s}", "Alphabetic", v) : json_null());
        else if (strcmp(vr, "IS") == 0 || strcmp(vr, "US") == 0 || strcmp(vr, "UL") == 0 ||
                 strcmp(vr, "SS") == 0 || strcmp(vr, "SL") == 0)
            json_array_append_new(vals, n ? json_integer(strtoll(v, NULL, 10)) : json_null());
        else if (strcmp(vr, "DS") == 0 || strcmp(vr, "FL") == 0 || strcmp(vr, "FD") == 0)
            json_array_append_new(vals, n ? json_real(strtod(v, NULL)) : json_null());
        else
            json_array_append_new(vals, n ? json_string(v) : json_null());
        free(v);
        if (!bs)
            break;
        p = bs + 1;
    }
    json_object_set_new(a, "Value", vals);
    return a;
}

static void set_key(json_t *o, pm_dicom_key k, const char *value)
{
    const pm_dicom_key_info *ki = pm_dicom_query_key_info(k);
    char tag[9];
    pm_dw_tag(ki->group, ki->element, tag);
    json_object_set_new(o, tag, pm_dw_attr(key_vr[k], value));
}

/* A key from a query parameter name: a keyword or 8 hex digits. -1 if unknown. */
int pm_dw_key_by_name(const char *name)
{
    for (int k = 0; k < PM_DK_COUNT; k++) {
        const pm_dicom_key_info *ki = pm_dicom_query_key_info((pm_dicom_key)k);
        char tag[9];
        pm_dw_tag(ki->group, ki->element, tag);
        if (strcmp(name, ki->name) == 0 || strcasecmp(name, tag) == 0)
            return k;
    }
    return -1;
}

typedef struct {
    pm_dicom_query q;
    long limit, offset, seen;
    json_t *out;
    const char *base; /* for RetrieveURL */
    const char *bad;  /* a parameter that is not understood */
    char badbuf[80];
} qido;

/* Whether a row at level returns key k: its own level's attributes, the patient's at
 * study level, and the unique keys of the levels above. */
static int returned(pm_dicom_level level, pm_dicom_key k)
{
    pm_dicom_level kl = pm_dicom_query_key_info(k)->level;
    if (kl == PM_DICOM_LEVEL_PATIENT)
        return level == PM_DICOM_LEVEL_STUDY && k != PM_DK_PATIENT_NSTUDIES &&
               k != PM_DK_PATIENT_NSERIES && k != PM_DK_PATIENT_NINSTANCES;
    if (kl == level)
        return 1;
    return k == PM_DK_STUDY_UID || k == PM_DK_SERIES_UID;
}

static int add_row(void *ctx, const pm_dicom_row *row)
{
    qido *w = ctx;
    if (w->seen++ < w->offset)
        return 0;
    if (w->limit >= 0 && (long)json_array_size(w->out) >= w->limit)
        return 1; /* enough: stop the walk */
    json_t *o = json_object();
    for (int k = 0; k < PM_DK_COUNT; k++)
        if (row->value[k] && returned(row->level, (pm_dicom_key)k))
            set_key(o, (pm_dicom_key)k, row->value[k]);
    char url[1024];
    const char *st = row->value[PM_DK_STUDY_UID], *se = row->value[PM_DK_SERIES_UID];
    if (row->level == PM_DICOM_LEVEL_STUDY)
        snprintf(url, sizeof url, "%s/studies/%s", w->base, st);
    else if (row->level == PM_DICOM_LEVEL_SERIES)
        snprintf(url, sizeof url, "%s/studies/%s/series/%s", w->base, st, se);
    else
        snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", w->base, st, se,
                 row->value[PM_DK_SOP_UID]);
    json_object_set_new(o, "00081190", json_pack("{s:s, s:[s]}", "vr", "UR", "Value", url));
    json_array_append_new(w->out, o);
    return 0;
}

static int parse_count(const char *v, long max, long *out)
{
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : -1;
    if (!v || !*v || *end || n < 0 || n > max)
        return PM_E_INVAL;
    *out = n;
    return PM_OK;
}

static enum MHD_Result param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    qido *w = cls;
    if (strcmp(key, "limit") == 0) {
        if (parse_count(value, QIDO_LIMIT_MAX, &w->limit))
            w->bad = "limit must be 0..100000";
    } else if (strcmp(key, "offset") == 0) {
        if (parse_count(value, 1L << 40, &w->offset))
            w->bad = "offset must be a number";
    } else if (strcmp(key, "includefield") == 0) {
        /* Every attribute the node holds is returned; others have no value here. */
    } else if (strcmp(key, "fuzzymatching") == 0) {
        if (!value || strcmp(value, "false") != 0)
            w->bad = "fuzzymatching is not supported (only fuzzymatching=false)";
    } else {
        int k = pm_dw_key_by_name(key);
        if (k < 0) {
            snprintf(w->badbuf, sizeof w->badbuf, "unknown matching key %.40s", key);
            w->bad = w->badbuf;
        } else if (pm_dicom_query_key_info((pm_dicom_key)k)->kind == PM_DICOM_MATCH_NONE) {
            snprintf(w->badbuf, sizeof w->badbuf, "%.40s is a return key only", key);
            w->bad = w->badbuf;
        } else {
            w->q.value[k] = value ? value : "";
        }
    }
    return MHD_YES;
}

enum MHD_Result pm_dw_qido(pm_http_req *r, pm_dicom_level level, const char *study,
                           const char *series)
{
    const char *accept = pm_http_header(r, "Accept");
    if (!pm_http_accepts(accept, "application/dicom+json") &&
        !pm_http_accepts(accept, "application/json"))
        return pm_http_error(r, 406, "QIDO-RS answers application/dicom+json");
    qido w;
    memset(&w, 0, sizeof w);
    w.limit = -1;
    w.q.level = level;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, param, &w);
    if (w.bad)
        return pm_http_error(r, 400, "%s", w.bad);
    if (study)
        w.q.value[PM_DK_STUDY_UID] = study;
    if (series)
        w.q.value[PM_DK_SERIES_UID] = series;
    char base[256];
    pm_dw_base_url(r, base, sizeof base);
    w.base = base;
    w.out = json_array();
    int rc = pm_dicom_query_find(&w.q, &r->srv->s.provider, add_row, &w);
    if (rc < 0) {
        json_decref(w.out);
        return pm_http_error(r, 500, "the query failed: %s", pm_strerror(rc));
    }
    char *text = json_dumps(w.out, JSON_COMPACT);
    json_decref(w.out);
    if (!text)
        return pm_http_error(r, 500, "out of memory");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/dicom+json");
    return pm_http_queue(r, 200, resp);
}
