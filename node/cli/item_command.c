/* What the commands on one worklist item share (node/cli/item_command.h). */
#include "node/cli/item_command.h"
#include "node/cli/admin_client.h"
#include "node/cli/feed_guard.h"
#include "proto/error.h"
#include "store/feed.h"
#include "store/views.h"

#include <ctype.h>
#include <string.h>

/* A reporter id: 1-64 characters of letters, digits and . _ - @ (a login or a
 * professional registration number), so it prints and matches unambiguously. */
int pm_item_reporter_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > PM_REPORTER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)r[i]) && !strchr("._-@", r[i]))
            return 0;
    return 1;
}

/* Opens the node and reads the study's view; prints the failure itself. */
int pm_item_open(const pm_cli_args *a, const char *reporter, pm_node *node, Pm__StudyView **sv)
{
    if (a->nargs != 1)
        return pm_cli_usage(a->usage, "give exactly one STUDY_UID");
    if (reporter && !pm_item_reporter_ok(reporter))
        return pm_cli_usage(a->usage,
                            "--reporter: '%s' is not a reporter id (1-64 letters, digits, "
                            "'.', '_', '-', '@')",
                            reporter);
    int rc = pm_node_open(a->dir, PM_NODE_ALL | PM_NODE_BLOBS, node);
    if (rc)
        return rc;
    int r = pm_views_study(node->store, a->args[0], sv);
    if (r == PM_E_NOTFOUND || (r == PM_OK && !(*sv)->study)) {
        pm_node_close(node);
        return pm_cli_fail("unknown study %s: no node of the mesh has announced it", a->args[0]);
    }
    if (r) {
        pm_node_close(node);
        return pm_cli_fail("cannot read study %s: %s", a->args[0], pm_strerror(r));
    }
    return PM_EXIT_OK;
}

int pm_item_append(pm_node *node, Pm__EventBody *body)
{
    /* Never signed while the node's own feed is unconfirmed (a restore): node/cli/feed_guard.h. */
    int r = pm_feed_guard_check(node);
    if (r)
        return r;
    r = pm_feed_append(node->store, node->id, body, NULL);
    if (r == PM_E_MESH)
        return pm_cli_fail("this node does not belong to a mesh yet");
    if (r)
        return pm_cli_fail("cannot write the event: %s", pm_strerror(r));
    pm_admin_kick(node);
    return PM_EXIT_OK;
}
