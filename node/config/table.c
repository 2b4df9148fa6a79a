/* The table of node.conf keys and what it drives directly: the defaults, storing a
 * checked value into its field, formatting it back, and freeing a configuration. */
#include "node/config/table.h"
#include "node/config/value.h"
#include "node/dicom/access.h"
#include "node/dicom/defaults.h"
#include "proto/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD(f) offsetof(pm_config, f), sizeof(((pm_config *)0)->f)
#define LIST(f, n) offsetof(pm_config, f), sizeof(((pm_config *)0)->f), offsetof(pm_config, n)

#define SECOND PM_CONFIG_SECOND_MS
#define DAY PM_CONFIG_DAY_MS
#define MIB (UINT64_C(1) << 20)

const pm_config_key pm_config_keys[] = {
    {"node", "name", K_TEXT, FIELD(name), 0, NULL, 1, 64, NULL,
     "This node's name, shown to the other members (required; 1-64 characters)."},
    {"node", "listen", K_BIND, FIELD(listen), 0, "tcp://0.0.0.0:7400", 0, 0, NULL,
     "ZeroMQ endpoint where this node accepts peer connections."},
    {"node", "advertise", K_CONNECT, FIELD(advertise), 0, NULL, 0, 0, NULL,
     "Endpoint peers connect to (default: listen with 0.0.0.0 or * replaced by 127.0.0.1)."},
    {"node", "admin", K_BIND, FIELD(admin), 0, NULL, 0, 0, NULL,
     "Control socket the CLI talks to (default: ipc://<node dir>/admin.sock)."},
    {"node", "log_level", K_LEVEL, FIELD(log_level), 0, "info", 0, 0, NULL,
     "Lowest level logged to stderr: debug, info, warn or error."},

    {"mesh", "id", K_MESHID, FIELD(mesh_id), 0, "", 0, 0, NULL,
     "The mesh this node belongs to (64 hex digits); set by `genesis` or `join`."},
    {"mesh", "quorum", K_UINT, FIELD(quorum), 0, "1", 1, 100, "number",
     "Approvals needed to admit or revoke a member, when this node creates the mesh."},
    {"mesh", "peers", K_PEERS, LIST(peers, n_peers), "", 0, 0, NULL,
     "Bootstrap peers: endpoints, comma- or space-separated; repeat the line to add more."},

    {"dicom", "ae_title", K_AE, FIELD(ae_title), 0, "PACSMESH", 0, 0, NULL,
     "AE title of this node's DICOM service (1-16 characters, no backslash)."},
    {"dicom", "port", K_PORT, FIELD(dicom_port), 0, "11112", 1, 65535, NULL,
     "TCP port of the DICOM service."},
    {"dicom", "bind", K_ADDRESS, FIELD(dicom_bind), 0, "127.0.0.1", 0, 0, NULL,
     "IP address the DICOM service listens on; set it to the trust's interface "
     "(0.0.0.0: all interfaces)."},
    {"dicom", "allowed_aes", K_AES, LIST(allowed_aes, n_allowed_aes), "", 0, 0, NULL,
     "Calling AEs accepted, comma- or space-separated, each AE[@host][:rights] with rights "
     "echo+store+find+get+move (default all), e.g. VIEWER@10.0.0.5:echo+find+get; "
     "empty: no AE may query or retrieve."},
    {"dicom", "allow_store_from_any", K_BOOL, FIELD(allow_store_from_any), 0, "no", 0, 0, NULL,
     "yes: any calling AE may C-ECHO and C-STORE (query and retrieve still need allowed_aes)."},
    {"dicom", "tls_cert", K_TEXT, FIELD(dicom_tls_cert), 0, "", 0, 4096, NULL,
     "PEM certificate chain; with tls_key set the DICOM port speaks TLS only (BCP 195)."},
    {"dicom", "tls_key", K_TEXT, FIELD(dicom_tls_key), 0, "", 0, 4096, NULL,
     "PEM private key of tls_cert."},
    {"dicom", "tls_ca", K_TEXT, FIELD(dicom_tls_ca), 0, "", 0, 4096, NULL,
     "PEM CA certificates that client and TLS destination certificates are checked against."},
    {"dicom", "require_client_cert", K_BOOL, FIELD(dicom_require_client_cert), 0, "no", 0, 0, NULL,
     "yes: TLS clients must present a certificate signed by tls_ca."},
    {"dicom", "max_pdu", K_UINT, FIELD(max_pdu), 0, PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_MAX_PDU),
     16384, 1048576, "number of bytes", "Largest PDU received, in bytes."},
    {"dicom", "idle_timeout", K_DURATION, FIELD(dicom_idle_timeout_ms), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_TIMEOUT_S) "s", SECOND, 3600 * SECOND, NULL,
     "An association idle this long (no message from the client) is closed."},
    {"dicom", "read_timeout", K_DURATION, FIELD(dicom_read_timeout_ms), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_TIMEOUT_S) "s", SECOND, 3600 * SECOND, NULL,
     "Longest wait for the rest of a PDU or message once it has begun, and for the "
     "A-ASSOCIATE-RQ."},
    {"dicom", "max_associations", K_UINT, FIELD(dicom_max_associations), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_MAX_ASSOCIATIONS), 1, 10000, "number of associations",
     "Associations served at once; more are rejected."},
    {"dicom", "max_associations_per_host", K_UINT, FIELD(dicom_max_associations_per_host), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_MAX_ASSOCIATIONS_PER_HOST), 1, 10000,
     "number of associations",
     "Associations served at once from one calling address; more are rejected."},
    {"dicom", "max_find_results", K_UINT, FIELD(dicom_max_find_results), 0, "0", 0, 100000000,
     "number of matches",
     "Most matches one C-FIND returns (0: no limit); past it the walk stops and the "
     "final status is Cancel (0xFE00), as Orthanc's LimitFindResults."},
    {"dicom", "max_nesting", K_UINT, FIELD(dicom_max_nesting), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_MAX_DEPTH), 1, 1000, "number of levels",
     "Deepest nesting of sequences accepted in a data set."},
    {"dicom", "max_elements", K_UINT, FIELD(dicom_max_elements), 0,
     PM_DICOM_TEXT_OF(PM_DICOM_DEFAULT_MAX_ELEMENTS), 1000, 100000000, "number of elements",
     "Most elements (items included) accepted in one data set."},
    {"dicom", "patient_conflict", K_CONFLICT, FIELD(patient_conflict), 0, "refuse", 0, 0, NULL,
     "An instance whose patient differs from its study's: refuse it, or quarantine it."},

    {"gossip", "interval_ms", K_UINT, FIELD(gossip_interval_ms), 0, "500", 10, 60000,
     "number of milliseconds", "Milliseconds between anti-entropy rounds."},
    {"gossip", "fanout", K_UINT, FIELD(gossip_fanout), 0, "3", 1, 64, "number of peers",
     "Peers contacted in each round."},
    {"gossip", "max_batch", K_UINT, FIELD(gossip_max_batch), 0, "1024", 1, 4096, "number of events",
     "Most events sent in one message."},

    {"cache", "max_bytes", K_BYTES, FIELD(cache_max_bytes), 0, "10GiB", MIB, UINT64_C(1) << 60,
     NULL, "Size of the cache of other trusts' pixel data (e.g. 500MB, 10GiB; LRU eviction)."},

    {"metrics", "listen", K_LOOPBACK, FIELD(metrics_listen), 0, "", 0, 0, NULL,
     "Loopback host:port serving Prometheus metrics, e.g. 127.0.0.1:9464 (empty: off)."},

    {"ris", "endpoint", K_HOSTPORT, FIELD(ris_endpoint), 0, "", 0, 0, NULL,
     "The trust's RIS: host:port of its HL7 v2 MLLP listener; final reports of this "
     "node's studies go there as ORU^R01 (empty: off)."},
    {"ris", "sending_facility", K_TEXT, FIELD(ris_sending_facility), 0, "PACSMESH", 1, 180, NULL,
     "MSH-4 of the reports sent to the RIS: this trust as the RIS knows it."},
    {"ris", "receiving_application", K_TEXT, FIELD(ris_receiving_application), 0, "RIS", 1, 180,
     NULL, "MSH-5 of the reports sent to the RIS."},
    {"ris", "retry", K_DURATION, FIELD(ris_retry_ms), 0, "10s", SECOND, DAY, NULL,
     "How long to wait before sending a report again when the RIS did not acknowledge it."},

    /* The report's SR to the trust's own PACS (node/ris/sr_sender.h). */
    {"dicom", "report_destination", K_TEXT, FIELD(report_destination), 0, "", 0, 16, NULL,
     "AE title (of [dicom.destinations]) of the trust's PACS: the SR of each final report of "
     "this node's studies is C-STOREd there (empty: off)."},
    {"dicom", "report_retry", K_DURATION, FIELD(report_retry_ms), 0, "10s", SECOND, DAY, NULL,
     "How long to wait before sending a report's SR again when the PACS did not store it."},

    {"http", "listen", K_HOSTPORT, FIELD(http_listen), 0, "127.0.0.1:8042", 0, 0, NULL,
     "host:port of the web server (REST API, DICOMweb, viewer); empty: off."},
    {"http", "tls_cert", K_TEXT, FIELD(http_tls_cert), 0, "", 0, 4096, NULL,
     "PEM certificate chain; with tls_key set the web server speaks HTTPS only."},
    {"http", "tls_key", K_TEXT, FIELD(http_tls_key), 0, "", 0, 4096, NULL,
     "PEM private key of tls_cert."},
    {"http", "users", K_TEXT, FIELD(http_users), 0, "", 0, 4096, NULL,
     "File of web users written by `pacsmesh user` (default: <node dir>/users)."},

    {"audit", "syslog", K_TEXT, FIELD(audit_syslog), 0, "", 0, 1024, NULL,
     "IHE ATNA audit repository, tcp://host:port or tls://host:port: every audit event "
     "goes there as a syslog message, retried until sent (empty: off)."},
    {"audit", "syslog_ca", K_TEXT, FIELD(audit_syslog_ca), 0, "", 0, 4096, NULL,
     "PEM file of the CAs that sign the repository's certificate (tls://; empty: the "
     "system's CAs)."},
    {"audit", "syslog_cert", K_TEXT, FIELD(audit_syslog_cert), 0, "", 0, 4096, NULL,
     "PEM certificate chain this node presents to the repository under tls:// (optional)."},
    {"audit", "syslog_key", K_TEXT, FIELD(audit_syslog_key), 0, "", 0, 4096, NULL,
     "PEM private key of syslog_cert."},
    {"audit", "syslog_app_name", K_TEXT, FIELD(audit_syslog_app_name), 0, "pacsmesh", 1, 48, NULL,
     "APP-NAME of the syslog messages (1-48 characters)."},
    {"audit", "syslog_retry", K_DURATION, FIELD(audit_syslog_retry_ms), 0, "10s", SECOND, DAY, NULL,
     "How long to wait before trying the repository again after a failure."},

    {"worklist", "due_immediate", K_DURATION, FIELD(due_immediate_ms), 0, "1h", SECOND, 3650 * DAY,
     NULL, "Time to report an immediate study (e.g. 90s, 15m, 1h, 28d)."},
    {"worklist", "due_urgent", K_DURATION, FIELD(due_urgent_ms), 0, "24h", SECOND, 3650 * DAY, NULL,
     "Time to report an urgent study."},
    {"worklist", "due_routine", K_DURATION, FIELD(due_routine_ms), 0, "28d", SECOND, 3650 * DAY,
     NULL, "Time to report a routine study."},
    {"worklist", "default_priority", K_PRIORITY, FIELD(default_priority), 0, "routine", 0, 0, NULL,
     "Priority of a study no rule matches: immediate, urgent or routine."},
    {"worklist", "lease", K_DURATION, FIELD(lease_ms), 0, "4h", SECOND, 365 * DAY, NULL,
     "How long a claim holds without a report."},
    {"worklist", "rule", K_RULE, FIELD(rules), 0, NULL, 0, 0, NULL,
     "Rules `rule = CONDITIONS : SETTINGS`, any number; the first that matches wins."},
    {"worklist", "ai_rule", K_AI_RULE, FIELD(ai_rules), 0, NULL, 0, 0, NULL,
     "AI rules `ai_rule = CONDITIONS : SETTINGS`, any number: the first that matches a study "
     "this node acquired raises its priority from an AI result."},
};
const size_t pm_config_n_keys = sizeof pm_config_keys / sizeof pm_config_keys[0];
_Static_assert(sizeof pm_config_keys / sizeof pm_config_keys[0] <= PM_CONFIG_KEYS_MAX,
               "more keys than PM_CONFIG_KEYS_MAX: raise it in node/config/table.h");

const char *const pm_config_sections[PM_CONFIG_N_SECTIONS] = {
    "node",     "mesh", "dicom", PM_CONFIG_DESTINATIONS, "gossip", "cache", "metrics", "http",
    "worklist", "ris",  "audit"};

bool pm_config_section_known(const char *s)
{
    for (size_t i = 0; i < PM_CONFIG_N_SECTIONS; i++)
        if (strcmp(s, pm_config_sections[i]) == 0)
            return true;
    return false;
}

const pm_config_key *pm_config_key_find(const char *section, const char *name)
{
    for (size_t i = 0; i < pm_config_n_keys; i++)
        if (strcmp(pm_config_keys[i].section, section) == 0 &&
            strcmp(pm_config_keys[i].name, name) == 0)
            return &pm_config_keys[i];
    return NULL;
}

bool pm_config_key_is_list(pm_config_kind t)
{
    return t == K_PEERS || t == K_AES || t == K_RULE || t == K_AI_RULE;
}

/* [dicom] patient_conflict, stored as PM_CONFIG_CONFLICT_*. */
static const char *const conflict_names[] = {"refuse", "quarantine"};

static int conflict_index(const char *v)
{
    for (int i = 0; i < 2; i++)
        if (strcmp(v, conflict_names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- storing values */

static int set_string(char **slot, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return PM_E_NOMEM;
    free(*slot);
    *slot = d;
    return PM_OK;
}

static void store_uint(void *field, size_t size, uint64_t v)
{
    if (size == sizeof(uint64_t))
        *(uint64_t *)field = v;
    else
        *(unsigned *)field = (unsigned)v; /* int and unsigned fields alike */
}

static int append_item(char ***list, size_t *n, const char *v)
{
    if (*n >= PM_CONFIG_LIST_MAX)
        return PM_E_TOOBIG;
    char **grown = realloc(*list, (*n + 2) * sizeof **list);
    if (!grown)
        return PM_E_NOMEM;
    *list = grown;
    if (!(grown[*n] = strdup(v)))
        return PM_E_NOMEM;
    grown[++*n] = NULL;
    return PM_OK;
}

/* K_PORT, K_UINT, K_BYTES, K_DURATION: a number within the key's bounds. */
static int apply_number(pm_config *cfg, const pm_config_key *k, const char *v, char *why, size_t wl)
{
    char *field = (char *)cfg + k->offset, q[PM_CONFIG_QUOTE_MAX], lo[32], hi[32];
    uint64_t n;
    if (k->type == K_BYTES) {
        if (pm_config_parse_bytes(v, &n) != PM_OK) {
            pm_config_errf(why, wl, "%s is not a size (e.g. 1048576, 500MB, 10GiB)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            pm_config_errf(why, wl, "%s is out of range (%s..%s)", pm_config_quote(v, q),
                           pm_config_format_bytes(k->min, lo, sizeof lo),
                           pm_config_format_bytes(k->max, hi, sizeof hi));
            return PM_E_CONFIG;
        }
    } else if (k->type == K_DURATION) {
        if (pm_config_parse_duration(v, &n) != PM_OK) {
            pm_config_errf(why, wl, "%s is not a duration (e.g. 90s, 15m, 1h, 28d)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            pm_config_errf(why, wl, "%s is out of range (%s..%s)", pm_config_quote(v, q),
                           pm_config_format_duration(k->min, lo, sizeof lo),
                           pm_config_format_duration(k->max, hi, sizeof hi));
            return PM_E_CONFIG;
        }
    } else {
        if (pm_config_parse_uint(v, NULL, &n) != PM_OK) {
            pm_config_errf(why, wl, "%s is not a %s (%" PRIu64 "..%" PRIu64 ")",
                           pm_config_quote(v, q), k->type == K_PORT ? "port number" : k->unit,
                           k->min, k->max);
            return PM_E_CONFIG;
        }
        if (n < k->min || n > k->max) {
            pm_config_errf(why, wl, "%s is out of range (%" PRIu64 "..%" PRIu64 ")",
                           pm_config_quote(v, q), k->min, k->max);
            return PM_E_CONFIG;
        }
    }
    store_uint(field, k->size, n);
    return PM_OK;
}

/* K_PEERS, K_AES: comma- or space-separated items, each checked, appended. */
static int apply_list(pm_config *cfg, const pm_config_key *k, const char *v, char *why, size_t wl)
{
    char ***list = (char ***)((char *)cfg + k->offset);
    size_t *count = (size_t *)((char *)cfg + k->count_offset);
    char *copy = strdup(v);
    if (!copy)
        return PM_E_NOMEM;
    int rc = PM_OK;
    for (char *save = NULL, *item = strtok_r(copy, ", \t", &save); item && rc == PM_OK;
         item = strtok_r(NULL, ", \t", &save)) {
        pm_access_entry e;
        rc = k->type == K_PEERS ? pm_config_check_endpoint(item, false, why, wl)
                                : pm_access_parse(item, &e, why, wl);
        if (rc == PM_OK && (rc = append_item(list, count, item)) == PM_E_TOOBIG) {
            pm_config_errf(why, wl, "more than %d items", PM_CONFIG_LIST_MAX);
            rc = PM_E_CONFIG;
        }
    }
    free(copy);
    return rc;
}

static int apply_rule(pm_config *cfg, const char *v, int line, char *why, size_t wl)
{
    if (cfg->n_rules >= PM_CONFIG_LIST_MAX) {
        pm_config_errf(why, wl, "more than %d rules", PM_CONFIG_LIST_MAX);
        return PM_E_CONFIG;
    }
    pm_worklist_rule r;
    int rc = pm_worklist_rule_parse(v, line, &r, why, wl);
    if (rc != PM_OK)
        return rc;
    pm_worklist_rule *grown = realloc(cfg->rules, (cfg->n_rules + 1) * sizeof *grown);
    if (!grown) {
        pm_worklist_rule_free(&r);
        return PM_E_NOMEM;
    }
    cfg->rules = grown;
    cfg->rules[cfg->n_rules++] = r;
    return PM_OK;
}

static int apply_ai_rule(pm_config *cfg, const char *v, int line, char *why, size_t wl)
{
    if (cfg->n_ai_rules >= PM_CONFIG_LIST_MAX) {
        pm_config_errf(why, wl, "more than %d AI rules", PM_CONFIG_LIST_MAX);
        return PM_E_CONFIG;
    }
    pm_ai_rule r;
    int rc = pm_ai_rule_parse(v, line, &r, why, wl);
    if (rc != PM_OK)
        return rc;
    pm_ai_rule *grown = realloc(cfg->ai_rules, (cfg->n_ai_rules + 1) * sizeof *grown);
    if (!grown) {
        pm_ai_rule_free(&r);
        return PM_E_NOMEM;
    }
    cfg->ai_rules = grown;
    cfg->ai_rules[cfg->n_ai_rules++] = r;
    return PM_OK;
}

/* K_MESHID: stored in lowercase. */
static int apply_mesh_id(char **slot, const char *v, char *why, size_t wl)
{
    char id[65], q[PM_CONFIG_QUOTE_MAX];
    size_t len = strlen(v);
    bool hex = len == 64;
    for (size_t j = 0; hex && j < len; j++) {
        hex = isxdigit((unsigned char)v[j]) != 0;
        id[j] = (char)tolower((unsigned char)v[j]);
    }
    if (len && !hex) {
        pm_config_errf(why, wl, "%s is not a mesh id (64 hex digits, or empty)",
                       pm_config_quote(v, q));
        return PM_E_CONFIG;
    }
    id[len ? 64 : 0] = '\0';
    return set_string(slot, id);
}

int pm_config_key_apply(pm_config *cfg, const pm_config_key *k, const char *v, int line, char *why,
                        size_t wl)
{
    char *field = (char *)cfg + k->offset, q[PM_CONFIG_QUOTE_MAX];
    int i, rc;
    switch (k->type) {
    case K_TEXT:
        if (strlen(v) < k->min || strlen(v) > k->max || pm_config_has_control(v)) {
            pm_config_errf(why, wl,
                           "%s is not a name (%" PRIu64 "-%" PRIu64 " printable characters)",
                           pm_config_quote(v, q), k->min, k->max);
            return PM_E_CONFIG;
        }
        return set_string((char **)field, v);
    case K_BIND:
    case K_CONNECT:
        if ((rc = pm_config_check_endpoint(v, k->type == K_BIND, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_LOOPBACK:
        if (*v && (rc = pm_config_check_loopback(v, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_HOSTPORT:
        if (*v && (rc = pm_config_check_hostport(v, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_ADDRESS:
        if (!pm_config_is_ip(v, NULL)) {
            pm_config_errf(why, wl, "%s is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        return set_string((char **)field, v);
    case K_MESHID: return apply_mesh_id((char **)field, v, why, wl);
    case K_AE:
        if ((rc = pm_config_check_ae(v, why, wl)) != PM_OK)
            return rc;
        return set_string((char **)field, v);
    case K_PORT:
    case K_UINT:
    case K_BYTES:
    case K_DURATION: return apply_number(cfg, k, v, why, wl);
    case K_LEVEL:
        if ((i = pm_config_level_index(v)) < 0) {
            pm_config_errf(why, wl, "%s is not a log level (debug, info, warn, error)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        *(int *)field = i;
        return PM_OK;
    case K_CONFLICT:
        if ((i = conflict_index(v)) < 0) {
            pm_config_errf(why, wl, "%s is not a patient conflict policy (refuse, quarantine)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        *(int *)field = i;
        return PM_OK;
    case K_BOOL:
        if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
            pm_config_errf(why, wl, "%s is not yes or no", pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        *(int *)field = strcmp(v, "yes") == 0;
        return PM_OK;
    case K_PRIORITY:
        if (pm_config_priority_index(v) < 0) {
            pm_config_errf(why, wl, "%s is not a priority (immediate, urgent, routine)",
                           pm_config_quote(v, q));
            return PM_E_CONFIG;
        }
        snprintf(field, k->size, "%s", v);
        return PM_OK;
    case K_PEERS:
    case K_AES: return apply_list(cfg, k, v, why, wl);
    case K_RULE: return apply_rule(cfg, v, line, why, wl);
    case K_AI_RULE: return apply_ai_rule(cfg, v, line, why, wl);
    }
    return PM_E_CONFIG;
}

void pm_config_key_format(const pm_config *cfg, const pm_config_key *k, char *buf, size_t len)
{
    const char *field = (const char *)cfg + k->offset;
    uint64_t v = k->size == sizeof(uint64_t) ? *(const uint64_t *)field : *(const unsigned *)field;
    switch (k->type) {
    case K_PORT:
    case K_UINT: snprintf(buf, len, "%" PRIu64, v); break;
    case K_BYTES: pm_config_format_bytes(v, buf, len); break;
    case K_DURATION: pm_config_format_duration(v, buf, len); break;
    case K_LEVEL: snprintf(buf, len, "%s", pm_config_level_name(*(const int *)field)); break;
    case K_CONFLICT: snprintf(buf, len, "%s", conflict_names[*(const int *)field & 1]); break;
    case K_BOOL: snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no"); break;
    case K_PRIORITY: snprintf(buf, len, "%s", field); break;
    default: {
        const char *s = *(char *const *)field;
        snprintf(buf, len, "%s", s ? s : "");
    }
    }
}

/* ---------------------------------------------------------------- lifecycle */

pm_config *pm_config_new_defaults(void)
{
    pm_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    char why[256];
    for (size_t i = 0; i < pm_config_n_keys; i++)
        if (pm_config_keys[i].def &&
            pm_config_key_apply(cfg, &pm_config_keys[i], pm_config_keys[i].def, 0, why,
                                sizeof why) != PM_OK) {
            pm_config_destroy(&cfg); /* out of memory: the defaults are valid */
            return NULL;
        }
    return cfg;
}

void pm_config_destroy(pm_config **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_config *cfg = *self_p;
    free(cfg->path);
    free(cfg->name);
    free(cfg->listen);
    free(cfg->advertise);
    free(cfg->admin);
    free(cfg->mesh_id);
    for (size_t i = 0; i < cfg->n_peers; i++)
        free(cfg->peers[i]);
    free(cfg->peers);
    free(cfg->ae_title);
    free(cfg->dicom_bind);
    free(cfg->dicom_tls_cert);
    free(cfg->dicom_tls_key);
    free(cfg->dicom_tls_ca);
    for (size_t i = 0; i < cfg->n_allowed_aes; i++)
        free(cfg->allowed_aes[i]);
    free(cfg->allowed_aes);
    free(cfg->destinations);
    free(cfg->metrics_listen);
    free(cfg->ris_endpoint);
    free(cfg->ris_sending_facility);
    free(cfg->ris_receiving_application);
    free(cfg->report_destination);
    free(cfg->http_listen);
    free(cfg->http_tls_cert);
    free(cfg->http_tls_key);
    free(cfg->http_users);
    free(cfg->audit_syslog);
    free(cfg->audit_syslog_ca);
    free(cfg->audit_syslog_cert);
    free(cfg->audit_syslog_key);
    free(cfg->audit_syslog_app_name);
    for (size_t i = 0; i < cfg->n_rules; i++)
        pm_worklist_rule_free(&cfg->rules[i]);
    free(cfg->rules);
    for (size_t i = 0; i < cfg->n_ai_rules; i++)
        pm_ai_rule_free(&cfg->ai_rules[i]);
    free(cfg->ai_rules);
    free(cfg);
    *self_p = NULL;
}
