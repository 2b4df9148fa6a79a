/* The incident records of node/studies/incidents.h. */
#include "node/studies/incidents.h"
#include "crypto/hash.h"
#include "proto/clock.h"
#include "proto/error.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PATIENT_PREFIX "xp/"
#define COUNT_PREFIX "xc/"
#define DAMAGED_PREFIX "xd/"

/* Read-modify-write of counters and damaged records, within this process. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t get_count(pm_store *store, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    uint64_t c = 0;
    if (pm_store_local_get(store, key, &v, &n) == PM_OK && n < 32) {
        char buf[32];
        memcpy(buf, v, n);
        buf[n] = 0;
        c = strtoull(buf, NULL, 10);
    }
    free(v);
    return c;
}

static int count_prefix(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    ++*(size_t *)ctx;
    return 0;
}

static const char *s_or(const char *s)
{
    return s ? s : "";
}

int pm_incident_patient(pm_store *store, const pm_patient_incident *in)
{
    uint64_t now = pm_now_ms();
    json_t *rec =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time_ms",
                  (json_int_t)now, "action", s_or(in->action), "study_uid", s_or(in->study_uid),
                  "sop_uid", s_or(in->sop_uid), "calling_ae", s_or(in->calling_ae), "host",
                  s_or(in->host), "patient_id", s_or(in->patient_id), "issuer", s_or(in->issuer),
                  "known_patient_id", s_or(in->known_patient_id), "known_issuer",
                  s_or(in->known_issuer), "differs", s_or(in->differs), "file", s_or(in->file));
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return PM_E_NOMEM;
    char key[32 + 2 * 64], ckey[32];
    snprintf(key, sizeof key, PATIENT_PREFIX "%013" PRIu64 "/%.64s", now, s_or(in->sop_uid));
    snprintf(ckey, sizeof ckey, COUNT_PREFIX "%s",
             in->action && !strcmp(in->action, "quarantined") ? "quarantined" : "refused");
    pthread_mutex_lock(&lock);
    size_t held = 0;
    pm_store_local_each(store, PATIENT_PREFIX, strlen(PATIENT_PREFIX), count_prefix, &held);
    char count[24];
    int n = snprintf(count, sizeof count, "%" PRIu64, get_count(store, ckey) + 1);
    const char *keys[2] = {ckey, key};
    size_t klens[2] = {strlen(ckey), strlen(key)};
    const void *vals[2] = {count, text};
    size_t vlens[2] = {(size_t)n, strlen(text)};
    int rc = pm_store_local_write(store, keys, klens, vals, vlens, held < PM_INCIDENTS_MAX ? 2 : 1);
    pthread_mutex_unlock(&lock);
    free(text);
    return rc;
}

static void damaged_key(const uint8_t hash[32], char key[4 + PM_HASH_HEX])
{
    char hex[PM_HASH_HEX];
    pm_hex_encode(hash, PM_HASH_BYTES, hex);
    snprintf(key, 4 + PM_HASH_HEX, DAMAGED_PREFIX "%s", hex);
}

static json_t *load_damaged(pm_store *store, const char *key)
{
    void *old = NULL;
    size_t olen = 0;
    json_t *rec = NULL;
    if (pm_store_local_get(store, key, &old, &olen) == PM_OK) {
        json_error_t e;
        rec = json_loadb(old, olen, 0, &e);
        free(old);
    }
    return rec;
}

static int save(pm_store *store, const char *key, json_t *rec)
{
    char *text = json_dumps(rec, JSON_COMPACT);
    int rc = text ? pm_store_local_put(store, key, text, strlen(text)) : PM_E_NOMEM;
    free(text);
    return rc;
}

int pm_incident_damaged(pm_store *store, const uint8_t hash[32], const char *path,
                        const char *study_uid, const char *sop_uid, const char *why, int pinned,
                        const char *set_aside)
{
    char key[4 + PM_HASH_HEX];
    damaged_key(hash, key);
    pthread_mutex_lock(&lock);
    json_t *rec = load_damaged(store, key);
    uint64_t now = pm_now_ms();
    if (!rec)
        rec = json_pack("{s:I, s:s, s:I}", "time_ms", (json_int_t)now, "blob",
                        key + strlen(DAMAGED_PREFIX), "detections", (json_int_t)0);
    int rc = PM_E_NOMEM;
    if (rec) {
        json_int_t d = json_integer_value(json_object_get(rec, "detections"));
        json_t *upd = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "last_ms",
                                (json_int_t)now, "detections", d + 1, "state", "damaged", "path",
                                s_or(path), "study_uid", s_or(study_uid), "sop_uid", s_or(sop_uid),
                                "why", s_or(why), "pinned", pinned, "set_aside", s_or(set_aside));
        if (upd && json_object_update(rec, upd) == 0)
            rc = save(store, key, rec);
        json_decref(upd);
        json_decref(rec);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int pm_incident_damaged_state(pm_store *store, const uint8_t hash[32], int *pinned)
{
    char key[4 + PM_HASH_HEX];
    damaged_key(hash, key);
    json_t *rec = load_damaged(store, key);
    if (pinned)
        *pinned = rec && json_is_true(json_object_get(rec, "pinned"));
    int state = !rec ? 0
                : strcmp(s_or(json_string_value(json_object_get(rec, "state"))), "repaired") == 0
                    ? 2
                    : 1;
    json_decref(rec);
    return state;
}

int pm_incident_repaired(pm_store *store, const uint8_t hash[32])
{
    char key[4 + PM_HASH_HEX];
    damaged_key(hash, key);
    pthread_mutex_lock(&lock);
    json_t *rec = load_damaged(store, key);
    int rc = PM_E_NOTFOUND;
    if (rec) {
        json_object_set_new(rec, "state", json_string("repaired"));
        json_object_set_new(rec, "repaired_ms", json_integer((json_int_t)pm_now_ms()));
        rc = save(store, key, rec);
        json_decref(rec);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int collect_json(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen;
    json_error_t e;
    json_t *rec = json_loadb(val, vlen, 0, &e);
    if (rec)
        json_array_append_new(ctx, rec);
    return 0;
}

json_t *pm_incidents_json(pm_store *store, size_t max_recent)
{
    json_t *patients = json_array(), *damaged = json_array();
    pm_store_local_each(store, PATIENT_PREFIX, strlen(PATIENT_PREFIX), collect_json, patients);
    pm_store_local_each(store, DAMAGED_PREFIX, strlen(DAMAGED_PREFIX), collect_json, damaged);
    json_t *recent = json_array();
    for (size_t i = json_array_size(patients); i > 0 && json_array_size(recent) < max_recent; i--)
        json_array_append(recent, json_array_get(patients, i - 1));
    json_decref(patients);
    return json_pack("{s:{s:I, s:I, s:o}, s:o}", "patient_conflicts", "refused",
                     (json_int_t)get_count(store, COUNT_PREFIX "refused"), "quarantined",
                     (json_int_t)get_count(store, COUNT_PREFIX "quarantined"), "recent", recent,
                     "damaged_blobs", damaged);
}

void pm_incidents_print(const json_t *doc, FILE *out)
{
    const json_t *pc = json_object_get(doc, "patient_conflicts");
    json_int_t refused = json_integer_value(json_object_get(pc, "refused"));
    json_int_t quarantined = json_integer_value(json_object_get(pc, "quarantined"));
    if (!refused && !quarantined) {
        fprintf(out, "patients no conflicts\n");
    } else {
        fprintf(out,
                "PATIENTS %lld instances refused, %lld quarantined: patient differs from "
                "their study's\n",
                (long long)refused, (long long)quarantined);
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(pc, "recent"), i, r)
        {
            if (i >= 5)
                break;
            fprintf(out, "         %s %s of study %s from %s%s%s: %s\n",
                    json_string_value(json_object_get(r, "action")),
                    json_string_value(json_object_get(r, "sop_uid")),
                    json_string_value(json_object_get(r, "study_uid")),
                    json_string_value(json_object_get(r, "calling_ae")),
                    *json_string_value(json_object_get(r, "host")) ? " at " : "",
                    json_string_value(json_object_get(r, "host")),
                    json_string_value(json_object_get(r, "differs")));
        }
    }
    const json_t *damaged = json_object_get(doc, "damaged_blobs");
    size_t i, n_damaged = 0, n_repaired = 0;
    json_t *r;
    json_array_foreach(damaged, i, r)
    {
        if (!strcmp(s_or(json_string_value(json_object_get(r, "state"))), "repaired"))
            n_repaired++;
        else
            n_damaged++;
    }
    if (!n_damaged) {
        fprintf(out, "blobs    none damaged");
        if (n_repaired)
            fprintf(out, " (%zu found damaged earlier, repaired from peers)", n_repaired);
        fprintf(out, "\n");
        return;
    }
    fprintf(out, "DAMAGED  %zu blobs do not match their signed hash (set aside, not served):\n",
            n_damaged);
    json_array_foreach(damaged, i, r)
    {
        if (!strcmp(s_or(json_string_value(json_object_get(r, "state"))), "repaired"))
            continue;
        fprintf(out, "         %s (instance %s of study %s): %s\n",
                s_or(json_string_value(json_object_get(r, "path"))),
                s_or(json_string_value(json_object_get(r, "sop_uid"))),
                s_or(json_string_value(json_object_get(r, "study_uid"))),
                s_or(json_string_value(json_object_get(r, "why"))));
    }
    if (n_repaired)
        fprintf(out, "         (and %zu found damaged earlier, repaired from peers)\n", n_repaired);
}
