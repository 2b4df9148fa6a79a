/* Prometheus metrics: a tiny HTTP/1.0 server for the text exposition format
 * (version 0.0.4) on a loopback address ([metrics] listen in node.conf).
 *
 * It has no thread of its own: the daemon's single-threaded zmq_poll loop adds
 * pm_metrics_fd() as a raw file descriptor item and calls pm_metrics_handle() when it
 * is readable. Each call accepts at most one connection, reads one request (at most
 * PM_METRICS_REQUEST_MAX bytes, within PM_METRICS_READ_MS), answers it and closes the
 * connection, so a scrape costs the loop one collect call and a client can stall it
 * for at most PM_METRICS_READ_MS + PM_METRICS_WRITE_MS. Only loopback addresses are
 * accepted: metrics stay on this host (a local Prometheus or node exporter relays
 * them).
 *
 *   GET /metrics   200, Content-Type: text/plain; version=0.0.4; charset=utf-8
 *   GET other      404
 *   other method   405
 *   malformed      400
 *
 * The collect callback writes samples through the writer functions below; every
 * metric name must start with "pacsmesh_" and match [a-zA-Z_:][a-zA-Z0-9_:]* (a name
 * that does not is skipped and logged: the scrape still succeeds). Counters should be
 * named ..._total (Prometheus convention). Consecutive samples of one name form one
 * family: its # HELP and # TYPE lines are written once, before the first of them. */
#ifndef PM_METRICS_H
#define PM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define PM_METRICS_REQUEST_MAX 4096    /* bytes of request line and headers read */
#define PM_METRICS_READ_MS 250         /* time allowed for the request to arrive */
#define PM_METRICS_WRITE_MS 1000       /* time allowed for the answer to be taken */
#define PM_METRICS_BODY_MAX (4u << 20) /* largest exposition; beyond it: 500 */

typedef struct pm_metrics pm_metrics;
typedef struct pm_metrics_writer pm_metrics_writer;

typedef enum { PM_METRICS_COUNTER, PM_METRICS_GAUGE, PM_METRICS_HISTOGRAM } pm_metrics_type;

/* Fills in one scrape: called from pm_metrics_handle, in the caller's thread. */
typedef void (*pm_metrics_collect_fn)(void *ctx, pm_metrics_writer *w);

/* Starts listening on listen: "host:port" with host 127.0.0.0/8, "localhost" or
 * "[::1]"; port 0 takes an ephemeral port (see pm_metrics_port). NULL or "" means
 * metrics are off: PM_OK with *out = NULL, and every function below accepts NULL.
 * On success *out is a new server the caller frees with pm_metrics_destroy.
 * Returns PM_OK; PM_E_INVAL if listen is not host:port or not a loopback address;
 * PM_E_NET if the socket cannot be bound (the reason is logged); PM_E_NOMEM. */
int pm_metrics_new(const char *listen, pm_metrics **out);

/* The listening socket (non-blocking), to poll for input; -1 for NULL. Owned by the
 * server: do not close it. */
int pm_metrics_fd(pm_metrics *self);

/* The TCP port listened on (useful after port 0); 0 for NULL. */
int pm_metrics_port(pm_metrics *self);

/* Accepts one pending connection, if any, and answers it (calling fn(ctx, w) for
 * GET /metrics). Never blocks longer than PM_METRICS_READ_MS + PM_METRICS_WRITE_MS.
 * Failures (client gone, timeout, oversized request) are logged at debug level and
 * dropped. fn may be NULL: an empty exposition. */
void pm_metrics_handle(pm_metrics *self, pm_metrics_collect_fn fn, void *ctx);

/* Stops listening and frees the server. Accepts NULL and *self_p == NULL; clears
 * the pointer. */
void pm_metrics_destroy(pm_metrics **self_p);

/* Writer functions, for the collect callback. name and help are borrowed for the
 * call; help may be NULL (no # HELP line). */

/* A monotonically increasing count: "# TYPE name counter" and "name value". */
void pm_metrics_counter(pm_metrics_writer *w, const char *name, const char *help, uint64_t value);

/* A value that goes up and down: "# TYPE name gauge" and "name value". */
void pm_metrics_gauge(pm_metrics_writer *w, const char *name, const char *help, double value);

/* One labelled sample: name{label="label_value"} value. label must be a valid label
 * name ([a-zA-Z_][a-zA-Z0-9_]*); label_value is escaped as the format requires. Call
 * it once per label value, consecutively, for one family. */
void pm_metrics_labelled(pm_metrics_writer *w, pm_metrics_type type, const char *name,
                         const char *help, const char *label, const char *label_value,
                         double value);

/* A sample with several labels: name{k1="v1",k2="v2",...} value, under the family
 * family_name (its # HELP and # TYPE lines written once, before its first sample; for a
 * histogram, name is family_name with _bucket, _sum or _count). labels holds n_labels
 * pairs {name, value}; label names must be valid, values are escaped. */
void pm_metrics_sample(pm_metrics_writer *w, pm_metrics_type type, const char *family_name,
                       const char *help, const char *name, const char *const (*labels)[2],
                       size_t n_labels, double value);

#endif
