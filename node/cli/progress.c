/* Progress lines (node/cli/progress.h). */
#include "node/cli/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pm_progress_start(pm_progress *p, const char *what, const char *unit)
{
    p->what = what;
    p->unit = unit;
    p->tty = isatty(STDERR_FILENO);
    p->start_ms = p->last_ms = mono_ms();
    p->shown = 0;
}

void pm_progress_update(pm_progress *p, uint64_t count, uint64_t bytes, uint64_t total_bytes)
{
    uint64_t now = mono_ms();
    if (now - p->last_ms < (p->tty ? 100u : PM_PROGRESS_PLAIN_MS))
        return;
    p->last_ms = now;
    double secs = (double)(now - p->start_ms) / 1000.0, mb = (double)bytes / 1e6;
    char share[32] = "";
    if (total_bytes)
        snprintf(share, sizeof share, " of %.1f MB (%.0f%%)", (double)total_bytes / 1e6,
                 100.0 * (double)bytes / (double)total_bytes);
    fprintf(stderr, "%s%s %llu %s, %.1f MB%s, %.1f MB/s%s", p->tty ? "\r" : "pacsmesh: ", p->what,
            (unsigned long long)count, p->unit, mb, share, secs > 0 ? mb / secs : 0.0,
            p->tty ? "   " : "\n");
    fflush(stderr);
    p->shown = 1;
}

void pm_progress_end(pm_progress *p)
{
    if (p->tty && p->shown)
        fputc('\n', stderr);
}
