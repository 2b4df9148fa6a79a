/* Unit test of the ingest path (node/studies/ingest.c, announce.c) over a real store and blob
 * store: a file that is not DICOM stores nothing; an instance is durable (blob pinned,
 * local record) before any announcement; the announcement waits for a mesh, then lists
 * the instance with its content hash and takes its worklist terms from the [worklist]
 * rules; the same file again is idempotent and keeps the due time; `take` moves the
 * spool file; the same SOP Instance UID with different content is kept as well.
 * Skipped (77) without python3-pydicom's test files. */
#include "test/check.h"

#include "crypto/hash.h"
#include "node/config/config.h"
#include "node/studies/ingest.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/views.h"

#include <sodium.h>

#define PYDICOM "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#define CT_FILE PYDICOM "/CT_small.dcm"
#define MR_FILE PYDICOM "/MR_small.dcm"

static char *tmp;

static void copy(const char *from, const char *to, long flip_at)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    int ch;
    for (long i = 0; (ch = fgetc(in)) != EOF; i++)
        CHECK(fputc(i == flip_at ? ch ^ 0x01 : ch, out) != EOF);
    fclose(in);
    CHECK(fclose(out) == 0);
}

static void genesis(pm_store *s, const pm_identity *id)
{
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.mesh_name = "ingest-mesh";
    g.quorum = 1;
    g.founder_name = "founder";
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(s, id, &b, NULL));
}

static Pm__StudyView *study(pm_store *s, const char *uid)
{
    Pm__StudyView *sv = NULL;
    CHECK_RC(pm_views_study(s, uid, &sv));
    CHECK(sv->study != NULL);
    return sv;
}

static unsigned announce(const pm_ingest_ctx *c)
{
    unsigned n = 0;
    CHECK_RC(pm_ingest_announce(c, &n));
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return (long)st.st_size;
}

int main(void)
{
    if (access(CT_FILE, R_OK) != 0 || access(MR_FILE, R_OK) != 0) {
        printf("SKIP: test_ingest: python3-pydicom's test files are missing\n");
        return 77;
    }
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    tmp = check_tmpdir("ingest");
    char *dir = check_path(tmp, "store"), *blobdir = check_path(tmp, "blobs");
    pm_store *s = NULL;
    pm_blobs *b = NULL;
    pm_identity *id = NULL;
    pm_config *cfg = NULL;
    char err[512];
    static const char conf[] = "[node]\nname = ingest\n[worklist]\n"
                               "rule = modality=CT : priority=urgent subspecialty=body\n";
    CHECK_RC(pm_config_parse("node.conf", conf, strlen(conf), tmp, &cfg, err, sizeof err));
    CHECK_RC(pm_store_open(dir, 1ull << 28, &s));
    CHECK_RC(pm_blobs_open(s, blobdir, &b));
    CHECK_RC(pm_identity_generate(&id));
    pm_ingest_ctx c = {s, b, id, cfg};
    char uid[PM_DICOM_UID_MAX + 1] = "", uid2[PM_DICOM_UID_MAX + 1] = "";

    /* Not DICOM: refused, nothing stored; a spool file is removed, a source kept. */
    char *junk = check_path(tmp, "junk.dcm");
    copy(PYDICOM "/README.txt", junk, -1);
    CHECK_CODE(pm_ingest_file(&c, junk, 0, uid, err, sizeof err), PM_E_DICOM);
    CHECK(access(junk, F_OK) == 0 && *err);
    CHECK_CODE(pm_ingest_file(&c, junk, 1, uid, err, sizeof err), PM_E_DICOM);
    CHECK(access(junk, F_OK) != 0);
    uint64_t total, cache, count;
    CHECK_RC(pm_blobs_usage(b, &total, &cache, &count));
    CHECK_EQ_INT(count, 0);

    /* An instance is durable before any announcement, which waits for a mesh. */
    CHECK_RC(pm_ingest_file(&c, CT_FILE, 0, uid, err, sizeof err));
    CHECK(*uid && access(CT_FILE, F_OK) == 0);
    uint8_t ct_hash[PM_HASH_BYTES];
    uint64_t ct_size;
    CHECK_RC(pm_hash_file(CT_FILE, ct_hash, &ct_size));
    CHECK(pm_blobs_has(b, ct_hash));
    CHECK_RC(pm_blobs_usage(b, &total, &cache, &count));
    CHECK(count == 1 && cache == 0 && total == ct_size); /* our own: pinned */
    Pm__StudyView *sv = NULL;
    CHECK_CODE(pm_views_study(s, uid, &sv), PM_E_NOTFOUND);
    unsigned n = 0;
    CHECK_CODE(pm_ingest_announce(&c, &n), PM_E_MESH);
    CHECK_EQ_INT(n, 0);
    genesis(s, id);
    CHECK_EQ_INT(announce(&c), 1);
    CHECK_EQ_INT(announce(&c), 0); /* the mark is cleared */

    sv = study(s, uid);
    CHECK_EQ_INT(sv->study->n_series, 1);
    CHECK_EQ_INT(sv->study->series[0]->n_instances, 1);
    const Pm__Instance *in = sv->study->series[0]->instances[0];
    CHECK(in->hash.len == PM_HASH_BYTES && memcmp(in->hash.data, ct_hash, PM_HASH_BYTES) == 0);
    CHECK_EQ_INT(in->size, ct_size);
    CHECK(strcmp(sv->study->series[0]->modality, "CT") == 0);
    CHECK(strcmp(sv->study->terms->priority, "urgent") == 0);
    CHECK(strcmp(sv->study->terms->subspecialty, "body") == 0);
    CHECK(sv->study->terms->due_ms > 0);
    uint64_t due = sv->study->terms->due_ms;
    CHECK(memcmp(sv->site.data, pm_identity_public(id), PM_ID_BYTES) == 0);
    pm__study_view__free_unpacked(sv, NULL);

    /* The same file again: the same instance, already held: a success that changes
     * nothing (nothing new to announce), still one instance, the due time kept. */
    CHECK_RC(pm_ingest_file(&c, CT_FILE, 0, uid2, err, sizeof err));
    CHECK(strcmp(uid, uid2) == 0);
    CHECK_EQ_INT(announce(&c), 0);
    sv = study(s, uid);
    CHECK_EQ_INT(sv->study->series[0]->n_instances, 1);
    CHECK_EQ_INT(sv->study->terms->due_ms, due);
    pm__study_view__free_unpacked(sv, NULL);

    /* take: the spool file is moved into the blob store. Another study, no rule. */
    char spool[4096];
    CHECK_RC(pm_blobs_temp_path(b, spool, sizeof spool));
    copy(MR_FILE, spool, -1);
    CHECK_RC(pm_ingest_file(&c, MR_FILE, 0, uid2, err, sizeof err));
    CHECK_RC(pm_ingest_file(&c, spool, 1, uid2, err, sizeof err));
    CHECK(access(spool, F_OK) != 0);
    CHECK(strcmp(uid, uid2) != 0);
    CHECK_EQ_INT(announce(&c), 1);
    sv = study(s, uid2);
    CHECK(strcmp(sv->study->terms->priority, "routine") == 0);
    CHECK(strcmp(sv->study->terms->subspecialty, "") == 0);
    CHECK_EQ_INT(sv->study->series[0]->n_instances, 1);
    pm__study_view__free_unpacked(sv, NULL);

    /* The same SOP Instance UID with different content: both kept. */
    char *changed = check_path(tmp, "changed.dcm");
    copy(CT_FILE, changed, file_size(CT_FILE) - 10); /* a pixel near the end */
    CHECK_RC(pm_ingest_file(&c, changed, 0, uid2, err, sizeof err));
    CHECK(strcmp(uid, uid2) == 0);
    CHECK_EQ_INT(announce(&c), 1);
    sv = study(s, uid);
    CHECK_EQ_INT(sv->study->series[0]->n_instances, 2);
    CHECK(strcmp(sv->study->series[0]->instances[0]->sop_instance_uid,
                 sv->study->series[0]->instances[1]->sop_instance_uid) == 0);
    CHECK(memcmp(sv->study->series[0]->instances[0]->hash.data,
                 sv->study->series[0]->instances[1]->hash.data, PM_HASH_BYTES) != 0);
    pm__study_view__free_unpacked(sv, NULL);

    free(junk);
    free(changed);
    pm_blobs_close(&b);
    pm_store_close(&s);
    pm_identity_destroy(&id);
    pm_config_destroy(&cfg);
    free(dir);
    free(blobdir);
    check_tmpdir_remove(&tmp);
    printf("test_ingest: ok\n");
    return 0;
}
