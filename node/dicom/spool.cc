/* The spool of the DICOM edge: where each arriving C-STORE data set is written before
 * the provider makes it durable. Files are named rx-<pid>-<n>.dcm, so that those an
 * earlier run left (instances never acknowledged) are told apart and removed at start.
 *
 * Creating a file is the costliest step of storing a small instance on some file
 * systems: ext4 without a journal, for one, checks every recently freed inode of a
 * block group before it reuses one, and then a creation takes up to a millisecond
 * where the rest of the store takes about as long again. So a thread of its own keeps
 * a few empty spool files made ahead, at a lower priority; dcmtk opens one with
 * O_TRUNC, which allocates nothing, and the answer does not wait for a creation. When
 * none is ready (a burst faster than the thread), a new name is used as before. The
 * thread creates each in a directory of its own and then moves it into the spool: a
 * creation holds its directory locked while it searches for an inode, and dcmtk's open
 * (O_CREAT) and the move of a stored instance out of the spool would wait for it. */
#include "node/dicom/shim_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>

extern "C" {
#include "proto/log.h"
}

#define LOG_MOD "dicom"

/* Empty files kept ready: enough to absorb a burst of small instances while the
 * thread catches up, few enough that a stop removes them at once. */
enum { SPOOL_READY = 64 };

/* The maker's nice value: it uses what the associations leave of the processor. */
enum { SPOOL_MAKER_NICE = 10 };

struct pm_dicom_spool {
    std::string dir;
    std::string ahead; /* where the maker creates them, in dir */
    std::mutex mu;
    std::condition_variable taken; /* a file was taken, or stopping */
    std::vector<std::string> ready;
    bool stopping = false;
    bool warned = false; /* a creation failed and was logged; cleared by a success */
    std::thread maker;
};

/* Names spool files uniquely across every server of the process (they may share a
 * spool directory); the pid separates processes. */
static std::atomic<unsigned long> spool_seq{0};

static std::string new_name()
{
    char name[64];
    snprintf(name, sizeof name, "/rx-%ld-%lu.dcm", (long)getpid(), ++spool_seq);
    return name;
}

/* Makes one empty file ahead (called unlocked): true if it is ready; the first
 * failure of a run of them is logged. */
static bool make_one(pm_dicom_spool *sp, std::string &path)
{
    std::string name = new_name(), made = sp->ahead + name;
    path = sp->dir + name;
    int fd = open(made.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && close(fd) == 0 && rename(made.c_str(), path.c_str()) == 0;
    int err = errno;
    if (!ok && fd >= 0)
        unlink(made.c_str());
    std::lock_guard<std::mutex> g(sp->mu);
    if (!ok && !sp->warned)
        pm_warn(LOG_MOD, "cannot make spool files ahead in %s: %s (each C-STORE makes its own)",
                sp->ahead.c_str(), strerror(err));
    sp->warned = !ok;
    return ok;
}

static void maker_main(pm_dicom_spool *sp)
{
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SPOOL_MAKER_NICE);
    std::unique_lock<std::mutex> lk(sp->mu);
    while (!sp->stopping) {
        if (sp->ready.size() >= SPOOL_READY) {
            sp->taken.wait(lk);
            continue;
        }
        lk.unlock();
        std::string path;
        bool made = make_one(sp, path);
        lk.lock();
        if (made && sp->stopping)
            unlink(path.c_str());
        else if (made)
            sp->ready.push_back(path);
        else /* a full disk or a lost directory: retried after a while, or at a stop */
            sp->taken.wait_for(lk, std::chrono::seconds(5));
    }
}

/* Spool files of another process (rx-<pid>-<n>.dcm): left by an earlier run that
 * ended in the middle of a C-STORE, or made ahead and never used (the run lock says no
 * other node uses this directory); their instances were never acknowledged. Those with
 * data are counted in the log; the empty ones made ahead are no instance at all. Files
 * of this process may belong to another server sharing the directory and are kept. */
static void clean_spool(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());
    if (!d)
        return;
    unsigned removed = 0;
    long self = (long)getpid();
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        unsigned long seq;
        char tail[8];
        if (sscanf(e->d_name, "rx-%ld-%lu.%7s", &pid, &seq, tail) != 3 || strcmp(tail, "dcm") ||
            pid == self)
            continue;
        struct stat st;
        bool had_data = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_size;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 && had_data)
            removed++;
    }
    closedir(d);
    if (removed)
        pm_info(LOG_MOD, "removed %u stale spool files of an earlier run from %s", removed,
                dir.c_str());
}

pm_dicom_spool *pm_dicom_spool_start(const std::string &dir)
{
    std::unique_ptr<pm_dicom_spool> sp(new pm_dicom_spool);
    sp->dir = dir;
    sp->ahead = dir + "/ahead";
    clean_spool(dir);
    if (mkdir(sp->ahead.c_str(), 0700) != 0 && errno != EEXIST) {
        pm_warn(LOG_MOD, "cannot make %s: %s (each C-STORE makes its own spool file)",
                sp->ahead.c_str(), strerror(errno));
        return sp.release();
    }
    clean_spool(sp->ahead);
    try {
        sp->maker = std::thread(maker_main, sp.get());
    } catch (...) {
        pm_warn(LOG_MOD, "no thread to make spool files ahead: each C-STORE makes its own");
    }
    return sp.release();
}

std::string pm_dicom_spool_take(pm_dicom_spool *sp)
{
    std::lock_guard<std::mutex> g(sp->mu);
    if (sp->ready.empty())
        return sp->dir + new_name();
    std::string path = std::move(sp->ready.back());
    sp->ready.pop_back();
    sp->taken.notify_one();
    return path;
}

void pm_dicom_spool_stop(pm_dicom_spool *sp)
{
    if (!sp)
        return;
    {
        std::lock_guard<std::mutex> g(sp->mu);
        sp->stopping = true;
        sp->taken.notify_one();
    }
    if (sp->maker.joinable())
        sp->maker.join();
    for (const std::string &path : sp->ready)
        unlink(path.c_str());
    delete sp;
}
