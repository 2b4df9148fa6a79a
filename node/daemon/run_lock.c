/* DIR/run.lock (node/daemon/run_lock.h). */
#include "node/daemon/run_lock.h"
#include "node/cli/cli.h"
#include "proto/error.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void whole_file(struct flock *fl, short type)
{
    memset(fl, 0, sizeof *fl);
    fl->l_type = type;
    fl->l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
}

int pm_run_lock_take(const char *dir)
{
    char *path = pm_node_path(dir, "run.lock");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    free(path);
    if (fd < 0)
        return PM_E_IO;
    struct flock fl;
    whole_file(&fl, F_WRLCK);
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        close(fd);
        return PM_E_BUSY;
    }
    return fd;
}

int pm_run_lock_held(const char *dir)
{
    char *path = pm_node_path(dir, "run.lock");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    if (fd < 0)
        return 0;
    /* Asking whether a write lock could be placed takes none. A read-only descriptor
     * may ask about a write lock: F_GETLK checks no access mode. */
    struct flock fl;
    whole_file(&fl, F_WRLCK);
    int held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}
