/* Prefetch on claim: when this node signs a claim or an assignment (its own feed: the
 * reporter claimed here, or a coordinator here assigned them the item), the study is
 * fetched in the background so that it is already warm when the reporter opens it.
 * The own feed is watched rather than each door (CLI, admin socket, web) hooked: the
 * CLI appends its events in its own process. */
#include "node/daemon/daemon.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/event.h"
#include "store/feed.h"

#include <string.h>

enum { PREFETCH_CHECK_MS = 100, PREFETCH_BATCH = 256 };

typedef struct {
    daemon_state *d;
    uint64_t last_seq;
} scan_ctx;

static int prefetch_claim(void *vctx, const uint8_t *raw, size_t len)
{
    scan_ctx *c = vctx;
    pm_event *ev = NULL;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK)
        return 0;
    c->last_seq = ev->body->seq;
    if (ev->body->payload_case == PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED &&
        ev->body->item_claimed->study_instance_uid) {
        const char *study = ev->body->item_claimed->study_instance_uid;
        pm_liveness live;
        uint64_t job = 0;
        int rc = pm_gossip_liveness(c->d->gossip, pm_now_ms(), &live);
        if (!rc)
            rc = pm_fetch_prefetch(c->d->fetcher, study, &live, &job);
        pm_liveness_free(&live);
        if (rc)
            pm_warn("node", "cannot prefetch study %s for %s: %s", study,
                    ev->body->item_claimed->reporter, pm_strerror(rc));
        else if (job)
            pm_info("node", "prefetching study %s for %s (claimed here)", study,
                    ev->body->item_claimed->reporter);
    }
    pm_event_destroy(&ev);
    return 0;
}

void pm_daemon_prefetch_claims(daemon_state *d, uint64_t now)
{
    if (now < d->prefetch_check_ms)
        return;
    d->prefetch_check_ms = now + PREFETCH_CHECK_MS;
    pm_head head;
    int rc = pm_feed_head(d->node.store, pm_identity_public(d->node.id), &head);
    if (rc == PM_E_NOTFOUND) /* nothing signed here yet */
        head.seq = 0;
    else if (rc != PM_OK)
        return;
    if (!d->prefetch_started) { /* claims from before this start are not prefetched again */
        d->prefetch_started = 1;
        d->prefetch_seq = head.seq;
        return;
    }
    if (head.seq <= d->prefetch_seq)
        return;
    pm_debug("node", "prefetch: own events %llu..%llu", (unsigned long long)d->prefetch_seq + 1,
             (unsigned long long)head.seq);
    scan_ctx c = {d, d->prefetch_seq};
    pm_feed_read(d->node.store, pm_identity_public(d->node.id), d->prefetch_seq + 1, PREFETCH_BATCH,
                 1u << 20, prefetch_claim, &c);
    /* What was read; the rest (a long burst) at the next check. */
    d->prefetch_seq = c.last_seq > d->prefetch_seq ? c.last_seq : head.seq;
}
