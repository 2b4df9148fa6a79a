/* The table of node.conf keys, private to node/config: one row per key (section, name,
 * kind of value, field of pm_config, default, bounds, help). Loading, the dump, the
 * file `init` writes and `config set` all walk this one table, so a key exists in
 * exactly one place: adding a key is adding a row (and its field in pm_config). */
#ifndef PM_CONFIG_TABLE_H
#define PM_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/config/config.h"

/* What kind of value a key holds: which syntax it accepts, how it is stored. */
typedef enum {
    K_TEXT,    /* free text without control characters: node name */
    K_BIND,    /* ZeroMQ endpoint we bind: tcp://host:port (host may be * or 0.0.0.0), ipc://path */
    K_CONNECT, /* ZeroMQ endpoint others connect to: no wildcard host */
    K_LOOPBACK, /* host:port on loopback, or empty */
    K_HOSTPORT, /* host:port anywhere, or empty */
    K_ADDRESS,  /* IPv4 or IPv6 literal */
    K_PORT,     /* 1..65535 */
    K_UINT,     /* decimal, within min..max */
    K_BYTES,    /* size with unit */
    K_DURATION, /* duration with unit */
    K_LEVEL,    /* log level name, stored as int */
    K_PRIORITY, /* priority name, stored in char[16] */
    K_CONFLICT, /* patient conflict policy name, stored as int */
    K_BOOL,     /* yes or no, stored as int 1 or 0 */
    K_MESHID,   /* 64 hex digits or empty */
    K_AE,       /* DICOM AE title */
    K_PEERS,    /* list of K_CONNECT endpoints */
    K_AES,      /* list of allowed_aes entries: AE[@host][:rights] */
    K_RULE,     /* worklist rule; the key may be repeated */
    K_AI_RULE   /* worklist AI rule; the key may be repeated */
} pm_config_kind;

typedef struct {
    const char *section;
    const char *name;
    pm_config_kind type;
    size_t offset;       /* of the field in pm_config */
    size_t size;         /* of that field */
    size_t count_offset; /* lists: offset of the item count */
    const char *def;     /* default as written in node.conf; NULL = none or derived */
    uint64_t min, max;
    const char *unit; /* K_UINT: what the number counts, for messages */
    const char *help;
} pm_config_key;

/* The rows of the table, pm_config_n_keys of them. PM_CONFIG_KEYS_MAX bounds the
 * count (checked at compile time) so that callers can size arrays indexed by row. */
#define PM_CONFIG_KEYS_MAX 64
extern const pm_config_key pm_config_keys[];
extern const size_t pm_config_n_keys;

/* Sections in the order the dump and `init` write them. */
#define PM_CONFIG_N_SECTIONS 11
extern const char *const pm_config_sections[PM_CONFIG_N_SECTIONS];
/* The section whose keys are AE titles of C-MOVE destinations, not rows of the table. */
#define PM_CONFIG_DESTINATIONS "dicom.destinations"

/* Most items in one list, destinations or rules. */
#define PM_CONFIG_LIST_MAX 1024

/* Is s one of pm_config_sections? */
bool pm_config_section_known(const char *s);

/* The row of section.name, or NULL. */
const pm_config_key *pm_config_key_find(const char *section, const char *name);

/* Can the key be repeated (lists and rules)? */
bool pm_config_key_is_list(pm_config_kind t);

/* Validates v for key k and stores it in cfg (lists and rules append; line is where
 * a rule came from). Returns PM_OK, PM_E_CONFIG with the reason in why, or
 * PM_E_NOMEM. */
int pm_config_key_apply(pm_config *cfg, const pm_config_key *k, const char *v, int line, char *why,
                        size_t wl);

/* Writes the value of scalar key k in cfg as node.conf would hold it. */
void pm_config_key_format(const pm_config *cfg, const pm_config_key *k, char *buf, size_t len);

/* A new pm_config holding every default of the table, or NULL when out of memory.
 * Free it with pm_config_destroy. */
pm_config *pm_config_new_defaults(void);

#endif
