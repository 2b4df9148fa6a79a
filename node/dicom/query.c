/* Query matching for the DICOM edge (see dicom_query.h). */
#include "node/dicom/query.h"
#include "node/studies/modalities.h"
#include "store/views.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"

static const pm_dicom_key_info key_table[PM_DK_COUNT] = {
    [PM_DK_PATIENT_ID] = {0x0010, 0x0020, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_STRING,
                          "PatientID"},
    [PM_DK_PATIENT_NAME] = {0x0010, 0x0010, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_NAME,
                            "PatientName"},
    [PM_DK_PATIENT_BIRTH_DATE] = {0x0010, 0x0030, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_DATE,
                                  "PatientBirthDate"},
    [PM_DK_PATIENT_SEX] = {0x0010, 0x0040, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_STRING,
                           "PatientSex"},
    [PM_DK_PATIENT_NSTUDIES] = {0x0020, 0x1200, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_NONE,
                                "NumberOfPatientRelatedStudies"},
    [PM_DK_PATIENT_NSERIES] = {0x0020, 0x1202, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_NONE,
                               "NumberOfPatientRelatedSeries"},
    [PM_DK_PATIENT_NINSTANCES] = {0x0020, 0x1204, PM_DICOM_LEVEL_PATIENT, PM_DICOM_MATCH_NONE,
                                  "NumberOfPatientRelatedInstances"},
    [PM_DK_STUDY_UID] = {0x0020, 0x000D, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_UID,
                         "StudyInstanceUID"},
    [PM_DK_STUDY_DATE] = {0x0008, 0x0020, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_DATE, "StudyDate"},
    [PM_DK_STUDY_TIME] = {0x0008, 0x0030, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_TIME, "StudyTime"},
    [PM_DK_ACCESSION] = {0x0008, 0x0050, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_STRING,
                         "AccessionNumber"},
    [PM_DK_STUDY_DESCRIPTION] = {0x0008, 0x1030, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_STRING,
                                 "StudyDescription"},
    [PM_DK_REFERRING_PHYSICIAN] = {0x0008, 0x0090, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_NAME,
                                   "ReferringPhysicianName"},
    [PM_DK_STUDY_ID] = {0x0020, 0x0010, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_STRING, "StudyID"},
    [PM_DK_MODALITIES_IN_STUDY] = {0x0008, 0x0061, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_MULTI,
                                   "ModalitiesInStudy"},
    [PM_DK_STUDY_NSERIES] = {0x0020, 0x1206, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_NONE,
                             "NumberOfStudyRelatedSeries"},
    [PM_DK_STUDY_NINSTANCES] = {0x0020, 0x1208, PM_DICOM_LEVEL_STUDY, PM_DICOM_MATCH_NONE,
                                "NumberOfStudyRelatedInstances"},
    [PM_DK_SERIES_UID] = {0x0020, 0x000E, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_UID,
                          "SeriesInstanceUID"},
    [PM_DK_MODALITY] = {0x0008, 0x0060, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_STRING, "Modality"},
    [PM_DK_SERIES_NUMBER] = {0x0020, 0x0011, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_NUMBER,
                             "SeriesNumber"},
    [PM_DK_SERIES_DESCRIPTION] = {0x0008, 0x103E, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_STRING,
                                  "SeriesDescription"},
    [PM_DK_BODY_PART] = {0x0018, 0x0015, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_STRING,
                         "BodyPartExamined"},
    [PM_DK_SERIES_NINSTANCES] = {0x0020, 0x1209, PM_DICOM_LEVEL_SERIES, PM_DICOM_MATCH_NONE,
                                 "NumberOfSeriesRelatedInstances"},
    [PM_DK_SOP_UID] = {0x0008, 0x0018, PM_DICOM_LEVEL_IMAGE, PM_DICOM_MATCH_UID, "SOPInstanceUID"},
    [PM_DK_SOP_CLASS_UID] = {0x0008, 0x0016, PM_DICOM_LEVEL_IMAGE, PM_DICOM_MATCH_UID,
                             "SOPClassUID"},
    [PM_DK_INSTANCE_NUMBER] = {0x0020, 0x0013, PM_DICOM_LEVEL_IMAGE, PM_DICOM_MATCH_NUMBER,
                               "InstanceNumber"},
};

const pm_dicom_key_info *pm_dicom_query_key_info(pm_dicom_key k)
{
    return (unsigned)k < PM_DK_COUNT ? &key_table[k] : NULL;
}

int pm_dicom_query_key_by_tag(uint16_t group, uint16_t element)
{
    for (int k = 0; k < PM_DK_COUNT; k++)
        if (key_table[k].group == group && key_table[k].element == element)
            return k;
    return -1;
}

/* A borrowed slice of a string: DICOM values are compared as slices so that padding and
 * backslash-separated values never need copying. */
typedef struct {
    const char *p;
    size_t n;
} slice;

static slice trim(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\0'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    return (slice){p, n};
}

/* Splits s at the next backslash: returns the first value, advances *rest past it. */
static slice next_value(slice *rest)
{
    const char *bs = memchr(rest->p, '\\', rest->n);
    size_t n = bs ? (size_t)(bs - rest->p) : rest->n;
    slice v = trim(rest->p, n);
    if (bs) {
        rest->p = bs + 1;
        rest->n -= n + 1;
    } else {
        rest->p += n;
        rest->n = 0;
    }
    return v;
}

int pm_dicom_query_parse_level(const char *text, pm_dicom_level *out)
{
    static const char *const names[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};
    if (!text)
        return PM_E_INVAL;
    slice s = trim(text, strlen(text));
    for (int i = 0; i < 4; i++)
        if (s.n == strlen(names[i]) && memcmp(s.p, names[i], s.n) == 0) {
            *out = (pm_dicom_level)i;
            return PM_OK;
        }
    return PM_E_INVAL;
}

static int chars_equal(char a, char b, int fold)
{
    if (fold)
        return tolower((unsigned char)a) == tolower((unsigned char)b);
    return a == b;
}

/* Length of the UTF-8 sequence that starts at p (1 for bytes that do not start one), so
 * that "?" stands for one character and not one byte. */
static size_t utf8_len(const char *p, size_t n)
{
    size_t len = 1;
    while (len < n && ((unsigned char)p[len] & 0xC0) == 0x80)
        len++;
    return len;
}

/* Wildcard match with "*" and "?"; iterative with one backtrack point, so linear-ish and
 * without recursion on hostile patterns. */
static int glob_match(slice pat, slice val, int fold)
{
    size_t pi = 0, vi = 0, star_p = (size_t)-1, star_v = 0;
    while (vi < val.n) {
        if (pi < pat.n && pat.p[pi] == '*') {
            star_p = pi++;
            star_v = vi;
        } else if (pi < pat.n && pat.p[pi] == '?') {
            pi++;
            vi += utf8_len(val.p + vi, val.n - vi);
        } else if (pi < pat.n && chars_equal(pat.p[pi], val.p[vi], fold)) {
            pi++;
            vi++;
        } else if (star_p != (size_t)-1) {
            pi = star_p + 1;
            star_v += utf8_len(val.p + star_v, val.n - star_v);
            vi = star_v;
        } else {
            return 0;
        }
    }
    while (pi < pat.n && pat.p[pi] == '*')
        pi++;
    return pi == pat.n;
}

static int has_wildcard(slice s)
{
    return memchr(s.p, '*', s.n) || memchr(s.p, '?', s.n);
}

static int slice_equal(slice a, slice b, int fold)
{
    if (a.n != b.n)
        return 0;
    for (size_t i = 0; i < a.n; i++)
        if (!chars_equal(a.p[i], b.p[i], fold))
            return 0;
    return 1;
}

/* Time to a comparable 12-digit HHMMSSFFFFFF string; missing trailing digits become
 * fill ('0' for a lower bound, '9' for an upper one). Old "HH:MM:SS" colons are skipped. */
static void time_key(slice t, char fill, char out[13])
{
    size_t o = 0;
    for (size_t i = 0; i < t.n && o < 12; i++)
        if (isdigit((unsigned char)t.p[i]))
            out[o++] = t.p[i];
    while (o < 12)
        out[o++] = fill;
    out[12] = '\0';
}

/* Dates to 8 digits, skipping the old "YYYY.MM.DD" dots. */
static void date_key(slice d, char fill, char out[9])
{
    size_t o = 0;
    for (size_t i = 0; i < d.n && o < 8; i++)
        if (isdigit((unsigned char)d.p[i]))
            out[o++] = d.p[i];
    while (o < 8)
        out[o++] = fill;
    out[8] = '\0';
}

static int range_match(pm_dicom_match_kind kind, slice pat, slice val)
{
    const char *dash = memchr(pat.p, '-', pat.n);
    if (val.n == 0)
        return 0;
    slice lo = trim(pat.p, (size_t)(dash - pat.p));
    slice hi = trim(dash + 1, pat.n - (size_t)(dash - pat.p) - 1);
    char v[13], a[13], b[13];
    if (kind == PM_DICOM_MATCH_DATE) {
        date_key(val, '0', v);
        date_key(lo, '0', a);
        date_key(hi, '9', b);
    } else {
        time_key(val, '0', v);
        time_key(lo, '0', a);
        time_key(hi, '9', b);
    }
    if (lo.n > 0 && strcmp(v, a) < 0)
        return 0;
    if (hi.n > 0 && strcmp(v, b) > 0)
        return 0;
    return 1;
}

static int parse_int(slice s, long *out)
{
    char buf[24];
    if (s.n == 0 || s.n >= sizeof buf)
        return 0;
    memcpy(buf, s.p, s.n);
    buf[s.n] = '\0';
    char *end;
    *out = strtol(buf, &end, 10);
    return *end == '\0';
}

/* One pattern value against one attribute value. */
static int match_one(pm_dicom_match_kind kind, slice pat, slice val)
{
    if (pat.n == 0 || (pat.n == 1 && pat.p[0] == '*'))
        return 1;
    switch (kind) {
    case PM_DICOM_MATCH_UID: return slice_equal(pat, val, 0);
    case PM_DICOM_MATCH_DATE:
    case PM_DICOM_MATCH_TIME:
        if (memchr(pat.p, '-', pat.n))
            return range_match(kind, pat, val);
        if (has_wildcard(pat))
            return glob_match(pat, val, 0);
        return slice_equal(pat, val, 0);
    case PM_DICOM_MATCH_NUMBER: {
        long a, b;
        if (!has_wildcard(pat) && parse_int(pat, &a) && parse_int(val, &b))
            return a == b;
        return glob_match(pat, val, 0);
    }
    case PM_DICOM_MATCH_NAME: return glob_match(pat, val, 1);
    case PM_DICOM_MATCH_NONE: return 1;
    default: return glob_match(pat, val, 0);
    }
}

int pm_dicom_query_match(pm_dicom_match_kind kind, const char *pattern, const char *value)
{
    if (!pattern || kind == PM_DICOM_MATCH_NONE)
        return 1;
    if (!value)
        value = "";
    slice pats = trim(pattern, strlen(pattern));
    if (pats.n == 0)
        return 1;
    /* Each backslash-separated pattern value is an alternative (a UID list for UIDs).
     * Only a wholly empty pattern is universal: an empty value in a list, or "*" in a
     * UID list, matches nothing. */
    slice val = trim(value, strlen(value));
    int list = memchr(pats.p, '\\', pats.n) != NULL;
    for (;;) {
        int last = memchr(pats.p, '\\', pats.n) == NULL;
        slice pat = next_value(&pats);
        if (list && (pat.n == 0 || (kind == PM_DICOM_MATCH_UID && has_wildcard(pat)))) {
            if (last)
                return 0;
            continue;
        }
        if (kind == PM_DICOM_MATCH_MULTI) {
            slice vals = val;
            do {
                if (match_one(PM_DICOM_MATCH_STRING, pat, next_value(&vals)))
                    return 1;
            } while (vals.n > 0);
        } else if (match_one(kind, pat, val)) {
            return 1;
        }
        if (last)
            return 0;
    }
}

/* ---- what a query may ask ---- */

static int all_digits(slice s)
{
    for (size_t i = 0; i < s.n; i++)
        if (!isdigit((unsigned char)s.p[i]))
            return 0;
    return 1;
}

/* A date: YYYYMMDD (or the old YYYY.MM.DD) with a plausible month and day. */
static int valid_date(slice d)
{
    char k[9];
    size_t n = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (isdigit((unsigned char)d.p[i]) && n < 8)
            k[n++] = d.p[i];
        else if (d.p[i] != '.' || d.n != 10)
            return 0;
    }
    if (n != 8)
        return 0;
    int month = (k[4] - '0') * 10 + (k[5] - '0'), day = (k[6] - '0') * 10 + (k[7] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/* A time: HH, HHMM, HHMMSS, HHMMSS.F to HHMMSS.FFFFFF (or the old HH:MM:SS), in range. */
static int valid_time(slice t)
{
    char k[6];
    size_t n = 0, i = 0;
    for (; i < t.n && t.p[i] != '.'; i++) {
        if (isdigit((unsigned char)t.p[i]) && n < 6)
            k[n++] = t.p[i];
        else if (t.p[i] != ':')
            return 0;
    }
    if (n != 2 && n != 4 && n != 6)
        return 0;
    if (i < t.n) { /* a fraction: 1-6 digits after HHMMSS */
        slice f = {t.p + i + 1, t.n - i - 1};
        if (n != 6 || f.n < 1 || f.n > 6 || !all_digits(f))
            return 0;
    }
    int hh = (k[0] - '0') * 10 + (k[1] - '0');
    int mm = n >= 4 ? (k[2] - '0') * 10 + (k[3] - '0') : 0;
    int ss = n >= 6 ? (k[4] - '0') * 10 + (k[5] - '0') : 0;
    return hh <= 23 && mm <= 59 && ss <= 60;
}

/* One value of a date or time key: empty, "*", a value, or a range (either end may be
 * open, not both). Wildcards other than a lone "*" are not date or time matching. */
static int valid_range_value(pm_dicom_match_kind kind, slice v)
{
    int (*valid)(slice) = kind == PM_DICOM_MATCH_DATE ? valid_date : valid_time;
    if (v.n == 0 || (v.n == 1 && v.p[0] == '*'))
        return 1;
    const char *dash = memchr(v.p, '-', v.n);
    if (!dash)
        return valid(v);
    slice lo = trim(v.p, (size_t)(dash - v.p)), hi = trim(dash + 1, v.n - (size_t)(dash - v.p) - 1);
    if (memchr(hi.p, '-', hi.n) || (lo.n == 0 && hi.n == 0))
        return 0;
    return (lo.n == 0 || valid(lo)) && (hi.n == 0 || valid(hi));
}

int pm_dicom_query_validate(const pm_dicom_query *q, char *why, size_t wl)
{
    for (int k = 0; k < PM_DK_COUNT; k++) {
        const char *v = q->value[k];
        pm_dicom_match_kind kind = key_table[k].kind;
        if (!v || (kind != PM_DICOM_MATCH_DATE && kind != PM_DICOM_MATCH_TIME))
            continue;
        slice rest = trim(v, strlen(v));
        while (rest.n > 0) {
            slice one = next_value(&rest);
            if (!valid_range_value(kind, one)) {
                if (why && wl)
                    snprintf(why, wl, "%s: '%.*s' is not a %s or %s range", key_table[k].name,
                             (int)(one.n > 20 ? 20 : one.n), one.p,
                             kind == PM_DICOM_MATCH_DATE ? "date" : "time",
                             kind == PM_DICOM_MATCH_DATE ? "date" : "time");
                return PM_E_INVAL;
            }
        }
    }
    return PM_OK;
}

/* The unique key of each level, and whether it is a UID. */
static const pm_dicom_key unique_key[] = {PM_DK_PATIENT_ID, PM_DK_STUDY_UID, PM_DK_SERIES_UID,
                                          PM_DK_SOP_UID};
static const char *const level_name[] = {"PATIENT", "STUDY", "SERIES", "IMAGE"};

/* One unique key value: refused when empty, universal or with a wildcard; a list
 * (backslashes) only when list_ok, and then with no empty element. */
static int check_unique(pm_dicom_key k, const char *v, int list_ok, const char *level, char *why,
                        size_t wl)
{
    const char *name = key_table[k].name;
    slice rest = trim(v ? v : "", v ? strlen(v) : 0);
    const char *bad = NULL;
    if (!v)
        bad = "is missing";
    else if (rest.n == 0)
        bad = "is empty (universal matching is not allowed in a retrieve)";
    else if (memchr(rest.p, '*', rest.n) || memchr(rest.p, '?', rest.n))
        bad = "has a wildcard (not allowed in a retrieve)";
    else if (memchr(rest.p, '\\', rest.n) && !list_ok)
        bad = "is a list (only the retrieve level's key may be one)";
    for (size_t i = 0, start = 0; !bad && i <= rest.n; i++)
        if (i == rest.n || rest.p[i] == '\\') {
            if (trim(rest.p + start, i - start).n == 0)
                bad = "is a list with an empty element";
            start = i + 1;
        }
    if (!bad)
        return PM_OK;
    if (why && wl)
        snprintf(why, wl, "%s level retrieve: unique key %s %s", level, name, bad);
    return PM_E_INVAL;
}

int pm_dicom_query_check_retrieve(const pm_dicom_query *q, int patient_root, char *why, size_t wl)
{
    int top = patient_root ? PM_DICOM_LEVEL_PATIENT : PM_DICOM_LEVEL_STUDY;
    if ((int)q->level < top) {
        if (why && wl)
            snprintf(why, wl, "%s level needs the Patient Root model", level_name[q->level]);
        return PM_E_INVAL;
    }
    for (int l = top; l <= (int)q->level; l++) {
        int rc = check_unique(unique_key[l], q->value[unique_key[l]], l == (int)q->level,
                              level_name[q->level], why, wl);
        if (rc != PM_OK)
            return rc;
    }
    return PM_OK;
}

/* ---- walking the views ---- */

typedef struct {
    const pm_dicom_query *q;
    pm_dicom_level match_level; /* keys at or above it are matched */
    pm_dicom_level emit_level;  /* rows are emitted at this level */
    pm_dicom_row_fn fn;
    void *ctx;
    /* PATIENT FIND: one record per matching study, aggregated at the end. */
    struct patient_rec *pats;
    size_t npats, cap;
    int oom;
} walk;

struct patient_rec {
    char *id, *name, *birth, *sex;
    unsigned long series, instances;
};

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int keys_match(const walk *w, const pm_dicom_row *row, pm_dicom_level level)
{
    if (level > w->match_level)
        return 1;
    for (int k = 0; k < PM_DK_COUNT; k++)
        if (key_table[k].level == level && w->q->value[k] &&
            !pm_dicom_query_match(key_table[k].kind, w->q->value[k], row->value[k]))
            return 0;
    return 1;
}

static char *dup_str(walk *w, const char *s)
{
    char *d = strdup(nz(s));
    if (!d)
        w->oom = 1;
    return d;
}

static int walk_study(void *fctx, const Pm__StudyView *view)
{
    walk *w = fctx;
    const Pm__StudyAnnounced *st = view ? view->study : NULL;
    if (!st)
        return 0;
    pm_dicom_row row;
    memset(&row, 0, sizeof row);
    char nbuf[6][24], mods[PM_STUDY_MODALITIES_MAX];
    unsigned long ninst = 0;
    for (size_t i = 0; i < st->n_series; i++)
        ninst += st->series[i]->n_instances;

    row.level = PM_DICOM_LEVEL_PATIENT;
    row.value[PM_DK_PATIENT_ID] = nz(st->patient_id);
    row.value[PM_DK_PATIENT_NAME] = nz(st->patient_name);
    row.value[PM_DK_PATIENT_BIRTH_DATE] = nz(st->patient_birth_date);
    row.value[PM_DK_PATIENT_SEX] = nz(st->patient_sex);
    if (!keys_match(w, &row, PM_DICOM_LEVEL_PATIENT))
        return 0;

    if (w->emit_level == PM_DICOM_LEVEL_PATIENT) {
        if (w->npats == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            struct patient_rec *n = realloc(w->pats, cap * sizeof *n);
            if (!n)
                return PM_E_NOMEM;
            w->pats = n;
            w->cap = cap;
        }
        struct patient_rec *r = &w->pats[w->npats++];
        r->id = dup_str(w, st->patient_id);
        r->name = dup_str(w, st->patient_name);
        r->birth = dup_str(w, st->patient_birth_date);
        r->sex = dup_str(w, st->patient_sex);
        r->series = st->n_series;
        r->instances = ninst;
        return w->oom ? PM_E_NOMEM : 0;
    }

    row.level = PM_DICOM_LEVEL_STUDY;
    pm_study_modalities(st, mods, sizeof mods);
    snprintf(nbuf[0], sizeof nbuf[0], "%zu", st->n_series);
    snprintf(nbuf[1], sizeof nbuf[1], "%lu", ninst);
    row.value[PM_DK_STUDY_UID] = nz(st->study_instance_uid);
    row.value[PM_DK_STUDY_DATE] = nz(st->study_date);
    row.value[PM_DK_STUDY_TIME] = nz(st->study_time);
    row.value[PM_DK_ACCESSION] = nz(st->accession_number);
    row.value[PM_DK_STUDY_DESCRIPTION] = nz(st->study_description);
    row.value[PM_DK_REFERRING_PHYSICIAN] = nz(st->referring_physician);
    row.value[PM_DK_STUDY_ID] = nz(st->study_id);
    row.value[PM_DK_MODALITIES_IN_STUDY] = mods;
    row.value[PM_DK_STUDY_NSERIES] = nbuf[0];
    row.value[PM_DK_STUDY_NINSTANCES] = nbuf[1];
    if (!keys_match(w, &row, PM_DICOM_LEVEL_STUDY))
        return 0;
    if (w->emit_level == PM_DICOM_LEVEL_STUDY)
        return w->fn(w->ctx, &row);

    for (size_t i = 0; i < st->n_series; i++) {
        const Pm__Series *se = st->series[i];
        row.level = PM_DICOM_LEVEL_SERIES;
        row.instance = NULL;
        for (int k = PM_DK_SERIES_UID; k < PM_DK_COUNT; k++)
            row.value[k] = NULL;
        snprintf(nbuf[2], sizeof nbuf[2], "%d", (int)se->series_number);
        snprintf(nbuf[3], sizeof nbuf[3], "%zu", se->n_instances);
        row.value[PM_DK_SERIES_UID] = nz(se->series_instance_uid);
        row.value[PM_DK_MODALITY] = nz(se->modality);
        row.value[PM_DK_SERIES_NUMBER] = nbuf[2];
        row.value[PM_DK_SERIES_DESCRIPTION] = nz(se->description);
        row.value[PM_DK_BODY_PART] = nz(se->body_part);
        row.value[PM_DK_SERIES_NINSTANCES] = nbuf[3];
        if (!keys_match(w, &row, PM_DICOM_LEVEL_SERIES))
            continue;
        if (w->emit_level == PM_DICOM_LEVEL_SERIES) {
            int rc = w->fn(w->ctx, &row);
            if (rc)
                return rc;
            continue;
        }
        for (size_t j = 0; j < se->n_instances; j++) {
            const Pm__Instance *in = se->instances[j];
            row.level = PM_DICOM_LEVEL_IMAGE;
            row.instance = in;
            snprintf(nbuf[4], sizeof nbuf[4], "%d", (int)in->instance_number);
            row.value[PM_DK_SOP_UID] = nz(in->sop_instance_uid);
            row.value[PM_DK_SOP_CLASS_UID] = nz(in->sop_class_uid);
            row.value[PM_DK_INSTANCE_NUMBER] = nbuf[4];
            if (!keys_match(w, &row, PM_DICOM_LEVEL_IMAGE))
                continue;
            int rc = w->fn(w->ctx, &row);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* A query value usable as an index key: one value, no wildcard, not universal. */
static const char *single_value(const char *v)
{
    if (!v)
        return NULL;
    slice s = trim(v, strlen(v));
    if (s.n == 0 || s.n != strlen(v) || has_wildcard(s) || memchr(s.p, '\\', s.n))
        return NULL;
    return v;
}

static int cmp_patient(const void *a, const void *b)
{
    return strcmp(((const struct patient_rec *)a)->id, ((const struct patient_rec *)b)->id);
}

static int emit_patients(walk *w)
{
    int rc = 0;
    qsort(w->pats, w->npats, sizeof *w->pats, cmp_patient);
    for (size_t i = 0; i < w->npats && rc == 0;) {
        size_t j = i;
        unsigned long series = 0, inst = 0;
        for (; j < w->npats && strcmp(w->pats[j].id, w->pats[i].id) == 0; j++) {
            series += w->pats[j].series;
            inst += w->pats[j].instances;
        }
        char n[3][24];
        snprintf(n[0], sizeof n[0], "%zu", j - i);
        snprintf(n[1], sizeof n[1], "%lu", series);
        snprintf(n[2], sizeof n[2], "%lu", inst);
        pm_dicom_row row;
        memset(&row, 0, sizeof row);
        row.level = PM_DICOM_LEVEL_PATIENT;
        row.value[PM_DK_PATIENT_ID] = w->pats[i].id;
        row.value[PM_DK_PATIENT_NAME] = w->pats[i].name;
        row.value[PM_DK_PATIENT_BIRTH_DATE] = w->pats[i].birth;
        row.value[PM_DK_PATIENT_SEX] = w->pats[i].sex;
        row.value[PM_DK_PATIENT_NSTUDIES] = n[0];
        row.value[PM_DK_PATIENT_NSERIES] = n[1];
        row.value[PM_DK_PATIENT_NINSTANCES] = n[2];
        rc = w->fn(w->ctx, &row);
        i = j;
    }
    return rc;
}

/* A StudyDate key that narrows the walk: "D", "D1-D2", "D1-" or "-D2" with 8-digit
 * dates. Returns 0 (and leaves from/to alone) for anything else, e.g. universal. */
static int date_bounds(const char *v, char from[9], char to[9])
{
    if (!v || !*v)
        return 0;
    const char *dash = strchr(v, '-');
    size_t a = dash ? (size_t)(dash - v) : strlen(v), b = dash ? strlen(dash + 1) : 0;
    if ((a != 0 && a != 8) || (dash && b != 0 && b != 8) || (!dash && a != 8) || (dash && !a && !b))
        return 0;
    for (size_t i = 0; i < a; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    for (size_t i = 0; i < b; i++)
        if (dash[1 + i] < '0' || dash[1 + i] > '9')
            return 0;
    memcpy(from, v, a);
    from[a] = 0;
    if (dash) {
        memcpy(to, dash + 1, b);
        to[b] = 0;
    } else {
        memcpy(to, v, 8);
        to[8] = 0;
    }
    return 1;
}

/* A key that narrows the walk through the attribute index: a single value whose part
 * before the first wildcard is not empty. Person names are walked by prefix even when
 * given whole: the matcher's rules for names are its own, the index only narrows. */
typedef struct {
    int key;
    char attr;
    int by_prefix;
} indexed_key;

static const indexed_key indexed_keys[] = {
    {PM_DK_ACCESSION, PM_ATTR_ACCESSION, 0},
    {PM_DK_PATIENT_ID, PM_ATTR_PATIENT_ID, 0}, /* a prefix: PatientID=P12* */
    {PM_DK_PATIENT_NAME, PM_ATTR_PATIENT_NAME, 1},
    {PM_DK_REFERRING_PHYSICIAN, PM_ATTR_REFERRER, 1},
    {PM_DK_STUDY_DESCRIPTION, PM_ATTR_DESCRIPTION, 1},
    {PM_DK_MODALITIES_IN_STUDY, PM_ATTR_MODALITY, 0},
    {PM_DK_MODALITY, PM_ATTR_MODALITY, 0},
};

/* The first indexed key of q that can narrow the walk: its attribute, the literal
 * prefix (into prefix) and whether the value must be equal. 0 when there is none. */
static char narrowing_key(const pm_dicom_query *q, char prefix[PM_ATTR_VALUE_MAX + 1], int *exact)
{
    for (size_t i = 0; i < sizeof indexed_keys / sizeof indexed_keys[0]; i++) {
        const char *v = q->value[indexed_keys[i].key];
        if (!v || strchr(v, '\\'))
            continue;
        slice s = trim(v, strlen(v));
        size_t n = 0;
        while (n < s.n && s.p[n] != '*' && s.p[n] != '?')
            n++;
        if (n == 0 || n > PM_ATTR_VALUE_MAX)
            continue;
        memcpy(prefix, s.p, n);
        prefix[n] = '\0';
        *exact = n == s.n && !indexed_keys[i].by_prefix;
        return indexed_keys[i].attr;
    }
    return 0;
}

static int run(walk *w, const pm_dicom_provider *p)
{
    const pm_dicom_query *q = w->q;
    const char *study = single_value(q->value[PM_DK_STUDY_UID]);
    const char *patient = single_value(q->value[PM_DK_PATIENT_ID]);
    char from[9], to[9], prefix[PM_ATTR_VALUE_MAX + 1], attr = 0;
    int rc, exact = 0;
    /* The narrowest index the query allows: study UID, patient, an attribute (accession,
     * PatientID prefix, name, referrer, description, modality), a date range, else all. */
    if (!study && !patient && p->for_each_study_by_attr)
        attr = narrowing_key(q, prefix, &exact);
    if (attr)
        rc = p->for_each_study_by_attr(p->ctx, attr, prefix, exact, walk_study, w);
    else if (!study && !patient && p->for_each_study_dated &&
             date_bounds(q->value[PM_DK_STUDY_DATE], from, to))
        rc = p->for_each_study_dated(p->ctx, from, to, walk_study, w);
    else
        rc = p->for_each_study(p->ctx, study, patient, walk_study, w);
    if (rc == 0 && w->oom)
        rc = PM_E_NOMEM;
    if (rc == 0 && w->emit_level == PM_DICOM_LEVEL_PATIENT)
        rc = emit_patients(w);
    for (size_t i = 0; i < w->npats; i++) {
        free(w->pats[i].id);
        free(w->pats[i].name);
        free(w->pats[i].birth);
        free(w->pats[i].sex);
    }
    free(w->pats);
    return rc;
}

int pm_dicom_query_find(const pm_dicom_query *q, const pm_dicom_provider *p, pm_dicom_row_fn fn,
                        void *ctx)
{
    walk w = {.q = q, .match_level = q->level, .emit_level = q->level, .fn = fn, .ctx = ctx};
    return run(&w, p);
}

int pm_dicom_query_instances(const pm_dicom_query *q, const pm_dicom_provider *p,
                             pm_dicom_row_fn fn, void *ctx)
{
    walk w = {
        .q = q, .match_level = q->level, .emit_level = PM_DICOM_LEVEL_IMAGE, .fn = fn, .ctx = ctx};
    return run(&w, p);
}
