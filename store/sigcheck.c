/* Signature checks of a batch on every core, overlapping its writes (store/sigcheck.h). */
#include "store/sigcheck.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Workers take this many events at a time and wake the writer after each run. */
#define CLAIM 8

/* Not decided yet (internal: never returned by pm_sigcheck_wait). */
#define PENDING 3

struct pm_sigcheck {
    pm_store *store;
    const uint8_t *const *bytes;
    const size_t *lens;
    size_t n;
    unsigned char *state; /* per event: PENDING, then PM_SIGCHECK_*, written atomically */
    int *codes;           /* per event: why it FAILED */
    pm_event **parsed;    /* per event: as parsed by its check, until taken */
    size_t next;          /* the next event a worker takes (atomic) */
    int stop;             /* atomic: the writer is done, workers leave */
    pthread_mutex_t mu;   /* with decided: the writer's wait */
    pthread_cond_t decided;
    pthread_t threads[PM_SIGCHECK_THREADS];
    size_t n_threads;
};

/* The head of origin as the store held it when a worker first asked (0 if none). */
typedef struct {
    uint8_t origin[PM_ID_BYTES];
    uint64_t seq;
} known_head;

typedef struct {
    known_head e[64];
    size_t n;
} head_cache;

static uint64_t head_of(pm_store *store, head_cache *c, const uint8_t *origin)
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->e[i].origin, origin, PM_ID_BYTES) == 0)
            return c->e[i].seq;
    pm_head h;
    uint64_t seq = pm_feed_head(store, origin, &h) == PM_OK ? h.seq : 0;
    if (c->n < sizeof c->e / sizeof c->e[0]) {
        memcpy(c->e[c->n].origin, origin, PM_ID_BYTES);
        c->e[c->n++].seq = seq;
    }
    return seq;
}

/* An event new to the store has its signature checked; others are the ingest's. The
 * parsed event is kept for the writer (pm_sigcheck_take). */
static int decide(pm_sigcheck *c, head_cache *heads, size_t i, int *code)
{
    pm_event *ev = NULL;
    if (pm_event_parse_stored(c->bytes[i], c->lens[i], &ev) != PM_OK)
        return PM_SIGCHECK_NONE; /* the ingest says why */
    int verdict = PM_SIGCHECK_NONE;
    if (ev->body->origin.len == PM_ID_BYTES &&
        ev->body->seq > head_of(c->store, heads, ev->body->origin.data)) {
        *code = pm_event_verify(ev);
        verdict = *code == PM_OK ? PM_SIGCHECK_OK : PM_SIGCHECK_FAILED;
    }
    c->parsed[i] = ev; /* published to the writer with the verdict */
    return verdict;
}

static void *work(void *arg)
{
    pm_sigcheck *c = arg;
    head_cache heads = {.n = 0};
    for (;;) {
        size_t from = __atomic_fetch_add(&c->next, CLAIM, __ATOMIC_RELAXED);
        if (from >= c->n || __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE))
            break;
        size_t to = from + CLAIM < c->n ? from + CLAIM : c->n;
        for (size_t i = from; i < to; i++) {
            int code = PM_OK;
            int verdict = decide(c, &heads, i, &code);
            c->codes[i] = code;
            __atomic_store_n(&c->state[i], (unsigned char)verdict, __ATOMIC_RELEASE);
        }
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(&c->decided);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

static size_t threads_to_use(size_t n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t t = cpus > 0 ? (size_t)cpus : 1;
    if (t > PM_SIGCHECK_THREADS)
        t = PM_SIGCHECK_THREADS;
    return n < PM_SIGCHECK_MIN_PARALLEL ? 0 : t;
}

int pm_sigcheck_start(pm_store *store, const uint8_t *const *bytes, const size_t *lens, size_t n,
                      pm_sigcheck **out)
{
    *out = NULL;
    size_t t = threads_to_use(n);
    if (!t)
        return PM_OK;
    pm_sigcheck *c = calloc(1, sizeof *c);
    if (!c)
        return PM_E_NOMEM;
    c->store = store;
    c->bytes = bytes;
    c->lens = lens;
    c->n = n;
    c->state = malloc(n);
    c->codes = calloc(n, sizeof *c->codes);
    c->parsed = calloc(n, sizeof *c->parsed);
    if (!c->state || !c->codes || !c->parsed) {
        free(c->state);
        free(c->codes);
        free(c->parsed);
        free(c);
        return PM_E_NOMEM;
    }
    memset(c->state, PENDING, n);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->decided, NULL);
    for (size_t k = 0; k < t; k++)
        if (pthread_create(&c->threads[c->n_threads], NULL, work, c) == 0)
            c->n_threads++;
    if (!c->n_threads) { /* no worker: the ingest checks every event itself */
        pm_sigcheck_finish(&c);
        return PM_OK;
    }
    *out = c;
    return PM_OK;
}

int pm_sigcheck_wait(pm_sigcheck *c, size_t i, int *code)
{
    if (!c || i >= c->n)
        return PM_SIGCHECK_NONE;
    unsigned char v = __atomic_load_n(&c->state[i], __ATOMIC_ACQUIRE);
    if (v == PENDING) {
        pthread_mutex_lock(&c->mu);
        while ((v = __atomic_load_n(&c->state[i], __ATOMIC_ACQUIRE)) == PENDING)
            pthread_cond_wait(&c->decided, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    if (v == PM_SIGCHECK_FAILED)
        *code = c->codes[i];
    return v;
}

pm_event *pm_sigcheck_take(pm_sigcheck *c, size_t i)
{
    if (!c || i >= c->n || __atomic_load_n(&c->state[i], __ATOMIC_ACQUIRE) == PENDING)
        return NULL;
    pm_event *ev = c->parsed[i];
    c->parsed[i] = NULL;
    return ev;
}

void pm_sigcheck_finish(pm_sigcheck **c_p)
{
    pm_sigcheck *c = *c_p;
    if (!c)
        return;
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    for (size_t k = 0; k < c->n_threads; k++)
        pthread_join(c->threads[k], NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->decided);
    for (size_t i = 0; i < c->n; i++)
        pm_event_destroy(&c->parsed[i]);
    free(c->parsed);
    free(c->state);
    free(c->codes);
    free(c);
    *c_p = NULL;
}
