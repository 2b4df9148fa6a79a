/* What every subcommand shares: option parsing, opening the node directory,
 * resolving node ids, and printing tables, JSON and errors the SPEC's way. */
#ifndef PM_CLI_H
#define PM_CLI_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "crypto/identity.h"
#include "node/config/config.h"
#include "proto/clock.h"
#include "store/blobs.h"
#include "store/store.h"

/* Exit codes (docs/pacsmesh.1). */
enum { PM_EXIT_OK = 0, PM_EXIT_FAIL = 1, PM_EXIT_USAGE = 2 };

/* One option of a subcommand: --name VALUE (value != NULL) or --name (flag != NULL). */
typedef struct {
    const char *name;
    const char **value;
    int *flag;
} pm_cli_opt;

/* Options every subcommand takes, and the positional arguments left over. Nothing in
 * it is allocated: there is nothing to free. */
typedef struct {
    const char *dir;   /* --dir, else $PACSMESH_DIR, else /var/lib/pacsmesh */
    int json;          /* --json */
    int help;          /* --help */
    const char *usage; /* the command's usage line, from the command table */
    char **args;       /* positional arguments, in order: a part of argv (reordered) */
    int nargs;
} pm_cli_args;

/* Parses argv (argv[0] is the subcommand, whose row of the command table gives the
 * usage line). Options and positional arguments may be mixed; `--` ends the options.
 * argv is reordered in place so that the positional arguments are contiguous: out->args
 * points into argv and lives as long as it. Returns PM_EXIT_OK, or PM_EXIT_USAGE after
 * printing what was wrong and the usage line. */
int pm_cli_parse(int argc, char **argv, const pm_cli_opt *opts, pm_cli_args *out);

/* The options every command takes may also come before the command (as `git -C`):
 * moves --dir DIR, --dir=DIR and --json found between the program name and the
 * command to just after the command, so that `pacsmesh --dir D status` parses as
 * `pacsmesh status --dir D` (an option given after the command still wins, being read
 * later). --help, -h and --version there stand for the command itself. argv[0] is the
 * program. Returns PM_EXIT_OK, or PM_EXIT_USAGE after printing why (an unknown option,
 * --dir without a value, options but no command). */
int pm_cli_hoist_globals(int argc, char **argv);

/* Prints "pacsmesh: <message>" on stderr and returns PM_EXIT_FAIL. */
int pm_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "pacsmesh: <message>" and the usage line; returns PM_EXIT_USAGE. */
int pm_cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An opened node directory: what a command needs of it. */
typedef struct {
    char *dir;
    pm_config *cfg;
    pm_identity *id;
    pm_store *store;
    pm_blobs *blobs; /* DIR/blobs, with PM_NODE_BLOBS */
} pm_node;

/* PM_NODE_ALL is config, identity and store; PM_NODE_BLOBS (which needs the store)
 * adds the blob store. */
enum {
    PM_NODE_CONFIG = 1,
    PM_NODE_IDENTITY = 2,
    PM_NODE_STORE = 4,
    PM_NODE_ALL = 7,
    PM_NODE_BLOBS = 8 | PM_NODE_STORE
};

/* Opens what `what` asks for; on failure prints the reason and returns PM_EXIT_FAIL. */
int pm_node_open(const char *dir, int what, pm_node *out);
void pm_node_close(pm_node *node);

/* dir/name in a new string (the caller's). */
char *pm_node_path(const char *dir, const char *name);

/* Resolves a full id or a unique prefix of >= 8 hex digits against the members view.
 * On failure prints why and returns PM_EXIT_FAIL (or PM_EXIT_USAGE for a malformed id). */
int pm_cli_resolve_id(pm_store *store, const char *text, uint8_t out[PM_ID_BYTES]);

/* Formats ms since the epoch as ISO 8601 UTC ("2026-11-22T10:00:00Z"); "" for 0. */
const char *pm_cli_time(uint64_t ms, char buf[32]);

/* Short form of an id for tables: the first 8 hex digits. */
const char *pm_cli_short_id(const uint8_t *id, char buf[9]);

/* Prints one JSON document (consumes the reference) followed by a newline. */
void pm_cli_print_json(json_t *doc);

/* Aligned tables: collect rows of strings, then print with column widths. */
typedef struct pm_table pm_table;
pm_table *pm_table_new(int ncols, const char *const *headers);
void pm_table_add(pm_table *t, const char *const *cells);
void pm_table_print(pm_table *t, FILE *out);
void pm_table_destroy(pm_table **t);

#endif
