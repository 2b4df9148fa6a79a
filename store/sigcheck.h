/* Checking the signatures of a batch of received events on every core before they are
 * stored: Ed25519 verification is what a catch-up spends most of its CPU on, and the
 * store has one writer, so the checks run on worker threads (one per online CPU, at
 * most PM_SIGCHECK_THREADS, the caller's thread among them) while nothing is written;
 * the events are then applied in order in one transaction (pm_feed_ingest_batch_parallel). */
#ifndef PM_SIGCHECK_H
#define PM_SIGCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define PM_SIGCHECK_THREADS 8
/* Below this many new events the threads cost more than they save. */
#define PM_SIGCHECK_MIN_PARALLEL 32

/* checked[i] values. */
enum {
    PM_SIGCHECK_NONE = 0,  /* not checked here: the ingest checks it as usual */
    PM_SIGCHECK_OK = 1,    /* signature valid */
    PM_SIGCHECK_FAILED = 2 /* refused: results[i] holds the code of pm_event_parse */
};

/* For each of the n envelopes that parses and lies past the store's head of its origin
 * (new to this node; others are duplicates or fork candidates that the ingest handles
 * itself), checks its signature and sets checked[i] (zeroed by the caller) and, on
 * failure, results[i]. Returns PM_OK, or a store error (then nothing is marked). */
int pm_sigcheck_new_events(pm_store *store, const uint8_t *const *bytes, const size_t *lens,
                           size_t n, unsigned char *checked, int *results)
    __attribute__((warn_unused_result));

#endif
