/* The "unconfirmed" mark of a restored node's store (node/cli/feed_guard.h). */
#include "node/cli/feed_guard.h"
#include "node/cli/admin_client.h"
#include "proto/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char KEY[] = "feed-unconfirmed";

int pm_feed_guard_unconfirmed(pm_store *store, char **why)
{
    void *val = NULL;
    size_t len = 0;
    if (why)
        *why = NULL;
    if (pm_store_local_get(store, KEY, &val, &len) != PM_OK)
        return 0;
    if (why && (*why = malloc(len + 1))) {
        memcpy(*why, val, len);
        (*why)[len] = 0;
    }
    free(val);
    return 1;
}

int pm_feed_guard_mark(pm_store *store, const char *why)
{
    return pm_store_local_put(store, KEY, why, strlen(why));
}

int pm_feed_guard_clear(pm_store *store)
{
    const char *keys[] = {KEY};
    size_t klens[] = {strlen(KEY)};
    const void *vals[] = {NULL};
    size_t vlens[] = {0};
    return pm_store_local_write(store, keys, klens, vals, vlens, 1);
}

int pm_feed_guard_check(const pm_node *node)
{
    char *why = NULL;
    if (!pm_feed_guard_unconfirmed(node->store, &why))
        return PM_EXIT_OK;
    int running = pm_admin_node_running(node->dir);
    /* The running node clears the mark once a peer confirmed its feed: wait for it. */
    for (int waited = 0; running && waited < PM_FEED_GUARD_WAIT_MS; waited += 100) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (!pm_feed_guard_unconfirmed(node->store, NULL)) {
            free(why);
            return PM_EXIT_OK;
        }
    }
    int rc = running
                 ? pm_cli_fail("nothing signed: the node is still waiting for a peer to confirm "
                               "how far its own feed goes (%s); `pacsmesh status` shows "
                               "\"confirmed\": false until one answers",
                               why ? why : "unconfirmed")
                 : pm_cli_fail("nothing signed: %s, and no peer has yet confirmed how far its own "
                               "feed goes, so a new event could fork it; start the node "
                               "(`pacsmesh run`) and it will wait for a peer (if no peer can "
                               "ever be reached, see `pacsmesh confirm --force`)",
                               why ? why : "this node's store is unconfirmed");
    free(why);
    return rc;
}
