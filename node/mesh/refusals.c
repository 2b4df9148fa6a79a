/* Refused handshakes and garbage on the mesh port (node/mesh/refusals.h). */
#include "node/mesh/refusals.h"
#include "node/audit/notes.h"
#include "proto/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define WINDOW_MS 60000
#define MONITOR_ENDPOINT "inproc://pacsmesh.mesh-monitor"
#define DRAIN_MAX 256

static const char *const NAMES[PM_REFUSED_KIND_COUNT] = {"unknown_key", "not_member", "revoked",
                                                         "mechanism", "protocol"};

const char *pm_refusal_kind_name(pm_refusal_kind kind)
{
    return kind < PM_REFUSED_KIND_COUNT ? NAMES[kind] : "?";
}

void pm_refusals_tick(pm_refusals *self, uint64_t now_ms)
{
    if (now_ms - self->window_start_ms < WINDOW_MS)
        return;
    if (self->unlogged_in_window) {
        char why[128];
        snprintf(why, sizeof why, "%llu more refused handshakes in the last minute",
                 (unsigned long long)self->unlogged_in_window);
        pm_warn("transport", "%s (not logged one by one; see the metrics)", why);
        pm_audit_note_alert(NULL, NULL, why);
    }
    self->window_start_ms = now_ms;
    self->logged_in_window = 0;
    self->unlogged_in_window = 0;
}

/* FNV-1a of the reason and the offender: which slot of this window's table counts it. */
static uint64_t offender_key(pm_refusal_kind kind, const char *who, const char *source)
{
    uint64_t h = 14695981039346656037ull ^ (uint64_t)kind;
    for (const char *p = who ? who : source ? source : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

/* Whether a line about this offender may be logged now (and if so, it is counted). */
static int may_log(pm_refusals *self, uint64_t key, uint64_t now_ms)
{
    if (self->logged_in_window >= PM_REFUSALS_LOG_PER_MINUTE)
        return 0;
    size_t slot = 0;
    for (size_t i = 0; i < PM_REFUSALS_OFFENDERS; i++) {
        if (self->offenders[i].key == key) {
            if (now_ms - self->offenders[i].logged_ms < PM_REFUSALS_OFFENDER_GAP_MS)
                return 0;
            slot = i;
            break;
        }
        if (self->offenders[i].logged_ms < self->offenders[slot].logged_ms)
            slot = i; /* free slots have time 0: taken first */
    }
    self->offenders[slot].key = key;
    self->offenders[slot].logged_ms = now_ms;
    return 1;
}

void pm_refusals_note(pm_refusals *self, pm_refusal_kind kind, const char *source, const char *who,
                      const char *what, uint64_t now_ms)
{
    if (kind < PM_REFUSED_KIND_COUNT)
        self->counts.count[kind]++;
    pm_refusals_tick(self, now_ms);
    if (!may_log(self, offender_key(kind, who, source), now_ms)) {
        self->unlogged_in_window++;
        self->counts.unlogged++;
        return;
    }
    self->logged_in_window++;
    pm_warn("transport", "refused handshake from %s: %s", source, what);
    char why[512];
    snprintf(why, sizeof why, "mesh handshake refused: %s", what);
    pm_audit_note_alert(who, source, why);
}

void pm_refusals_monitor_start(void *zctx, void *router, void **pair)
{
    *pair = NULL;
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    void *s = NULL;
    if (zmq_socket_monitor(router, MONITOR_ENDPOINT, events) != 0 ||
        !(s = zmq_socket(zctx, ZMQ_PAIR)) || zmq_connect(s, MONITOR_ENDPOINT) != 0) {
        pm_warn("transport", "cannot watch the mesh port for failed handshakes: %s",
                zmq_strerror(errno));
        if (s)
            zmq_close(s);
        return;
    }
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    *pair = s;
}

/* One monitor event: [uint16 event, uint32 value][endpoint]. */
static int read_event(void *pair, uint16_t *event, uint32_t *value, char *ep, size_t eplen)
{
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    zmq_msg_init(&addr);
    int ok = zmq_msg_recv(&head, pair, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&head) &&
             zmq_msg_recv(&addr, pair, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&head) >= 6;
    if (ok) {
        const uint8_t *h = zmq_msg_data(&head);
        memcpy(event, h, 2);
        memcpy(value, h + 2, 4);
        size_t n = zmq_msg_size(&addr) < eplen - 1 ? zmq_msg_size(&addr) : eplen - 1;
        memcpy(ep, zmq_msg_data(&addr), n);
        ep[n] = 0;
    }
    while (zmq_msg_more(ok ? &addr : &head)) { /* a later monitor format's extra frames */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        int more = zmq_msg_recv(&extra, pair, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (!more)
            break;
    }
    zmq_msg_close(&head);
    zmq_msg_close(&addr);
    return ok;
}

/* A handshake's outcome (success, or a failure counted elsewhere) names no connection:
 * it settles the one pending connection, or makes all pending ones ambiguous. */
static void settle_pending(pm_refusals *self)
{
    unsigned waiting = 0, at = 0;
    for (unsigned i = 0; i < self->n_pending; i++)
        if (!self->pending[i].ambiguous)
            waiting++, at = i;
    if (waiting == 1)
        self->pending[at] = self->pending[--self->n_pending];
    else
        for (unsigned i = 0; i < self->n_pending; i++)
            self->pending[i].ambiguous = 1;
}

/* A connection closed: one that never finished a handshake sent no ZeroMQ at all
 * (ZeroMQ closes those without a handshake event). */
static void connection_closed(pm_refusals *self, int fd, const char *ep, uint64_t now_ms)
{
    for (unsigned i = 0; i < self->n_pending; i++) {
        if (self->pending[i].fd != fd)
            continue;
        int garbage = !self->pending[i].ambiguous;
        self->pending[i] = self->pending[--self->n_pending];
        if (garbage)
            pm_refusals_note(self, PM_REFUSED_PROTOCOL, ep, NULL,
                             "not a ZeroMQ CURVE handshake (closed before any handshake; "
                             "ZeroMQ does not give the sender's address)",
                             now_ms);
        return;
    }
}

static void handshake_failed(pm_refusals *self, uint16_t event, uint32_t value, const char *ep,
                             uint64_t now_ms)
{
    settle_pending(self);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return; /* the ZAP handler refused it, and has said why */
    char what[160];
    snprintf(what, sizeof what,
             "not a ZeroMQ CURVE handshake (%s, code %u; ZeroMQ does not give the sender's "
             "address)",
             event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol error" : "failed",
             (unsigned)value);
    pm_refusals_note(self, PM_REFUSED_PROTOCOL, ep, NULL, what, now_ms);
}

void pm_refusals_monitor_drain(pm_refusals *self, void *pair, uint64_t now_ms)
{
    for (int i = 0; pair && i < DRAIN_MAX; i++) {
        uint16_t event = 0;
        uint32_t value = 0;
        char ep[256];
        if (!read_event(pair, &event, &value, ep, sizeof ep))
            break;
        if (event == ZMQ_EVENT_ACCEPTED && self->n_pending < PM_REFUSALS_PENDING) {
            self->pending[self->n_pending].fd = (int)value;
            self->pending[self->n_pending++].ambiguous = 0;
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            settle_pending(self);
        else if (event == ZMQ_EVENT_DISCONNECTED)
            connection_closed(self, (int)value, ep, now_ms);
        else if (event != ZMQ_EVENT_ACCEPTED)
            handshake_failed(self, event, value, ep, now_ms);
    }
    pm_refusals_tick(self, now_ms);
}
