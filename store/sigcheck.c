/* Signature checks of a batch on every core (store/sigcheck.h). */
#include "store/sigcheck.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const uint8_t *const *bytes;
    const size_t *lens;
    const size_t *todo; /* indexes to check */
    size_t from, to;    /* a slice of todo */
    unsigned char *checked;
    int *results;
} slice;

static void *check_slice(void *arg)
{
    slice *s = arg;
    for (size_t k = s->from; k < s->to; k++) {
        size_t i = s->todo[k];
        pm_event *ev = NULL;
        int rc = pm_event_parse(s->bytes[i], s->lens[i], &ev); /* parse and verify */
        pm_event_destroy(&ev);
        s->checked[i] = rc == PM_OK ? PM_SIGCHECK_OK : PM_SIGCHECK_FAILED;
        if (rc != PM_OK)
            s->results[i] = rc;
    }
    return NULL;
}

/* The head of origin as the store holds it now (0 if none), cached per batch. */
typedef struct {
    uint8_t origin[PM_ID_BYTES];
    uint64_t seq;
} known_head;

static uint64_t head_of(pm_store *store, known_head *heads, size_t *n, size_t max,
                        const uint8_t *origin)
{
    for (size_t i = 0; i < *n; i++)
        if (memcmp(heads[i].origin, origin, PM_ID_BYTES) == 0)
            return heads[i].seq;
    pm_head h;
    uint64_t seq = pm_feed_head(store, origin, &h) == PM_OK ? h.seq : 0;
    if (*n < max) {
        memcpy(heads[*n].origin, origin, PM_ID_BYTES);
        heads[(*n)++].seq = seq;
    }
    return seq;
}

/* The indexes of the events new to the store, into todo; their count. */
static size_t new_events(pm_store *store, const uint8_t *const *bytes, const size_t *lens, size_t n,
                         size_t *todo)
{
    known_head heads[64];
    size_t n_heads = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        pm_event *ev = NULL;
        if (pm_event_parse_stored(bytes[i], lens[i], &ev) != PM_OK)
            continue; /* the ingest says why */
        if (ev->body->origin.len == PM_ID_BYTES &&
            ev->body->seq > head_of(store, heads, &n_heads, 64, ev->body->origin.data))
            todo[m++] = i;
        pm_event_destroy(&ev);
    }
    return m;
}

static size_t threads_to_use(size_t work)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = cpus > 0 ? (size_t)cpus : 1;
    if (t > PM_SIGCHECK_THREADS)
        t = PM_SIGCHECK_THREADS;
    return work < PM_SIGCHECK_MIN_PARALLEL ? 1 : t;
}

int pm_sigcheck_new_events(pm_store *store, const uint8_t *const *bytes, const size_t *lens,
                           size_t n, unsigned char *checked, int *results)
{
    size_t *todo = malloc((n ? n : 1) * sizeof *todo);
    if (!todo)
        return PM_E_NOMEM;
    size_t m = new_events(store, bytes, lens, n, todo), t = threads_to_use(m);
    slice slices[PM_SIGCHECK_THREADS];
    pthread_t tids[PM_SIGCHECK_THREADS];
    int started[PM_SIGCHECK_THREADS] = {0};
    for (size_t k = 0; k < t; k++) {
        slices[k] = (slice){bytes, lens, todo, m * k / t, m * (k + 1) / t, checked, results};
        /* Slice 0 runs on this thread; a worker that cannot start runs here too. */
        started[k] = k > 0 && pthread_create(&tids[k], NULL, check_slice, &slices[k]) == 0;
    }
    for (size_t k = 0; k < t; k++)
        if (!started[k])
            check_slice(&slices[k]);
    for (size_t k = 1; k < t; k++)
        if (started[k])
            pthread_join(tids[k], NULL);
    free(todo);
    return PM_OK;
}
