/* Planning a fetch job: what to fetch, from whom, and joining a running one. */
#include "crypto/hash.h"
#include "node/mesh/fetch_internal.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "store/blobs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Holders to ask, best first: up peers before down ones, the acquiring site first. */
static void order_holders(fetch_job *j, const Pm__StudyView *sv, const uint8_t *self,
                          const pm_liveness *live)
{
    j->holders = calloc(sv->n_holders + 1, PM_ID_BYTES);
    if (!j->holders)
        return;
    size_t n_up = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: peers that are up; pass 1: the rest */
        for (size_t i = 0; i < sv->n_holders; i++) {
            const uint8_t *h = sv->holders[i].data;
            if (memcmp(h, self, PM_ID_BYTES) == 0)
                continue;
            if ((pass == 0) != (pm_liveness_is_up(live, h) != 0))
                continue;
            memcpy(j->holders[j->n_holders++], h, PM_ID_BYTES);
        }
        if (pass == 0)
            n_up = j->n_holders;
    }
    j->n_up = n_up;
    /* Within the first (up) group, move the site to the front: it holds everything. */
    for (size_t i = 1; i < n_up; i++)
        if (memcmp(j->holders[i], sv->site.data, PM_ID_BYTES) == 0) {
            uint8_t tmp[PM_ID_BYTES];
            memcpy(tmp, j->holders[0], PM_ID_BYTES);
            memcpy(j->holders[0], j->holders[i], PM_ID_BYTES);
            memcpy(j->holders[i], tmp, PM_ID_BYTES);
            break;
        }
}

/* Adds instance in to the job's list of what to fetch. */
static void plan_instance(fetch_job *j, const Pm__Instance *in)
{
    fetch_instance *fi = &j->inst[j->n_inst++];
    memcpy(fi->hash, in->hash.data, PM_HASH_BYTES);
    fi->size = in->size;
    fi->fd = -1;
    fi->chunk = PM_FETCH_CHUNK;
    /* Signed chunk hashes are used only if they cover the instance exactly. */
    uint64_t cs = in->chunk_size;
    if (cs >= 4096 && cs <= PM_FETCH_CHUNK && in->n_chunk_hashes &&
        in->n_chunk_hashes == (in->size + cs - 1) / cs &&
        (fi->chunk_hashes = malloc(in->n_chunk_hashes * PM_HASH_BYTES))) {
        int ok = 1;
        for (size_t c = 0; c < in->n_chunk_hashes; c++) {
            ok &= in->chunk_hashes[c].len == PM_HASH_BYTES;
            if (ok)
                memcpy(fi->chunk_hashes[c], in->chunk_hashes[c].data, PM_HASH_BYTES);
        }
        fi->chunk = (uint32_t)cs;
        fi->n_chunk_hashes = in->n_chunk_hashes;
        if (!ok) {
            free(fi->chunk_hashes);
            fi->chunk_hashes = NULL;
            fi->n_chunk_hashes = 0;
            fi->chunk = PM_FETCH_CHUNK;
        }
    }
}

/* Builds a job for what of the study is not local, in series and instance order (the
 * order a viewer asks for them, so the first instance arrives first). */
fetch_job *pm_fetch_plan_job(pm_fetcher *f, const Pm__StudyView *sv, const char *study_uid,
                             const char *reader, const pm_liveness *live)
{
    fetch_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->started_ms = pm_now_ms();
    snprintf(j->study, sizeof j->study, "%s", study_uid);
    if (reader) { /* a prefetch has no reader until one joins it */
        snprintf(j->readers[0], sizeof j->readers[0], "%s", reader);
        j->n_readers = 1;
    }
    j->inst = calloc(sv->instance_count + 1, sizeof *j->inst);
    uint8_t(*held)[PM_HASH_BYTES] = calloc(sv->instance_count + 1, PM_HASH_BYTES);
    size_t n_held = 0;
    j->served_by = calloc(sv->n_holders + 1, PM_ID_BYTES);
    for (size_t s = 0; j->inst && sv->study && s < sv->study->n_series; s++)
        for (size_t i = 0; i < sv->study->series[s]->n_instances; i++) {
            const Pm__Instance *in = sv->study->series[s]->instances[i];
            j->total += in->size;
            if (!pm_blobs_has(f->blobs, in->hash.data))
                plan_instance(j, in);
            else if (held)
                memcpy(held[n_held++], in->hash.data, PM_HASH_BYTES);
        }
    /* A read is a use: the cache's LRU times of what is held, in one transaction. */
    if (held && n_held)
        pm_blobs_touch(f->blobs, held, n_held);
    free(held);
    order_holders(j, sv, pm_identity_public(f->id), live);
    /* Several holders up: each sends a share (instance i from holder i mod n_up), so a
     * study comes at the speed of all their links, and each instance still falls back
     * on the others in turn. */
    for (size_t i = 0; j->n_up > 1 && i < j->n_inst; i++)
        j->inst[i].holder = i % j->n_up;
    j->remote = memcmp(sv->site.data, pm_identity_public(f->id), PM_ID_BYTES) != 0;
    if (!j->inst || !j->served_by || !j->holders)
        j->error = PM_E_NOMEM; /* finished, like every job, by the next pm_fetch_tick */
    return j;
}

const fetch_instance *pm_fetch_job_instance(const fetch_job *j, const uint8_t hash[PM_HASH_BYTES])
{
    for (size_t i = 0; i < j->n_inst; i++)
        if (memcmp(j->inst[i].hash, hash, PM_HASH_BYTES) == 0)
            return &j->inst[i];
    return NULL;
}

/* A running job of the same study that is still fetching everything fresh needs: two
 * viewers opening one study (or a prefetch, then the viewer) share one transfer. */
fetch_job *pm_fetch_joinable_job(pm_fetcher *f, const fetch_job *fresh)
{
    for (size_t k = 0; k < f->n_jobs; k++) {
        fetch_job *j = f->jobs[k];
        if (j->state != 0 || j->error || strcmp(j->study, fresh->study) != 0)
            continue;
        size_t i;
        for (i = 0; i < fresh->n_inst; i++) {
            const fetch_instance *in = pm_fetch_job_instance(j, fresh->inst[i].hash);
            if (!in || in->state == INST_FAILED)
                break;
        }
        if (i == fresh->n_inst)
            return j;
    }
    return NULL;
}

void pm_fetch_add_reader(fetch_job *j, const char *reader)
{
    const char *who = reader ? reader : "";
    for (size_t i = 0; i < j->n_readers; i++)
        if (strcmp(j->readers[i], who) == 0)
            return;
    if (j->n_readers < MAX_READERS)
        snprintf(j->readers[j->n_readers++], sizeof j->readers[0], "%s", who);
}

void pm_fetch_job_free(fetch_job *j)
{
    for (size_t i = 0; i < j->n_inst; i++) {
        pm_fetch_discard_partial(&j->inst[i]);
        free(j->inst[i].chunk_hashes);
    }
    free(j->inst);
    free(j->holders);
    free(j->served_by);
    free(j);
}
