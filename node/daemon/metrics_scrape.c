/* What a scrape of [metrics] listen shows: counters of the gossip, fetch and DICOM
 * parts, the store and cache, members and the worklist (node/daemon/metrics_http.h). */
#include "crypto/hash.h"
#include "node/daemon/daemon.h"
#include "node/daemon/metrics_security.h"
#include "node/daemon/metrics_worklist.h"
#include "node/ris/sender.h"
#include "node/ris/sr_sender.h"
#include "proto/error.h"
#include "proto/version.h"
#include "store/feed.h"
#include "store/views.h"

#include <string.h>

typedef struct {
    uint64_t pending, member, revoked;
} member_counts;

static int count_member(void *ctx, const Pm__MemberView *m)
{
    member_counts *c = ctx;
    if (m->state && strcmp(m->state, "member") == 0)
        c->member++;
    else if (m->state && strcmp(m->state, "revoked") == 0)
        c->revoked++;
    else
        c->pending++;
    return 0;
}

static int count_fork(void *ctx, const uint8_t origin[PM_ID_BYTES], uint64_t seq, const uint8_t *a,
                      size_t alen, const uint8_t *b, size_t blen)
{
    (void)origin, (void)seq, (void)a, (void)alen, (void)b, (void)blen;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void collect_events(daemon_state *d, pm_metrics_writer *w, uint64_t now)
{
    (void)now;
    char id[PM_ID_HEX];
    /* Events: held in the store; arriving from peers. */
    uint64_t events = 0, forks = 0;
    pm_store_count_events(d->node.store, &events);
    pm_feed_forks(d->node.store, count_fork, &forks);
    pm_metrics_gauge(w, "pacsmesh_events_held", "Signed events held in the store, all origins.",
                     (double)events);
    pm_metrics_gauge(w, "pacsmesh_fork_evidence",
                     "Forks held as evidence (two events signed for one origin and sequence).",
                     (double)forks);
    pm_gossip_stats g = pm_gossip_get_stats(d->gossip);
    pm_metrics_counter(w, "pacsmesh_gossip_events_ingested_total",
                       "Events from peers verified and stored (applied, or held until their "
                       "author's admission arrives).",
                       g.ingested);
    pm_metrics_counter(w, "pacsmesh_gossip_events_refused_total",
                       "Events from peers refused (signature, chain, mesh, revoked author).",
                       g.refused);
    pm_metrics_counter(w, "pacsmesh_gossip_messages_received_total", "Gossip messages received.",
                       g.received);
    pm_metrics_counter(w, "pacsmesh_gossip_messages_sent_total", "Gossip messages sent.", g.sent);
    pm_metrics_counter(w, "pacsmesh_gossip_malformed_total",
                       "Messages from peers dropped as malformed.", g.malformed);
    pm_metrics_counter(w, "pacsmesh_gossip_forks_total", "Fork events seen by gossip.", g.forks);

    /* Gossip lag: each origin's head here. max by (origin) across nodes minus this
     * node's value is how many events this node is behind on that origin. */
    pm_head *heads = NULL;
    size_t nheads = 0;
    if (pm_feed_heads(d->node.store, &heads, &nheads) == PM_OK) {
        for (size_t i = 0; i < nheads; i++) {
            pm_hex_encode(heads[i].origin, PM_ID_BYTES, id);
            pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_feed_head_seq",
                                "Highest contiguous sequence held, per origin node.", "origin", id,
                                (double)heads[i].seq);
        }
        free(heads);
    }
}

static void collect_peers(daemon_state *d, pm_metrics_writer *w, uint64_t now)
{
    /* Peers and members. */
    pm_liveness live;
    if (pm_gossip_liveness(d->gossip, now, &live) != PM_OK)
        live.n = 0;
    uint64_t up = 0;
    for (size_t i = 0; i < live.n; i++)
        up += live.peers[i].up != 0;
    pm_metrics_gauge(w, "pacsmesh_peers", "Peers this node knows.", (double)live.n);
    pm_metrics_gauge(w, "pacsmesh_peers_up", "Peers heard from recently.", (double)up);
    char key[PM_ID_HEX];
    for (size_t i = 0; i < live.n; i++) {
        pm_hex_encode(live.peers[i].id, PM_ID_BYTES, key);
        pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_peer_up", "1 if the peer is up.", "peer",
                            key, live.peers[i].up != 0);
    }
    for (size_t i = 0; i < live.n; i++) {
        uint64_t seen = live.peers[i].last_seen_ms;
        pm_hex_encode(live.peers[i].id, PM_ID_BYTES, key);
        if (seen && seen <= now)
            pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_peer_last_seen_age_seconds",
                                "Seconds since the last message from the peer.", "peer", key,
                                (double)(now - seen) / 1000.0);
    }
    pm_liveness_free(&live);
    member_counts mc = {0, 0, 0};
    pm_views_members(d->node.store, count_member, &mc);
    const char *mhelp = "Members by state.";
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_members", mhelp, "state", "member",
                        (double)mc.member);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_members", mhelp, "state", "pending",
                        (double)mc.pending);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_members", mhelp, "state", "revoked",
                        (double)mc.revoked);
}

static void collect_fetch_and_edge(daemon_state *d, pm_metrics_writer *w, uint64_t now)
{
    (void)now;
    /* Lazy fetch of pixel data. */
    pm_fetch_stats f = pm_fetch_get_stats(d->fetcher);
    pm_metrics_counter(w, "pacsmesh_fetch_bytes_total", "Pixel data bytes fetched from peers.",
                       f.bytes_fetched);
    pm_metrics_counter(w, "pacsmesh_fetch_served_bytes_total", "Pixel data bytes served to peers.",
                       f.bytes_served);
    pm_metrics_counter(w, "pacsmesh_fetch_instances_total", "Instances fetched and verified.",
                       f.instances_fetched);
    pm_metrics_counter(w, "pacsmesh_fetch_corrupt_total",
                       "Fetched instances that did not match their signed hash.", f.corrupt);
    const char *jhelp = "Study fetches by result.";
    pm_metrics_labelled(w, PM_METRICS_COUNTER, "pacsmesh_fetch_jobs_total", jhelp, "result", "done",
                        (double)f.jobs_done);
    pm_metrics_labelled(w, PM_METRICS_COUNTER, "pacsmesh_fetch_jobs_total", jhelp, "result",
                        "failed", (double)f.jobs_failed);
    pm_metrics_gauge(w, "pacsmesh_fetch_last_duration_seconds",
                     "How long the last study fetch took.", (double)f.last_job_ms / 1000.0);
    pm_metrics_gauge(w, "pacsmesh_fetch_waiting_retrieves",
                     "C-GET/C-MOVE requests waiting for a fetch.", (double)d->n_waiters);

    /* The DICOM edge (its threads update these counters atomically). */
    pm_metrics_counter(w, "pacsmesh_dicom_stores_total", "C-STORE requests received.",
                       __atomic_load_n(&d->edge.stores, __ATOMIC_RELAXED));
    pm_metrics_counter(w, "pacsmesh_dicom_finds_total", "C-FIND requests answered.",
                       __atomic_load_n(&d->edge.finds, __ATOMIC_RELAXED));
    pm_metrics_counter(w, "pacsmesh_dicom_retrieves_total", "C-GET and C-MOVE requests.",
                       __atomic_load_n(&d->edge.retrieves, __ATOMIC_RELAXED));
    for (int i = 0; i < PM_DICOM_REFUSED_COUNT; i++)
        pm_metrics_labelled(w, PM_METRICS_COUNTER, "pacsmesh_dicom_refused_total",
                            "Associations and requests refused by the DICOM edge's access rules.",
                            "reason", pm_dicom_refusal_name(i),
                            (double)__atomic_load_n(&d->edge.refused[i], __ATOMIC_RELAXED));
}

static void collect_storage(daemon_state *d, pm_metrics_writer *w, uint64_t now)
{
    (void)now;
    /* Blob store and cache. */
    uint64_t total = 0, cache = 0, blobs = 0;
    if (d->blobs && pm_blobs_usage(d->blobs, &total, &cache, &blobs) == PM_OK) {
        pm_metrics_gauge(w, "pacsmesh_blob_bytes", "Bytes of pixel data held (own and cached).",
                         (double)total);
        pm_metrics_gauge(w, "pacsmesh_blobs", "Instances held (own and cached).", (double)blobs);
        pm_metrics_gauge(w, "pacsmesh_cache_bytes", "Bytes of other trusts' pixel data cached.",
                         (double)cache);
    }
    pm_metrics_gauge(w, "pacsmesh_cache_max_bytes", "[cache] max_bytes.",
                     (double)d->node.cfg->cache_max_bytes);
}

static void collect_worklist(daemon_state *d, pm_metrics_writer *w, uint64_t now)
{
    /* The worklist, recounted at most every WORKLIST_COUNT_MS. */
    if (!d->wl_counted_ms || now - d->wl_counted_ms >= WORKLIST_COUNT_MS) {
        pm_worklist_counts c = {.now = now};
        if (pm_items_counts(d->node.store, &c) == PM_OK) {
            d->wl = c;
            d->wl_counted_ms = now;
        }
        pm_wl_metrics *sites = NULL;
        if (pm_wl_metrics_count(d->node.store, now, &sites) == PM_OK) {
            pm_wl_metrics_destroy(&d->wl_sites);
            d->wl_sites = sites;
        }
    }
    const char *whelp = "Worklist items by state.";
    pm_metrics_gauge(w, "pacsmesh_studies", "Studies known across the mesh.",
                     (double)d->wl.studies);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", whelp, "state",
                        "unreported", (double)d->wl.unreported);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", whelp, "state", "claimed",
                        (double)d->wl.claimed);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", whelp, "state", "reported",
                        (double)d->wl.reported);
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_worklist_items", whelp, "state", "verified",
                        (double)d->wl.verified);
    pm_metrics_gauge(w, "pacsmesh_worklist_overdue", "Unreported or claimed items past due.",
                     (double)d->wl.overdue);
    pm_metrics_gauge(w, "pacsmesh_worklist_orphans", "Unclaimed items past due.",
                     (double)d->wl.orphans);
    pm_metrics_gauge(w, "pacsmesh_worklist_counted_time_seconds",
                     "When the worklist counts were taken (Unix time).",
                     (double)d->wl_counted_ms / 1000.0);
    pm_wl_metrics_write(d->wl_sites, w);
    /* Reports on their way home, as the senders' own threads count them (only when
     * delivery is on): no walk of the reports on the loop. */
    if (d->ris)
        pm_metrics_gauge(w, "pacsmesh_ris_undelivered",
                         "Final reports of this trust's studies the RIS has not acknowledged.",
                         (double)pm_ris_sender_undelivered(d->ris));
    if (d->report_sr)
        pm_metrics_gauge(w, "pacsmesh_report_sr_undelivered",
                         "Final reports of this trust's studies whose SR the PACS has not stored.",
                         (double)pm_sr_sender_undelivered(d->report_sr));
}

void pm_daemon_collect_metrics(void *ctx, pm_metrics_writer *w)
{
    daemon_state *d = ctx;
    uint64_t now = pm_now_ms();
    pm_metrics_labelled(w, PM_METRICS_GAUGE, "pacsmesh_build_info",
                        "The version of this build, as a label (the value is always 1).", "version",
                        pm_version(), 1);
    pm_metrics_gauge(w, "pacsmesh_start_time_seconds",
                     "When this node process started (Unix time).", (double)d->started_ms / 1000.0);
    pm_metrics_gauge(w, "pacsmesh_accepting_work",
                     "1 once the node may sign: its own feed is confirmed (a restored node "
                     "waits for a peer).",
                     d->writing);
    collect_events(d, w, now);
    collect_peers(d, w, now);
    collect_fetch_and_edge(d, w, now);
    pm_daemon_metrics_security(d, w);
    collect_storage(d, w, now);
    collect_worklist(d, w, now);
}
