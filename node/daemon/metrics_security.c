/* The metrics of what the node refused and audited: handshakes refused on the mesh
 * port by reason, admin requests over the size limit, ATNA messages sent and failed
 * attempts (node/daemon/metrics_security.h). */
#include "node/daemon/metrics_security.h"
#include "node/audit/atna_sender.h"
#include "node/mesh/refusals.h"

void pm_daemon_metrics_security(daemon_state *d, pm_metrics_writer *w)
{
    pm_refusal_counts r = pm_transport_refusals(d->transport);
    const char *help = "Connections refused on the mesh port, by reason (unknown_key, "
                       "not_member, revoked, mechanism, protocol: not a ZeroMQ CURVE handshake).";
    for (int k = 0; k < PM_REFUSED_KIND_COUNT; k++)
        pm_metrics_labelled(w, PM_METRICS_COUNTER, "pacsmesh_mesh_refused_total", help, "reason",
                            pm_refusal_kind_name((pm_refusal_kind)k), (double)r.count[k]);
    pm_metrics_counter(w, "pacsmesh_mesh_refusals_unlogged_total",
                       "Mesh refusals past the log's rate limit (counted, not logged one by one).",
                       r.unlogged);
    pm_metrics_counter(w, "pacsmesh_admin_oversized_total",
                       "Admin socket requests refused for being over the size limit.",
                       d->admin_oversized);
    uint64_t sent = 0, failures = 0, dropped = 0;
    pm_atna_sender_counts(d->atna, &sent, &failures, &dropped);
    pm_metrics_counter(w, "pacsmesh_atna_messages_sent_total",
                       "Audit messages sent to the [audit] syslog repository.", sent);
    pm_metrics_counter(w, "pacsmesh_atna_send_failures_total",
                       "Failed attempts to send to the audit repository (each is retried).",
                       failures);
    pm_metrics_counter(w, "pacsmesh_atna_records_dropped_total",
                       "Audit records dropped because the journal of unsent ones was full "
                       "(256 MiB).",
                       dropped);
}
