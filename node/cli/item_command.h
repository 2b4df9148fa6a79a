/* What the commands on one worklist item share (claim, release, report, verify,
 * assign, flag, withdraw): reading the item and writing its event. */
#ifndef PM_CLI_ITEM_COMMAND_H
#define PM_CLI_ITEM_COMMAND_H

#include "node/cli/cli.h"
#include "proto/view.pb-c.h"

#define PM_REPORTER_ID_MAX 64

/* 1 if r is a reporter id: 1-64 letters, digits and . _ - @ (a login or a
 * professional registration number), so it prints and matches unambiguously. */
int pm_item_reporter_ok(const char *r);

/* Checks a->args holds one STUDY_UID (and reporter, if not NULL, is an id), opens the
 * node with its blobs and reads the study's view into *sv (the caller's: free it with
 * pm__study_view__free_unpacked, then pm_node_close). Prints any failure itself and
 * returns its exit status. */
int pm_item_open(const pm_cli_args *a, const char *reporter, pm_node *node, Pm__StudyView **sv);

/* Appends body to this node's feed and tells a running node to push it. Prints any
 * failure; returns an exit status. */
int pm_item_append(pm_node *node, Pm__EventBody *body);

#endif
