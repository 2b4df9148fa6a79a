/* Query matching for the DICOM edge (see query.h): the keys, matching one value, and
 * what a query or retrieve identifier may ask. Walking the views is query_walk.c. */
#include "node/dicom/query.h"
#include "node/dicom/query_internal.h"

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

pm_dicom_slice pm_dicom_slice_trim(const char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\0'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    return (pm_dicom_slice){p, n};
}

pm_dicom_slice pm_dicom_slice_next(pm_dicom_slice *rest)
{
    const char *bs = memchr(rest->p, '\\', rest->n);
    size_t n = bs ? (size_t)(bs - rest->p) : rest->n;
    pm_dicom_slice v = pm_dicom_slice_trim(rest->p, n);
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
    pm_dicom_slice s = pm_dicom_slice_trim(text, strlen(text));
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
static int glob_match(pm_dicom_slice pat, pm_dicom_slice val, int fold)
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

int pm_dicom_slice_has_wildcard(pm_dicom_slice s)
{
    return memchr(s.p, '*', s.n) || memchr(s.p, '?', s.n);
}

static int slice_equal(pm_dicom_slice a, pm_dicom_slice b, int fold)
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
static void time_key(pm_dicom_slice t, char fill, char out[13])
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
static void date_key(pm_dicom_slice d, char fill, char out[9])
{
    size_t o = 0;
    for (size_t i = 0; i < d.n && o < 8; i++)
        if (isdigit((unsigned char)d.p[i]))
            out[o++] = d.p[i];
    while (o < 8)
        out[o++] = fill;
    out[8] = '\0';
}

static int range_match(pm_dicom_match_kind kind, pm_dicom_slice pat, pm_dicom_slice val)
{
    const char *dash = memchr(pat.p, '-', pat.n);
    if (val.n == 0)
        return 0;
    pm_dicom_slice lo = pm_dicom_slice_trim(pat.p, (size_t)(dash - pat.p));
    pm_dicom_slice hi = pm_dicom_slice_trim(dash + 1, pat.n - (size_t)(dash - pat.p) - 1);
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

static int parse_int(pm_dicom_slice s, long *out)
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
static int match_one(pm_dicom_match_kind kind, pm_dicom_slice pat, pm_dicom_slice val)
{
    if (pat.n == 0 || (pat.n == 1 && pat.p[0] == '*'))
        return 1;
    switch (kind) {
    case PM_DICOM_MATCH_UID: return slice_equal(pat, val, 0);
    case PM_DICOM_MATCH_DATE:
    case PM_DICOM_MATCH_TIME:
        if (memchr(pat.p, '-', pat.n))
            return range_match(kind, pat, val);
        if (pm_dicom_slice_has_wildcard(pat))
            return glob_match(pat, val, 0);
        return slice_equal(pat, val, 0);
    case PM_DICOM_MATCH_NUMBER: {
        long a, b;
        if (!pm_dicom_slice_has_wildcard(pat) && parse_int(pat, &a) && parse_int(val, &b))
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
    pm_dicom_slice pats = pm_dicom_slice_trim(pattern, strlen(pattern));
    if (pats.n == 0)
        return 1;
    /* Each backslash-separated pattern value is an alternative (a UID list for UIDs).
     * Only a wholly empty pattern is universal: an empty value in a list, or "*" in a
     * UID list, matches nothing. */
    pm_dicom_slice val = pm_dicom_slice_trim(value, strlen(value));
    int list = memchr(pats.p, '\\', pats.n) != NULL;
    for (;;) {
        int last = memchr(pats.p, '\\', pats.n) == NULL;
        pm_dicom_slice pat = pm_dicom_slice_next(&pats);
        if (list &&
            (pat.n == 0 || (kind == PM_DICOM_MATCH_UID && pm_dicom_slice_has_wildcard(pat)))) {
            if (last)
                return 0;
            continue;
        }
        if (kind == PM_DICOM_MATCH_MULTI) {
            pm_dicom_slice vals = val;
            do {
                if (match_one(PM_DICOM_MATCH_STRING, pat, pm_dicom_slice_next(&vals)))
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

static int all_digits(pm_dicom_slice s)
{
    for (size_t i = 0; i < s.n; i++)
        if (!isdigit((unsigned char)s.p[i]))
            return 0;
    return 1;
}

/* A date: YYYYMMDD (or the old YYYY.MM.DD) with a plausible month and day. */
static int valid_date(pm_dicom_slice d)
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
static int valid_time(pm_dicom_slice t)
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
        pm_dicom_slice f = {t.p + i + 1, t.n - i - 1};
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
static int valid_range_value(pm_dicom_match_kind kind, pm_dicom_slice v)
{
    int (*valid)(pm_dicom_slice) = kind == PM_DICOM_MATCH_DATE ? valid_date : valid_time;
    if (v.n == 0 || (v.n == 1 && v.p[0] == '*'))
        return 1;
    const char *dash = memchr(v.p, '-', v.n);
    if (!dash)
        return valid(v);
    pm_dicom_slice lo = pm_dicom_slice_trim(v.p, (size_t)(dash - v.p)),
                   hi = pm_dicom_slice_trim(dash + 1, v.n - (size_t)(dash - v.p) - 1);
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
        pm_dicom_slice rest = pm_dicom_slice_trim(v, strlen(v));
        while (rest.n > 0) {
            pm_dicom_slice one = pm_dicom_slice_next(&rest);
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
    pm_dicom_slice rest = pm_dicom_slice_trim(v ? v : "", v ? strlen(v) : 0);
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
            if (pm_dicom_slice_trim(rest.p + start, i - start).n == 0)
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
