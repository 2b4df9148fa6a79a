#include "node/studies/group_commit.h"
#include "proto/error.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct entry {
    pm_blobs *blobs;
    pm_blob_prep *prep;
    const pm_blob_kv *kvs;
    size_t n_kvs;
    int done, rc;
    struct entry *next;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static entry *queue_head, **queue_tail = &queue_head;
static int committing;

/* Commits the batch (the leader, without the lock held). */
static int commit(pm_blobs *blobs, entry **batch, size_t n)
{
    pm_blob_prep *preps = malloc(n * sizeof *preps);
    size_t n_kvs = 0;
    for (size_t i = 0; i < n; i++)
        n_kvs += batch[i]->n_kvs;
    pm_blob_kv *kvs = malloc((n_kvs + 1) * sizeof *kvs);
    int rc = preps && kvs ? PM_OK : PM_E_NOMEM;
    if (rc == PM_OK) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            preps[i] = *batch[i]->prep;
            for (size_t j = 0; j < batch[i]->n_kvs; j++)
                kvs[k++] = batch[i]->kvs[j];
        }
        rc = pm_blobs_commit_batch(blobs, preps, n, kvs, n_kvs);
        for (size_t i = 0; i < n; i++)
            batch[i]->prep->rc = preps[i].rc;
    }
    free(preps);
    free(kvs);
    return rc;
}

int pm_group_commit(pm_blobs *blobs, pm_blob_prep *prep, const pm_blob_kv *kvs, size_t n_kvs)
{
    entry me = {blobs, prep, kvs, n_kvs, 0, 0, NULL};
    pthread_mutex_lock(&lock);
    *queue_tail = &me;
    queue_tail = &me.next;
    while (!me.done) {
        if (committing) {
            pthread_cond_wait(&finished, &lock);
            continue;
        }
        /* Leader: take what has queued for the same blob store (this caller's entry is
         * among it, unless PM_GROUP_MAX were ahead of it). */
        entry *batch[PM_GROUP_MAX];
        size_t n = 0;
        for (entry **at = &queue_head; *at && n < PM_GROUP_MAX;) {
            if ((*at)->blobs != blobs) {
                at = &(*at)->next;
                continue;
            }
            batch[n++] = *at;
            *at = (*at)->next;
        }
        queue_tail = &queue_head;
        while (*queue_tail)
            queue_tail = &(*queue_tail)->next;
        committing = 1;
        pthread_mutex_unlock(&lock);
        int rc = commit(blobs, batch, n);
        pthread_mutex_lock(&lock);
        committing = 0;
        for (size_t i = 0; i < n; i++) {
            batch[i]->rc = rc ? rc : batch[i]->prep->rc;
            batch[i]->done = 1;
        }
        pthread_cond_broadcast(&finished);
    }
    pthread_mutex_unlock(&lock);
    return me.rc;
}
