/* Levelling the workload by hand: a coordinator assigns an item to a reporter, anyone
 * with a reason (an AI triage product, a radiographer, a coordinator) flags an item to
 * a new priority, and the acquiring trust withdraws a study sent in error. Each is an
 * event on this node's feed; the rules they check are the fold's (states.h). */
#include "node/cli/admin_client.h"
#include "node/cli/commands.h"
#include "node/cli/feed_guard.h"
#include "node/cli/item_command.h"
#include "node/worklist/actions.h"
#include "node/worklist/rules.h"
#include "node/worklist/states.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/views.h"

#include <stdlib.h>
#include <string.h>

#define REASON_MAX 4096

/* Parses STUDY_UID and opts, checks the required ones are set, opens the item. */
static int open_with(int argc, char **argv, pm_cli_opt *opts, int n_required,
                     const char *required_text, pm_cli_args *a, pm_node *node, Pm__StudyView **sv)
{
    int rc = pm_cli_parse(argc, argv, opts, a);
    for (int i = 0; !rc && i < n_required; i++)
        if (!*opts[i].value)
            rc = pm_cli_usage(a->usage, "%s", required_text);
    return rc ? rc : pm_item_open(a, NULL, node, sv);
}

typedef enum { ACT_ASSIGN, ACT_FLAG } levelling_action;

/* Runs the shared action (node/worklist/actions.h, the web server's too) behind the
 * feed guard, prints its sentence and tells a running node to push the event. For
 * assign, who is the reporter; for flag, the priority. */
static int run_action(pm_node *node, levelling_action act, const char *uid, const char *who,
                      const char *by, const char *reason)
{
    int rc = pm_feed_guard_check(node); /* signs an event: never while unconfirmed */
    if (rc)
        return rc;
    pm_wl_node n = {node->store, node->blobs, node->id, node->cfg};
    char msg[1024];
    rc = act == ACT_ASSIGN ? pm_wl_assign(&n, uid, who, by, msg, sizeof msg)
                           : pm_wl_flag(&n, uid, who, reason, by, msg, sizeof msg);
    if (rc)
        return pm_cli_fail("%s", msg);
    pm_admin_kick(node);
    printf("%s\n", msg);
    return PM_EXIT_OK;
}

static void close_item(pm_node *node, Pm__StudyView *sv)
{
    pm__study_view__free_unpacked(sv, NULL);
    pm_node_close(node);
}

int pm_cmd_assign(int argc, char **argv)
{
    const char *reporter = NULL, *by = NULL;
    pm_cli_opt opts[] = {{"reporter", &reporter, NULL}, {"by", &by, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    pm_node node;
    Pm__StudyView *sv = NULL;
    int rc = open_with(argc, argv, opts, 2, "--reporter and --by are required", &a, &node, &sv);
    if (rc)
        return rc;
    if (!pm_item_reporter_ok(reporter) || !pm_item_reporter_ok(by))
        rc = pm_cli_usage(a.usage, "--reporter and --by are reporter ids (1-64 letters, digits, "
                                   "'.', '_', '-', '@')");
    else
        rc = run_action(&node, ACT_ASSIGN, a.args[0], reporter, by, NULL);
    close_item(&node, sv);
    return rc;
}

int pm_cmd_flag(int argc, char **argv)
{
    const char *priority = NULL, *reason = NULL, *by = NULL;
    pm_cli_opt opts[] = {{"priority", &priority, NULL},
                         {"reason", &reason, NULL},
                         {"by", &by, NULL},
                         {NULL, NULL, NULL}};
    pm_cli_args a;
    pm_node node;
    Pm__StudyView *sv = NULL;
    int rc = open_with(argc, argv, opts, 3, "--priority, --reason and --by are required", &a, &node,
                       &sv);
    if (rc)
        return rc;
    if (!pm_event_priority_known(priority))
        rc = pm_cli_usage(a.usage, "--priority is one of immediate, urgent, routine");
    else if (!*reason || strlen(reason) > REASON_MAX || !*by || strlen(by) > 256)
        rc = pm_cli_usage(a.usage, "--reason (1-4096 characters) and --by (1-256) must be given");
    else
        rc = run_action(&node, ACT_FLAG, a.args[0], priority, by, reason);
    close_item(&node, sv);
    return rc;
}

int pm_cmd_withdraw(int argc, char **argv)
{
    const char *reason = NULL;
    pm_cli_opt opts[] = {{"reason", &reason, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    pm_node node;
    Pm__StudyView *sv = NULL;
    int rc = open_with(argc, argv, opts, 1, "--reason is required", &a, &node, &sv);
    if (rc)
        return rc;
    pm_wl_verdict v = pm_wl_may_withdraw(sv, pm_identity_public(node.id));
    if (!*reason || strlen(reason) > REASON_MAX)
        rc = pm_cli_usage(a.usage, "--reason: 1-4096 characters");
    else if (sv->withdrawn)
        rc = pm_cli_fail("study %s is already withdrawn", a.args[0]);
    else if (v != PM_WL_ALLOWED)
        rc = pm_cli_fail("cannot withdraw %s: %s", a.args[0], pm_wl_verdict_text(v));
    if (rc) {
        close_item(&node, sv);
        return rc;
    }
    Pm__StudyWithdrawn w = PM__STUDY_WITHDRAWN__INIT;
    w.study_instance_uid = a.args[0];
    w.reason = (char *)reason;
    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_WITHDRAWN;
    body.study_withdrawn = &w;
    rc = pm_item_append(&node, &body);
    if (rc == PM_EXIT_OK)
        printf("withdrew %s from every worklist (kept in the log)\n", a.args[0]);
    close_item(&node, sv);
    return rc;
}
