/* Metrics of refusals and auditing, written into a scrape (node/daemon/metrics_http.h). */
#ifndef PM_DAEMON_METRICS_SECURITY_H
#define PM_DAEMON_METRICS_SECURITY_H

#include "node/daemon/daemon.h"

void pm_daemon_metrics_security(daemon_state *d, pm_metrics_writer *w);

#endif
