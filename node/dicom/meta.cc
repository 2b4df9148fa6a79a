/* pm_dicom_read_meta: the metadata the node needs from one DICOM file, read with dcmtk.
 * The file comes from a peer, an import or a DICOM client, so every failure is a
 * one-line reason, never an exception or an abort.
 *
 * Two defences stand between such a file and the node's process. First the bounded
 * structure scan (node/dicom/scan.h) refuses what nests too deep or holds too many
 * elements, before dcmtk sees a byte. Then dcmtk reads the file in a parser process
 * (the node's own executable, started once and reused, one per concurrent reader): a
 * file that still crashes dcmtk ends that process, the instance is refused with a
 * reason, and the next file gets a fresh parser. */
#include "node/dicom/scan.h"
#include "node/dicom/shim_internal.h"

#include <dcmtk/oflog/oflog.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

extern char **environ;

#define PM_STR_(x) #x
#define PM_STR(x) PM_STR_(x)

#if defined(__SANITIZE_ADDRESS__)
#define PM_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PM_UNDER_ASAN 1
#endif
#endif

void pm_dicom_edge_quiet_dcmtk(void)
{
    static std::once_flag once;
    std::call_once(once, [] { OFLog::configure(OFLogger::FATAL_LOG_LEVEL); });
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Copies the attribute's value, all values joined by backslashes, without padding.
 * Whole or not at all: a value that does not fit is remembered in *too_long (the
 * first such attribute) and the instance refused. */
static void get_str(DcmItem *item, const DcmTagKey &tag, const char *keyword, char *out,
                    size_t outlen, const char **too_long)
{
    OFString v;
    out[0] = '\0';
    if (item->findAndGetOFStringArray(tag, v).bad())
        return;
    size_t b = 0, e = v.length();
    while (b < e && (v[b] == ' ' || v[b] == '\0'))
        b++;
    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\0'))
        e--;
    if (e - b > outlen - 1) {
        if (!*too_long)
            *too_long = keyword;
        return;
    }
    memcpy(out, v.c_str() + b, e - b);
    out[e - b] = '\0';
}

static int get_int(DcmItem *item, const DcmTagKey &tag)
{
    Sint32 v = 0;
    if (item->findAndGetSint32(tag, v).bad())
        return 0;
    return (int)v;
}

/* Did the file start like a DICOM Part-10 file or a raw data set? Used to tell "not a
 * DICOM file" from "truncated" when dcmtk gives up. */
static bool looks_like_dicom(const char *path)
{
    unsigned char buf[132];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (n == sizeof buf && memcmp(buf + 128, "DICM", 4) == 0)
        return true;
    /* A raw data set usually starts with a group 0x0008 tag (either byte order). */
    return n >= 4 && ((buf[0] == 0x08 && buf[1] == 0x00) || (buf[0] == 0x00 && buf[1] == 0x08));
}

/* Why dcmtk could not load the file at path, as a one-line reason. */
static void load_failure(const char *path, const OFCondition &c, char *err, size_t errlen)
{
    char msg[256];
    if (!looks_like_dicom(path))
        snprintf(msg, sizeof msg, "not a DICOM file (%s)", c.text());
    else if (c == EC_StreamNotifyClient || c == EC_InvalidStream || c == EC_ItemEnd ||
             c == EC_SequEnd)
        snprintf(msg, sizeof msg, "truncated (%s)", c.text());
    else
        snprintf(msg, sizeof msg, "unreadable DICOM (%s)", c.text());
    set_err(err, errlen, msg);
}

/* A string attribute of the data set and the pm_dicom_meta field it fills. */
struct meta_field {
    DcmTagKey tag;
    const char *keyword;
    size_t offset, size;
};
#define META_FIELD(tag, name, field)                                                               \
    {                                                                                              \
        tag, name, offsetof(pm_dicom_meta, field), sizeof(pm_dicom_meta::field)                    \
    }

/* The identifying UIDs, read before the meta header's fallbacks for the SOP's. */
static const meta_field uid_fields[] = {
    META_FIELD(DCM_StudyInstanceUID, "StudyInstanceUID", study_uid),
    META_FIELD(DCM_SeriesInstanceUID, "SeriesInstanceUID", series_uid),
    META_FIELD(DCM_SOPInstanceUID, "SOPInstanceUID", sop_uid),
    META_FIELD(DCM_SOPClassUID, "SOPClassUID", sop_class_uid),
};

static const meta_field text_fields[] = {
    META_FIELD(DCM_PatientID, "PatientID", patient_id),
    META_FIELD(DCM_IssuerOfPatientID, "IssuerOfPatientID", issuer_of_patient_id),
    META_FIELD(DCM_PatientName, "PatientName", patient_name),
    META_FIELD(DCM_PatientBirthDate, "PatientBirthDate", patient_birth_date),
    META_FIELD(DCM_PatientSex, "PatientSex", patient_sex),
    META_FIELD(DCM_StudyDate, "StudyDate", study_date),
    META_FIELD(DCM_StudyTime, "StudyTime", study_time),
    META_FIELD(DCM_AccessionNumber, "AccessionNumber", accession_number),
    META_FIELD(DCM_StudyDescription, "StudyDescription", study_description),
    META_FIELD(DCM_ReferringPhysicianName, "ReferringPhysicianName", referring_physician),
    META_FIELD(DCM_StudyID, "StudyID", study_id),
    META_FIELD(DCM_Modality, "Modality", modality),
    META_FIELD(DCM_SeriesDescription, "SeriesDescription", series_description),
    META_FIELD(DCM_BodyPartExamined, "BodyPartExamined", body_part),
};

template <size_t N>
static void get_fields(DcmItem *item, const meta_field (&fields)[N], pm_dicom_meta *out,
                       const char **too_long)
{
    for (const meta_field &f : fields)
        get_str(item, f.tag, f.keyword, (char *)out + f.offset, f.size, too_long);
}

/* The SOP UIDs the data set lacks, and the transfer syntax, from the meta header; the
 * transfer syntax dcmtk read the data set in when there is no meta header. */
static void get_from_meta_header(DcmMetaInfo *mi, DcmDataset *ds, pm_dicom_meta *out,
                                 const char **too_long)
{
    if (mi) {
        if (!out->sop_uid[0])
            get_str(mi, DCM_MediaStorageSOPInstanceUID, "MediaStorageSOPInstanceUID", out->sop_uid,
                    sizeof out->sop_uid, too_long);
        if (!out->sop_class_uid[0])
            get_str(mi, DCM_MediaStorageSOPClassUID, "MediaStorageSOPClassUID", out->sop_class_uid,
                    sizeof out->sop_class_uid, too_long);
        get_str(mi, DCM_TransferSyntaxUID, "TransferSyntaxUID", out->transfer_syntax_uid,
                sizeof out->transfer_syntax_uid, too_long);
    }
    if (!out->transfer_syntax_uid[0]) {
        DcmXfer x(ds->getOriginalXfer());
        if (x.getXfer() != EXS_Unknown)
            snprintf(out->transfer_syntax_uid, sizeof out->transfer_syntax_uid, "%s",
                     x.getXferID());
    }
}

/* PM_OK when every value was whole and the identifying UIDs are there; else PM_E_DICOM
 * with the reason. */
static int check_meta(const char *path, const pm_dicom_meta *out, const char *too_long, char *err,
                      size_t errlen)
{
    if (too_long) {
        char msg[160];
        snprintf(msg, sizeof msg, "refused: %s is longer than %s", too_long,
                 strstr(too_long, "UID") ? PM_STR(PM_DICOM_UID_MAX) " characters (a UID)"
                                         : "the " PM_STR(PM_DICOM_TEXT_MAX) " characters kept");
        set_err(err, errlen, msg);
        return PM_E_DICOM;
    }
    const char *missing = !out->sop_uid[0]         ? "missing SOPInstanceUID"
                          : !out->sop_class_uid[0] ? "missing SOPClassUID"
                          : !out->study_uid[0]     ? "missing StudyInstanceUID"
                          : !out->series_uid[0]    ? "missing SeriesInstanceUID"
                                                   : NULL;
    if (missing) {
        set_err(err, errlen, looks_like_dicom(path) ? missing : "not a DICOM file");
        return PM_E_DICOM;
    }
    return PM_OK;
}

static int read_meta(const char *path, pm_dicom_meta *out, char *err, size_t errlen)
{
    DcmFileFormat ff;
    /* Values over 4 KiB (pixel data) are left on disk: only the header matters here. */
    OFCondition c = ff.loadFile(path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
    if (c.bad()) {
        load_failure(path, c, err, errlen);
        return PM_E_DICOM;
    }
    DcmDataset *ds = ff.getDataset();
    if (!ds) {
        set_err(err, errlen, "no data set");
        return PM_E_DICOM;
    }
    const char *too_long = nullptr;
    get_fields(ds, uid_fields, out, &too_long);
    get_from_meta_header(ff.getMetaInfo(), ds, out, &too_long);
    get_fields(ds, text_fields, out, &too_long);
    out->series_number = get_int(ds, DCM_SeriesNumber);
    out->instance_number = get_int(ds, DCM_InstanceNumber);
    return check_meta(path, out, too_long, err, errlen);
}

/* dcmtk's reading, in this process: what the parser process runs, and the fallback. */
static int read_meta_here(const char *path, pm_dicom_meta *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    set_err(err, errlen, "");
    pm_dicom_edge_quiet_dcmtk();
    try {
        int rc = read_meta(path, out, err, errlen);
        if (rc != PM_OK) {
            /* Never hand back half-filled metadata next to an error. */
            memset(out, 0, sizeof *out);
        }
        return rc;
    } catch (const std::bad_alloc &) {
        memset(out, 0, sizeof *out);
        set_err(err, errlen, "out of memory");
        return PM_E_NOMEM;
    } catch (...) {
        memset(out, 0, sizeof *out);
        set_err(err, errlen, "unreadable DICOM (exception)");
        return PM_E_DICOM;
    }
}

/* ---- the parser process ---- */

#define PARSER_ENV "PACSMESH_DICOM_PARSER_FD"
#define PARSER_FD 3
enum { PARSER_TIMEOUT_MS = 60000, PARSER_IDLE_MAX = 8, PATH_MAX_LEN = 4096 };

struct parser_reply {
    int32_t rc;
    pm_dicom_meta meta;
    char err[256];
};

/* In the parser process, before main: answer requests (a path each) until the node
 * closes the socket, then leave without running anything else of the program. */
__attribute__((constructor)) static void parser_process_main(void)
{
    const char *v = getenv(PARSER_ENV);
    if (!v || strcmp(v, "3") != 0)
        return;
    unsetenv(PARSER_ENV);
    /* No PR_SET_PDEATHSIG: it follows the thread that started us, and parsers outlive
     * association threads. When the node ends, its end of the socket closes: recv()
     * returns 0 and this process leaves. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* a terminal's ^C is the node's to handle */
    for (int fd = PARSER_FD + 1; fd < 1024; fd++)
        close(fd); /* nothing of the node's stays open here */
#ifndef PM_UNDER_ASAN
    /* A bound on what one hostile header can make dcmtk allocate (not under ASan,
     * which reserves terabytes of address space). */
    struct rlimit as = {UINT64_C(4) << 30, UINT64_C(4) << 30};
    setrlimit(RLIMIT_AS, &as);
#endif
    char path[PATH_MAX_LEN + 1];
    for (;;) {
        ssize_t n = recv(PARSER_FD, path, PATH_MAX_LEN, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            _exit(0);
        }
        path[n] = 0;
        parser_reply rep;
        memset(&rep, 0, sizeof rep);
        rep.rc = read_meta_here(path, &rep.meta, rep.err, sizeof rep.err);
        if (send(PARSER_FD, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep)
            _exit(1);
    }
}

struct parser {
    pid_t pid;
    int fd;
};

static std::mutex parsers_mu;
static std::vector<parser> idle_parsers;
static std::atomic<int> isolation{1};
static std::atomic<bool> spawn_warned{false};

static int spawn_parser(parser *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return PM_E_IO;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], PARSER_FD);
    /* The environment plus our marker. */
    size_t n = 0;
    while (environ && environ[n])
        n++;
    std::vector<char *> env;
    std::string marker = std::string(PARSER_ENV) + "=3";
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], PARSER_ENV "=", strlen(PARSER_ENV) + 1) != 0)
            env.push_back(environ[i]);
    env.push_back(const_cast<char *>(marker.c_str()));
    env.push_back(nullptr);
    char arg0[] = "pacsmesh-dicom-parser";
    char *argv[] = {arg0, nullptr};
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv, env.data());
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        errno = rc;
        return PM_E_IO;
    }
    p->pid = pid;
    p->fd = sv[0];
    return PM_OK;
}

static void end_parser(parser *p, bool kill_it)
{
    if (kill_it)
        kill(p->pid, SIGKILL);
    close(p->fd);
    int st;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
}

/* What became of a parser that did not answer. */
static void parser_died(parser *p, const char *path, char *err, size_t errlen, bool timed_out)
{
    if (timed_out)
        kill(p->pid, SIGKILL);
    close(p->fd);
    int st = 0;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
    char why[96];
    if (timed_out)
        snprintf(why, sizeof why, "did not answer within %d s", PARSER_TIMEOUT_MS / 1000);
    else if (WIFSIGNALED(st))
        snprintf(why, sizeof why, "died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(why, sizeof why, "exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    pm_warn("dicom", "the DICOM parser process %ld %s reading %s: that file is refused",
            (long)p->pid, why, path);
    snprintf(err, errlen, "unreadable DICOM (the parser process %s)", why);
}

/* PM_OK with the parser's answer in rc, or PM_E_IO if no parser could be started. */
static int read_meta_isolated(const char *path, pm_dicom_meta *out, char *err, size_t errlen,
                              int *rc_out)
{
    size_t plen = strlen(path);
    if (plen > PATH_MAX_LEN) {
        set_err(err, errlen, "path too long");
        *rc_out = PM_E_INVAL;
        return PM_OK;
    }
    parser p;
    bool have = false;
    {
        std::lock_guard<std::mutex> g(parsers_mu);
        if (!idle_parsers.empty()) {
            p = idle_parsers.back();
            idle_parsers.pop_back();
            have = true;
        }
    }
    if (!have && spawn_parser(&p) != PM_OK)
        return PM_E_IO;
    if (send(p.fd, path, plen, MSG_NOSIGNAL) != (ssize_t)plen) {
        parser_died(&p, path, err, errlen, false);
        *rc_out = PM_E_DICOM;
        return PM_OK;
    }
    struct pollfd pfd = {p.fd, POLLIN, 0};
    int r;
    do
        r = poll(&pfd, 1, PARSER_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    parser_reply rep;
    ssize_t n = r > 0 ? recv(p.fd, &rep, sizeof rep, 0) : -1;
    if (n != (ssize_t)sizeof rep) {
        parser_died(&p, path, err, errlen, r == 0);
        memset(out, 0, sizeof *out);
        *rc_out = PM_E_DICOM;
        return PM_OK;
    }
    rep.err[sizeof rep.err - 1] = 0;
    *out = rep.meta;
    set_err(err, errlen, rep.err);
    *rc_out = rep.rc;
    {
        std::lock_guard<std::mutex> g(parsers_mu);
        if (idle_parsers.size() < PARSER_IDLE_MAX) {
            idle_parsers.push_back(p);
            return PM_OK;
        }
    }
    end_parser(&p, false);
    return PM_OK;
}

extern "C" void pm_dicom_set_isolation(int on)
{
    isolation = on;
}

extern "C" int pm_dicom_read_meta(const char *path, pm_dicom_meta *out, char *err, size_t errlen)
{
    if (!path || !out) {
        set_err(err, errlen, "bad argument");
        return PM_E_INVAL;
    }
    memset(out, 0, sizeof *out);
    set_err(err, errlen, "");
    /* The scan first: what it refuses, dcmtk never reads. */
    pm_dicom_limits lim;
    pm_dicom_get_limits(&lim);
    pm_dicom_scan_result scan;
    int rc = lim.max_depth == PM_DICOM_UNCHECKED ? PM_OK : pm_dicom_scan_file(path, &lim, &scan);
    if (rc == PM_E_IO) {
        char msg[256];
        snprintf(msg, sizeof msg, "not a DICOM file (%s)", scan.reason);
        set_err(err, errlen, msg);
        return PM_E_DICOM;
    }
    if (rc != PM_OK) {
        char msg[256];
        if (scan.refusal == PM_DICOM_SCAN_LIMIT)
            snprintf(msg, sizeof msg, "refused: %s", scan.reason);
        else if (!looks_like_dicom(path))
            snprintf(msg, sizeof msg, "not a DICOM file");
        else
            snprintf(msg, sizeof msg, "%s", scan.reason);
        set_err(err, errlen, msg);
        return PM_E_DICOM;
    }
    try {
        if (isolation) {
            int prc = PM_OK;
            if (read_meta_isolated(path, out, err, errlen, &prc) == PM_OK)
                return prc;
            if (!spawn_warned.exchange(true))
                pm_warn("dicom", "cannot start a DICOM parser process (%s): parsing in the node",
                        strerror(errno));
        }
    } catch (...) {
        /* out of memory for the request: read here */
    }
    return read_meta_here(path, out, err, errlen);
}
