/* DIR/atna-journal: the audit records that are not events of the signed log (queries,
 * sign-ins, refusals, pixel data served to peers), kept until the ATNA sender has sent
 * them. Node-local, like DIR/ris-delivered: a query is no change of state, so it is not
 * gossiped to the mesh; it goes to this trust's audit repository only.
 *
 * One JSON object per line, appended with one write(2) each: a record written is in
 * the kernel's hands at once, so a kill -9 of the node loses none; the sender fsyncs
 * the file before it counts anything as sent, so a power cut loses at most what came
 * in since its last round.
 *
 * The journal is also the process-wide audit sink (pm_audit_note): like the log, every
 * layer that sees something auditable (the DICOM edge, the web server, the transport,
 * the fetcher) records it with one call, and no structure between the layers carries
 * it. With no journal installed (no [audit] syslog), a note is dropped. */
#ifndef PM_AUDIT_JOURNAL_H
#define PM_AUDIT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "node/audit/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest string field kept in a record; longer ones are cut (at a UTF-8 boundary). */
#define PM_AUDIT_FIELD_MAX 4096
/* A journal this long takes no more records (the repository has been away for long):
 * they are dropped, counted and logged, so the disk is not filled; the events of the
 * signed log are never dropped (they are sent from the log itself). */
#define PM_AUDIT_JOURNAL_MAX_BYTES (UINT64_C(256) << 20)
/* Once everything in it was sent, a journal longer than this is emptied. */
#define PM_AUDIT_JOURNAL_COMPACT_BYTES (1u << 20)

typedef struct pm_audit_journal pm_audit_journal;

/* Opens (creating, mode 0600) dir's journal. PM_E_IO (logged), PM_E_NOMEM. */
int pm_audit_journal_open(const char *dir, pm_audit_journal **out);
void pm_audit_journal_destroy(pm_audit_journal **self_p);

/* Appends r. Thread-safe. PM_E_IO (logged), PM_E_NOMEM, PM_E_TOOBIG (the journal is
 * full: dropped, counted in pm_audit_journal_dropped). */
int pm_audit_journal_append(pm_audit_journal *self, const pm_audit_record *r);

/* Calls fn for each whole record from byte offset on, at most max of them, with the
 * offset just past it. The record's strings are borrowed for the call. A line that does
 * not parse (torn by a power cut) is skipped. Stops when fn returns non-zero (returned).
 */
typedef int (*pm_audit_journal_fn)(void *ctx, const pm_audit_record *r, uint64_t next_offset);
int pm_audit_journal_read(pm_audit_journal *self, uint64_t offset, size_t max,
                          pm_audit_journal_fn fn, void *ctx);

/* Records dropped because the journal was full, since it was opened. */
uint64_t pm_audit_journal_dropped(pm_audit_journal *self);

/* The journal's size in bytes, and fsync of what was appended. */
uint64_t pm_audit_journal_size(pm_audit_journal *self);
int pm_audit_journal_sync(pm_audit_journal *self);

/* When sent_offset is the whole journal and it is longer than
 * PM_AUDIT_JOURNAL_COMPACT_BYTES: empties it and calls save(ctx, 0) (the sender's cursor)
 * before any new record can be appended; returns 1 then, else 0. */
int pm_audit_journal_compact(pm_audit_journal *self, uint64_t sent_offset,
                             int (*save)(void *ctx, uint64_t offset), void *ctx);

/* Installs the process-wide sink (NULL: none), and a function called after each note
 * (the sender's wake-up). Call from the main thread while no note can race. */
void pm_audit_install(pm_audit_journal *journal, void (*wake)(void *ctx), void *wake_ctx);

/* Appends r to the installed journal (time_ms 0: now). Never blocks on the network. */
void pm_audit_note(const pm_audit_record *r);

#ifdef __cplusplus
}
#endif

#endif
