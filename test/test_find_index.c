/* Differential test of C-FIND over the attribute index (node/dicom/query_walk.c narrowing
 * through pm_views_studies_by_attr): for a battery of queries on a real store, the
 * answers through the index equal the answers of a walk of every study, as sets.
 * Names in mixed case, accession numbers that are prefixes of one another, studies of
 * several modalities, wildcards at the start, middle and end, universal keys. */
#include "test/check.h"

#include "node/dicom/query.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"
#include "store/views.h"

#include <sodium.h>

static pm_store *store;

static int walk_all(void *ctx, const char *study_uid, const char *patient_id,
                    int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx)
{
    (void)ctx;
    return pm_views_studies(store, study_uid, patient_id, fn, fctx);
}

static int walk_attr(void *ctx, char attr, const char *value, int exact,
                     int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx)
{
    (void)ctx;
    return pm_views_studies_by_attr(store, attr, value, exact, fn, fctx);
}

/* The answers, one line each, sorted: a set. */
typedef struct {
    char *lines[256];
    size_t n;
} answers;

static int collect(void *ctx, const pm_dicom_row *row)
{
    answers *a = ctx;
    CHECK(a->n < 256);
    char line[1024] = "";
    for (int k = 0; k < PM_DK_COUNT; k++) {
        size_t o = strlen(line);
        snprintf(line + o, sizeof line - o, "%s|", row->value[k] ? row->value[k] : "-");
    }
    a->lines[a->n++] = strdup(line);
    return 0;
}

static int by_text(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void find(const pm_dicom_query *q, int indexed, answers *a)
{
    memset(a, 0, sizeof *a);
    pm_dicom_provider p = {.for_each_study = walk_all};
    if (indexed)
        p.for_each_study_by_attr = walk_attr;
    CHECK_RC(pm_dicom_query_find(q, &p, collect, a));
    qsort(a->lines, a->n, sizeof *a->lines, by_text);
}

static void same_answers(pm_dicom_level level, int key, const char *value, size_t at_least)
{
    pm_dicom_query q;
    memset(&q, 0, sizeof q);
    q.level = level;
    q.value[key] = value;
    q.value[PM_DK_STUDY_UID] = "";
    answers slow, fast;
    find(&q, 0, &slow);
    find(&q, 1, &fast);
    if (slow.n != fast.n || slow.n < at_least) {
        fprintf(stderr, "key %d '%s': %zu answers walking every study, %zu by the index\n", key,
                value, slow.n, fast.n);
        exit(1);
    }
    for (size_t i = 0; i < slow.n; i++) {
        CHECK(strcmp(slow.lines[i], fast.lines[i]) == 0);
        free(slow.lines[i]);
        free(fast.lines[i]);
    }
}

static void announce(const pm_identity *id, int i)
{
    static const char *const names[] = {"Smith^John", "SMITH^JANE", "smithers^al", "Jones^Ann",
                                        "Ng^Wei"};
    static const char *const mods[][2] = {
        {"CT", NULL}, {"OCT", "CT"}, {"MR", NULL}, {"CR", "DX"}, {"US", NULL}};
    char uid[32], acc[16], desc[32];
    snprintf(uid, sizeof uid, "1.2.%d", i);
    snprintf(acc, sizeof acc, "ACC%d", i); /* ACC1 is a prefix of ACC10 .. ACC19 */
    snprintf(desc, sizeof desc, i % 2 ? "CT Head %d" : "chest %d", i);
    Pm__Series series[2], *ptrs[2];
    size_t n = 0;
    for (; n < 2 && mods[i % 5][n]; n++) {
        pm__series__init(&series[n]);
        series[n].series_instance_uid = n ? "9.2" : "9.1";
        series[n].modality = (char *)mods[i % 5][n];
        ptrs[n] = &series[n];
    }
    Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
    a.study_instance_uid = uid;
    char pid[8];
    snprintf(pid, sizeof pid, "P%d",
             i % 3   ? 1
             : i % 2 ? 2
                     : 10 + i % 5); /* P1 is a prefix of P10+ */
    a.patient_id = pid;
    a.patient_name = (char *)names[i % 5];
    a.accession_number = acc;
    a.study_description = desc;
    a.referring_physician = i % 2 ? "House^Greg" : "";
    a.study_date = "20260101";
    a.series = ptrs;
    a.n_series = n;
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    b.study_announced = &a;
    CHECK_RC(pm_feed_append(store, id, &b, NULL));
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    char *tmp = check_tmpdir("find_index"), *dir = check_path(tmp, "store");
    pm_identity *id = NULL;
    CHECK_RC(pm_identity_generate(&id));
    CHECK_RC(pm_store_open(dir, 1ull << 28, &store));
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "find-index";
    g.quorum = 1;
    g.founder_name = "founder";
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(store, id, &b, NULL));
    for (int i = 1; i <= 25; i++)
        announce(id, i);

    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_ACCESSION, "ACC1", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_ACCESSION, "ACC1*", 11);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_ACCESSION, "ACC?", 9);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_ACCESSION, "*5", 3);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_ACCESSION, "acc1", 0); /* as the matcher says */
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_MODALITIES_IN_STUDY, "ct", 0);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_NAME, "Smith^John", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_NAME, "SMITH*", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_NAME, "smith*", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_NAME, "S*h^J*", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_MODALITIES_IN_STUDY, "CT", 10);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_MODALITIES_IN_STUDY, "C*", 10);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_MODALITIES_IN_STUDY, "DX", 5);
    same_answers(PM_DICOM_LEVEL_SERIES, PM_DK_MODALITY, "CT", 10);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_STUDY_DESCRIPTION, "CT*", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_STUDY_DESCRIPTION, "ct head 1", 0);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_REFERRING_PHYSICIAN, "House*", 13);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_REFERRING_PHYSICIAN, "", 25);
    same_answers(PM_DICOM_LEVEL_PATIENT, PM_DK_PATIENT_NAME, "Jones*", 1);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_ID, "P1*", 16); /* P1 and P10 .. */
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_ID, "P2?", 0);
    same_answers(PM_DICOM_LEVEL_STUDY, PM_DK_PATIENT_ID, "p1*", 0); /* case-sensitive */
    same_answers(PM_DICOM_LEVEL_PATIENT, PM_DK_PATIENT_ID, "P*", 2);
    same_answers(PM_DICOM_LEVEL_SERIES, PM_DK_PATIENT_ID, "P1*", 16);

    pm_store_close(&store);
    pm_identity_destroy(&id);
    free(dir);
    check_tmpdir_remove(&tmp);
    puts("test_find_index: ok");
    return 0;
}
