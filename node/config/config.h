/* node.conf: the node's configuration, read by every command.
 *
 * The module is four files: table.c holds the table of keys, value.c the syntax of
 * values (value.h), load.c loading, validation and the dump, edit.c the files `init`
 * writes and `config set` edits. The worklist rules of [worklist] are parsed and
 * applied by node/worklist/rules.h.
 *
 * One table (table.c) lists every key (section, name, type, default, bounds, help);
 * it drives parsing, validation, defaults, pm_config_dump and the commented file that
 * `pacsmesh init` writes, so a key exists in exactly one place.
 *
 * Format: INI (parsed by libinih). `# ` or `; ` start a comment line; indentation is
 * ignored; a line may be at most PM_CONFIG_LINE_MAX characters (list keys may be
 * repeated to add more items). Unknown sections and keys, bad values and keys set twice
 * are errors; the message names the file, the line and the key, for example
 *   node.conf:12: [gossip] interval_ms: "fast" is not a number of milliseconds (10..60000)
 *
 * Messages go into the caller's err buffer (one line, no trailing newline); nothing
 * here prints or logs. Every function accepts err == NULL or errlen == 0. */
#ifndef PM_CONFIG_H
#define PM_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "node/config/value.h"
#include "node/dicom/dicom.h"
#include "node/worklist/ai_rules.h"
#include "node/worklist/rules.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest line accepted, not counting the newline (libinih's line buffer). */
#define PM_CONFIG_LINE_MAX 198
/* Largest node.conf accepted. */
#define PM_CONFIG_FILE_MAX (1024 * 1024)
/* [dicom] patient_conflict */
#define PM_CONFIG_CONFLICT_REFUSE 0
#define PM_CONFIG_CONFLICT_QUARANTINE 1

/* The effective configuration: every field holds its value or its default. All of it
 * is owned by the pm_config and freed by pm_config_destroy. */
typedef struct pm_config {
    char *path; /* file it was read from */

    /* [node] */
    char *name, *listen, *advertise, *admin;
    int log_level; /* pm_log_level */

    /* [mesh] */
    char *mesh_id; /* 64 lowercase hex digits, or "" before genesis / join */
    unsigned quorum;
    char **peers; /* NULL-terminated */
    size_t n_peers;

    /* [dicom] and [dicom.destinations] */
    char *ae_title;
    int dicom_port;
    char *dicom_bind;
    char **allowed_aes; /* NULL-terminated AE[@host][:rights] (node/dicom/access.h) */
    size_t n_allowed_aes;
    int allow_store_from_any;
    char *dicom_tls_cert, *dicom_tls_key, *dicom_tls_ca;
    int dicom_require_client_cert;
    unsigned max_pdu;
    uint64_t dicom_idle_timeout_ms, dicom_read_timeout_ms;
    unsigned dicom_max_associations, dicom_max_associations_per_host;
    unsigned dicom_max_nesting, dicom_max_elements;
    unsigned dicom_max_find_results; /* 0: no limit */
    int patient_conflict;            /* PM_CONFIG_CONFLICT_* */
    pm_dicom_destination *destinations;
    size_t n_destinations;

    /* [gossip] */
    unsigned gossip_interval_ms, gossip_fanout, gossip_max_batch;

    /* [cache] */
    uint64_t cache_max_bytes;

    /* [metrics] */
    char *metrics_listen; /* "host:port" on loopback, or "" = off */

    /* [ris] */
    char *ris_endpoint; /* "host:port" of the RIS's MLLP listener, or "" = off */
    char *ris_sending_facility, *ris_receiving_application;
    uint64_t ris_retry_ms;
    /* [dicom] report_destination: an AE of destinations, or "" = off */
    char *report_destination;
    uint64_t report_retry_ms;
    /* [http] (node/http); http_users NULL = <node dir>/users */
    char *http_listen, *http_tls_cert, *http_tls_key, *http_users;
    /* [audit] (node/audit): audit_syslog "" = off, else tcp://host:port or tls://host:port */
    char *audit_syslog, *audit_syslog_ca, *audit_syslog_cert, *audit_syslog_key;
    char *audit_syslog_app_name;
    uint64_t audit_syslog_retry_ms;

    /* [worklist] */
    uint64_t due_immediate_ms, due_urgent_ms, due_routine_ms, lease_ms;
    char default_priority[PM_WORKLIST_PRIORITY_MAX];
    pm_worklist_rule *rules; /* in file order; the first that matches wins */
    size_t n_rules;
    pm_ai_rule *ai_rules; /* in file order; the first that matches wins */
    size_t n_ai_rules;
} pm_config;

/* Reads and validates the file at path. node_dir is the node directory (used for the
 * default admin endpoint ipc://<node_dir>/admin.sock); NULL means the directory that
 * holds path. On success *out is a new pm_config the caller frees with
 * pm_config_destroy.
 * Returns PM_OK; PM_E_IO if the file cannot be read (err says why); PM_E_CONFIG if it
 * is not a valid node.conf (err: "FILE:LINE: [section] key: reason"); PM_E_NOMEM.
 * *out is left NULL on failure. */
int pm_config_load(const char *path, const char *node_dir, pm_config **out, char *err,
                   size_t errlen);

/* Same as pm_config_load over len bytes of data already in memory (need not be
 * NUL-terminated); name is used as the file name in messages and as cfg->path.
 * This is the entry point of the fuzz target. */
int pm_config_parse(const char *name, const char *data, size_t len, const char *node_dir,
                    pm_config **out, char *err, size_t errlen);

/* The [dicom.destinations] entry of AE title ae (exact), or NULL. Borrowed from cfg. */
const pm_dicom_destination *pm_config_destination(const pm_config *cfg, const char *ae);

/* Frees the configuration. Accepts NULL and *self_p == NULL; clears the pointer. */
void pm_config_destroy(pm_config **self_p);

/* Writes a new commented node.conf at path documenting every key, with the given
 * overrides (NULL, or dicom_port <= 0, = default; name is required). Keys not given are
 * written commented out with their defaults. The file is created with mode 0644 and
 * fsync'ed.
 * Returns PM_OK; PM_E_EXISTS if path exists (it is never overwritten); PM_E_CONFIG if
 * an override is not a valid value (err names the key); PM_E_INVAL if name is NULL;
 * PM_E_IO. */
int pm_config_write_default(const char *path, const char *name, const char *listen,
                            const char *advertise, int dicom_port, const char *ae_title,
                            const char *admin, char *err, size_t errlen);

/* Sets section.key = value in the file at path: replaces the key's line (and drops any
 * further lines of the same key), else adds it to the section, after the commented-out
 * `# key = ...` template line if there is one, else after the section's last key; it
 * creates the section at the end of the file if missing. Other lines, comments included,
 * are kept. List keys (peers, allowed_aes) get one line per item of value. The value is
 * validated as pm_config_load would. The file is replaced atomically (temp file in the
 * same directory, fsync, rename, fsync of the directory) with its mode kept.
 * Returns PM_OK; PM_E_CONFIG if section/key is unknown or value invalid; PM_E_IO
 * (including path missing); PM_E_NOMEM. */
int pm_config_set(const char *path, const char *section, const char *key, const char *value,
                  char *err, size_t errlen);

/* Reads a whole file of at most PM_CONFIG_FILE_MAX bytes into *data (the caller's to
 * free; not NUL-terminated) and *len. Returns PM_OK; PM_E_IO; PM_E_CONFIG if larger;
 * PM_E_NOMEM. err says why. */
int pm_config_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);

/* Prints the effective configuration as a valid node.conf (defaults included). */
void pm_config_dump(const pm_config *cfg, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
