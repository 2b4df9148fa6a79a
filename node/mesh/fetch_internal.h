/* What the fetcher's files share (node/mesh/fetch.c runs jobs, fetch_plan.c plans
 * them, fetch_serve.c answers peers' chunk requests): the job and fetcher types. */
#ifndef PM_MESH_FETCH_INTERNAL_H
#define PM_MESH_FETCH_INTERNAL_H

#include "node/mesh/fetch.h"
#include "node/mesh/fetch_adopt.h"

/* ADOPTING: every byte is here; the adopter checks and adopts the file. */
enum { INST_PENDING, INST_ACTIVE, INST_ADOPTING, INST_DONE, INST_FAILED };

typedef struct {
    uint8_t hash[PM_HASH_BYTES];
    uint64_t size;
    uint32_t chunk;                         /* request size: the signed chunk size, if any */
    uint8_t (*chunk_hashes)[PM_HASH_BYTES]; /* signed per-chunk hashes, or NULL */
    size_t n_chunk_hashes;
    int state;
    size_t holder;           /* index into the job's holders being tried */
    size_t tries;            /* holders tried before this one */
    size_t silent_retries;   /* tries given back after a holder's silence (fetch.c) */
    uint64_t unreachable_ms; /* since when its holder's link has been down (0: it is up) */
    uint8_t *buf;   /* assembled in memory (up to PM_FETCH_IN_MEMORY bytes), else NULL ... */
    char tmp[4096]; /* ... and written to this file */
    int fd;
    uint64_t next_offset; /* next chunk to request */
    uint64_t received;    /* bytes written */
    int fail_rc;          /* why it could not be had so far (fail_reason) */
} fetch_instance;

#define MAX_READERS 16

typedef struct {
    uint64_t id;
    char study[PM_UID_MAX + 1];
    char readers[MAX_READERS][65]; /* who read it: the first starter, then who joined */
    size_t n_readers;
    fetch_instance *inst;
    size_t n_inst;
    uint8_t (*holders)[PM_ID_BYTES];
    size_t n_holders, n_up; /* the first n_up are up: instances are spread over them */
    uint8_t (*served_by)[PM_ID_BYTES];
    size_t n_served_by;
    uint64_t bytes, total, started_ms;
    int state; /* 0 running, 1 done, 2 failed */
    int error;
    int remote;       /* another trust's study: every read is recorded */
    int told_waiting; /* logged that a holder's link is down and waited for */
    int handed_first; /* an instance has gone to the adopter */
} fetch_job;

typedef struct {
    uint64_t request_id;
    fetch_job *job;
    size_t inst;
    uint64_t offset;
    uint32_t length;
    uint64_t sent_ms;
    uint8_t holder[PM_ID_BYTES];
} in_flight;

struct pm_fetcher {
    pm_transport *t;
    pm_store *store;
    pm_blobs *blobs;
    const pm_identity *id;
    const pm_config *cfg;
    pm_fetch_done_fn done;
    void *done_ctx;
    pm_fetch_instance_fn on_instance;
    void *on_instance_ctx;
    int waiting; /* some instance waits for its holder's link to come back */
    pm_fetch_adopter *adopter;
    fetch_job **jobs;
    size_t n_jobs;
    in_flight flight[PM_FETCH_WINDOW];
    size_t n_flight;
    uint64_t last_reply_ms; /* last chunk reply of any holder */
    uint64_t next_job, next_request;
    pm_fetch_stats stats;
};

/* Instances up to this size are assembled in memory and written out by the adopter, so
 * the main loop neither creates nor writes files for them. A buffer is made when the
 * first chunk arrives, so those being assembled are about PM_FETCH_WINDOW at most (24 MiB);
 * those handed to the adopter and not yet written are at most PM_FETCH_ADOPT_BACKLOG
 * bytes (and one instance) before no new one is begun. */
#define PM_FETCH_IN_MEMORY (2u << 20)
#define PM_FETCH_ADOPT_BACKLOG (64u << 20)

/* Discards what of the instance has come (its buffer or temporary file). */
void pm_fetch_discard_partial(fetch_instance *in);

/* node/mesh/fetch_plan.c */
/* A job for what of study sv is not local, in series and instance order (the order a
 * viewer asks for them), with its holders ordered (up peers first, the acquiring site
 * first among them); error set to PM_E_NOMEM if part of it could not be made. */
fetch_job *pm_fetch_plan_job(pm_fetcher *f, const Pm__StudyView *sv, const char *study_uid,
                             const char *reader, const pm_liveness *live);
/* The job's instance with this content hash, or NULL. */
const fetch_instance *pm_fetch_job_instance(const fetch_job *j, const uint8_t hash[PM_HASH_BYTES]);
/* A running job of the same study still fetching everything fresh needs, or NULL. */
fetch_job *pm_fetch_joinable_job(pm_fetcher *f, const fetch_job *fresh);
/* Adds reader to the job's readers (once). */
void pm_fetch_add_reader(fetch_job *j, const char *reader);
/* Frees a job, removing the temporary file of an instance under way. */
void pm_fetch_job_free(fetch_job *j);

#endif
