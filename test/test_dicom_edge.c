/* Integration test of the DICOM edge (node/dicom/dicom.h): pm_dicom_server on 127.0.0.1 with an
 * in-memory provider, driven by dcmtk's own command-line clients (echoscu, storescu,
 * findscu, getscu, movescu; storescp run in inetd mode as the C-MOVE destination, so that
 * it too listens on loopback only). Also pm_dicom_read_meta on pydicom's broken files.
 *
 * Every wait has a deadline; the test stops only the processes it started, by PID. The
 * clients get TCP_NODELAY=1, the test process itself never has it: the edge must disable
 * Nagle on its own sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "node/dicom/dicom.h"
#include "test/check.h"

#define PYDICOM "/usr/lib/python3/dist-packages/pydicom/data/test_files"
#define CT_FILE PYDICOM "/CT_small.dcm"
#define MR_FILE PYDICOM "/MR_small.dcm"
#define CT_STUDY "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
#define CT_SOP "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
#define MR_STUDY "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"
#define MR_SOP "1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"
#define FIX_STUDY "1.2.826.0.1.3680043.99.1"

static char *tmp;
static int port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the provider: stored instances in memory, plus one metadata-only study ---- */

#define MAX_STORED 32
typedef struct {
    pm_dicom_meta meta;
    char path[512];
    uint8_t hash[32];
} stored;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static stored store_list[MAX_STORED];
static int n_stored, n_assoc_end, n_prepared;
static unsigned last_assoc_stored;

static int prov_store(void *ctx, pm_dicom_store_rq *rq, char *err, size_t errlen)
{
    (void)ctx;
    const char *tmp_path = rq->tmp_path;
    pm_dicom_meta m;
    CHECK(rq->meta && rq->calling_ae && !strcmp(rq->peer_host, "127.0.0.1"));
    if (pm_dicom_read_meta(tmp_path, &m, err, errlen) != PM_OK) {
        unlink(tmp_path);
        return PM_E_DICOM;
    }
    CHECK(!strcmp(m.sop_uid, rq->meta->sop_uid));
    if (!strcmp(m.patient_id, "REFUSE")) {
        snprintf(err, errlen, "refused by the test provider");
        unlink(tmp_path);
        return PM_E_STORE;
    }
    pthread_mutex_lock(&mu);
    int i = n_stored;
    CHECK(i < MAX_STORED);
    stored *s = &store_list[i];
    s->meta = m;
    snprintf(s->path, sizeof s->path, "%s/blobs/%d.dcm", tmp, i);
    memset(s->hash, 0, sizeof s->hash);
    s->hash[0] = (uint8_t)(i + 1);
    CHECK(rename(tmp_path, s->path) == 0);
    n_stored++;
    pthread_mutex_unlock(&mu);
    return PM_OK;
}

static void prov_assoc_end(void *ctx, const char *ae, unsigned n)
{
    (void)ctx;
    (void)ae;
    pthread_mutex_lock(&mu);
    n_assoc_end++;
    last_assoc_stored = n;
    pthread_mutex_unlock(&mu);
}

static int prov_prepare(void *ctx, const char *ae, const char *study)
{
    (void)ctx;
    (void)ae;
    (void)study;
    pthread_mutex_lock(&mu);
    n_prepared++;
    pthread_mutex_unlock(&mu);
    return PM_OK;
}

static int prov_blob_path(void *ctx, const uint8_t hash[32], char *path, size_t pathlen)
{
    (void)ctx;
    int rc = PM_E_NOTFOUND;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_stored; i++)
        if (!memcmp(store_list[i].hash, hash, 32)) {
            snprintf(path, pathlen, "%s", store_list[i].path);
            rc = PM_OK;
        }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Builds one StudyView per study from the stored instances (one series per instance
 * keeps the fixture simple), plus a metadata-only study whose pixel data is nowhere. */
static int prov_for_each(void *ctx, const char *study_uid, const char *patient_id,
                         int (*fn)(void *, const Pm__StudyView *), void *fctx)
{
    (void)ctx;
    int rc = 0;
    pthread_mutex_lock(&mu);
    stored copy[MAX_STORED];
    int n = n_stored;
    memcpy(copy, store_list, sizeof copy);
    pthread_mutex_unlock(&mu);

    for (int i = 0; i < n && rc == 0; i++) {
        pm_dicom_meta *m = &copy[i].meta;
        if (study_uid && strcmp(study_uid, m->study_uid))
            continue;
        if (patient_id && strcmp(patient_id, m->patient_id))
            continue;
        Pm__Instance in = PM__INSTANCE__INIT;
        Pm__Instance *ins[] = {&in};
        in.sop_instance_uid = m->sop_uid;
        in.sop_class_uid = m->sop_class_uid;
        in.instance_number = m->instance_number;
        in.transfer_syntax_uid = m->transfer_syntax_uid;
        in.hash.data = copy[i].hash;
        in.hash.len = 32;
        Pm__Series se = PM__SERIES__INIT;
        Pm__Series *ses[] = {&se};
        se.series_instance_uid = m->series_uid;
        se.modality = m->modality;
        se.series_number = m->series_number;
        se.instances = ins;
        se.n_instances = 1;
        Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
        a.study_instance_uid = m->study_uid;
        a.patient_id = m->patient_id;
        a.patient_name = m->patient_name;
        a.study_date = m->study_date;
        a.study_time = m->study_time;
        a.series = ses;
        a.n_series = 1;
        Pm__StudyView v = PM__STUDY_VIEW__INIT;
        v.study = &a;
        rc = fn(fctx, &v);
    }
    if (rc == 0 && (!study_uid || !strcmp(study_uid, FIX_STUDY)) &&
        (!patient_id || !strcmp(patient_id, "1CT1"))) {
        /* Same patient as CT_small, another study, pixel data not held anywhere. */
        static uint8_t nohash[32] = {0xEE};
        Pm__Instance in = PM__INSTANCE__INIT;
        Pm__Instance *ins[] = {&in};
        in.sop_instance_uid = (char *)FIX_STUDY ".1.1";
        in.sop_class_uid = (char *)"1.2.840.10008.5.1.4.1.1.2";
        in.transfer_syntax_uid = (char *)"1.2.840.10008.1.2.1";
        in.hash.data = nohash;
        in.hash.len = 32;
        Pm__Series se = PM__SERIES__INIT;
        Pm__Series *ses[] = {&se};
        se.series_instance_uid = (char *)FIX_STUDY ".1";
        se.modality = (char *)"CT";
        se.instances = ins;
        se.n_instances = 1;
        Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
        a.study_instance_uid = (char *)FIX_STUDY;
        a.patient_id = (char *)"1CT1";
        a.patient_name = (char *)"CompressedSamples^CT1";
        a.study_date = (char *)"20210305";
        a.series = ses;
        a.n_series = 1;
        Pm__StudyView v = PM__STUDY_VIEW__INIT;
        v.study = &a;
        rc = fn(fctx, &v);
    }
    return rc;
}

/* ---- running dcmtk's clients ---- */

/* Runs argv in cwd with output to <tmp>/<log>.log; waits at most 60 s. Returns the exit
 * status, or -1 if it did not exit normally. */
static int run_tool(const char *log, const char *cwd, char *const argv[])
{
    char *logpath = check_path(tmp, log);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || chdir(cwd) != 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("TCP_NODELAY", "1", 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    free(logpath);
    double deadline = now_s() + 60;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "%s: timed out\n", argv[0]);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Does the log (or a file) contain needle? */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static int log_contains(const char *log, const char *needle)
{
    char *p = check_path(tmp, log);
    int r = file_contains(p, needle);
    free(p);
    return r;
}

/* Writes dcmdump's output of file to <tmp>/<log>.log. */
static void dump(const char *log, const char *file)
{
    char *argv[] = {"dcmdump", "-q", (char *)file, NULL};
    CHECK_EQ_INT(run_tool(log, tmp, argv), 0);
}

/* Offset of the data set in a Part-10 file: after the preamble and the group 0002
 * elements (always explicit VR little endian). */
static long dataset_offset(const unsigned char *b, long n)
{
    if (n < 132 || memcmp(b + 128, "DICM", 4))
        return 0;
    long o = 132;
    while (o + 8 <= n && b[o] == 0x02 && b[o + 1] == 0x00) {
        const unsigned char *vr = b + o + 4;
        int long_vr = !memcmp(vr, "OB", 2) || !memcmp(vr, "OW", 2) || !memcmp(vr, "SQ", 2) ||
                      !memcmp(vr, "UN", 2) || !memcmp(vr, "UT", 2);
        if (long_vr)
            o += 12 + (long)(b[o + 8] | b[o + 9] << 8 | b[o + 10] << 16 |
                             (unsigned long)b[o + 11] << 24);
        else
            o += 8 + (long)(b[o + 6] | b[o + 7] << 8);
    }
    return o;
}

static unsigned char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n + 1);
    CHECK(b && fread(b, 1, (size_t)*n, f) == (size_t)*n);
    fclose(f);
    return b;
}

/* 1 if the two files hold byte-identical data sets (meta headers may differ). */
static int same_dataset(const char *a, const char *b)
{
    long na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    long oa = dataset_offset(x, na), ob = dataset_offset(y, nb);
    int same = na - oa == nb - ob && !memcmp(x + oa, y + ob, (size_t)(na - oa));
    free(x);
    free(y);
    return same;
}

/* 1 if stored holds the data set storescu sent for source: the same bytes, except that
 * dcmtk never sends a trailing DataSetTrailingPadding (FFFC,FFFC) element. */
static int same_as_sent(const char *stored_path, const char *source)
{
    long na, nb;
    unsigned char *x = slurp(stored_path, &na), *y = slurp(source, &nb);
    long oa = dataset_offset(x, na), ob = dataset_offset(y, nb);
    long la = na - oa, lb = nb - ob;
    int same = la <= lb && !memcmp(x + oa, y + ob, (size_t)la) &&
               (la == lb || (lb - la >= 4 && !memcmp(y + ob + la, "\xfc\xff\xfc\xff", 4)));
    free(x);
    free(y);
    return same;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    closedir(d);
    return n;
}

/* Files in dir holding data: the spool keeps empty files made ahead (spool.cc). */
static int count_files_with_data(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) && st.st_size)
            n++;
    closedir(d);
    return n;
}

/* The first file in dir whose name starts with prefix (the caller frees it). */
static char *first_file(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    char *r = NULL;
    struct dirent *e;
    while (!r && (e = readdir(d)))
        if (e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix)))
            r = check_path(dir, e->d_name);
    closedir(d);
    CHECK(r != NULL);
    return r;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void wait_for(int *counter, int want, double seconds)
{
    double deadline = now_s() + seconds;
    for (;;) {
        pthread_mutex_lock(&mu);
        int v = *counter;
        pthread_mutex_unlock(&mu);
        if (v >= want)
            return;
        CHECK(now_s() < deadline);
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static char port_s[16];
#define SCU_ARGS(aet) "-aet", aet, "-aec", "PACSMESH", "127.0.0.1", port_s

/* ---- pm_dicom_read_meta ---- */

static void test_read_meta(void)
{
    pm_dicom_meta m;
    char err[256];
    CHECK_RC(pm_dicom_read_meta(CT_FILE, &m, err, sizeof err));
    CHECK(!strcmp(m.study_uid, CT_STUDY));
    CHECK(!strcmp(m.sop_uid, CT_SOP));
    CHECK(!strcmp(m.sop_class_uid, "1.2.840.10008.5.1.4.1.1.2"));
    CHECK(!strcmp(m.transfer_syntax_uid, "1.2.840.10008.1.2.1"));
    CHECK(!strcmp(m.patient_id, "1CT1"));
    CHECK(!strcmp(m.modality, "CT"));
    CHECK(!strcmp(m.study_date, "20040119"));

    /* Raw data set without meta header: still read, transfer syntax detected. */
    CHECK_RC(pm_dicom_read_meta(PYDICOM "/ExplVR_LitEndNoMeta.dcm", &m, err, sizeof err));
    CHECK(m.transfer_syntax_uid[0] != '\0');

    static const char *bad[] = {"MR_truncated.dcm",         "badVR.dcm",
                                "rtplan_truncated.dcm",     "no_meta.dcm",
                                "meta_missing_tsyntax.dcm", "README.txt"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *p = check_path(PYDICOM, bad[i]);
        int rc = pm_dicom_read_meta(p, &m, err, sizeof err);
        printf("read_meta %-26s -> %s%s\n", bad[i], rc == PM_OK ? "ok " : "", err);
        CHECK(rc == PM_OK || (rc == PM_E_DICOM && err[0] != '\0' && !strchr(err, '\n')));
        free(p);
    }
    CHECK_CODE(pm_dicom_read_meta(PYDICOM "/README.txt", &m, err, sizeof err), PM_E_DICOM);
    CHECK(strstr(err, "not a DICOM file") != NULL);
    CHECK_CODE(pm_dicom_read_meta(PYDICOM "/MR_truncated.dcm", &m, err, sizeof err), PM_E_DICOM);

    /* Random bytes, and truncations of a good file at many lengths. */
    char *rnd = check_path(tmp, "random.bin");
    srand(42);
    for (int round = 0; round < 20; round++) {
        FILE *f = fopen(rnd, "wb");
        int len = rand() % 4096;
        for (int i = 0; i < len; i++)
            fputc(round % 2 && i >= 128 && i < 132 ? "DICM"[i - 128] : rand() & 0xFF, f);
        fclose(f);
        CHECK_CODE(pm_dicom_read_meta(rnd, &m, err, sizeof err), PM_E_DICOM);
    }
    long n;
    unsigned char *ct = slurp(CT_FILE, &n);
    for (long cut = 0; cut < n; cut += 97) {
        FILE *f = fopen(rnd, "wb");
        fwrite(ct, 1, (size_t)cut, f);
        fclose(f);
        int rc = pm_dicom_read_meta(rnd, &m, err, sizeof err);
        CHECK(rc == PM_OK || rc == PM_E_DICOM);
    }
    free(ct);
    free(rnd);
    rnd = check_path(tmp, "missing-file");
    CHECK_CODE(pm_dicom_read_meta(rnd, &m, err, sizeof err), PM_E_DICOM);
    free(rnd);
}

/* ---- C-ECHO, association policy, Nagle ---- */

static double time_echo(int repeat)
{
    char r[16];
    snprintf(r, sizeof r, "%d", repeat);
    char *argv[] = {"echoscu", "--repeat", r, SCU_ARGS("TESTSCU"), NULL};
    double t = now_s();
    CHECK_EQ_INT(run_tool("echo-timed.log", tmp, argv), 0);
    return now_s() - t;
}

static void test_echo(void)
{
    char *argv[] = {"echoscu", "-d", SCU_ARGS("TESTSCU"), NULL};
    CHECK_EQ_INT(run_tool("echo.log", tmp, argv), 0);
    /* The A-ASSOCIATE-AC carries the maximum PDU we receive (settings: 0, the default). */
    CHECK(log_contains("echo.log", "Their Max PDU Receive Size:  131072"));

    /* A calling AE title not in allowed_aes is refused at association time. */
    char *bad[] = {"echoscu", SCU_ARGS("INTRUDER"), NULL};
    CHECK(run_tool("echo-refused.log", tmp, bad) != 0);
    CHECK(log_contains("echo-refused.log", "Rejected") ||
          log_contains("echo-refused.log", "rejected"));

    /* Round trip: 1000 echoes on one association against 1, so process start-up cancels
     * out. With Nagle's delayed-ACK stall each would take ~40 ms. */
    double best = 1e9;
    for (int attempt = 0; attempt < 3; attempt++) {
        double one = time_echo(1), many = time_echo(1001);
        double per = (many - one) / 1000;
        if (per < best)
            best = per;
    }
    printf("echo round trip: %.3f ms\n", best * 1000);
    CHECK(best < 0.010);

    /* Several associations at once. */
    pid_t pids[6];
    for (int i = 0; i < 6; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            char log[32];
            snprintf(log, sizeof log, "echo-par-%d.log", i);
            char *a[] = {"echoscu", "--repeat", "20", SCU_ARGS("TESTSCU"), NULL};
            _exit(run_tool(log, tmp, a));
        }
    }
    for (int i = 0; i < 6; i++) {
        int st;
        CHECK(waitpid(pids[i], &st, 0) == pids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

/* ---- C-STORE ---- */

static void test_store(void)
{
    char *argv[] = {"storescu", "-v", SCU_ARGS("TESTSCU"), CT_FILE, MR_FILE, NULL};
    /* Every association's end is reported (echo and find ones before this too): wait
     * for one more than have ended so far, this one. */
    pthread_mutex_lock(&mu);
    int ended = n_assoc_end;
    pthread_mutex_unlock(&mu);
    CHECK_EQ_INT(run_tool("store.log", tmp, argv), 0);
    wait_for(&n_assoc_end, ended + 1, 10);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(n_stored, 2);
    CHECK_EQ_INT(last_assoc_stored, 2);
    CHECK(!strcmp(store_list[0].meta.sop_uid, CT_SOP));
    CHECK(!strcmp(store_list[1].meta.sop_uid, MR_SOP));
    pthread_mutex_unlock(&mu);
    /* What was received is what storescu sent: same data set bytes as the source files
     * (storescu sends these uncompressed files unchanged). */
    CHECK(same_as_sent(store_list[0].path, CT_FILE));
    CHECK(same_as_sent(store_list[1].path, MR_FILE));

    /* A provider failure is a failure status with the provider's reason, and the
     * spooled file does not linger. */
    char *copy = check_path(tmp, "refuse.dcm");
    char *cp[] = {"cp", CT_FILE, copy, NULL};
    CHECK_EQ_INT(run_tool("cp.log", tmp, cp), 0);
    char *mod[] = {"dcmodify", "-nb",
                   "-m",       "PatientID=REFUSE",
                   "-m",       "SOPInstanceUID=1.2.826.0.1.3680043.99.7",
                   copy,       NULL};
    CHECK_EQ_INT(run_tool("dcmodify.log", tmp, mod), 0);
    char *st2[] = {"storescu", "-v", SCU_ARGS("TESTSCU"), copy, NULL};
    run_tool("store-refused.log", tmp, st2);
    CHECK(log_contains("store-refused.log", "0xa700") ||
          log_contains("store-refused.log", "Refused: OutOfResources"));
    wait_for(&n_assoc_end, ended + 2, 10);
    CHECK_EQ_INT(n_stored, 2);
    char *spool = check_path(tmp, "spool");
    CHECK_EQ_INT(count_files_with_data(spool), 0);
    free(spool);
    free(copy);
}

/* ---- C-FIND ---- */

static int find(const char *name, const char *model, char *const *keys)
{
    char *dir = check_path(tmp, name);
    CHECK(mkdir(dir, 0700) == 0);
    char *argv[64];
    int n = 0;
    argv[n++] = "findscu";
    argv[n++] = (char *)model;
    argv[n++] = "-X";
    for (; *keys; keys++) {
        argv[n++] = "-k";
        argv[n++] = *keys;
    }
    char *tail[] = {SCU_ARGS("TESTSCU"), NULL};
    for (int i = 0; tail[i]; i++)
        argv[n++] = tail[i];
    argv[n] = NULL;
    char log[64];
    snprintf(log, sizeof log, "%s.log", name);
    CHECK_EQ_INT(run_tool(log, dir, argv), 0);
    int count = count_files(dir, "rsp");
    free(dir);
    return count;
}

static void dump_rsp(const char *name, const char *file, const char *log)
{
    char *dir = check_path(tmp, name);
    char *p = check_path(dir, file);
    dump(log, p);
    free(p);
    free(dir);
}

static void test_find(void)
{
    /* STUDY level (Study Root): case-insensitive name wildcard and a date range. */
    char *k1[] = {"QueryRetrieveLevel=STUDY",
                  "PatientName=compressedsamples^c*",
                  "StudyDate=20040101-20041231",
                  "StudyInstanceUID",
                  "ModalitiesInStudy",
                  "NumberOfStudyRelatedInstances",
                  "0009,0010",
                  NULL};
    CHECK_EQ_INT(find("find-study", "-S", k1), 1);
    dump_rsp("find-study", "rsp0001.dcm", "find-study-dump.log");
    CHECK(log_contains("find-study-dump.log", CT_STUDY));
    CHECK(log_contains("find-study-dump.log", "[CT]"));
    CHECK(log_contains("find-study-dump.log", "(0009,0010)")); /* unknown key, returned empty */

    /* Open range and universal: both of CT1's studies. */
    char *k2[] = {"QueryRetrieveLevel=STUDY", "PatientID=1CT1", "StudyDate=20040101-",
                  "StudyInstanceUID", NULL};
    CHECK_EQ_INT(find("find-range", "-S", k2), 2);
    char *k3[] = {"QueryRetrieveLevel=STUDY", "StudyDate=-20031231", NULL};
    CHECK_EQ_INT(find("find-none", "-S", k3), 0);

    /* UID list. */
    char *k4[] = {"QueryRetrieveLevel=STUDY", "StudyInstanceUID=" CT_STUDY "\\" MR_STUDY, NULL};
    CHECK_EQ_INT(find("find-uidlist", "-S", k4), 2);

    /* PATIENT level (Patient Root) aggregates the two studies of 1CT1. */
    char *k5[] = {"QueryRetrieveLevel=PATIENT", "PatientID=1CT1", "PatientName",
                  "NumberOfPatientRelatedStudies", NULL};
    CHECK_EQ_INT(find("find-patient", "-P", k5), 1);
    dump_rsp("find-patient", "rsp0001.dcm", "find-patient-dump.log");
    CHECK(log_contains("find-patient-dump.log", "CompressedSamples^CT1"));
    CHECK(log_contains("find-patient-dump.log", "IS [2]"));
    char *k6[] = {"QueryRetrieveLevel=PATIENT", "PatientID", NULL};
    CHECK_EQ_INT(find("find-patients", "-P", k6), 2);
    /* PATIENT level is not part of Study Root: a failure, no matches. */
    char *dir = check_path(tmp, "find-badlevel");
    CHECK(mkdir(dir, 0700) == 0);
    char *bad[] = {"findscu",           "-S", "-X", "-k", "QueryRetrieveLevel=PATIENT",
                   SCU_ARGS("TESTSCU"), NULL};
    run_tool("find-badlevel.log", dir, bad);
    CHECK_EQ_INT(count_files(dir, "rsp"), 0);
    free(dir);

    /* SERIES and IMAGE levels. */
    char *k7[] = {"QueryRetrieveLevel=SERIES", "StudyInstanceUID=" MR_STUDY, "SeriesInstanceUID",
                  "Modality=MR", NULL};
    CHECK_EQ_INT(find("find-series", "-S", k7), 1);
    char *k8[] = {"QueryRetrieveLevel=IMAGE", "StudyInstanceUID=" CT_STUDY,
                  "SOPInstanceUID",           "SOPClassUID",
                  "InstanceNumber",           NULL};
    CHECK_EQ_INT(find("find-image", "-P", k8), 1);
    dump_rsp("find-image", "rsp0001.dcm", "find-image-dump.log");
    CHECK(log_contains("find-image-dump.log", CT_SOP));
    CHECK(log_contains("find-image-dump.log", "IMAGE"));
}

/* ---- C-GET ---- */

static void test_get(void)
{
    char *out = check_path(tmp, "get");
    CHECK(mkdir(out, 0700) == 0);
    int before = n_prepared;
    char *argv[] = {"getscu",
                    "-S",
                    "+B",
                    "-od",
                    out,
                    "-k",
                    "QueryRetrieveLevel=STUDY",
                    "-k",
                    "StudyInstanceUID=" CT_STUDY,
                    SCU_ARGS("TESTSCU"),
                    NULL};
    CHECK_EQ_INT(run_tool("get.log", tmp, argv), 0);
    CHECK_EQ_INT(count_files(out, ""), 1);
    CHECK(n_prepared == before + 1);
    char *got = first_file(out, "");
    CHECK(same_dataset(got, store_list[0].path));
    CHECK(same_as_sent(got, CT_FILE));
    free(got);

    /* The metadata-only study: its instance is not held, the sub-operation fails. */
    char *out2 = check_path(tmp, "get-missing");
    CHECK(mkdir(out2, 0700) == 0);
    char *a2[] = {"getscu",
                  "-S",
                  "-od",
                  out2,
                  "-k",
                  "QueryRetrieveLevel=STUDY",
                  "-k",
                  "StudyInstanceUID=" FIX_STUDY,
                  SCU_ARGS("TESTSCU"),
                  NULL};
    run_tool("get-missing.log", tmp, a2);
    CHECK_EQ_INT(count_files(out2, ""), 0);
    CHECK(log_contains("get-missing.log", "Failed") || log_contains("get-missing.log", "0xa702") ||
          log_contains("get-missing.log", "Refused"));
    free(out);
    free(out2);
}

/* ---- C-MOVE, with storescp --inetd on a loopback socket of ours ---- */

typedef struct {
    int listen_fd;
    char dir[512];
    int served;
    _Atomic int done;           /* set by main once movescu has returned */
    unsigned long proposed_pdu; /* the edge's maximum PDU, from its A-ASSOCIATE-RQ */
} storescp_ctx;

/* Peeks at the A-ASSOCIATE-RQ on fd (leaving it for storescp) and returns the Maximum
 * Length the requestor proposes (user information sub-item 0x51), or 0. */
static unsigned long peek_max_pdu(int fd)
{
    static unsigned char b[65536];
    double deadline = now_s() + 10;
    long want = 6, have = 0;
    while (now_s() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        have = recv(fd, b, sizeof b, MSG_PEEK);
        if (have >= 6)
            want = 6 + (long)((unsigned long)b[2] << 24 | b[3] << 16 | b[4] << 8 | b[5]);
        if (have >= want || want > (long)sizeof b)
            break;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (long i = 6; i + 8 <= have; i++)
        if (b[i] == 0x51 && b[i + 1] == 0 && b[i + 2] == 0 && b[i + 3] == 4)
            return (unsigned long)b[i + 4] << 24 | b[i + 5] << 16 | b[i + 6] << 8 | b[i + 7];
    return 0;
}

static void *storescp_main(void *arg)
{
    storescp_ctx *s = arg;
    struct pollfd p = {s->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0)
        return NULL;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    s->proposed_pdu = peek_max_pdu(fd);
    pid_t pid = fork();
    if (pid == 0) {
        char *logp = check_path(tmp, "storescp.log");
        int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 0);
        dup2(lf, 2);
        dup2(lf, 1);
        char *argv[] = {"storescp", "--inetd", "+B", "-aet", "STORESCP", "-od", s->dir, NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd);
    /* storescp --inetd lingers after its association; once movescu has its final
     * response the files are written, and the storescp we started is stopped. */
    double deadline = now_s() + 60;
    int status;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (s->done || now_s() > deadline) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    s->served = 1;
    return NULL;
}

static void test_move(int dest_listen_fd)
{
    storescp_ctx s = {.listen_fd = dest_listen_fd};
    snprintf(s.dir, sizeof s.dir, "%s/moved", tmp);
    CHECK(mkdir(s.dir, 0700) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, storescp_main, &s) == 0);
    char *argv[] = {"movescu",
                    "-S",
                    "-aem",
                    "STORESCP",
                    "-k",
                    "QueryRetrieveLevel=STUDY",
                    "-k",
                    "StudyInstanceUID=" MR_STUDY,
                    SCU_ARGS("MOVESCU"),
                    NULL};
    /* Every series of the study by a universal SeriesInstanceUID is refused (PS3.4
     * C.4.2.2.1: the retrieve level's unique key names entities). */
    char *universal[] = {"movescu",
                         "-v",
                         "-S",
                         "-aem",
                         "STORESCP",
                         "-k",
                         "QueryRetrieveLevel=SERIES",
                         "-k",
                         "StudyInstanceUID=" MR_STUDY,
                         "-k",
                         "SeriesInstanceUID",
                         SCU_ARGS("MOVESCU"),
                         NULL};
    run_tool("move-universal.log", tmp, universal);
    CHECK(log_contains("move-universal.log",
                       "Final Move Response (Error: DataSetDoesNotMatchSOPClass)") ||
          log_contains("move-universal.log", "0xa900"));
    CHECK_EQ_INT(run_tool("move.log", tmp, argv), 0);
    s.done = 1;
    pthread_join(th, NULL);
    CHECK(s.served);
    printf("C-MOVE sub-association max PDU proposed: %lu\n", s.proposed_pdu);
    CHECK_EQ_INT(s.proposed_pdu, 131072);
    CHECK_EQ_INT(count_files(s.dir, ""), 1);
    char *got = first_file(s.dir, "");
    CHECK(same_dataset(got, store_list[1].path));
    CHECK(same_as_sent(got, MR_FILE));
    free(got);

    /* An unknown destination is refused with 0xA801. */
    char *bad[] = {"movescu",
                   "-S",
                   "-aem",
                   "NOWHERE",
                   "-k",
                   "QueryRetrieveLevel=STUDY",
                   "-k",
                   "StudyInstanceUID=" MR_STUDY,
                   SCU_ARGS("MOVESCU"),
                   NULL};
    run_tool("move-unknown.log", tmp, bad);
    CHECK(log_contains("move-unknown.log", "0xa801") ||
          log_contains("move-unknown.log", "Move Destination unknown") ||
          log_contains("move-unknown.log", "MoveDestinationUnknown"));
}

/* ---- stop ---- */

static void test_stop(pm_dicom_server **srv)
{
    /* A client connected but silent must not hold stop up. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    double t = now_s();
    pm_dicom_server_stop(srv);
    double took = now_s() - t;
    printf("stop took %.3f s\n", took);
    CHECK(*srv == NULL);
    CHECK(took < 1.5);
    pm_dicom_server_stop(srv); /* safe twice */
    close(fd);
}

int main(void)
{
    unsetenv("TCP_NODELAY");
    signal(SIGPIPE, SIG_IGN);
    tmp = check_tmpdir("dicom-edge");
    char *spool = check_path(tmp, "spool"), *blobs = check_path(tmp, "blobs");
    CHECK(mkdir(spool, 0700) == 0 && mkdir(blobs, 0700) == 0);

    test_read_meta();

    /* The C-MOVE destination's loopback listener, bound before the server starts. */
    int dest_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(bind(dest_fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(dest_fd, 4) == 0);
    CHECK(getsockname(dest_fd, (struct sockaddr *)&sa, &len) == 0);
    pm_dicom_destination dest = {
        .destination_ae = "STORESCP", .host = "127.0.0.1", .port = ntohs(sa.sin_port)};

    static const char *const allowed[] = {"TESTSCU", "MOVESCU", NULL};
    pm_dicom_settings st = {.ae_title = "PACSMESH",
                            .bind_address = "127.0.0.1",
                            .allowed_aes = allowed,
                            .destinations = &dest,
                            .n_destinations = 1,
                            .spool_dir = spool};
    pm_dicom_provider prov = {.store = prov_store,
                              .association_end = prov_assoc_end,
                              .for_each_study = prov_for_each,
                              .prepare_study = prov_prepare,
                              .blob_path = prov_blob_path};
    pm_dicom_server *srv = NULL;
    for (int attempt = 0; attempt < 5 && !srv; attempt++) {
        st.port = port = free_port();
        if (pm_dicom_server_start(&st, &prov, &srv) != PM_OK)
            srv = NULL;
    }
    CHECK(srv != NULL);
    snprintf(port_s, sizeof port_s, "%d", port);

    /* A second server on the same port must fail cleanly. */
    pm_dicom_server *dup = NULL;
    CHECK_CODE(pm_dicom_server_start(&st, &prov, &dup), PM_E_NET);
    CHECK(dup == NULL);

    test_echo();
    test_store();
    test_find();
    test_get();
    test_move(dest_fd);
    test_stop(&srv);

    close(dest_fd);
    free(spool);
    free(blobs);
    if (!getenv("PM_KEEP_TMP"))
        check_tmpdir_remove(&tmp);
    printf("test_dicom_edge: ok\n");
    return 0;
}
