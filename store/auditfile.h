/* The portable audit export file (format described in docs/audit-format.md):
 *
 *   "PACSMESH-AUDIT\n" "1\n"               magic line and format version line
 *   repeated: 'E' len(4, BE) envelope       every event held, in the total order
 *   repeated: 'F' len(4, BE) envelope       the conflicting envelope of each fork
 *   'Z' hash(32)                            BLAKE2b-256 of every byte before 'Z'
 *
 * Every event is self-authenticating (signature, chain); the trailing hash makes any
 * change to the framing itself detectable too. */
#ifndef PM_AUDITFILE_H
#define PM_AUDITFILE_H

#include <stdio.h>

#include "store/store.h"

/* Writes the store's events and fork evidence to path (atomically: temp + rename).
 * *count receives the number of events written. */
int pm_auditfile_export(pm_store *store, const char *path, uint64_t *count);

/* Reads path, calling fn for each record: kind 'E' (event) or 'F' (fork evidence).
 * Returns PM_OK, PM_E_IO, PM_E_PARSE (bad magic, framing or truncation; *where gets
 * the byte offset) or PM_E_HASH (trailing hash mismatch), or fn's non-zero value. */
typedef int (*pm_auditfile_fn)(void *ctx, char kind, const uint8_t *raw, size_t len);
int pm_auditfile_read(const char *path, pm_auditfile_fn fn, void *ctx, uint64_t *where);

#endif
