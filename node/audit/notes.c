/* The audit hooks (node/audit/notes.h). */
#include "node/audit/notes.h"
#include "crypto/hash.h"
#include "crypto/identity.h"
#include "node/audit/journal.h"
#include "proto/clock.h"
#include "proto/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

void pm_audit_note_query(const char *calling_ae, const char *host, const char *sop_class,
                         const char *keys, size_t matches, int failed)
{
    (void)matches; /* the edge logs it; the audit message says what was asked */
    pm_audit_record r = {.kind = PM_AUDIT_QUERY,
                         .failed = failed,
                         .user = calling_ae,
                         .host = host,
                         .object_id = sop_class,
                         .detail = keys};
    pm_audit_note(&r);
}

void pm_audit_note_retrieve(const char *reader, const char *study_uid, int failed)
{
    pm_audit_record r = {
        .kind = PM_AUDIT_RETRIEVE, .failed = failed, .user = reader, .study_uid = study_uid};
    pm_audit_note(&r);
}

void pm_audit_note_signin(const char *user, const char *ip, int ok)
{
    pm_audit_record r = {.kind = PM_AUDIT_SIGNIN,
                         .failed = !ok,
                         .user = user,
                         .host = ip,
                         .detail = ok ? NULL : "wrong user name or password"};
    pm_audit_note(&r);
}

void pm_audit_note_alert(const char *who, const char *host, const char *why)
{
    pm_audit_record r = {
        .kind = PM_AUDIT_ALERT, .failed = 1, .user = who, .host = host, .detail = why};
    pm_audit_note(&r);
}

/* Recently recorded (peer, study) pairs: a study of 500 instances served in one go is
 * one record, not 500. A small table, oldest entry replaced. */
#define SERVED_SLOTS 64
typedef struct {
    uint8_t key[PM_HASH_BYTES];
    uint64_t at_ms;
} served_slot;
static pthread_mutex_t served_lock = PTHREAD_MUTEX_INITIALIZER;
static served_slot served[SERVED_SLOTS];

static int served_recently(const uint8_t *peer, const char *study, uint64_t now)
{
    uint8_t key[PM_HASH_BYTES];
    char text[PM_ID_BYTES * 2 + 80];
    char hex[PM_ID_HEX];
    pm_hex_encode(peer, PM_ID_BYTES, hex);
    snprintf(text, sizeof text, "%s/%.64s", hex, study);
    pm_hash(text, strlen(text), key);
    pthread_mutex_lock(&served_lock);
    served_slot *oldest = &served[0];
    int seen = 0;
    for (size_t i = 0; i < SERVED_SLOTS && !seen; i++) {
        if (memcmp(served[i].key, key, sizeof key) == 0 &&
            now - served[i].at_ms < PM_AUDIT_SERVED_WINDOW_MS)
            seen = 1;
        else if (served[i].at_ms < oldest->at_ms)
            oldest = &served[i];
    }
    if (!seen) {
        memcpy(oldest->key, key, sizeof key);
        oldest->at_ms = now;
    }
    pthread_mutex_unlock(&served_lock);
    return seen;
}

/* A peer names the study: only a well-formed UID is taken as one. */
static int is_uid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 && strspn(s, "0123456789.") == n;
}

void pm_audit_note_served(const uint8_t *peer, const char *study_uid)
{
    const char *study = is_uid(study_uid) ? study_uid : NULL;
    uint64_t now = pm_now_ms();
    if (served_recently(peer, study ? study : "", now))
        return;
    char hex[PM_ID_HEX];
    pm_hex_encode(peer, PM_ID_BYTES, hex);
    pm_info("audit", "serving pixel data of study %s to peer %.16s", study ? study : "(unnamed)",
            hex);
    pm_audit_record r = {.kind = PM_AUDIT_SERVED, .time_ms = now, .user = hex, .study_uid = study};
    pm_audit_note(&r);
}
