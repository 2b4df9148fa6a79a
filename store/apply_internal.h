/* Shared by the files of the apply function: apply.c (the entry points of apply.h), keys.c
 * (the helpers declared here), members.c (the membership fold), studies.c (the study and
 * worklist fold), roster.c (the reporter roster fold), views.c (the key prefix). Not an
 * API: everything runs inside the caller's LMDB write transaction.
 *
 * Calls run one way: entry points -> folds -> helpers. A helper never calls a fold;
 * one fold may call another (membership re-derives the studies and reporters whose
 * authors' validity changed). */
#ifndef PM_APPLY_INTERNAL_H
#define PM_APPLY_INTERNAL_H

#include "store/apply.h"
#include "store/store_internal.h"

enum { POS_LEN = 8 + PM_ID_BYTES + 8 };
/* The kinds of key of the per-key index. KIND_NAMING lists each event that names a
 * reporter (a claim, release, report, verification, access, flag or registration)
 * under that reporter's id, for `audit log --reporter`: a lookup only, no fold derives
 * from it. */
enum { KIND_MEMBERSHIP = 'M', KIND_STUDY = 'S', KIND_REPORTER = 'R', KIND_NAMING = 'N' };
/* Bumped when what KIND_NAMING lists changes: a store opened with an older version (or
 * none) has the events indexed again (store/store.c). */
#define PM_NAMING_INDEX_VERSION 1

/* Events loaded for a fold, owned. */
typedef struct {
    pm_event **items;
    size_t n, cap;
} pm_event_list;

void pm_event_list_free(pm_event_list *l);
int pm_event_list_push(pm_event_list *l, pm_event *ev);

/* A set of study UIDs, owned. */
typedef struct {
    char **uids;
    size_t n, cap;
} pm_uid_list;

/* Adds uid to the list; duplicates stay until pm_uid_list_unique (a feed of a decade's
 * events names each of its studies several times: one check per add was quadratic). */
int pm_uid_list_add(pm_uid_list *l, const char *uid);
/* Sorts the list and drops its duplicates: call before walking it. */
void pm_uid_list_unique(pm_uid_list *l);
void pm_uid_list_free(pm_uid_list *l);

/* The per-key index: key kind(1) name NUL position. */
size_t pm_apply_key_prefix(uint8_t *buf, char kind, const char *name);
void pm_apply_encode_position(uint8_t *p, const pm_position *pos);
/* Indexes ev under (kind, name) at its position. */
int pm_apply_index_event(MDB_txn *txn, pm_store *s, char kind, const char *name,
                         const pm_event *ev);
/* Adds (add) or removes the index entry of a fork branch's event (store/forks.c): its
 * hash follows the position, as two branches may hold events at one (lamport, origin,
 * seq). Removing an absent entry is PM_OK. */
int pm_apply_index_branch_event(MDB_txn *txn, pm_store *s, char kind, const char *name,
                                const pm_event *ev, int add);
/* Hands fn the position (POS_LEN bytes, in the total order) of each event indexed under
 * (kind, name) on the main log, from cur (on the per-key index); stops at fn's error. */
int pm_apply_each_key_position(MDB_cursor *cur, char kind, const char *name,
                               int (*fn)(void *ctx, const uint8_t *pos), void *ctx);
/* The stored bytes of the event at pos into *raw; 0 if there is none. */
int pm_apply_event_at(MDB_txn *txn, pm_store *s, const uint8_t *pos, MDB_val *raw);
/* Adds (add) or removes ev's entry under KIND_NAMING, if it names a reporter. Removing
 * an absent entry is PM_OK. */
int pm_apply_index_naming(MDB_txn *txn, pm_store *s, const pm_event *ev, int add);
/* Every event of the log indexed under KIND_NAMING (a store written before it). */
int pm_apply_index_naming_all(MDB_txn *txn, pm_store *s);
/* Every event indexed under (kind, name), in the total order. */
int pm_apply_load_key_events(MDB_txn *txn, pm_store *s, char kind, const char *name,
                             pm_event_list *out);
/* The author's events from from_seq on, oldest first. */
int pm_apply_load_feed(MDB_txn *txn, pm_store *s, const uint8_t *author, uint64_t from_seq,
                       pm_event_list *out);
/* Removes one event from its feed and the indexes (a revoked feed's tail). */
int pm_apply_delete_event(MDB_txn *txn, pm_store *s, const pm_event *ev);

Pm__Position *pm_apply_position_new(const pm_position *p, uint8_t *origin_store);
pm_position pm_apply_position_of(const Pm__Position *p);

/* Which view key an event belongs to: its kind and name (borrowed from ev), or 0 when
 * it belongs to none. */
char pm_apply_event_key(const pm_event *ev, const char **name);

/* Whether ev counts in the views: its author was a member at its position and not cut
 * by a revocation (fork branches count too: the fork rule). Uncached: for folds over
 * few events. */
int pm_apply_event_counts(MDB_txn *txn, pm_store *s, const pm_event *ev);

/* ---- the folds: each re-derives one view key from its events (members.c, studies.c,
 * roster.c); called by the entry points and, for studies and reporters, by the
 * membership fold. */
int pm_apply_derive_membership(MDB_txn *txn, pm_store *s);
int pm_apply_derive_study(MDB_txn *txn, pm_store *s, const char *uid);
/* Every study view derived again (a store written by a build with another study fold:
 * see PM_STUDY_VIEW_VERSION). */
int pm_apply_rederive_studies(MDB_txn *txn, pm_store *s);
int pm_apply_derive_reporter(MDB_txn *txn, pm_store *s, const char *reporter_id);

#endif
