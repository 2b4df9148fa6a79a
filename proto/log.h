/* One logging module for the whole program: levels, printf format checking and a
 * "module:" prefix on every line, written to stderr as
 *   2026-11-22T10:00:00.123Z info  gossip: peer 1a2b3c4d up
 * Never pass key material; patient identifiers only where the user asked for them. */
#ifndef PM_LOG_H
#define PM_LOG_H

typedef enum { PM_LOG_DEBUG = 0, PM_LOG_INFO, PM_LOG_WARN, PM_LOG_ERROR, PM_LOG_OFF } pm_log_level;

/* Sets the lowest level printed (default PM_LOG_INFO; PACSMESH_LOG=debug|info|warn|error|off
 * in the environment overrides it at the first log call). Thread-safe to call before threads start.
 */
void pm_log_set_level(pm_log_level level);

/* Parses "debug", "info", "warn", "error", "off"; returns PM_E_INVAL otherwise. */
int pm_log_parse_level(const char *name, pm_log_level *out);

void pm_log(pm_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define pm_debug(mod, ...) pm_log(PM_LOG_DEBUG, mod, __VA_ARGS__)
#define pm_info(mod, ...) pm_log(PM_LOG_INFO, mod, __VA_ARGS__)
#define pm_warn(mod, ...) pm_log(PM_LOG_WARN, mod, __VA_ARGS__)
#define pm_error(mod, ...) pm_log(PM_LOG_ERROR, mod, __VA_ARGS__)

#endif
