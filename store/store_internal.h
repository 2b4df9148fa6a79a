/* Shared by the store's own modules only: the environment's handles and helpers
 * for writing views (which keep the view digest up to date). */
#ifndef PM_STORE_INTERNAL_H
#define PM_STORE_INTERNAL_H

#include <lmdb.h>

#include "store/store.h"

struct pm_store {
    MDB_env *env;
    MDB_dbi meta;      /* "format", "mesh", "lamport", "digest", counters */
    MDB_dbi events;    /* origin(32) seq(8 BE) -> Envelope bytes */
    MDB_dbi heads;     /* origin(32) -> seq(8 BE) hash(32) lamport(8 BE) */
    MDB_dbi order;     /* lamport(8 BE) origin(32) seq(8 BE) -> "" : the total order */
    MDB_dbi bykey;     /* kind(1) name NUL lamport origin seq -> "" : events per view key */
    MDB_dbi forks;     /* origin(32) seq(8 BE) hash(32) -> conflicting Envelope bytes */
    MDB_dbi members;   /* node id(32) -> MemberView */
    MDB_dbi studies;   /* study uid -> StudyView */
    MDB_dbi reporters; /* reporter id -> ReporterView (the roster) */
    MDB_dbi bypatient; /* patient id NUL study uid -> "" */
    MDB_dbi bydate;    /* study date (8 chars, "" if none) NUL study uid -> "" */
    MDB_dbi bydue;     /* due(8 BE) study uid -> "" : open items (unreported, claimed) */
    MDB_dbi byfinal;   /* final(8 BE) study uid -> "" : items whose report is final */
    MDB_dbi byattr;    /* attr(1) value NUL study uid -> "" (store/study_index.h) */
    MDB_dbi open;      /* study uid -> its open item's ranking fields (store/study_index.h) */
    MDB_dbi blobs;     /* content hash(32) -> blob record (local, not in the digest) */
    MDB_dbi local;     /* node-local state, not in the digest */
};

/* Maps an LMDB return code to a PM_E_* code, logging the LMDB message with what. */
int pm_store_mdb_error(int rc, const char *what);

int pm_store_txn_begin(pm_store *self, int write, MDB_txn **txn);
/* Commits; on failure the transaction is gone and the mapped error returned. */
int pm_store_txn_commit(MDB_txn *txn);

/* Big-endian integer helpers for keys that sort numerically. */
void pm_put_be64(uint8_t *p, uint64_t v);
uint64_t pm_get_be64(const uint8_t *p);

int pm_meta_get_u64(MDB_txn *txn, pm_store *self, const char *key, uint64_t *out);
int pm_meta_put_u64(MDB_txn *txn, pm_store *self, const char *key, uint64_t v);

/* Writes (val != NULL) or deletes (val == NULL) one view record and folds the change
 * into the digest: digest = sum over records of H(table, key, value) mod 2^256, so it
 * is independent of the order records were written in. */
int pm_view_write(MDB_txn *txn, pm_store *self, MDB_dbi dbi, char table, const void *key,
                  size_t klen, const void *val, size_t vlen);

#endif
