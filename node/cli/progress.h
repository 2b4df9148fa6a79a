/* Progress of a long command (import, fetch) on stderr: one line rewritten in place on
 * a terminal (counts, bytes, rate, and the share done when the total is known), plain
 * lines every PM_PROGRESS_PLAIN_MS otherwise (logs and pipes), so stdout keeps only the
 * result. */
#ifndef PM_PROGRESS_H
#define PM_PROGRESS_H

#include <stdint.h>

#define PM_PROGRESS_PLAIN_MS 2000

typedef struct {
    const char *what; /* "imported", "fetched" */
    const char *unit; /* "files", "instances" */
    int tty;
    uint64_t start_ms, last_ms;
    int shown; /* something was printed (a terminal line then needs its newline) */
} pm_progress;

/* Starts; what and unit are borrowed for the progress' life. */
void pm_progress_start(pm_progress *p, const char *what, const char *unit);

/* count items and bytes so far, of total_bytes (0: unknown). Prints if it is time. */
void pm_progress_update(pm_progress *p, uint64_t count, uint64_t bytes, uint64_t total_bytes);

/* Ends the terminal line, if one was shown. */
void pm_progress_end(pm_progress *p);

#endif
