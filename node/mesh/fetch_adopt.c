#include "node/mesh/fetch_adopt.h"
#include "node/studies/verify.h"
#include "proto/error.h"
#include "proto/log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Files adopted in one index commit: enough to share it, few enough that the first
 * instance of a study is not held back by the hashing of many behind it. */
enum { BATCH_MAX = 8 };

typedef struct {
    pm_fetch_adoption *items;
    size_t n, cap;
} queue;

struct pm_fetch_adopter {
    pm_blobs *blobs;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;
    queue todo, done;
    int stop;
    int ready;        /* results are waiting (atomic: read without the lock) */
    uint64_t backlog; /* bytes submitted in memory, not yet written (atomic) */
    int wake[2];      /* pipe: the adopter writes a byte when results are waiting */
};

static int push(queue *q, const pm_fetch_adoption *a)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 64;
        pm_fetch_adoption *g = realloc(q->items, cap * sizeof *g);
        if (!g)
            return PM_E_NOMEM;
        q->items = g;
        q->cap = cap;
    }
    q->items[q->n++] = *a;
    return PM_OK;
}

/* Prepares (hash, fsync) and commits one batch; results go to the done queue. */
static void adopt_batch(pm_fetch_adopter *ad, pm_fetch_adoption *batch, size_t n)
{
    pm_blob_prep *preps = calloc(n, sizeof *preps);
    if (!preps) {
        for (size_t i = 0; i < n; i++) {
            if (!batch[i].data)
                unlink(batch[i].tmp);
            batch[i].rc = PM_E_NOMEM;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            if (batch[i].data) {
                pm_blobs_prepare_bytes(ad->blobs, &preps[i], batch[i].data, batch[i].size,
                                       batch[i].hash);
            } else {
                snprintf(preps[i].tmp_path, sizeof preps[i].tmp_path, "%s", batch[i].tmp);
                pm_blobs_prepare(ad->blobs, &preps[i], batch[i].hash, 0);
            }
        }
        pm_blobs_commit_batch(ad->blobs, preps, n, NULL, 0);
        for (size_t i = 0; i < n; i++) {
            batch[i].rc = preps[i].rc;
            /* Just hashed here: scanned here too, so serving it reads it once, not twice
             * (a file the scan refuses is left to the edge's own check, which says why). */
            char path[4096], why[256];
            if (batch[i].rc == PM_OK &&
                pm_blobs_path(ad->blobs, batch[i].hash, path, sizeof path) == PM_OK)
                pm_blob_verify_hashed(batch[i].hash, path, why, sizeof why);
        }
        free(preps);
    }
    for (size_t i = 0; i < n; i++) {
        if (batch[i].data)
            __atomic_sub_fetch(&ad->backlog, batch[i].size, __ATOMIC_RELAXED);
        free(batch[i].data);
        batch[i].data = NULL;
    }
    pthread_mutex_lock(&ad->lock);
    for (size_t i = 0; i < n; i++)
        if (push(&ad->done, &batch[i]) != PM_OK)
            pm_error("fetch", "out of memory: an adopted instance is not reported");
    __atomic_store_n(&ad->ready, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ad->lock);
    char one = 1;
    if (write(ad->wake[1], &one, 1) < 0) { /* full: the loop has a wake-up pending anyway */
    }
}

static void *run(void *arg)
{
    pm_fetch_adopter *ad = arg;
    pm_fetch_adoption batch[BATCH_MAX];
    for (;;) {
        pthread_mutex_lock(&ad->lock);
        while (!ad->todo.n && !ad->stop)
            pthread_cond_wait(&ad->work, &ad->lock);
        if (!ad->todo.n && ad->stop) {
            pthread_mutex_unlock(&ad->lock);
            return NULL;
        }
        /* Whatever has queued up meanwhile is one batch: under load batches grow, and
         * a lone instance is adopted at once; so is one marked alone. */
        size_t n = 1;
        while (n < ad->todo.n && n < BATCH_MAX && !ad->todo.items[0].alone &&
               !ad->todo.items[n].alone)
            n++;
        memcpy(batch, ad->todo.items, n * sizeof *batch);
        memmove(ad->todo.items, ad->todo.items + n, (ad->todo.n - n) * sizeof *batch);
        ad->todo.n -= n;
        pthread_mutex_unlock(&ad->lock);
        adopt_batch(ad, batch, n);
    }
}

int pm_fetch_adopter_new(pm_blobs *blobs, pm_fetch_adopter **out)
{
    pm_fetch_adopter *ad = calloc(1, sizeof *ad);
    if (!ad)
        return PM_E_NOMEM;
    ad->blobs = blobs;
    if (pipe(ad->wake) != 0) {
        free(ad);
        return PM_E_IO;
    }
    fcntl(ad->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(ad->wake[1], F_SETFL, O_NONBLOCK);
    fcntl(ad->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(ad->wake[1], F_SETFD, FD_CLOEXEC);
    pthread_mutex_init(&ad->lock, NULL);
    pthread_cond_init(&ad->work, NULL);
    if (pthread_create(&ad->thread, NULL, run, ad) != 0) {
        close(ad->wake[0]);
        close(ad->wake[1]);
        free(ad);
        return PM_E_NOMEM;
    }
    *out = ad;
    return PM_OK;
}

void pm_fetch_adopter_destroy(pm_fetch_adopter **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_fetch_adopter *ad = *self_p;
    pthread_mutex_lock(&ad->lock);
    ad->stop = 1;
    pthread_cond_signal(&ad->work);
    pthread_mutex_unlock(&ad->lock);
    pthread_join(ad->thread, NULL);
    pthread_mutex_destroy(&ad->lock);
    pthread_cond_destroy(&ad->work);
    close(ad->wake[0]);
    close(ad->wake[1]);
    free(ad->todo.items);
    free(ad->done.items);
    free(ad);
    *self_p = NULL;
}

int pm_fetch_adopter_submit(pm_fetch_adopter *ad, const pm_fetch_adoption *a)
{
    pthread_mutex_lock(&ad->lock);
    int rc = push(&ad->todo, a);
    if (rc == PM_OK) {
        if (a->data)
            __atomic_add_fetch(&ad->backlog, a->size, __ATOMIC_RELAXED);
        pthread_cond_signal(&ad->work);
    }
    pthread_mutex_unlock(&ad->lock);
    return rc;
}

uint64_t pm_fetch_adopter_backlog(pm_fetch_adopter *ad)
{
    return __atomic_load_n(&ad->backlog, __ATOMIC_RELAXED);
}

int pm_fetch_adopter_ready(pm_fetch_adopter *ad)
{
    return __atomic_load_n(&ad->ready, __ATOMIC_ACQUIRE);
}

int pm_fetch_adopter_fd(pm_fetch_adopter *ad)
{
    return ad->wake[0];
}

int pm_fetch_adopter_results(pm_fetch_adopter *ad, pm_fetch_adoption **out, size_t *n)
{
    char drain[256];
    while (read(ad->wake[0], drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&ad->lock);
    *out = ad->done.items;
    *n = ad->done.n;
    ad->done.items = NULL;
    ad->done.n = ad->done.cap = 0;
    __atomic_store_n(&ad->ready, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ad->lock);
    return PM_OK;
}
