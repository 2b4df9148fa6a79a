#include "proto/log.h"
#include "proto/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static int current_level = -1; /* -1: not yet read from the environment */

void pm_log_set_level(pm_log_level level)
{
    current_level = (int)level;
}

int pm_log_parse_level(const char *name, pm_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0) {
            *out = (pm_log_level)i;
            return PM_OK;
        }
    return PM_E_INVAL;
}

static int effective_level(void)
{
    if (current_level < 0) {
        pm_log_level lvl = PM_LOG_INFO;
        const char *env = getenv("PACSMESH_LOG");
        if (env)
            (void)pm_log_parse_level(env, &lvl);
        current_level = (int)lvl;
    }
    return current_level;
}

void pm_log(pm_log_level level, const char *module, const char *fmt, ...)
{
    static const char *tags[] = {"debug", "info ", "warn ", "error"};
    if ((int)level < effective_level() || level >= PM_LOG_OFF)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line,
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), tags[level], module);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent threads do not interleave within a line. */
    fprintf(stderr, "%s\n", line);
}
