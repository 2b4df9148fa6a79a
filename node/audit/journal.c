/* DIR/atna-journal (node/audit/journal.h). */
#include "node/audit/journal.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Seven text fields, each at most PM_AUDIT_FIELD_MAX bytes that JSON_ENSURE_ASCII may
 * write as six-character escapes, and the rest of the object. */
#define LINE_MAX_BYTES (7 * 6 * PM_AUDIT_FIELD_MAX + 1024)
#define READ_BLOCK 65536

struct pm_audit_journal {
    int fd;
    pthread_mutex_t lock; /* appends, compaction, dropped */
    uint64_t dropped;
};

/* The process-wide sink (journal.h says why there is one). */
static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static pm_audit_journal *sink;
static void (*sink_wake)(void *ctx);
static void *sink_wake_ctx;

static const char *const KIND_NAMES[PM_AUDIT_KIND_COUNT] = {
    "query", "retrieve", "store", "access", "served", "signin", "alert", "record", "membership"};

const char *pm_audit_kind_name(pm_audit_kind kind)
{
    return kind < PM_AUDIT_KIND_COUNT ? KIND_NAMES[kind] : "?";
}

int pm_audit_kind_parse(const char *name)
{
    for (int k = 0; name && k < PM_AUDIT_KIND_COUNT; k++)
        if (strcmp(name, KIND_NAMES[k]) == 0)
            return k;
    return -1;
}

int pm_audit_journal_open(const char *dir, pm_audit_journal **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/atna-journal", dir);
    pm_audit_journal *j = calloc(1, sizeof *j);
    if (!j)
        return PM_E_NOMEM;
    j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        pm_error("audit", "cannot open %s: %s", path, strerror(errno));
        free(j);
        return PM_E_IO;
    }
    fchmod(j->fd, 0600); /* it names patients: whatever the umask made of an older file */
    pthread_mutex_init(&j->lock, NULL);
    *out = j;
    return PM_OK;
}

void pm_audit_journal_destroy(pm_audit_journal **self_p)
{
    if (!self_p || !*self_p)
        return;
    close((*self_p)->fd);
    pthread_mutex_destroy(&(*self_p)->lock);
    free(*self_p);
    *self_p = NULL;
}

/* A string field cut to PM_AUDIT_FIELD_MAX bytes, not inside a UTF-8 sequence. */
static void set_text(json_t *o, const char *key, const char *value)
{
    if (!value)
        return;
    size_t n = strlen(value);
    if (n > PM_AUDIT_FIELD_MAX) {
        n = PM_AUDIT_FIELD_MAX;
        while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
            n--;
    }
    /* Bytes that are not UTF-8 (a DICOM client's Latin-1) become '?', since JSON and
     * XML both need UTF-8. */
    json_t *s = json_stringn(value, n);
    if (!s) {
        char *copy = strndup(value, n);
        for (size_t i = 0; copy && i < n; i++)
            if ((unsigned char)copy[i] >= 0x80)
                copy[i] = '?';
        s = copy ? json_string(copy) : NULL;
        free(copy);
    }
    if (s)
        json_object_set_new(o, key, s);
}

static char *record_line(const pm_audit_record *r)
{
    json_t *o =
        json_pack("{s:s, s:I, s:b}", "kind", pm_audit_kind_name(r->kind), "time",
                  (json_int_t)(r->time_ms ? r->time_ms : pm_now_ms()), "failed", r->failed != 0);
    if (!o)
        return NULL;
    set_text(o, "user", r->user);
    set_text(o, "host", r->host);
    set_text(o, "study", r->study_uid);
    set_text(o, "patient_id", r->patient_id);
    set_text(o, "patient_name", r->patient_name);
    set_text(o, "object", r->object_id);
    set_text(o, "detail", r->detail);
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return text;
}

int pm_audit_journal_append(pm_audit_journal *self, const pm_audit_record *r)
{
    char *text = record_line(r);
    if (!text)
        return PM_E_NOMEM;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps left room for the terminator: replace it */
    pthread_mutex_lock(&self->lock);
    if (pm_audit_journal_size(self) + n + 1 > PM_AUDIT_JOURNAL_MAX_BYTES) {
        if (self->dropped++ % 1000 == 0)
            pm_error("audit",
                     "the audit journal is full (%llu MiB unsent): audit records "
                     "are being dropped (%llu so far); is [audit] syslog reachable?",
                     (unsigned long long)(PM_AUDIT_JOURNAL_MAX_BYTES >> 20),
                     (unsigned long long)self->dropped);
        pthread_mutex_unlock(&self->lock);
        free(text);
        return PM_E_TOOBIG;
    }
    ssize_t w = write(self->fd, text, n + 1);
    pthread_mutex_unlock(&self->lock);
    free(text);
    if (w != (ssize_t)(n + 1)) {
        pm_error("audit", "cannot append to the audit journal: %s",
                 w < 0 ? strerror(errno) : "short write");
        return PM_E_IO;
    }
    return PM_OK;
}

static int parse_line(const char *line, size_t len, pm_audit_record *r, json_t **root)
{
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    int kind = pm_audit_kind_parse(json_string_value(json_object_get(o, "kind")));
    if (!json_is_object(o) || kind < 0) {
        json_decref(o);
        return PM_E_PARSE;
    }
    memset(r, 0, sizeof *r);
    r->kind = (pm_audit_kind)kind;
    r->time_ms = (uint64_t)json_integer_value(json_object_get(o, "time"));
    r->failed = json_is_true(json_object_get(o, "failed"));
    r->user = json_string_value(json_object_get(o, "user"));
    r->host = json_string_value(json_object_get(o, "host"));
    r->study_uid = json_string_value(json_object_get(o, "study"));
    r->patient_id = json_string_value(json_object_get(o, "patient_id"));
    r->patient_name = json_string_value(json_object_get(o, "patient_name"));
    r->object_id = json_string_value(json_object_get(o, "object"));
    r->detail = json_string_value(json_object_get(o, "detail"));
    *root = o;
    return PM_OK;
}

int pm_audit_journal_read(pm_audit_journal *self, uint64_t offset, size_t max,
                          pm_audit_journal_fn fn, void *ctx)
{
    char *buf = malloc(LINE_MAX_BYTES);
    if (!buf)
        return PM_E_NOMEM;
    size_t done = 0;
    int rc = PM_OK;
    while (done < max) {
        ssize_t n = pread(self->fd, buf, LINE_MAX_BYTES, (off_t)offset);
        if (n <= 0)
            break;
        char *nl = memchr(buf, '\n', (size_t)n);
        if (!nl) {
            if (n == LINE_MAX_BYTES) /* cannot be ours: skip to the next line */
                offset += (uint64_t)n;
            else
                break; /* a record still being written */
            continue;
        }
        size_t len = (size_t)(nl - buf);
        offset += len + 1;
        pm_audit_record r;
        json_t *root = NULL;
        if (parse_line(buf, len, &r, &root) != PM_OK) {
            pm_warn("audit", "skipped an unreadable line of the audit journal");
            continue;
        }
        rc = fn(ctx, &r, offset);
        json_decref(root);
        done++;
        if (rc)
            break;
    }
    free(buf);
    return rc;
}

uint64_t pm_audit_journal_dropped(pm_audit_journal *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->dropped;
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t pm_audit_journal_size(pm_audit_journal *self)
{
    struct stat st;
    return fstat(self->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

int pm_audit_journal_sync(pm_audit_journal *self)
{
    return fdatasync(self->fd) == 0 ? PM_OK : PM_E_IO;
}

int pm_audit_journal_compact(pm_audit_journal *self, uint64_t sent_offset,
                             int (*save)(void *ctx, uint64_t offset), void *ctx)
{
    int done = 0;
    pthread_mutex_lock(&self->lock);
    uint64_t size = pm_audit_journal_size(self);
    /* A crash between the truncation and save leaves a cursor past the end, which the
     * sender reads as "all sent" (atna_sender.c), so nothing is lost either way. */
    if (size == sent_offset && size > PM_AUDIT_JOURNAL_COMPACT_BYTES &&
        ftruncate(self->fd, 0) == 0) {
        done = 1;
        if (save(ctx, 0) != PM_OK)
            pm_warn("audit", "emptied the audit journal but could not reset its cursor");
    }
    pthread_mutex_unlock(&self->lock);
    return done;
}

void pm_audit_install(pm_audit_journal *journal, void (*wake)(void *ctx), void *wake_ctx)
{
    pthread_mutex_lock(&sink_lock);
    sink = journal;
    sink_wake = wake;
    sink_wake_ctx = wake_ctx;
    pthread_mutex_unlock(&sink_lock);
}

void pm_audit_note(const pm_audit_record *r)
{
    pthread_mutex_lock(&sink_lock);
    if (sink && pm_audit_journal_append(sink, r) == PM_OK && sink_wake)
        sink_wake(sink_wake_ctx);
    pthread_mutex_unlock(&sink_lock);
}
