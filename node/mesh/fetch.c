#include "crypto/hash.h"
#include "node/audit/notes.h"
#include "node/cli/cli.h"
#include "node/mesh/fetch_adopt.h"
#include "node/mesh/fetch_internal.h"
#include "node/mesh/wire.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/views.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pm_fetcher_new(pm_transport *t, pm_store *store, pm_blobs *blobs, const pm_identity *id,
                   const pm_config *cfg, pm_fetch_done_fn done, void *done_ctx, pm_fetcher **out)
{
    pm_fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return PM_E_NOMEM;
    f->t = t;
    f->store = store;
    f->blobs = blobs;
    f->id = id;
    f->cfg = cfg;
    f->done = done;
    f->done_ctx = done_ctx;
    f->next_job = 1;
    f->next_request = 1;
    int rc = pm_fetch_adopter_new(blobs, &f->adopter);
    if (rc) {
        free(f);
        return rc;
    }
    *out = f;
    return PM_OK;
}

void pm_fetcher_destroy(pm_fetcher **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_fetcher *f = *self_p;
    pm_fetch_adopter_destroy(&f->adopter);
    for (size_t i = 0; i < f->n_jobs; i++)
        pm_fetch_job_free(f->jobs[i]);
    free(f->jobs);
    free(f);
    *self_p = NULL;
}

pm_fetch_stats pm_fetch_get_stats(pm_fetcher *f)
{
    return f->stats;
}

static fetch_job *find_job(pm_fetcher *f, uint64_t id)
{
    for (size_t i = 0; i < f->n_jobs; i++)
        if (f->jobs[i]->id == id)
            return f->jobs[i];
    return NULL;
}

/* One study-accessed event per reader of the job. */
static void record_access(pm_fetcher *f, fetch_job *j)
{
    ProtobufCBinaryData *served = calloc(j->n_served_by + 1, sizeof *served);
    for (size_t i = 0; served && i < j->n_served_by; i++) {
        served[i].data = j->served_by[i];
        served[i].len = PM_ID_BYTES;
    }
    for (size_t r = 0; r < j->n_readers; r++) {
        Pm__StudyAccessed a = PM__STUDY_ACCESSED__INIT;
        a.study_instance_uid = j->study;
        a.reporter = j->readers[r];
        a.served_by = served;
        a.n_served_by = served ? j->n_served_by : 0;
        a.bytes = r == 0 ? j->bytes : 0; /* the bytes moved once, for the first reader */
        Pm__EventBody body = PM__EVENT_BODY__INIT;
        body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ACCESSED;
        body.study_accessed = &a;
        int rc = pm_feed_append(f->store, f->id, &body, NULL);
        if (rc)
            pm_error("fetch", "cannot record the access to %s: %s", j->study, pm_strerror(rc));
    }
    free(served);
}

static void finish_job(pm_fetcher *f, fetch_job *j, int error)
{
    j->state = error ? 2 : 1;
    j->error = error;
    uint64_t ms = pm_now_ms() - j->started_ms;
    f->stats.last_job_ms = ms;
    if (error) {
        f->stats.jobs_failed++;
        pm_warn("fetch", "study %s: %s", j->study, pm_strerror(error));
    } else {
        f->stats.jobs_done++;
        if (j->bytes)
            pm_info("fetch", "study %s: %llu bytes in %llu ms from %zu node(s)", j->study,
                    (unsigned long long)j->bytes, (unsigned long long)ms, j->n_served_by);
        /* Every read of another trust's pixel data is on the record, cached or not. */
        if (j->remote)
            record_access(f, j);
        uint64_t evicted = 0;
        if (j->bytes)
            pm_blobs_evict(f->blobs, f->cfg->cache_max_bytes, &evicted);
    }
    if (f->done)
        f->done(f->done_ctx, j->id, error);
}

/* pm_fetch_start, and pm_fetch_prefetch with reader NULL. */
static int start_job(pm_fetcher *f, const char *study_uid, const char *reader,
                     const pm_liveness *live, uint64_t *job_id)
{
    Pm__StudyView *sv = NULL;
    if (!study_uid || !*study_uid)
        return PM_E_INVAL;
    int rc = pm_views_study(f->store, study_uid, &sv);
    if (rc)
        return rc;
    fetch_job *j = pm_fetch_plan_job(f, sv, study_uid, reader, live);
    pm__study_view__free_unpacked(sv, NULL);
    if (!j)
        return PM_E_NOMEM;
    fetch_job *running = j->error ? NULL : pm_fetch_joinable_job(f, j);
    if ((running && j->n_inst) || (!reader && !j->n_inst && !j->error)) {
        if (running && reader)
            pm_fetch_add_reader(running, reader);
        *job_id = running ? running->id : 0; /* a prefetch of what is here: nothing to do */
        pm_fetch_job_free(j);
        return PM_OK;
    }
    fetch_job **grown = realloc(f->jobs, (f->n_jobs + 1) * sizeof *grown);
    if (!grown) {
        pm_fetch_job_free(j);
        return PM_E_NOMEM;
    }
    f->jobs = grown;
    f->jobs[f->n_jobs++] = j;
    j->id = f->next_job++;
    *job_id = j->id;
    return PM_OK;
}

int pm_fetch_start(pm_fetcher *f, const char *study_uid, const char *reader,
                   const pm_liveness *live, uint64_t *job_id)
{
    return start_job(f, study_uid, reader ? reader : "", live, job_id);
}

int pm_fetch_prefetch(pm_fetcher *f, const char *study_uid, const pm_liveness *live,
                      uint64_t *job_id)
{
    *job_id = 0;
    return start_job(f, study_uid, NULL, live, job_id);
}

int pm_fetch_instance_state(pm_fetcher *f, uint64_t job, const uint8_t hash[PM_HASH_BYTES])
{
    fetch_job *j = find_job(f, job);
    const fetch_instance *in = j ? pm_fetch_job_instance(j, hash) : NULL;
    if (!in)
        return PM_E_NOTFOUND;
    if (in->state == INST_DONE)
        return 1;
    if (in->state == INST_FAILED)
        return in->fail_rc ? in->fail_rc : PM_E_NOTFOUND;
    if (j->state != 0)
        return j->error ? j->error : PM_E_NOTFOUND;
    return 0;
}

void pm_fetcher_on_instance(pm_fetcher *f, pm_fetch_instance_fn fn, void *ctx)
{
    f->on_instance = fn;
    f->on_instance_ctx = ctx;
}

json_t *pm_fetch_status(pm_fetcher *f, uint64_t id)
{
    fetch_job *j = find_job(f, id);
    if (!j)
        return NULL;
    size_t done = 0;
    for (size_t i = 0; i < j->n_inst; i++)
        done += j->inst[i].state == INST_DONE;
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "state",
                          j->state == 0   ? "running"
                          : j->state == 1 ? "done"
                                          : "failed",
                          "bytes", (json_int_t)j->bytes, "total", (json_int_t)j->total, "instances",
                          (json_int_t)j->n_inst, "instances_done", (json_int_t)done, "elapsed_ms",
                          (json_int_t)(pm_now_ms() - j->started_ms));
    if (j->state == 2)
        json_object_set_new(o, "error", json_string(pm_strerror(j->error)));
    return o;
}

/* ---- requests --------------------------------------------------------------------- */

static void drop_flights_of(pm_fetcher *f, fetch_job *j, size_t inst)
{
    size_t kept = 0;
    for (size_t i = 0; i < f->n_flight; i++)
        if (!(f->flight[i].job == j && f->flight[i].inst == inst))
            f->flight[kept++] = f->flight[i];
    f->n_flight = kept;
}

/* How much a reason for not having an instance says to whoever waits for it, most
 * first: this node's disk is full (no holder can help), a holder could not be reached
 * (it may hold it), every copy tried was damaged, no holder has it. */
static int reason_rank(int rc)
{
    switch (rc) {
    case PM_E_NOSPACE: return 4;
    case PM_E_NET: return 3;
    case PM_E_HASH: return 2;
    case PM_E_NOTFOUND: return 1;
    default: return 0;
    }
}

/* Of a reason so far (PM_OK: none yet) and another, the one that says most. */
static int telling_reason(int so_far, int rc)
{
    return !so_far || reason_rank(rc) > reason_rank(so_far) ? rc : so_far;
}

/* rc joins the instance's reasons. */
static void fail_reason(fetch_instance *in, int rc)
{
    in->fail_rc = telling_reason(in->fail_rc, rc);
}

/* Instance idx cannot be had: its waiters are told why. */
static void instance_failed(pm_fetcher *f, fetch_job *j, size_t idx)
{
    fetch_instance *in = &j->inst[idx];
    in->state = INST_FAILED;
    if (!in->fail_rc)
        in->fail_rc = PM_E_NOTFOUND;
    if (f->on_instance)
        f->on_instance(f->on_instance_ctx, j->id, in->hash, in->fail_rc);
}

/* The current holder failed this instance (rc says how): discard what came and try
 * the next. */
static void next_holder(pm_fetcher *f, fetch_job *j, size_t idx, int rc, const char *why)
{
    fetch_instance *in = &j->inst[idx];
    fail_reason(in, rc);
    char who[9] = "?", hash[17];
    if (in->holder < j->n_holders)
        pm_hex_encode(j->holders[in->holder], 4, who);
    pm_hex_encode(in->hash, 8, hash);
    pm_warn("fetch", "instance %s from peer %s: %s; trying the next holder", hash, who, why);
    drop_flights_of(f, j, idx);
    pm_fetch_discard_partial(in);
    in->state = INST_PENDING;
    in->next_offset = in->received = 0;
    in->unreachable_ms = 0;
    in->holder = j->n_holders ? (in->holder + 1) % j->n_holders : 0;
    size_t spared = in->silent_retries < j->n_holders ? in->silent_retries : j->n_holders;
    if (++in->tries >= j->n_holders + spared)
        instance_failed(f, j, idx);
}

/* A holder that did not answer in time may only have been slow (a stalled process, a
 * link remade under the requests): that try is given back once per holder, so each is
 * asked twice before the instance fails. A damaged copy or a refusal counts at once. */
static void holder_silent(pm_fetcher *f, fetch_job *j, size_t idx)
{
    j->inst[idx].silent_retries++;
    next_holder(f, j, idx, PM_E_NET, "no answer in time");
}

/* The holder's link is down (ZeroMQ is reconnecting it, or its queue is full): the
 * instance waits for it up to PM_FETCH_RECONNECT_MS before the next holder is tried,
 * so a link that drops for a moment does not fail a study it alone holds. */
static void holder_unreachable(pm_fetcher *f, fetch_job *j, size_t idx, uint64_t now,
                               const char *why)
{
    fetch_instance *in = &j->inst[idx];
    if (!in->unreachable_ms)
        in->unreachable_ms = now;
    if (!j->told_waiting && in->holder < j->n_holders) {
        char who[9];
        pm_hex_encode(j->holders[in->holder], 4, who);
        pm_info("fetch", "study %s: peer %s is not connected (%s); waiting up to %d s for it",
                j->study, who, why, PM_FETCH_RECONNECT_MS / 1000);
        j->told_waiting = 1;
    }
    if (now - in->unreachable_ms > PM_FETCH_RECONNECT_MS)
        next_holder(f, j, idx, PM_E_NET, why);
    else
        f->waiting = 1;
}

static void check_job(pm_fetcher *f, fetch_job *j)
{
    if (j->state == 0 && j->error) {
        finish_job(f, j, j->error);
        return;
    }
    if (j->state == 0 && j->n_holders == 0 && j->n_inst > 0) {
        finish_job(f, j, PM_E_NOTFOUND); /* nobody else holds it */
        return;
    }
    int all_done = 1, failed_rc = PM_OK;
    for (size_t i = 0; i < j->n_inst; i++) {
        all_done &= j->inst[i].state == INST_DONE || j->inst[i].state == INST_FAILED;
        if (j->inst[i].state == INST_FAILED)
            failed_rc = telling_reason(failed_rc, j->inst[i].fail_rc);
    }
    if (j->state == 0 && all_done)
        finish_job(f, j, failed_rc);
}

/* Whether the instance is assembled in memory (PM_FETCH_IN_MEMORY), not in a file. */
static int in_memory(const fetch_instance *in)
{
    return in->size <= PM_FETCH_IN_MEMORY;
}

void pm_fetch_discard_partial(fetch_instance *in)
{
    free(in->buf);
    in->buf = NULL;
    if (in->fd >= 0) {
        close(in->fd);
        unlink(in->tmp);
        in->fd = -1;
    }
}

/* Where the instance's chunks go as they come: a buffer made when the first arrives
 * (keep_chunk), or a temporary file for a large one. PM_OK, or it failed (and its
 * waiters were told). */
static int begin_instance(pm_fetcher *f, fetch_job *j, size_t idx)
{
    fetch_instance *in = &j->inst[idx];
    if (in_memory(in))
        return PM_OK;
    pm_blobs_temp_path(f->blobs, in->tmp, sizeof in->tmp);
    in->fd = open(in->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (in->fd < 0) {
        pm_error("fetch", "cannot create %s: %s", in->tmp, strerror(errno));
        fail_reason(in, errno == ENOSPC ? PM_E_NOSPACE : PM_E_IO);
        instance_failed(f, j, idx);
        return PM_E_IO;
    }
    return PM_OK;
}

/* Keeps a chunk that matched its request: PM_OK, PM_E_NOMEM, PM_E_NOSPACE or PM_E_IO. */
static int keep_chunk(fetch_instance *in, const Pm__ChunkReply *rep)
{
    if (in_memory(in)) {
        if (!in->buf && !(in->buf = malloc(in->size ? in->size : 1)))
            return PM_E_NOMEM;
        /* The request said where: offset and length lie within size. */
        memcpy(in->buf + rep->offset, rep->data.data, rep->data.len);
        return PM_OK;
    }
    if (pwrite(in->fd, rep->data.data, rep->data.len, (off_t)rep->offset) == (ssize_t)rep->data.len)
        return PM_OK;
    return errno == ENOSPC ? PM_E_NOSPACE : PM_E_IO;
}

/* Sends the next chunk request of instance idx, if it has one. */
static int request_chunk(pm_fetcher *f, fetch_job *j, size_t idx, uint64_t now)
{
    fetch_instance *in = &j->inst[idx];
    if (in->state == INST_PENDING) {
        /* Instances waiting in memory to be adopted are bounded: no new one is begun
         * until the adopter has caught up (its results run pm_fetch_tick again). */
        if (in_memory(in) && pm_fetch_adopter_backlog(f->adopter) > PM_FETCH_ADOPT_BACKLOG)
            return 0;
        if (begin_instance(f, j, idx) != PM_OK)
            return 0;
        in->state = INST_ACTIVE;
    }
    if (in->state != INST_ACTIVE || (in->next_offset >= in->size && in->size))
        return 0;
    if (in->size == 0 && in->next_offset > 0)
        return 0;
    pm_peer *peer = pm_transport_find(f->t, j->holders[in->holder]);
    if (!peer || !peer->dealer) {
        holder_unreachable(f, j, idx, now, "not connected");
        return 0;
    }
    uint64_t left = in->size - in->next_offset;
    uint32_t len = left < in->chunk ? (uint32_t)left : in->chunk;
    Pm__ChunkRequest req = PM__CHUNK_REQUEST__INIT;
    req.hash.data = in->hash;
    req.hash.len = PM_HASH_BYTES;
    req.offset = in->next_offset;
    req.length = len;
    req.request_id = f->next_request++;
    req.study_instance_uid = j->study;
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_CHUNK_REQUEST;
    msg.chunk_request = &req;
    uint8_t *buf;
    size_t n;
    if (pm_wire_pack(&msg, &buf, &n) != PM_OK) {
        next_holder(f, j, idx, PM_E_NOMEM, "out of memory");
        return 0;
    }
    int sent = pm_transport_send(f->t, peer, buf, n);
    free(buf);
    if (sent != PM_OK) {
        holder_unreachable(f, j, idx, now, "cannot send to it");
        return 0;
    }
    in->unreachable_ms = 0;
    in_flight *fl = &f->flight[f->n_flight++];
    fl->request_id = req.request_id;
    fl->job = j;
    fl->inst = idx;
    fl->offset = in->next_offset;
    fl->length = len;
    fl->sent_ms = now;
    memcpy(fl->holder, peer->id, PM_ID_BYTES);
    in->next_offset += len ? len : 1;
    return 1;
}

/* How many of the job's instances, from the first, may be asked for now. The first
 * instance travels alone until it has wholly arrived: on a machine of few cores the rest
 * of the study in flight would otherwise share the link, the decryption and the disk
 * with it, and the viewer's first image would wait for all of that. Not while its holder
 * is unreachable: then the rest, perhaps held elsewhere, goes on. */
static size_t askable(const fetch_job *j)
{
    const fetch_instance *first = &j->inst[0];
    int travelling = j->n_inst && !j->handed_first && !first->unreachable_ms &&
                     (first->state == INST_PENDING || first->state == INST_ACTIVE);
    return travelling ? 1 : j->n_inst;
}

int pm_fetch_tick(pm_fetcher *f, uint64_t now)
{
    /* Requests that took too long: that holder is treated as failing the instance.
     * Measured from the later of the request and the holder's last answer, so a whole
     * window queued behind a slow but working link is not counted against it. */
    for (size_t i = 0; i < f->n_flight;) {
        in_flight *fl = &f->flight[i];
        uint64_t since = fl->sent_ms > f->last_reply_ms ? fl->sent_ms : f->last_reply_ms;
        if (now - since > PM_FETCH_TIMEOUT_MS) {
            fetch_job *j = fl->job;
            holder_silent(f, j, fl->inst);
            check_job(f, j);
            i = 0; /* next_holder compacted the array */
            continue;
        }
        i++;
    }
    /* Fill the window, oldest job first. */
    f->waiting = 0;
    for (size_t k = 0; k < f->n_jobs && f->n_flight < PM_FETCH_WINDOW; k++) {
        fetch_job *j = f->jobs[k];
        if (j->state != 0)
            continue;
        int progress = 1;
        size_t n = askable(j);
        while (progress && f->n_flight < PM_FETCH_WINDOW) {
            progress = 0;
            for (size_t i = 0; i < n && f->n_flight < PM_FETCH_WINDOW; i++)
                if (j->inst[i].state == INST_PENDING || j->inst[i].state == INST_ACTIVE)
                    progress |= request_chunk(f, j, i, now);
        }
        check_job(f, j);
    }
    /* Forget finished jobs after a minute (their status stays queryable till then). */
    size_t kept = 0;
    for (size_t i = 0; i < f->n_jobs; i++) {
        fetch_job *j = f->jobs[i];
        if (j->state != 0 && now - j->started_ms > 60000)
            pm_fetch_job_free(j);
        else
            f->jobs[kept++] = j;
    }
    f->n_jobs = kept;
    return f->n_flight ? 200 : f->waiting ? 100 : -1;
}

static void add_served_by(fetch_job *j, const uint8_t *id)
{
    for (size_t i = 0; i < j->n_served_by; i++)
        if (memcmp(j->served_by[i], id, PM_ID_BYTES) == 0)
            return;
    memcpy(j->served_by[j->n_served_by++], id, PM_ID_BYTES);
}

/* A chunk is checked against the hash its origin signed for it, when there is one. */
static int chunk_matches(const fetch_instance *in, const Pm__ChunkReply *rep)
{
    if (!in->chunk_hashes)
        return 1;
    uint64_t index = rep->offset / in->chunk;
    if (rep->offset % in->chunk || index >= in->n_chunk_hashes)
        return 0;
    uint8_t h[PM_HASH_BYTES];
    pm_hash(rep->data.data, rep->data.len, h);
    return sodium_memcmp(h, in->chunk_hashes[index], PM_HASH_BYTES) == 0;
}

/* Every byte of the instance is here: the adopter checks it against the hash its origin
 * signed and adopts it, off the main loop (pm_fetch_handle_adopted takes the result). */
static void hand_to_adopter(pm_fetcher *f, fetch_job *j, size_t idx, const uint8_t *holder)
{
    fetch_instance *in = &j->inst[idx];
    pm_fetch_adoption a;
    memset(&a, 0, sizeof a);
    a.job = j->id;
    a.inst = idx;
    memcpy(a.hash, in->hash, PM_HASH_BYTES);
    memcpy(a.holder, holder, PM_ID_BYTES);
    /* The first of the job goes alone: the viewer's first image waits for no other. */
    a.alone = !j->handed_first;
    j->handed_first = 1;
    if (in->buf) {
        a.data = in->buf;
        a.size = in->size;
    } else {
        close(in->fd);
        snprintf(a.tmp, sizeof a.tmp, "%s", in->tmp);
    }
    in->buf = NULL;
    in->fd = -1;
    in->state = INST_ADOPTING;
    if (pm_fetch_adopter_submit(f->adopter, &a) != PM_OK) {
        if (a.data)
            free(a.data);
        else
            unlink(a.tmp);
        in->state = INST_ACTIVE;
        next_holder(f, j, idx, PM_E_NOMEM, "out of memory");
    }
}

static void adopted(pm_fetcher *f, const pm_fetch_adoption *a)
{
    fetch_job *j = find_job(f, a->job);
    if (!j || a->inst >= j->n_inst || j->inst[a->inst].state != INST_ADOPTING)
        return;
    fetch_instance *in = &j->inst[a->inst];
    if (a->rc == PM_OK) {
        in->state = INST_DONE;
        f->stats.instances_fetched++;
        add_served_by(j, a->holder);
        if (f->on_instance)
            f->on_instance(f->on_instance_ctx, j->id, in->hash, PM_OK);
    } else {
        if (a->rc == PM_E_HASH)
            f->stats.corrupt++;
        in->state = INST_ACTIVE;
        next_holder(f, j, a->inst, a->rc,
                    a->rc == PM_E_HASH ? "its bytes do not match the signed hash (corrupt)"
                                       : pm_strerror(a->rc));
    }
    check_job(f, j);
}

int pm_fetch_wake_fd(pm_fetcher *f)
{
    return pm_fetch_adopter_fd(f->adopter);
}

int pm_fetch_adopted_waiting(pm_fetcher *f)
{
    return pm_fetch_adopter_ready(f->adopter);
}

void pm_fetch_handle_adopted(pm_fetcher *f)
{
    pm_fetch_adoption *done = NULL;
    size_t n = 0;
    pm_fetch_adopter_results(f->adopter, &done, &n);
    for (size_t i = 0; i < n; i++)
        adopted(f, &done[i]);
    free(done);
    if (n)
        pm_fetch_tick(f, pm_now_ms());
}

void pm_fetch_handle_reply(pm_fetcher *f, const pm_channel *ch, const Pm__ChunkReply *rep)
{
    size_t i;
    for (i = 0; i < f->n_flight; i++)
        if (f->flight[i].request_id == rep->request_id &&
            memcmp(f->flight[i].holder, ch->id, PM_ID_BYTES) == 0)
            break;
    if (i == f->n_flight)
        return; /* late, duplicate or unsolicited: ignore */
    in_flight fl = f->flight[i];
    f->flight[i] = f->flight[--f->n_flight];
    f->last_reply_ms = pm_now_ms();
    fetch_job *j = fl.job;
    fetch_instance *in = &j->inst[fl.inst];
    int kept;
    if (rep->absent) {
        next_holder(f, j, fl.inst, PM_E_NOTFOUND, "it does not hold the blob");
    } else if (rep->offset != fl.offset || rep->data.len != fl.length ||
               rep->hash.len != PM_HASH_BYTES || memcmp(rep->hash.data, in->hash, PM_HASH_BYTES) ||
               in->state != INST_ACTIVE) {
        next_holder(f, j, fl.inst, PM_E_PARSE, "it sent a chunk that does not match the request");
    } else if (!chunk_matches(in, rep)) {
        f->stats.corrupt++;
        next_holder(f, j, fl.inst, PM_E_HASH, "a chunk does not match its signed hash (corrupt)");
    } else if ((kept = keep_chunk(in, rep)) != PM_OK) {
        next_holder(f, j, fl.inst, kept,
                    kept == PM_E_NOSPACE ? "this node's disk is full"
                    : kept == PM_E_NOMEM ? "out of memory"
                                         : "cannot write the chunk locally");
    } else {
        in->received += rep->data.len;
        j->bytes += rep->data.len;
        f->stats.bytes_fetched += rep->data.len;
        if (in->received == in->size)
            hand_to_adopter(f, j, fl.inst, fl.holder);
    }
    check_job(f, j);
    pm_fetch_tick(f, pm_now_ms());
}
