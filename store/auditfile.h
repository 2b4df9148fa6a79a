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

/* Reads path, calling fn for each record: kind 'E' (event) or 'F' (fork evidence), raw
 * (len bytes, borrowed until fn returns) the envelope as stored. Returns PM_OK; PM_E_IO
 * if path cannot be opened; PM_E_FORMAT (bad magic or version line); PM_E_PARSE (bad
 * framing, a record over PM_EVENT_MAX_BYTES, truncation, bytes after the trailer);
 * PM_E_HASH (trailing hash mismatch); PM_E_NOMEM; or fn's non-zero value, which stops
 * the reading. *where (if not NULL) gets the offset of the first byte not read as a
 * whole record. Records are handed to fn before the trailing hash is checked: a caller
 * that must not act on a damaged file collects first and acts on PM_OK. */
typedef int (*pm_auditfile_fn)(void *ctx, char kind, const uint8_t *raw, size_t len);
int pm_auditfile_read(const char *path, pm_auditfile_fn fn, void *ctx, uint64_t *where);

/* As pm_auditfile_read over an open stream (read from its current position to its end;
 * not closed). The fuzz target's entry point. */
int pm_auditfile_read_stream(FILE *f, pm_auditfile_fn fn, void *ctx, uint64_t *where);

#endif
