/* Running this program's own CLI for the JSON a listing prints (pm_http_run_cli). The
 * child is started with posix_spawn (safe in a threaded process), gets the node
 * directory and nothing from the request but validated option values as separate
 * argv entries (no shell), and is killed if it outlives its time. */
#include "node/http/internal.h"
#include "proto/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int spawn(pm_http_server *s, const char *const *args, int out_fd, int err_fd, pid_t *pid)
{
    const char *argv[40];
    int n = 0;
    argv[n++] = s->exe;
    for (int i = 0; args[i] && n < 36; i++)
        argv[n++] = args[i];
    argv[n++] = "--dir";
    argv[n++] = s->s.dir;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    int rc = posix_spawn(pid, s->exe, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Reads the child's stdout (into *buf, growing it up to max) and stderr (the tail, in
 * ebuf) until both close or the deadline passes. 0, or -1 on timeout or overflow. */
static int drain(int out_fd, int err_fd, size_t max, uint64_t deadline, char **buf, size_t *len,
                 char *ebuf, size_t ecap, size_t *elen)
{
    size_t cap = 65536;
    int open_fds = 2;
    struct pollfd pf[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    if (!(*buf = malloc(cap)))
        return -1;
    while (open_fds > 0) {
        uint64_t now = pm_now_ms();
        if (now >= deadline)
            return -1;
        if (poll(pf, 2, (int)(deadline - now)) < 0) {
            if (errno != EINTR)
                return -1;
            continue;
        }
        if (pf[0].revents) {
            if (*len + 65536 > cap) {
                char *grown = cap * 2 <= max + 65536 ? realloc(*buf, cap * 2) : NULL;
                if (!grown)
                    return -1;
                *buf = grown;
                cap *= 2;
            }
            ssize_t n = read(out_fd, *buf + *len, cap - *len - 1);
            if (n > 0)
                *len += (size_t)n;
            else {
                pf[0].fd = -1;
                open_fds--;
            }
        }
        if (pf[1].revents) {
            ssize_t n = read(err_fd, ebuf + *elen, ecap - 1 - *elen);
            if (n > 0)
                *elen += (size_t)n;
            if (*elen >= ecap - 1)
                *elen = 0; /* keep the last lines only */
            if (n <= 0) {
                pf[1].fd = -1;
                open_fds--;
            }
        }
    }
    return 0;
}

int pm_http_run_cli(pm_http_server *s, const char *const *args, size_t max, int timeout_ms,
                    char **out, size_t *outlen, char *err, size_t errlen)
{
    int op[2], ep[2];
    *out = NULL;
    *outlen = 0;
    if (pipe2(op, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(ep, O_CLOEXEC) != 0) {
        close(op[0]);
        close(op[1]);
        return -1;
    }
    pid_t pid = -1;
    int rc = spawn(s, args, op[1], ep[1], &pid);
    close(op[1]);
    close(ep[1]);
    size_t len = 0, elen = 0;
    char *buf = NULL, ebuf[4096];
    int failed = rc != 0 || drain(op[0], ep[0], max, pm_now_ms() + (uint64_t)timeout_ms, &buf, &len,
                                  ebuf, sizeof ebuf, &elen);
    close(op[0]);
    close(ep[0]);
    int status = -1;
    if (pid > 0) {
        if (failed)
            kill(pid, SIGKILL); /* the child this call started, and only it */
        int ws = 0;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
            ;
        if (!failed && WIFEXITED(ws))
            status = WEXITSTATUS(ws);
    }
    ebuf[elen] = 0;
    while (elen && (ebuf[elen - 1] == '\n' || ebuf[elen - 1] == '\r'))
        ebuf[--elen] = 0;
    const char *last = strrchr(ebuf, '\n');
    last = last ? last + 1 : ebuf;
    if (strncmp(last, "pacsmesh: ", 10) == 0)
        last += 10;
    if (err && errlen)
        snprintf(err, errlen, "%s", last);
    if (status < 0 || !buf) {
        free(buf);
        return -1;
    }
    buf[len] = 0;
    *out = buf;
    *outlen = len;
    return status;
}
