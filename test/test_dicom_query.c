/* Unit tests of the DICOM edge's query matching (node/dicom/query.c): PS3.4 C.2.2.2
 * matching rules, and C-FIND/C-GET walks over a few StudyView fixtures. */
#include "node/dicom/query.h"

#include <string.h>

#include "test/check.h"

static void test_match_rules(void)
{
    /* universal */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "", "anything"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "*", ""));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "", ""));
    /* single value, padding ignored */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "CT", "CT "));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_STRING, "CT", "MR"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_STRING, "ct", "CT"));
    /* wildcards */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "AB*", "ABC123"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "A?C*3", "ABC123"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_STRING, "A?C", "ABBC"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "*1*2*3*", "x1y2z3w"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_STRING, "*1*2*3*", "x1y3z2w"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_STRING, "M\xC3\xBC?ler", "M\xC3\xBC\xC3\x9fler"));
    /* PN: case-insensitive */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NAME, "doe^j*", "DOE^JOHN"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NAME, "DOE^JOHN", "Doe^John"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_NAME, "smith*", "DOE^JOHN"));
    /* UID single and list, no wildcard semantics */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3", "1.2.3"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3", "1.2.30"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.4\\1.2.3\\1.2.5", "1.2.3"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.4\\1.2.5", "1.2.3"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.*", "1.2.3"));
    /* date ranges */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-20201231", "20200615"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-20201231", "20201231"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-20201231", "20210101"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-", "20250101"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-", "20191231"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "-20201231", "19991231"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_DATE, "-20201231", "20210101"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200101-", ""));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200615", "20200615"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_DATE, "20200615", "20200616"));
    /* time ranges, with partial precision and fractions */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_TIME, "0800-1200", "101010.123"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_TIME, "0800-1200", "120059"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_TIME, "0800-1200", "1201"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_TIME, "-08", "075959"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_TIME, "13-", "125959.999"));
    /* numbers */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NUMBER, "7", " 7"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NUMBER, "007", "7"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_NUMBER, "7", "8"));
    /* multi-valued attributes: any value */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_MULTI, "MR", "CT\\MR"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_MULTI, "PT\\MR", "CT\\MR"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_MULTI, "US", "CT\\MR"));
    /* return keys never restrict */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NONE, "5", "3"));
}

static void test_levels_and_keys(void)
{
    pm_dicom_level l;
    CHECK_RC(pm_dicom_query_parse_level("STUDY ", &l));
    CHECK_EQ_INT(l, PM_DICOM_LEVEL_STUDY);
    CHECK_RC(pm_dicom_query_parse_level("IMAGE", &l));
    CHECK_EQ_INT(l, PM_DICOM_LEVEL_IMAGE);
    CHECK_CODE(pm_dicom_query_parse_level("FRAME", &l), PM_E_INVAL);
    CHECK_CODE(pm_dicom_query_parse_level("", &l), PM_E_INVAL);
    CHECK_EQ_INT(pm_dicom_query_key_by_tag(0x0010, 0x0010), PM_DK_PATIENT_NAME);
    CHECK_EQ_INT(pm_dicom_query_key_by_tag(0x0020, 0x000D), PM_DK_STUDY_UID);
    CHECK_EQ_INT(pm_dicom_query_key_by_tag(0x7FE0, 0x0010), -1);
    for (int k = 0; k < PM_DK_COUNT; k++)
        CHECK(pm_dicom_query_key_info((pm_dicom_key)k)->name != NULL);
}

/* ---- fixture: three studies, two patients ---- */

static Pm__Instance inst[5];
static Pm__Instance *s1a_inst[] = {&inst[0], &inst[1]};
static Pm__Instance *s1b_inst[] = {&inst[2]};
static Pm__Instance *s2a_inst[] = {&inst[3]};
static Pm__Instance *s3a_inst[] = {&inst[4]};
static Pm__Series ser[4];
static Pm__Series *s1_series[] = {&ser[0], &ser[1]};
static Pm__Series *s2_series[] = {&ser[2]};
static Pm__Series *s3_series[] = {&ser[3]};
static Pm__StudyAnnounced ann[3];
static Pm__StudyView views[3];

static void set_instance(Pm__Instance *in, const char *uid, int number)
{
    pm__instance__init(in);
    in->sop_instance_uid = (char *)uid;
    in->sop_class_uid = (char *)"1.2.840.10008.5.1.4.1.1.2";
    in->instance_number = number;
    in->transfer_syntax_uid = (char *)"1.2.840.10008.1.2.1";
}

static void set_series(Pm__Series *s, const char *uid, const char *modality, int number,
                       Pm__Instance **in, size_t n)
{
    pm__series__init(s);
    s->series_instance_uid = (char *)uid;
    s->modality = (char *)modality;
    s->series_number = number;
    s->description = (char *)"";
    s->body_part = (char *)"HEAD";
    s->instances = in;
    s->n_instances = n;
}

static void set_study(int i, const char *uid, const char *pid, const char *name, const char *date,
                      const char *time, Pm__Series **series, size_t n)
{
    Pm__StudyAnnounced *a = &ann[i];
    pm__study_announced__init(a);
    a->study_instance_uid = (char *)uid;
    a->patient_id = (char *)pid;
    a->patient_name = (char *)name;
    a->patient_birth_date = (char *)"19700101";
    a->patient_sex = (char *)"O";
    a->study_date = (char *)date;
    a->study_time = (char *)time;
    a->accession_number = (char *)"ACC";
    a->study_description = (char *)"fixture";
    a->series = series;
    a->n_series = n;
    pm__study_view__init(&views[i]);
    views[i].study = a;
}

static void build_fixture(void)
{
    set_instance(&inst[0], "1.9.1.1.1", 1);
    set_instance(&inst[1], "1.9.1.1.2", 2);
    set_instance(&inst[2], "1.9.1.2.1", 1);
    set_instance(&inst[3], "1.9.2.1.1", 1);
    set_instance(&inst[4], "1.9.3.1.1", 1);
    set_series(&ser[0], "1.9.1.1", "CT", 1, s1a_inst, 2);
    set_series(&ser[1], "1.9.1.2", "MR", 2, s1b_inst, 1);
    set_series(&ser[2], "1.9.2.1", "CT", 1, s2a_inst, 1);
    set_series(&ser[3], "1.9.3.1", "US", 1, s3a_inst, 1);
    set_study(0, "1.9.1", "P1", "DOE^JANE", "20200310", "101500", s1_series, 2);
    set_study(1, "1.9.2", "P1", "DOE^JANE", "20211120", "080000", s2_series, 1);
    set_study(2, "1.9.3", "P2", "ROE^RICHARD", "20200701", "230000", s3_series, 1);
}

static int index_study_calls, index_patient_calls;

static int fixture_for_each(void *ctx, const char *study_uid, const char *patient_id,
                            int (*fn)(void *, const Pm__StudyView *), void *fctx)
{
    (void)ctx;
    if (study_uid)
        index_study_calls++;
    if (patient_id)
        index_patient_calls++;
    for (int i = 0; i < 3; i++) {
        if (study_uid && strcmp(study_uid, ann[i].study_instance_uid) != 0)
            continue;
        if (patient_id && strcmp(patient_id, ann[i].patient_id) != 0)
            continue;
        int rc = fn(fctx, &views[i]);
        if (rc)
            return rc;
    }
    return PM_OK;
}

#define MAX_ROWS 16
typedef struct {
    int n;
    char v[MAX_ROWS][PM_DK_COUNT][64];
} rows;

static int collect(void *ctx, const pm_dicom_row *row)
{
    rows *r = ctx;
    CHECK(r->n < MAX_ROWS);
    for (int k = 0; k < PM_DK_COUNT; k++)
        snprintf(r->v[r->n][k], sizeof r->v[r->n][k], "%s",
                 row->value[k] ? row->value[k] : "<null>");
    r->n++;
    return 0;
}

/* Runs a query given as key/value pairs (PM_DK_* indexes). */
static void run(pm_dicom_level level, int instances, rows *r, int nkeys, const int *keys,
                const char *const *values)
{
    pm_dicom_query q;
    memset(&q, 0, sizeof q);
    q.level = level;
    for (int i = 0; i < nkeys; i++)
        q.value[keys[i]] = values[i];
    memset(r, 0, sizeof *r);
    pm_dicom_provider p = {.for_each_study = fixture_for_each};
    if (instances)
        CHECK_RC(pm_dicom_query_instances(&q, &p, collect, r));
    else
        CHECK_RC(pm_dicom_query_find(&q, &p, collect, r));
}

static void test_walks(void)
{
    rows r;
    build_fixture();

    /* STUDY level, PatientName case-insensitive wildcard and a date range */
    {
        const int k[] = {PM_DK_PATIENT_NAME, PM_DK_STUDY_DATE, PM_DK_STUDY_UID};
        const char *v[] = {"doe*", "20200101-20201231", ""};
        run(PM_DICOM_LEVEL_STUDY, 0, &r, 3, k, v);
        CHECK_EQ_INT(r.n, 1);
        CHECK(!strcmp(r.v[0][PM_DK_STUDY_UID], "1.9.1"));
        CHECK(!strcmp(r.v[0][PM_DK_MODALITIES_IN_STUDY], "CT\\MR"));
        CHECK(!strcmp(r.v[0][PM_DK_STUDY_NINSTANCES], "3"));
        CHECK(!strcmp(r.v[0][PM_DK_SERIES_UID], "<null>"));
    }
    /* ModalitiesInStudy matches any of the study's modalities */
    {
        const int k[] = {PM_DK_MODALITIES_IN_STUDY};
        const char *v[] = {"MR"};
        run(PM_DICOM_LEVEL_STUDY, 0, &r, 1, k, v);
        CHECK_EQ_INT(r.n, 1);
        const char *v2[] = {"CT"};
        run(PM_DICOM_LEVEL_STUDY, 0, &r, 1, k, v2);
        CHECK_EQ_INT(r.n, 2);
    }
    /* PATIENT level aggregates the studies of one PatientID; the index is used */
    {
        index_patient_calls = 0;
        const int k[] = {PM_DK_PATIENT_ID};
        const char *v[] = {"P1"};
        run(PM_DICOM_LEVEL_PATIENT, 0, &r, 1, k, v);
        CHECK_EQ_INT(r.n, 1);
        CHECK_EQ_INT(index_patient_calls, 1);
        CHECK(!strcmp(r.v[0][PM_DK_PATIENT_NSTUDIES], "2"));
        CHECK(!strcmp(r.v[0][PM_DK_PATIENT_NSERIES], "3"));
        CHECK(!strcmp(r.v[0][PM_DK_PATIENT_NINSTANCES], "4"));
        const char *all[] = {""};
        run(PM_DICOM_LEVEL_PATIENT, 0, &r, 1, k, all);
        CHECK_EQ_INT(r.n, 2);
    }
    /* SERIES level within a study (index used), modality filter */
    {
        index_study_calls = 0;
        const int k[] = {PM_DK_STUDY_UID, PM_DK_MODALITY};
        const char *v[] = {"1.9.1", "MR"};
        run(PM_DICOM_LEVEL_SERIES, 0, &r, 2, k, v);
        CHECK_EQ_INT(r.n, 1);
        CHECK_EQ_INT(index_study_calls, 1);
        CHECK(!strcmp(r.v[0][PM_DK_SERIES_UID], "1.9.1.2"));
        CHECK(!strcmp(r.v[0][PM_DK_SERIES_NINSTANCES], "1"));
    }
    /* IMAGE level with a UID list */
    {
        const int k[] = {PM_DK_SOP_UID};
        const char *v[] = {"1.9.1.1.2\\1.9.3.1.1"};
        run(PM_DICOM_LEVEL_IMAGE, 0, &r, 1, k, v);
        CHECK_EQ_INT(r.n, 2);
        CHECK(!strcmp(r.v[0][PM_DK_INSTANCE_NUMBER], "2"));
        CHECK(!strcmp(r.v[1][PM_DK_STUDY_UID], "1.9.3"));
    }
    /* Retrieve at STUDY level yields every instance of the matching studies; keys below
     * the level are not matched */
    {
        const int k[] = {PM_DK_STUDY_UID, PM_DK_MODALITY};
        const char *v[] = {"1.9.1\\1.9.3", "XX"};
        run(PM_DICOM_LEVEL_STUDY, 1, &r, 2, k, v);
        CHECK_EQ_INT(r.n, 4);
    }
    /* A time range */
    {
        const int k[] = {PM_DK_STUDY_TIME};
        const char *v[] = {"0700-1100"};
        run(PM_DICOM_LEVEL_STUDY, 0, &r, 1, k, v);
        CHECK_EQ_INT(r.n, 2);
    }
}

/* Oddities a client may send: empty values in lists, malformed dates and times. */
static void test_oddities(void)
{
    /* An empty value in a UID list matches nothing (only an empty pattern is universal),
     * nor does a wildcard inside a UID list. */
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3\\", "1.2.3"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3\\", "1.2.4"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "\\1.2.3", "9.9"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "\\", "1.2.3"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3\\*", "1.2.4"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_UID, "1.2.3\\*", "1.2.3"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_UID, "*", "1.2.3")); /* alone: universal */
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_STRING, "CT\\", "MR"));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_MULTI, "CT\\", "MR\\US"));
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_MULTI, "CT\\", "MR\\CT"));

    /* A key longer than its VR allows is matched whole, never cut to the VR's length:
     * a 400-character PatientName matches only a name that long (stored values are
     * kept whole too), not one that shares its first 64 or 324 characters. */
    char long_name[401], cut_name[325];
    memset(long_name, 'A', 400);
    long_name[3] = '^';
    long_name[400] = 0;
    memcpy(cut_name, long_name, 324);
    cut_name[324] = 0;
    CHECK(pm_dicom_query_match(PM_DICOM_MATCH_NAME, long_name, long_name));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_NAME, long_name, cut_name));
    CHECK(!pm_dicom_query_match(PM_DICOM_MATCH_NAME, cut_name, long_name));
    char long_uid[71];
    memset(long_uid, '1', 70);
    long_uid[70] = 0;
    CHECK(
        !pm_dicom_query_match(PM_DICOM_MATCH_UID, long_uid,
                              "1111111111111111111111111111111111111111111111111111111111111111"));

    /* Dates and times that are neither values nor ranges are refused. */
    static const struct {
        int key;
        const char *value;
        int ok;
    } cases[] = {
        {PM_DK_STUDY_DATE, "20240301", 1},
        {PM_DK_STUDY_DATE, "2024.03.01", 1},
        {PM_DK_STUDY_DATE, "20240101-20241231", 1},
        {PM_DK_STUDY_DATE, "20240101-", 1},
        {PM_DK_STUDY_DATE, "-20241231", 1},
        {PM_DK_STUDY_DATE, "", 1},
        {PM_DK_STUDY_DATE, "*", 1},
        {PM_DK_STUDY_DATE, "20240101\\20240202", 1},
        {PM_DK_STUDY_DATE, "abc-xyz", 0},
        {PM_DK_STUDY_DATE, "abc", 0},
        {PM_DK_STUDY_DATE, "-", 0},
        {PM_DK_STUDY_DATE, "20241301", 0},
        {PM_DK_STUDY_DATE, "20240132", 0},
        {PM_DK_STUDY_DATE, "2024", 0},
        {PM_DK_STUDY_DATE, "20240101-2024", 0},
        {PM_DK_STUDY_DATE, "2024*", 0},
        {PM_DK_STUDY_DATE, "20240101--20240102", 0},
        {PM_DK_STUDY_DATE, "20240101\\junk", 0},
        {PM_DK_PATIENT_BIRTH_DATE, "19700101-", 1},
        {PM_DK_PATIENT_BIRTH_DATE, "1970-01-01", 0},
        {PM_DK_STUDY_TIME, "10", 1},
        {PM_DK_STUDY_TIME, "1015", 1},
        {PM_DK_STUDY_TIME, "101500.123456", 1},
        {PM_DK_STUDY_TIME, "10:15:00", 1},
        {PM_DK_STUDY_TIME, "0800-1200", 1},
        {PM_DK_STUDY_TIME, "-08", 1},
        {PM_DK_STUDY_TIME, "25", 0},
        {PM_DK_STUDY_TIME, "1060", 0},
        {PM_DK_STUDY_TIME, "101", 0},
        {PM_DK_STUDY_TIME, "1015.5", 0},
        {PM_DK_STUDY_TIME, "101500.1234567", 0},
        {PM_DK_STUDY_TIME, "noon-night", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pm_dicom_query q;
        memset(&q, 0, sizeof q);
        q.level = PM_DICOM_LEVEL_STUDY;
        q.value[cases[i].key] = cases[i].value;
        char why[128] = "";
        int rc = pm_dicom_query_validate(&q, why, sizeof why);
        if ((rc == PM_OK) != cases[i].ok)
            fprintf(stderr, "validate '%s': %d (%s)\n", cases[i].value, rc, why);
        CHECK((rc == PM_OK) == cases[i].ok);
        if (!cases[i].ok)
            CHECK(strstr(why, pm_dicom_query_key_info(cases[i].key)->name) && strlen(why) <= 64);
    }
    pm_dicom_query q;
    memset(&q, 0, sizeof q);
    q.value[PM_DK_STUDY_DATE] = "abc-xyz";
    char why[128];
    CHECK_CODE(pm_dicom_query_validate(&q, why, sizeof why), PM_E_INVAL);
    CHECK(!strcmp(why, "StudyDate: 'abc-xyz' is not a date or date range"));
}

int main(void)
{
    test_match_rules();
    test_oddities();
    test_levels_and_keys();
    test_walks();
    printf("test_dicom_query: ok\n");
    return 0;
}
