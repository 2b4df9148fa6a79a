/* Anti-entropy's per-origin decision (node/mesh/sync_plan.h). */
#include "node/mesh/sync_plan.h"
#include "proto/error.h"
#include "store/forks.h"

#include <string.h>

static uint64_t window_before(uint64_t seq)
{
    return seq > PM_SYNC_WINDOW ? seq - PM_SYNC_WINDOW : 1;
}

static int hash_one(void *ctx, const uint8_t *raw, size_t len)
{
    pm_hash(raw, len, ctx);
    return 1; /* one event is enough */
}

/* Whether the feed's event of origin at seq (held: seq <= our head) has this hash. */
static int feed_holds(pm_store *store, const pm_head *mine, uint64_t seq, const uint8_t *hash)
{
    if (seq == mine->seq)
        return memcmp(mine->hash, hash, PM_HASH_BYTES) == 0;
    uint8_t got[PM_HASH_BYTES];
    if (pm_feed_read(store, mine->origin, seq, 1, 1, hash_one, got) != 1)
        return 1; /* unreadable: assume held rather than resend a window */
    return memcmp(got, hash, PM_HASH_BYTES) == 0;
}

void pm_sync_plan_origin(pm_store *store, const pm_head *mine, const Pm__VersionEntry *theirs,
                         pm_sync_plan *out)
{
    uint64_t their_seq = theirs ? theirs->seq : 0, floor = 0;
    memset(out, 0, sizeof *out);
    out->from_seq = their_seq + 1;
    if (pm_forks_floor(store, mine->origin, &floor) != PM_OK)
        floor = 0;
    uint64_t their_floor = theirs ? theirs->fork_floor : 0;
    if (floor || their_floor) {
        if (floor && floor == their_floor && theirs->fork_digest.len == PM_HASH_BYTES) {
            uint8_t d[PM_HASH_BYTES];
            if (pm_forks_digest(store, mine->origin, floor, d) == PM_OK &&
                memcmp(d, theirs->fork_digest.data, PM_HASH_BYTES) == 0) {
                out->from_seq = mine->seq + 1; /* the same events from the same floor */
                return;
            }
        }
        uint64_t low = floor && their_floor ? (floor < their_floor ? floor : their_floor)
                                            : (floor ? floor : their_floor);
        if (window_before(low) < out->from_seq)
            out->from_seq = window_before(low);
        out->branches = floor != 0;
        return;
    }
    if (theirs && theirs->hash.len == PM_HASH_BYTES && their_seq && their_seq <= mine->seq &&
        !feed_holds(store, mine, their_seq, theirs->hash.data)) {
        out->diverged = 1;
        out->from_seq = window_before(their_seq);
    }
}

int pm_sync_fork_news(pm_store *store, const Pm__VersionEntry *theirs)
{
    if (!theirs || !theirs->fork_floor || theirs->origin.len != PM_ID_BYTES)
        return 0;
    uint64_t floor = 0;
    if (pm_forks_floor(store, theirs->origin.data, &floor) != PM_OK || floor != theirs->fork_floor)
        return 1;
    uint8_t d[PM_HASH_BYTES];
    return theirs->fork_digest.len != PM_HASH_BYTES ||
           pm_forks_digest(store, theirs->origin.data, floor, d) != PM_OK ||
           memcmp(d, theirs->fork_digest.data, PM_HASH_BYTES) != 0;
}
