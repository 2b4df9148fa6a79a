/* C-FIND streams its matches (node/dicom/find.cc): a query that scans (universal
 * matching, or a leading '*') sends its first match as soon as it is found, not after
 * the scan. The provider here pauses its walk after the first study until dcmtk's
 * findscu, run against a pm_dicom_server on 127.0.0.1, has written that first response
 * to a file (findscu --extract writes each as it arrives); an edge that collected every
 * match first would never send it, and the wait runs into its deadline. Then the walk
 * goes on and every match must arrive. The same for a leading-'*' PatientName query.
 *
 * Every wait has a deadline; the test stops only the processes it started, by PID. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node/dicom/dicom.h"
#include "test/check.h"

#define N_STUDIES 20
#define PAUSE_DEADLINE_S 20.0

static char *tmp, *rsp_dir, port_s[16];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int first_seen_while_paused, walks, visited;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exists(const char *dir, const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && st.st_size > 0;
}

/* After the first study: waits for the client to hold the first response. */
static void pause_for_first(void)
{
    pthread_mutex_lock(&mu);
    const char *dir = rsp_dir;
    pthread_mutex_unlock(&mu);
    double deadline = now_s() + PAUSE_DEADLINE_S;
    int seen = 0;
    while (dir && !(seen = exists(dir, "rsp0001.dcm")) && now_s() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&mu);
    first_seen_while_paused = seen;
    pthread_mutex_unlock(&mu);
}

static int prov_for_each(void *ctx, const char *study_uid, const char *patient_id,
                         int (*fn)(void *, const Pm__StudyView *), void *fctx)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    walks++;
    pthread_mutex_unlock(&mu);
    int rc = 0;
    for (int i = 0; i < N_STUDIES && rc == 0; i++) {
        char uid[64], pid[32], name[64];
        snprintf(uid, sizeof uid, "1.2.826.0.1.3680043.99.7.%d", i + 1);
        snprintf(pid, sizeof pid, "P%04d", i + 1);
        snprintf(name, sizeof name, "STREAM^PATIENT%02d", i + 1);
        if ((study_uid && strcmp(study_uid, uid)) || (patient_id && strcmp(patient_id, pid)))
            continue;
        pthread_mutex_lock(&mu);
        visited++;
        pthread_mutex_unlock(&mu);
        Pm__Series se = PM__SERIES__INIT;
        Pm__Series *ses[] = {&se};
        se.series_instance_uid = uid;
        se.modality = (char *)"CT";
        Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
        a.study_instance_uid = uid;
        a.patient_id = pid;
        a.patient_name = name;
        a.study_date = (char *)"20240102";
        a.series = ses;
        a.n_series = 1;
        Pm__StudyView v = PM__STUDY_VIEW__INIT;
        v.study = &a;
        rc = fn(fctx, &v);
        if (i == 0 && rc == 0)
            pause_for_first();
    }
    return rc;
}

static int prov_prepare(void *ctx, const char *ae, const char *study)
{
    (void)ctx, (void)ae, (void)study;
    return PM_E_NOTFOUND;
}

static int prov_blob_path(void *ctx, const uint8_t hash[32], char *path, size_t pathlen)
{
    (void)ctx, (void)hash, (void)path, (void)pathlen;
    return PM_E_NOTFOUND;
}

static int prov_store(void *ctx, pm_dicom_store_rq *rq, char *err, size_t errlen)
{
    (void)ctx;
    unlink(rq->tmp_path);
    snprintf(err, errlen, "this test stores nothing");
    return PM_E_INVAL;
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

/* Whether findscu's output in the directory of name holds text. */
static int findscu_said(const char *name, const char *text)
{
    char path[1024], buf[65536];
    snprintf(path, sizeof path, "%s/%s/findscu.out", tmp, name);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

static pm_dicom_server *start_server(pm_dicom_settings *st, pm_dicom_provider *prov)
{
    pm_dicom_server *srv = NULL;
    for (int attempt = 0; attempt < 5 && !srv; attempt++) {
        st->port = free_port();
        if (pm_dicom_server_start(st, prov, &srv) != PM_OK)
            srv = NULL;
    }
    CHECK(srv != NULL);
    snprintf(port_s, sizeof port_s, "%d", st->port);
    return srv;
}

static int count_rsp(const char *dir)
{
    int n = 0;
    char name[32];
    for (int i = 1; i <= N_STUDIES + 1; i++) {
        snprintf(name, sizeof name, "rsp%04d.dcm", i);
        n += exists(dir, name);
    }
    return n;
}

/* findscu with keys, writing responses into a new directory <tmp>/name; its exit
 * status (60 s at most). */
static int findscu(const char *name, const char *const *keys)
{
    char *dir = check_path(tmp, name);
    CHECK(mkdir(dir, 0700) == 0);
    pthread_mutex_lock(&mu);
    free(rsp_dir);
    rsp_dir = dir;
    first_seen_while_paused = 0;
    pthread_mutex_unlock(&mu);
    char *argv[32];
    int n = 0;
    argv[n++] = "findscu";
    argv[n++] = "-S";
    argv[n++] = "-X";
    argv[n++] = "-v"; /* prints each response's status */
    for (; *keys; keys++) {
        argv[n++] = "-k";
        argv[n++] = (char *)*keys;
    }
    char *tail[] = {"-aet", "TESTSCU", "-aec", "PACSMESH", "127.0.0.1", port_s, NULL};
    for (int i = 0; tail[i]; i++)
        argv[n++] = tail[i];
    argv[n] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(127);
        int fd = open("findscu.out", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    double deadline = now_s() + 60;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (now_s() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_streamed(const char *name, const char *const *keys, int want)
{
    double t0 = now_s();
    CHECK_EQ_INT(findscu(name, keys), 0);
    pthread_mutex_lock(&mu);
    int seen = first_seen_while_paused;
    char *dir = strdup(rsp_dir);
    pthread_mutex_unlock(&mu);
    /* The first response was with the client while the walk was paused after it. */
    CHECK(seen);
    CHECK_EQ_INT(count_rsp(dir), want);
    printf("test_find_stream: %s: %d matches, first before the walk went on, %.2f s\n", name, want,
           now_s() - t0);
    free(dir);
}

int main(void)
{
    if (system("command -v findscu >/dev/null 2>&1") != 0) {
        printf("test_find_stream: findscu (dcmtk) is not installed: skipped\n");
        return 77;
    }
    tmp = check_tmpdir("find-stream");
    char *spool = check_path(tmp, "spool");
    CHECK(mkdir(spool, 0700) == 0);
    static const char *const allowed[] = {"TESTSCU", NULL};
    pm_dicom_settings st = {.ae_title = "PACSMESH",
                            .bind_address = "127.0.0.1",
                            .allowed_aes = allowed,
                            .spool_dir = spool};
    pm_dicom_provider prov = {.store = prov_store,
                              .for_each_study = prov_for_each,
                              .prepare_study = prov_prepare,
                              .blob_path = prov_blob_path};
    pm_dicom_server *srv = start_server(&st, &prov);

    const char *universal[] = {"QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName", NULL};
    expect_streamed("universal", universal, N_STUDIES);
    const char *leading[] = {"QueryRetrieveLevel=STUDY", "PatientName=*patient*1",
                             "StudyInstanceUID", NULL};
    expect_streamed("leading-star", leading, 2); /* PATIENT01 (the first walked), PATIENT11 */
    CHECK(findscu_said("universal", "Success"));
    pm_dicom_server_stop(&srv);

    /* With max_find_results: the first matches, then the walk stops, and the final
     * status says the list is partial (Cancel, as Orthanc's LimitFindResults). */
    st.max_find_results = 5;
    srv = start_server(&st, &prov);
    pthread_mutex_lock(&mu);
    visited = 0;
    pthread_mutex_unlock(&mu);
    expect_streamed("limited", universal, 5);
    CHECK(findscu_said("limited", "Cancel"));
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(visited, 6); /* the sixth match showed the limit was passed; no more */
    pthread_mutex_unlock(&mu);
    pm_dicom_server_stop(&srv);
    pthread_mutex_lock(&mu);
    CHECK_EQ_INT(walks, 3);
    free(rsp_dir);
    rsp_dir = NULL;
    pthread_mutex_unlock(&mu);
    free(spool);
    if (!getenv("PM_KEEP_TMP"))
        check_tmpdir_remove(&tmp);
    printf("test_find_stream: ok\n");
    return 0;
}
