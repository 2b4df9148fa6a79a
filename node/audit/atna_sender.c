/* The ATNA sender actor (node/audit/atna_sender.h). */
#include "node/audit/atna_sender.h"
#include "crypto/hash.h"
#include "node/audit/atna_events.h"
#include "node/audit/atna_message.h"
#include "node/audit/journal.h"
#include "node/audit/syslog_frame.h"
#include "node/audit/syslog_link.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEND_TIMEOUT_MS 10000
#define IDLE_WAKE_MS 1000
#define BATCH 64
#define BATCH_BYTES (4u << 20)

struct pm_atna_sender {
    pm_store *store;
    uint8_t self[PM_ID_BYTES];
    char *dir, *url, *app, *node_name, *ae_title;
    char site[PM_ID_HEX], hostname[256];
    pm_syslog_link *link;
    pm_audit_journal *journal;
    uint64_t feed_next;   /* the next seq of the own feed to send */
    uint64_t journal_off; /* the next byte of the journal to send */
    uint64_t retry_ms, not_before;
    int failing;        /* the last attempt failed: said once, and once when it recovers */
    char last_why[512]; /* why it failed: a new reason is said again */
    uint64_t sent, failures;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop, kicked;
};

/* ---- DIR/atna-sent ------------------------------------------------------------ */

static void read_cursor(pm_atna_sender *s)
{
    char path[4096], line[128];
    snprintf(path, sizeof path, "%s/atna-sent", s->dir);
    s->feed_next = 1;
    s->journal_off = 0;
    FILE *f = fopen(path, "r");
    unsigned long long v;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "feed %llu", &v) == 1 && v >= 1)
            s->feed_next = v;
        else if (sscanf(line, "journal %llu", &v) == 1)
            s->journal_off = v;
    }
    if (f)
        fclose(f);
    /* Past the end: the journal was emptied after everything in it had been sent, and
     * the node stopped before the cursor said so (journal.c). */
    if (s->journal_off > pm_audit_journal_size(s->journal))
        s->journal_off = 0;
}

static int write_cursor(pm_atna_sender *s, uint64_t journal_off)
{
    char path[4096], tmp[4200], text[96];
    snprintf(path, sizeof path, "%s/atna-sent", s->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int n = snprintf(text, sizeof text, "feed %llu\njournal %llu\n",
                     (unsigned long long)s->feed_next, (unsigned long long)journal_off);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, path) != 0) {
        pm_error("audit", "cannot record how far the audit messages went (%s): %s", path,
                 strerror(errno));
        return PM_E_IO;
    }
    return PM_OK;
}

static int save_emptied(void *ctx, uint64_t offset)
{
    pm_atna_sender *s = ctx;
    s->journal_off = offset;
    return write_cursor(s, offset);
}

/* ---- sending -------------------------------------------------------------------- */

static int send_record(pm_atna_sender *s, const pm_audit_record *r)
{
    pm_atna_source src = {s->node_name, s->site, s->ae_title, s->hostname};
    char *xml = pm_atna_message(r, &src);
    size_t len = 0;
    char *frame =
        xml ? pm_syslog_frame(s->hostname, s->app, (long)getpid(), r->time_ms, xml, &len) : NULL;
    free(xml);
    if (!frame)
        return PM_E_NOMEM;
    char why[512] = "";
    int rc = pm_syslog_link_send(s->link, frame, len, SEND_TIMEOUT_MS, why, sizeof why);
    free(frame);
    if (rc) {
        __atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);
        if (!s->failing || strcmp(why, s->last_why) != 0)
            pm_warn("audit", "audit repository %s not reached: %s; retrying every %llu s", s->url,
                    why, (unsigned long long)(s->retry_ms / 1000));
        s->failing = 1;
        snprintf(s->last_why, sizeof s->last_why, "%s", why);
        return rc;
    }
    if (s->failing)
        pm_info("audit", "audit repository %s reached again", s->url);
    s->failing = 0;
    __atomic_add_fetch(&s->sent, 1, __ATOMIC_RELAXED);
    return PM_OK;
}

static int send_event(void *ctx, const uint8_t *raw, size_t len)
{
    pm_atna_sender *s = ctx;
    pm_event *ev = NULL;
    if (pm_event_parse_stored(raw, len, &ev) != PM_OK) {
        pm_error("audit", "cannot read event %llu of the own feed; not sent",
                 (unsigned long long)s->feed_next);
        s->feed_next++;
        return 0;
    }
    pm_audit_record r;
    pm_atna_event_text text;
    int rc = pm_atna_event_record(s->store, ev, s->node_name, &r, &text) ? send_record(s, &r) : 0;
    if (!rc)
        s->feed_next = ev->body->seq + 1;
    pm_event_destroy(&ev);
    return rc ? 1 : 0;
}

typedef struct {
    pm_atna_sender *s;
    uint64_t offset;
    size_t n;
} journal_round;

static int send_journaled(void *ctx, const pm_audit_record *r, uint64_t next)
{
    journal_round *j = ctx;
    pm_audit_record full = *r;
    pm_atna_event_text text;
    if (r->study_uid && !r->patient_id) { /* a retrieve or a served read: name the patient */
        memset(&text, 0, sizeof text);
        pm_atna_patient_of(j->s->store, r->study_uid, &text);
        full.patient_id = *text.patient_id ? text.patient_id : NULL;
        full.patient_name = *text.patient_name ? text.patient_name : NULL;
    }
    if (send_record(j->s, &full) != PM_OK)
        return 1;
    j->offset = next;
    j->n++;
    return 0;
}

/* One batch of each stream; 1 when there may be more to send at once. */
static int one_round(pm_atna_sender *s)
{
    if (pm_now_ms() < s->not_before)
        return 0;
    uint64_t feed_before = s->feed_next, journal_before = s->journal_off;
    int failed =
        pm_feed_read(s->store, s->self, s->feed_next, BATCH, BATCH_BYTES, send_event, s) == 1;
    int more = s->feed_next - feed_before >= BATCH;
    if (!failed) {
        /* What a note wrote is durable before it counts as sent. */
        pm_audit_journal_sync(s->journal);
        journal_round j = {s, s->journal_off, 0};
        failed = pm_audit_journal_read(s->journal, s->journal_off, BATCH, send_journaled, &j) == 1;
        s->journal_off = j.offset;
        more = more || j.n >= BATCH;
    }
    if (s->feed_next != feed_before || s->journal_off != journal_before)
        write_cursor(s, s->journal_off);
    pm_audit_journal_compact(s->journal, s->journal_off, save_emptied, s);
    if (failed)
        s->not_before = pm_now_ms() + s->retry_ms;
    return !failed && more;
}

static void *run(void *arg)
{
    pm_atna_sender *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        s->kicked = 0;
        pthread_mutex_unlock(&s->lock);
        int more = one_round(s);
        pthread_mutex_lock(&s->lock);
        if (s->stop || s->kicked || more)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IDLE_WAKE_MS / 1000;
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- life ----------------------------------------------------------------------- */

static void free_sender(pm_atna_sender *s)
{
    pm_syslog_link_destroy(&s->link);
    pm_audit_journal_destroy(&s->journal);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->dir);
    free(s->url);
    free(s->app);
    free(s->node_name);
    free(s->ae_title);
    free(s);
}

static void wake_from_note(void *ctx)
{
    pm_atna_sender_kick(ctx);
}

int pm_atna_sender_new(const char *dir, pm_store *store, const uint8_t self[PM_ID_BYTES],
                       const pm_config *cfg, pm_atna_sender **out)
{
    *out = NULL;
    if (!cfg->audit_syslog || !*cfg->audit_syslog)
        return PM_OK;
    pm_atna_sender *s = calloc(1, sizeof *s);
    if (!s)
        return PM_E_NOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->store = store;
    memcpy(s->self, self, PM_ID_BYTES);
    pm_hex_encode(self, PM_ID_BYTES, s->site);
    if (gethostname(s->hostname, sizeof s->hostname - 1) != 0)
        snprintf(s->hostname, sizeof s->hostname, "localhost");
    s->dir = strdup(dir);
    s->url = strdup(cfg->audit_syslog);
    s->app = strdup(cfg->audit_syslog_app_name ? cfg->audit_syslog_app_name : "pacsmesh");
    s->node_name = strdup(cfg->name ? cfg->name : "");
    s->ae_title = strdup(cfg->ae_title);
    s->retry_ms = cfg->audit_syslog_retry_ms ? cfg->audit_syslog_retry_ms : 10000;
    if (!s->dir || !s->url || !s->app || !s->node_name || !s->ae_title) {
        free_sender(s);
        return PM_E_NOMEM;
    }
    char err[512] = "";
    pm_syslog_target t = {cfg->audit_syslog, cfg->audit_syslog_ca, cfg->audit_syslog_cert,
                          cfg->audit_syslog_key};
    int rc = pm_syslog_link_new(&t, &s->link, err, sizeof err);
    if (rc)
        pm_error("audit", "%s", err);
    if (!rc)
        rc = pm_audit_journal_open(dir, &s->journal);
    if (!rc) {
        read_cursor(s);
        if (pthread_create(&s->thread, NULL, run, s) != 0)
            rc = PM_E_NOMEM;
    }
    if (rc) {
        free_sender(s);
        return rc;
    }
    pm_audit_install(s->journal, wake_from_note, s);
    pm_info("audit", "sending audit messages (IHE ATNA) to %s from own event %llu on", s->url,
            (unsigned long long)s->feed_next);
    *out = s;
    return PM_OK;
}

void pm_atna_sender_kick(pm_atna_sender *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->kicked = 1;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
}

void pm_atna_sender_counts(pm_atna_sender *self, uint64_t *sent, uint64_t *failures,
                           uint64_t *dropped)
{
    *sent = *failures = *dropped = 0;
    if (!self)
        return;
    *dropped = pm_audit_journal_dropped(self->journal);
    *sent = __atomic_load_n(&self->sent, __ATOMIC_RELAXED);
    *failures = __atomic_load_n(&self->failures, __ATOMIC_RELAXED);
}

static int count_record(void *ctx, const pm_audit_record *r, uint64_t next)
{
    (void)r, (void)next;
    (*(uint64_t *)ctx)++;
    return 0;
}

int pm_atna_pending(const char *dir, pm_store *store, const uint8_t self[PM_ID_BYTES],
                    uint64_t *events, uint64_t *records)
{
    *events = *records = 0;
    pm_atna_sender s;
    memset(&s, 0, sizeof s);
    s.dir = (char *)dir;
    int rc = pm_audit_journal_open(dir, &s.journal);
    if (rc)
        return rc;
    read_cursor(&s);
    pm_head head;
    if (pm_feed_head(store, self, &head) == PM_OK && head.seq >= s.feed_next)
        *events = head.seq - s.feed_next + 1;
    rc = pm_audit_journal_read(s.journal, s.journal_off, SIZE_MAX, count_record, records);
    pm_audit_journal_destroy(&s.journal);
    return rc;
}

void pm_atna_sender_destroy(pm_atna_sender **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_atna_sender *s = *self_p;
    pm_audit_install(NULL, NULL, NULL);
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    free_sender(s);
    *self_p = NULL;
}
