/* WADO-RS (PS3.18 10.4): instances as multipart/related; type="application/dicom" (the
 * stored bytes, as received), metadata as DICOM JSON built from what the node holds,
 * frames as multipart/related; type="application/octet-stream". Another trust's
 * instances are made local first through the DICOM edge's provider (the lazy fetch a
 * C-GET uses), which records a study-accessed event naming the signed-in user. */
#include "node/http/dicomjson.h"
#include "node/http/dicomweb.h"
#include "node/http/multipart.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define WADO_MAX_INSTANCES 100000
#define WADO_FRAMES_MAX 64
#define ACCESS_RECORD_MS (10 * 60 * 1000) /* one study-accessed per reader and study */
#define FETCH_JOIN_MS (60 * 1000)         /* requests within this share one fetch job */
#define FETCH_WAIT_MS (600 * 1000)        /* longest wait for an instance to arrive */

typedef struct {
    char path[4096];
    char study[PM_DICOM_UID_MAX + 1], series[PM_DICOM_UID_MAX + 1], sop[PM_DICOM_UID_MAX + 1];
    char ts[PM_DICOM_UID_MAX + 1];
    uint8_t hash[32];
    uint64_t size;
} wado_item;

typedef struct {
    wado_item *items;
    size_t n, cap;
    int local; /* every blob is here */
    pm_http_server *srv;
    int streaming; /* instances are sent as they arrive from the fetch begun as `fetch` */
    uint64_t fetch;
} wado_set;

static int collect(void *ctx, const pm_dicom_row *row)
{
    wado_set *w = ctx;
    if (!row->instance || w->n >= WADO_MAX_INSTANCES)
        return 0;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        wado_item *g = realloc(w->items, cap * sizeof *g);
        if (!g)
            return PM_E_NOMEM;
        w->items = g;
        w->cap = cap;
    }
    wado_item *it = &w->items[w->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->study, sizeof it->study, "%s", row->value[PM_DK_STUDY_UID]);
    snprintf(it->series, sizeof it->series, "%s", row->value[PM_DK_SERIES_UID]);
    snprintf(it->sop, sizeof it->sop, "%s", row->instance->sop_instance_uid);
    snprintf(it->ts, sizeof it->ts, "%s", row->instance->transfer_syntax_uid);
    if (row->instance->hash.len == 32)
        memcpy(it->hash, row->instance->hash.data, 32);
    it->size = row->instance->size;
    return 0;
}

/* Who a read is recorded under: the reporter id, else the user name. */
static const char *reader_of(const pm_http_req *r)
{
    return *r->user.reporter ? r->user.reporter : r->user.name;
}

/* Recently recorded (reader, study) pairs, so a viewer's hundred frame requests make
 * one study-accessed event, not a hundred. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char key[PM_USER_NAME_MAX + PM_DICOM_UID_MAX + 2];
    uint64_t at;
} seen[256];

static int recently_recorded(const char *reader, const char *study, int mark)
{
    char key[sizeof seen[0].key];
    snprintf(key, sizeof key, "%s %s", reader, study);
    uint64_t now = pm_now_ms();
    int found = 0;
    pthread_mutex_lock(&seen_lock);
    size_t slot = 0;
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++) {
        if (strcmp(seen[i].key, key) == 0 && now - seen[i].at < ACCESS_RECORD_MS) {
            found = 1;
            break;
        }
        if (seen[i].at < seen[slot].at)
            slot = i;
    }
    if (!found && mark) {
        snprintf(seen[slot].key, sizeof seen[slot].key, "%s", key);
        seen[slot].at = now;
    }
    pthread_mutex_unlock(&seen_lock);
    return found;
}

/* Fetch jobs running for a study, so the viewer's parallel requests share one. */
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char study[PM_DICOM_UID_MAX + 1];
    uint64_t job, started;
} jobs[64];

/* Starts (or joins) the lazy fetch of study on the main loop; *job receives its id. */
static int start_fetch(pm_http_req *r, const char *study, uint64_t *job)
{
    uint64_t now = pm_now_ms();
    pthread_mutex_lock(&jobs_lock);
    size_t slot = 0;
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        if (strcmp(jobs[i].study, study) == 0 && now - jobs[i].started < FETCH_JOIN_MS) {
            *job = jobs[i].job;
            pthread_mutex_unlock(&jobs_lock);
            return PM_OK;
        }
        if (jobs[i].started < jobs[slot].started)
            slot = i;
    }
    pthread_mutex_unlock(&jobs_lock);
    json_t *req =
               json_pack("{s:s, s:s, s:s}", "cmd", "fetch", "study", study, "reader", reader_of(r)),
           *reply = NULL;
    int rc = req ? pm_http_ask(r->srv, r->srv->s.cfg->admin, req, 10000, &reply) : PM_E_NOMEM;
    json_decref(req);
    if (!rc && !json_is_integer(json_object_get(reply, "job")))
        rc = PM_E_NOTFOUND;
    if (!rc) {
        *job = (uint64_t)json_integer_value(json_object_get(reply, "job"));
        pthread_mutex_lock(&jobs_lock);
        snprintf(jobs[slot].study, sizeof jobs[slot].study, "%s", study);
        jobs[slot].job = *job;
        jobs[slot].started = now;
        pthread_mutex_unlock(&jobs_lock);
    }
    json_decref(reply);
    return rc;
}

/* Forgets the job shared for study (it ended). */
static void forget_fetch(const char *study)
{
    pthread_mutex_lock(&jobs_lock);
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++)
        if (strcmp(jobs[i].study, study) == 0)
            jobs[i].started = 0;
    pthread_mutex_unlock(&jobs_lock);
}

/* "running", "done" or "failed" (why in err) of a fetch job. */
static int job_failed(pm_http_req *r, uint64_t job, char *err, size_t errlen)
{
    json_t *req = json_pack("{s:s, s:I}", "cmd", "fetch-status", "job", (json_int_t)job),
           *reply = NULL;
    int rc = req ? pm_http_ask(r->srv, r->srv->s.cfg->admin, req, 10000, &reply) : PM_E_NOMEM;
    json_decref(req);
    const char *state = json_string_value(json_object_get(reply, "state"));
    const char *why = json_string_value(json_object_get(reply, "error"));
    int failed = rc || !state || strcmp(state, "failed") == 0 || strcmp(state, "done") == 0;
    snprintf(err, errlen, "%s", why ? why : state ? "the fetch ended without it" : "no answer");
    json_decref(reply);
    return failed;
}

/* Every blob of w that is here has its path; returns how many are still missing. */
static size_t locate(pm_http_req *r, wado_set *w)
{
    const pm_dicom_provider *p = &r->srv->s.provider;
    size_t missing = 0;
    for (size_t i = 0; i < w->n; i++) {
        wado_item *it = &w->items[i];
        char why[256];
        /* Only what matches its signed hash is served: a damaged copy is set aside by
         * the provider and fetched again like a missing one. */
        if (!it->path[0] &&
            (p->blob_path(p->ctx, it->hash, it->path, sizeof it->path) ||
             (p->verify_blob &&
              p->verify_blob(p->ctx, it->hash, it->path, it->study, it->sop, why, sizeof why)))) {
            it->path[0] = 0;
            missing++;
        }
    }
    return missing;
}

/* Begins the lazy fetch of what of w is not here, without waiting: the answer sends each
 * instance as it arrives (stream_part). The fetch records the read. */
static int begin_stream(pm_http_req *r, const char *study, wado_set *w, char *err, size_t errlen)
{
    const pm_dicom_provider *p = &r->srv->s.provider;
    int rc = p->begin_study(p->ctx, reader_of(r), study, &w->fetch);
    if (rc) {
        snprintf(err, errlen, "%s", pm_dicom_unavailable(rc));
        return rc;
    }
    recently_recorded(reader_of(r), study, 1);
    w->streaming = 1;
    return PM_OK;
}

/* Makes w's blobs local: another trust's instances come from the lazy fetch the DICOM
 * edge uses, and each is served as soon as it is verified and here, without waiting for
 * the rest of the study. A read of an already cached study is still recorded (once per
 * reader and study per ACCESS_RECORD_MS). */
static int make_local(pm_http_req *r, const char *study, wado_set *w, int stream, char *err,
                      size_t errlen)
{
    const pm_dicom_provider *p = &r->srv->s.provider;
    const char *reader = reader_of(r);
    size_t missing = locate(r, w);
    if (missing && stream && p->begin_study && p->await_blob)
        return begin_stream(r, study, w, err, errlen);
    if (!missing) {
        if (recently_recorded(reader, study, 0))
            return PM_OK;
        int rc = p->prepare_study(p->ctx, reader, study); /* cached: records the read */
        if (!rc)
            recently_recorded(reader, study, 1);
        snprintf(err, errlen, "%s", pm_strerror(rc));
        return rc;
    }
    uint64_t job = 0;
    int rc = start_fetch(r, study, &job);
    if (rc) {
        snprintf(err, errlen, "cannot start fetching it: %s", pm_strerror(rc));
        return rc;
    }
    recently_recorded(reader, study, 1); /* the fetch records the read when it ends */
    uint64_t deadline = pm_now_ms() + FETCH_WAIT_MS, next_check = 0;
    int retried = 0;
    while (locate(r, w)) {
        uint64_t now = pm_now_ms();
        if (now > deadline) {
            snprintf(err, errlen, "it did not arrive within %d s", FETCH_WAIT_MS / 1000);
            return PM_E_TIMEOUT;
        }
        if (now >= next_check) {
            next_check = now + 500;
            if (job_failed(r, job, err, errlen) && locate(r, w)) {
                forget_fetch(study); /* ended: evicted since, or failed; try once more */
                if (retried++ || start_fetch(r, study, &job))
                    return PM_E_NOTFOUND;
            }
        }
        usleep(20 * 1000);
    }
    return PM_OK;
}

/* Finds the instances and makes their bytes local. Answers the request itself on
 * failure (returns 1 then, with *res set). */
static int resolve(pm_http_req *r, const char *study, const char *series, const char *inst,
                   int stream, wado_set *w, enum MHD_Result *res)
{
    const pm_dicom_provider *p = &r->srv->s.provider;
    pm_dicom_query q;
    memset(&q, 0, sizeof q);
    q.level = inst ? PM_DICOM_LEVEL_IMAGE : series ? PM_DICOM_LEVEL_SERIES : PM_DICOM_LEVEL_STUDY;
    q.value[PM_DK_STUDY_UID] = study;
    q.value[PM_DK_SERIES_UID] = series;
    q.value[PM_DK_SOP_UID] = inst;
    memset(w, 0, sizeof *w);
    int rc = strpbrk(study, "*?\\") || (series && strpbrk(series, "*?\\")) ||
                     (inst && strpbrk(inst, "*?\\"))
                 ? PM_E_INVAL
                 : pm_dicom_query_instances(&q, p, collect, w);
    if (rc || !w->n) {
        *res = rc == PM_E_INVAL ? pm_http_error(r, 400, "a UID, not a pattern")
               : rc             ? pm_http_error(r, 500, "%s", pm_strerror(rc))
                                : pm_http_error(r, 404, "no such %s",
                                    inst     ? "instance"
                                                : series ? "series"
                                                         : "study");
        return 1;
    }
    char err[256] = "";
    if (make_local(r, study, w, stream, err, sizeof err)) {
        *res = pm_http_error(r, 503, "the pixel data cannot be reached now: %s", err);
        return 1;
    }
    return 0;
}

/* ---- the three kinds of answer */

/* What a streamed answer needs to find its parts' files as they arrive. */
typedef struct {
    const pm_dicom_provider *p;
    uint64_t fetch;
    wado_item *items; /* copied: the answer outlives the request handler */
    size_t n;
} stream_parts;

static void free_stream_parts(void *ctx)
{
    stream_parts *sp = ctx;
    free(sp->items);
    free(sp);
}

/* Part i's file: waits until its instance has arrived and checks it against its hash. */
static int stream_part(void *ctx, size_t i, char *path, size_t pathlen)
{
    stream_parts *sp = ctx;
    const pm_dicom_provider *p = sp->p;
    wado_item *it = &sp->items[i];
    char why[256];
    if (p->blob_path(p->ctx, it->hash, path, pathlen) != PM_OK &&
        (p->await_blob(p->ctx, sp->fetch, it->hash) != PM_OK ||
         p->blob_path(p->ctx, it->hash, path, pathlen) != PM_OK)) {
        pm_warn("http", "instance %s of study %s did not arrive: the answer ends short", it->sop,
                it->study);
        return -1;
    }
    if (p->verify_blob &&
        p->verify_blob(p->ctx, it->hash, path, it->study, it->sop, why, sizeof why) != PM_OK)
        return -1;
    return 0;
}

/* Hands the parts still missing to the answer, which waits for each in turn. */
static int stream_missing(pm_http_req *r, wado_set *w, multipart *m)
{
    stream_parts *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->items = malloc(w->n * sizeof *sp->items))) {
        free(sp);
        return PM_E_NOMEM;
    }
    memcpy(sp->items, w->items, w->n * sizeof *sp->items);
    sp->n = w->n;
    sp->p = &r->srv->s.provider;
    sp->fetch = w->fetch;
    mp_set_resolver(m, stream_part, sp, free_stream_parts);
    return PM_OK;
}

static enum MHD_Result send_instances(pm_http_req *r, wado_set *w)
{
    const char *accept = pm_http_header(r, "Accept");
    char want[80];
    pm_http_accept_param(accept, "multipart/related", "transfer-syntax", want, sizeof want);
    if (accept && !pm_http_accepts(accept, "multipart/related"))
        return pm_http_error(r, 406,
                             "instances are sent as multipart/related; "
                             "type=\"application/dicom\"");
    multipart *m = mp_new(w->n);
    if (!m)
        return pm_http_error(r, 500, "out of memory");
    for (size_t i = 0; i < w->n; i++) {
        if (*want && strcmp(want, "*") && strcmp(want, w->items[i].ts)) {
            mp_free(m);
            return pm_http_error(r, 406,
                                 "instance %s is stored as %s; this node sends what "
                                 "it stores (transfer-syntax=* or that one)",
                                 w->items[i].sop, w->items[i].ts);
        }
        char ct[128];
        snprintf(ct, sizeof ct, "application/dicom; transfer-syntax=%s", w->items[i].ts);
        if (w->items[i].path[0]) /* else streamed: filled in when it has arrived */
            *mp_path(m, i) = strdup(w->items[i].path);
        *mp_ctype(m, i) = strdup(ct);
    }
    if (w->streaming && stream_missing(r, w, m) != PM_OK) {
        mp_free(m);
        return pm_http_error(r, 500, "out of memory");
    }
    return mp_send(r, m, "application/dicom");
}

static enum MHD_Result send_metadata(pm_http_req *r, wado_set *w)
{
    const char *accept = pm_http_header(r, "Accept");
    if (!pm_http_accepts(accept, "application/dicom+json") &&
        !pm_http_accepts(accept, "application/json"))
        return pm_http_error(r, 406, "metadata is application/dicom+json");
    char base[256];
    pm_dw_base_url(r, base, sizeof base);
    size_t cap = 4096, len = 1;
    char *doc = malloc(cap);
    if (!doc)
        return pm_http_error(r, 500, "out of memory");
    doc[0] = '[';
    for (size_t i = 0; i < w->n; i++) {
        char bulk[1024], err[256] = "", *one = NULL;
        size_t n = 0;
        snprintf(bulk, sizeof bulk, "%s/studies/%s/series/%s/instances/%s/bulk/", base,
                 w->items[i].study, w->items[i].series, w->items[i].sop);
        if (pm_dw_instance_json(w->items[i].path, bulk, &one, &n, err, sizeof err)) {
            free(doc);
            return pm_http_error(r, 500, "instance %s: %s", w->items[i].sop, err);
        }
        if (len + n + 3 > cap) {
            while (len + n + 3 > cap)
                cap *= 2;
            char *g = realloc(doc, cap);
            if (!g) {
                free(one);
                free(doc);
                return pm_http_error(r, 500, "out of memory");
            }
            doc = g;
        }
        if (i)
            doc[len++] = ',';
        memcpy(doc + len, one, n);
        len += n;
        free(one);
    }
    doc[len++] = ']';
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, doc, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(doc);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/dicom+json");
    return pm_http_queue(r, 200, resp);
}

static enum MHD_Result send_frames(pm_http_req *r, wado_set *w, const char *list)
{
    unsigned frames[WADO_FRAMES_MAX];
    size_t nf = 0;
    for (const char *p = list; *p;) {
        char *end;
        unsigned long f = strtoul(p, &end, 10);
        if (end == p || f < 1 || f > 1000000 || nf == WADO_FRAMES_MAX || (*end && *end != ','))
            return pm_http_error(r, 400, "frames are a comma-separated list of numbers from 1");
        frames[nf++] = (unsigned)f;
        p = *end ? end + 1 : end;
    }
    if (!nf)
        return pm_http_error(r, 400, "name at least one frame");
    const char *accept = pm_http_header(r, "Accept");
    char want[80];
    pm_http_accept_param(accept, "multipart/related", "transfer-syntax", want, sizeof want);
    if (accept && !pm_http_accepts(accept, "multipart/related"))
        return pm_http_error(r, 406,
                             "frames are sent as multipart/related; "
                             "type=\"application/octet-stream\"");
    multipart *m = mp_new(nf);
    if (!m)
        return pm_http_error(r, 500, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        char ts[65], err[256] = "", ct[128];
        int rc = pm_dw_frame(w->items[0].path, frames[i], mp_data(m, i), mp_len(m, i), ts, err,
                             sizeof err);
        if (rc) {
            mp_free(m);
            return rc == PM_E_NOTFOUND ? pm_http_error(r, 404, "no frame %u", frames[i])
                                       : pm_http_error(r, 500, "frame %u: %s", frames[i], err);
        }
        if (*want && strcmp(want, "*") && strcmp(want, ts)) {
            mp_free(m);
            return pm_http_error(r, 406, "frame %u is available as %s only", frames[i], ts);
        }
        snprintf(ct, sizeof ct, "application/octet-stream; transfer-syntax=%s", ts);
        *mp_ctype(m, i) = strdup(ct);
    }
    return mp_send(r, m, "application/octet-stream");
}

/* The bulk data at a BulkDataURI of the metadata (".../bulk/7FE00010"). */
static enum MHD_Result send_bulk(pm_http_req *r, wado_set *w, const char *tag)
{
    char *end;
    unsigned long t = strtoul(tag, &end, 16);
    if (strlen(tag) != 8 || *end)
        return pm_http_error(r, 400, "bulk data is named by its tag, 8 hex digits");
    const char *accept = pm_http_header(r, "Accept");
    if (accept && !pm_http_accepts(accept, "multipart/related"))
        return pm_http_error(r, 406,
                             "bulk data is sent as multipart/related; "
                             "type=\"application/octet-stream\"");
    multipart *m = mp_new(1);
    if (!m)
        return pm_http_error(r, 500, "out of memory");
    char err[256] = "";
    int rc = pm_dw_bulk(w->items[0].path, (unsigned)(t >> 16), (unsigned)(t & 0xffff),
                        mp_data(m, 0), mp_len(m, 0), err, sizeof err);
    if (rc) {
        mp_free(m);
        return rc == PM_E_NOTFOUND ? pm_http_error(r, 404, "no bulk data %s", tag)
                                   : pm_http_error(r, 500, "%s", err);
    }
    *mp_ctype(m, 0) = strdup("application/octet-stream");
    return mp_send(r, m, "application/octet-stream");
}

enum MHD_Result pm_dw_wado(pm_http_req *r, const char *study, const char *series,
                           const char *instance, const char *what, const char *frames)
{
    wado_set w;
    enum MHD_Result res = MHD_NO;
    int stream = strcmp(what, "metadata") && strcmp(what, "frames") && strcmp(what, "bulk");
    if (resolve(r, study, series, instance, stream, &w, &res)) {
        free(w.items);
        return res;
    }
    if (strcmp(what, "metadata") == 0)
        res = send_metadata(r, &w);
    else if (strcmp(what, "frames") == 0)
        res = send_frames(r, &w, frames);
    else if (strcmp(what, "bulk") == 0)
        res = send_bulk(r, &w, frames);
    else
        res = send_instances(r, &w);
    free(w.items);
    return res;
}
