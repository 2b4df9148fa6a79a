/* What the mesh port refuses: handshakes from keys that are not members (unknown,
 * pending, revoked), other security mechanisms, and bytes that are not a ZMTP
 * handshake at all (garbage, a port scanner, TLS or HTTP to the wrong port), seen
 * through a ZeroMQ socket monitor on the ROUTER.
 *
 * Each refusal is counted (for the metrics); the log gets at most one line about one
 * offender every 10 seconds and PM_REFUSALS_LOG_PER_MINUTE in all, then one line a
 * minute saying how many more there were, so
 * a flood cannot fill the disk or drown the log (and one retrying node does not hide
 * another); each line logged is also an
 * ATNA security alert (node/audit/notes.h). Owned by the transport; main thread only. */
#ifndef PM_MESH_REFUSALS_H
#define PM_MESH_REFUSALS_H

#include <stdint.h>

/* One line per offender (one node, key or address, and reason) every
 * PM_REFUSALS_OFFENDER_GAP_MS at most, and PM_REFUSALS_LOG_PER_MINUTE lines in all. */
#define PM_REFUSALS_OFFENDER_GAP_MS 10000
#define PM_REFUSALS_LOG_PER_MINUTE 30
#define PM_REFUSALS_OFFENDERS 32
#define PM_REFUSALS_PENDING 64

typedef enum {
    PM_REFUSED_UNKNOWN_KEY, /* a CURVE key no node of the mesh has */
    PM_REFUSED_NOT_MEMBER,  /* a known node, not (or no longer) a member */
    PM_REFUSED_REVOKED,     /* a revoked member */
    PM_REFUSED_MECHANISM,   /* not a CURVE handshake */
    PM_REFUSED_PROTOCOL,    /* not ZMTP, or a handshake that failed (monitor) */
    PM_REFUSED_KIND_COUNT
} pm_refusal_kind;

typedef struct {
    uint64_t count[PM_REFUSED_KIND_COUNT];
    uint64_t unlogged; /* refusals past the rate limit, not logged one by one */
} pm_refusal_counts;

typedef struct {
    pm_refusal_counts counts;
    uint64_t window_start_ms;
    unsigned logged_in_window;
    uint64_t unlogged_in_window;
    struct {
        uint64_t key; /* a hash of the reason and the offender; 0: free */
        uint64_t logged_ms;
    } offenders[PM_REFUSALS_OFFENDERS]; /* the last logged, least recent replaced */
    /* Connections accepted whose handshake has no outcome yet (the monitor's events
     * name a connection by its fd only when it is accepted and when it closes). */
    struct {
        int fd;
        int ambiguous; /* an outcome arrived while several were pending: not counted */
    } pending[PM_REFUSALS_PENDING];
    unsigned n_pending;
} pm_refusals;

/* The metrics label of a kind: "unknown_key", "not_member", "revoked", "mechanism",
 * "protocol". */
const char *pm_refusal_kind_name(pm_refusal_kind kind);

/* Counts one refusal from source (an address, or the mesh endpoint when ZeroMQ does
 * not tell the peer's), logging "refused handshake from SOURCE: WHAT" within the rate
 * limit. who names the node or key, for the audit alert (NULL: unknown). */
void pm_refusals_note(pm_refusals *self, pm_refusal_kind kind, const char *source, const char *who,
                      const char *what, uint64_t now_ms);

/* Ends a rate-limit window that is over: logs how many refusals went unlogged. */
void pm_refusals_tick(pm_refusals *self, uint64_t now_ms);

/* ---- the ROUTER's socket monitor ---- */

/* Starts monitoring router for failed handshakes; *pair is the socket to drain (NULL
 * if the monitor could not be set up: logged, and the rest still works). */
void pm_refusals_monitor_start(void *zctx, void *router, void **pair);

/* Reads the monitor's pending events (at most a bounded number) into self. */
void pm_refusals_monitor_drain(pm_refusals *self, void *pair, uint64_t now_ms);

#endif
