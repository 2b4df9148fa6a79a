/* The value syntax of node.conf: durations, sizes, endpoints, AE titles, wildcards,
 * and the bounded quoting of a bad value in a message.
 *
 * Pure functions over strings: nothing here reads a file or knows the key table, so
 * the CLI (sizes in `status`, wildcards in `studies`), the worklist rules and the
 * config loader all share one definition of each syntax.
 *
 * The pm_config_check_* functions validate one value and, when it is invalid, write
 * the reason (one line, no trailing newline, the value quoted) into why; they accept
 * why == NULL or wl == 0. They return PM_OK or PM_E_CONFIG. */
#ifndef PM_CONFIG_VALUE_H
#define PM_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/dicom/dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PM_CONFIG_SECOND_MS UINT64_C(1000)
#define PM_CONFIG_DAY_MS (UINT64_C(86400) * PM_CONFIG_SECOND_MS)
/* Longest endpoint accepted (tcp://host:port or ipc://path). */
#define PM_CONFIG_ENDPOINT_MAX 255
/* Size of the buffer pm_config_quote writes into. */
#define PM_CONFIG_QUOTE_MAX 96

/* snprintf into err; nothing when err is NULL or errlen is 0. */
void pm_config_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A printable, bounded rendering of untrusted text for messages: v in double quotes,
 * control characters as '?', cut with "..." after 80 characters. Returns buf. */
const char *pm_config_quote(const char *v, char buf[PM_CONFIG_QUOTE_MAX]);

/* Does v contain a control character (below 0x20, or DEL)? */
bool pm_config_has_control(const char *v);

/* Parses decimal digits (at least one) into *out, refusing overflow. With end, stops at
 * the first non-digit and stores its address; without, the whole string must be digits.
 * PM_OK or PM_E_INVAL. */
int pm_config_parse_uint(const char *s, const char **end, uint64_t *out);

/* Parses a duration: one or more <number><unit> with unit ms, s, m, h, d or w, e.g.
 * "500ms", "90s", "15m", "1h30m", "28d"; a bare "0" is zero. PM_OK or PM_E_INVAL (also on
 * overflow). */
int pm_config_parse_duration(const char *text, uint64_t *ms_out);

/* Parses a size in bytes: a number with an optional unit B, KB/MB/GB/TB (powers of
 * 1000) or KiB/MiB/GiB/TiB (powers of 1024), case-insensitive, e.g. "1024", "10MiB",
 * "5GB". PM_OK or PM_E_INVAL (also on overflow). */
int pm_config_parse_bytes(const char *text, uint64_t *bytes_out);

/* Formats a duration or a size the way the parsers accept ("28d", "10GiB"). Returns out. */
char *pm_config_format_duration(uint64_t ms, char *out, size_t outlen);
char *pm_config_format_bytes(uint64_t bytes, char *out, size_t outlen);

/* Case-insensitive match of text against pattern with `*` (any run) and `?` (any one
 * character). Never recursive; at worst O(len(pattern) * len(text)). NULL text is "". */
int pm_config_wildcard_match(const char *pattern, const char *text);

/* Index of a log level name ("debug" 0 .. "error" 3), or -1; and the name of an index
 * (taken modulo 4). */
int pm_config_level_index(const char *name);
const char *pm_config_level_name(int level);

/* Index of a worklist priority name ("immediate" 0, "urgent" 1, "routine" 2), or -1. */
int pm_config_priority_index(const char *name);

/* Is h an IPv4 or IPv6 literal? *family (if not NULL) receives AF_INET or AF_INET6. */
bool pm_config_is_ip(const char *h, int *family);

/* A ZeroMQ endpoint: tcp://host:port or ipc://path. bind allows a wildcard host
 * (*, 0.0.0.0, ::); an endpoint others connect to may not have one. */
int pm_config_check_endpoint(const char *v, bool bind, char *why, size_t wl);

/* host:port on loopback (127.x.x.x, ::1, localhost). */
int pm_config_check_loopback(const char *v, char *why, size_t wl);
/* host:port, anywhere (a name or an address). */
int pm_config_check_hostport(const char *v, char *why, size_t wl);

/* A DICOM AE title: 1-16 characters, not all spaces, no backslash or control. */
int pm_config_check_ae(const char *v, char *why, size_t wl);

/* host:port of a C-MOVE destination; on success fills d's host and port. */
int pm_config_check_destination(const char *v, pm_dicom_destination *d, char *why, size_t wl);

#ifdef __cplusplus
}
#endif
#endif
