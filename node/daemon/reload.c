/* SIGHUP reload (node/daemon/reload.h). */
#include "node/daemon/reload.h"
#include "node/daemon/daemon.h"
#include "proto/error.h"
#include "proto/log.h"

#include <stdlib.h>
#include <string.h>

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i], b[i]))
            return 0;
    return 1;
}

static int same_destinations(const pm_config *a, const pm_config *b)
{
    if (a->n_destinations != b->n_destinations)
        return 0;
    for (size_t i = 0; i < a->n_destinations; i++)
        if (!same_str(a->destinations[i].destination_ae, b->destinations[i].destination_ae) ||
            !same_str(a->destinations[i].host, b->destinations[i].host) ||
            a->destinations[i].port != b->destinations[i].port ||
            a->destinations[i].tls != b->destinations[i].tls)
            return 0;
    return 1;
}

/* Names, in the log, each changed setting that keeps its old value until a restart. */
static void note_restart_only(const pm_config *old, const pm_config *cfg)
{
    struct {
        const char *key;
        int same;
    } keys[] = {
        {"[node] name", same_str(old->name, cfg->name)},
        {"[node] listen", same_str(old->listen, cfg->listen)},
        {"[node] advertise", same_str(old->advertise, cfg->advertise)},
        {"[node] admin", same_str(old->admin, cfg->admin)},
        {"[mesh] id", same_str(old->mesh_id, cfg->mesh_id)},
        {"[mesh] peers", same_list(old->peers, old->n_peers, cfg->peers, cfg->n_peers)},
        {"[dicom] ae_title", same_str(old->ae_title, cfg->ae_title)},
        {"[dicom] port", old->dicom_port == cfg->dicom_port},
        {"[dicom] bind", same_str(old->dicom_bind, cfg->dicom_bind)},
        {"[dicom] max_pdu", old->max_pdu == cfg->max_pdu},
        {"[dicom] tls_cert", same_str(old->dicom_tls_cert, cfg->dicom_tls_cert)},
        {"[dicom] tls_key", same_str(old->dicom_tls_key, cfg->dicom_tls_key)},
        {"[dicom] tls_ca", same_str(old->dicom_tls_ca, cfg->dicom_tls_ca)},
        {"[dicom] require_client_cert",
         old->dicom_require_client_cert == cfg->dicom_require_client_cert},
        {"[gossip]", old->gossip_interval_ms == cfg->gossip_interval_ms &&
                         old->gossip_fanout == cfg->gossip_fanout &&
                         old->gossip_max_batch == cfg->gossip_max_batch},
        {"[cache] max_bytes", old->cache_max_bytes == cfg->cache_max_bytes},
        {"[metrics] listen", same_str(old->metrics_listen, cfg->metrics_listen)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!keys[i].same)
            pm_warn("node", "reload: %s changed; it takes effect when the node next starts",
                    keys[i].key);
}

/* allowed_aes, allow_store_from_any and [dicom.destinations] apply to the next
 * association; one under way finishes with the rules it began with. */
static void reload_dicom_access(daemon_state *d, const pm_config *old, const pm_config *cfg)
{
    if (!d->dicom ||
        (same_list(old->allowed_aes, old->n_allowed_aes, cfg->allowed_aes, cfg->n_allowed_aes) &&
         old->allow_store_from_any == cfg->allow_store_from_any && same_destinations(old, cfg)))
        return;
    pm_dicom_settings st;
    pm_edge_settings(cfg, d->spool_dir, &st);
    if (pm_dicom_server_set_access(d->dicom, &st) != PM_OK)
        pm_error("node", "reload: DICOM access rules not replaced; the old ones stay in use");
}

void pm_daemon_reload(daemon_state *d)
{
    const pm_config *old = d->edge.ingest.cfg ? d->edge.ingest.cfg : d->node.cfg;
    char err[512] = "";
    pm_config *cfg = NULL;
    if (d->n_retired >= MAX_RELOADS) {
        pm_error("node", "reload: refused after %d reloads; restart the node", MAX_RELOADS);
        return;
    }
    int rc = pm_config_load(old->path, d->node.dir, &cfg, err, sizeof err);
    if (rc) {
        pm_error("node", "reload: %s; keeping the configuration in use", err);
        return;
    }
    note_restart_only(old, cfg);
    if (!getenv("PACSMESH_LOG")) /* the environment overrides node.conf, as at start */
        pm_log_set_level((pm_log_level)cfg->log_level);
    /* DICOM threads read the ingest context as they go: the pointer is swapped in one
     * store, and the configuration it replaces stays allocated until shutdown, so an
     * announcement already under way finishes with the old rules. */
    if (old != d->node.cfg)
        d->retired[d->n_retired++] = (pm_config *)old;
    __atomic_store_n(&d->edge.ingest.cfg, cfg, __ATOMIC_RELEASE);
    reload_dicom_access(d, old, cfg);
    pm_info("node", "reloaded %s: %zu worklist rules", cfg->path, cfg->n_rules);
}

void pm_daemon_reload_cleanup(daemon_state *d)
{
    for (size_t i = 0; i < d->n_retired; i++)
        pm_config_destroy(&d->retired[i]);
    d->n_retired = 0;
    if (d->edge.ingest.cfg && d->edge.ingest.cfg != d->node.cfg) {
        pm_config *live = (pm_config *)d->edge.ingest.cfg;
        pm_config_destroy(&live);
    }
    d->edge.ingest.cfg = d->node.cfg;
}
