/* The fetch's adopter: a thread that takes the fetched instances off the main loop (their
 * bytes, written to a file here; or a large one's file), checks each against the hash its
 * origin signed, and adopts them into the blob store in batches (one directory sync each
 * and one index commit per batch, see pm_blobs_commit_batch), so that the main loop goes
 * on receiving chunks meanwhile.
 *
 * It talks to the main loop through two bounded queues under a lock, and wakes it through
 * a pipe whose read end the loop polls (the fetcher has no ZeroMQ context of its own). */
#ifndef PM_FETCH_ADOPT_H
#define PM_FETCH_ADOPT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/identity.h"
#include "store/blobs.h"

typedef struct {
    uint64_t job;
    size_t inst;
    uint8_t hash[PM_HASH_BYTES]; /* what the file must hash to */
    uint8_t holder[PM_ID_BYTES]; /* who sent it */
    uint8_t *data;               /* the bytes (malloc'ed, the adopter's once submitted) ... */
    uint64_t size;
    char tmp[4096]; /* ... or, if data is NULL, the file (the adopter's once submitted) */
    int alone;      /* adopted in a batch of its own (the first of a job) */
    int rc;         /* result: PM_OK, PM_E_HASH, ... */
} pm_fetch_adoption;

typedef struct pm_fetch_adopter pm_fetch_adopter;

int pm_fetch_adopter_new(pm_blobs *blobs, pm_fetch_adopter **out);
/* Finishes what was submitted, stops the thread and frees. Accepts NULL. */
void pm_fetch_adopter_destroy(pm_fetch_adopter **self_p);

/* Hands a finished instance over, its bytes or its file (main loop). PM_E_NOMEM when the
 * queue cannot grow. */
int pm_fetch_adopter_submit(pm_fetch_adopter *self, const pm_fetch_adoption *a);

/* Bytes handed over in memory and not yet written out (any thread). */
uint64_t pm_fetch_adopter_backlog(pm_fetch_adopter *self);

/* Whether results are waiting, without a system call (any thread). */
int pm_fetch_adopter_ready(pm_fetch_adopter *self);

/* The file descriptor that becomes readable when results are waiting. */
int pm_fetch_adopter_fd(pm_fetch_adopter *self);

/* Takes the waiting results: *out receives a malloc'ed array of *n (the caller frees). */
int pm_fetch_adopter_results(pm_fetch_adopter *self, pm_fetch_adoption **out, size_t *n);

#endif
