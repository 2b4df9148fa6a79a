/* Checking the signatures of a batch of received events on every core while the batch
 * is being stored: Ed25519 verification is what a catch-up spends most of its CPU on,
 * and the store has one writer. Worker threads (one per online CPU, at most
 * PM_SIGCHECK_THREADS) take the events in order and decide each one; the writer applies
 * them in the same order in one transaction (pm_feed_ingest_batch_parallel), waiting
 * only for an event not decided yet. So the checks of the events ahead overlap the
 * writes of those behind, instead of all checks coming first. */
#ifndef PM_SIGCHECK_H
#define PM_SIGCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "store/event.h"
#include "store/store.h"

#define PM_SIGCHECK_THREADS 8
/* Below this many events the threads cost more than they save. */
#define PM_SIGCHECK_MIN_PARALLEL 32

/* What a check decided of an event. */
enum {
    PM_SIGCHECK_NONE = 0,  /* not checked here: the ingest checks it as usual */
    PM_SIGCHECK_OK = 1,    /* signature valid */
    PM_SIGCHECK_FAILED = 2 /* refused: the code of pm_event_parse says why */
};

typedef struct pm_sigcheck pm_sigcheck;

/* Starts checking the n envelopes (borrowed until pm_sigcheck_finish): each that parses
 * and lies past the store's head of its origin as the store stood when the check began
 * (new to this node; others are duplicates or fork candidates that the ingest handles
 * itself) has its signature checked. *out is NULL (every event NONE) for a small batch
 * or when no thread can start. PM_E_NOMEM. */
int pm_sigcheck_start(pm_store *store, const uint8_t *const *bytes, const size_t *lens, size_t n,
                      pm_sigcheck **out) __attribute__((warn_unused_result));

/* Waits until event i is decided; returns PM_SIGCHECK_*, with *code set on FAILED.
 * c may be NULL (NONE). Called by one thread, with i in increasing order or not. */
int pm_sigcheck_wait(pm_sigcheck *c, size_t i, int *code);

/* The event i as the check parsed it (after pm_sigcheck_wait said so), handed over to
 * the caller, so the writer does not parse it again; NULL if it was not parsed here. */
pm_event *pm_sigcheck_take(pm_sigcheck *c, size_t i);

/* Stops the workers (what they have not decided stays NONE) and frees c, with every
 * parsed event not taken. */
void pm_sigcheck_finish(pm_sigcheck **c_p);

#endif
