/* The admin socket: how CLI commands talk to a running node. The node holds an
 * exclusive lock on DIR/run.lock while it runs, so a command can tell whether a node
 * is up without waiting on a socket. Requests and replies are JSON objects over a
 * ZeroMQ REQ/REP pair on [node] admin (default ipc://DIR/admin.sock). */
#ifndef PM_ADMIN_H
#define PM_ADMIN_H

#include <jansson.h>

#include "node/cli/cli.h"
#include "node/mesh/liveness.h"

/* 1 if a node is running on dir (its run lock is held), else 0. */
int pm_admin_node_running(const char *dir);

/* Sends request (not consumed) to the running node and waits up to timeout_ms for the
 * reply (*reply is the caller's). PM_E_NOTFOUND if no node runs, PM_E_TIMEOUT. */
int pm_admin_request(const pm_node *node, json_t *request, int timeout_ms, json_t **reply);

/* Liveness of peers as the running node sees it, into *out (the caller's to
 * pm_liveness_free): PM_OK, or PM_E_NOTFOUND when no node runs (*out is then empty).
 * If known_heads is not NULL it receives {"<origin hex>": seq}, the highest seq peers
 * reported per origin (or NULL). */
int pm_admin_liveness(const pm_node *node, pm_liveness *out, json_t **known_heads);

/* Tells a running node that new local events are in the store, so it pushes them to
 * its peers at once. Does nothing if no node runs. */
void pm_admin_kick(const pm_node *node);

#endif
