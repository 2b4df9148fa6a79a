/* One-line hooks for the layers that see something auditable: each builds an audit
 * record and hands it to the process-wide sink (journal.h), which drops it when no
 * [audit] syslog is configured. Strings are copied; NULL means unknown. Thread-safe;
 * none blocks on the network. */
#ifndef PM_AUDIT_NOTES_H
#define PM_AUDIT_NOTES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A C-FIND answered: the calling AE and address, the SOP class, the query keys as
 * "Keyword=value" lines, and how many matches went back. */
void pm_audit_note_query(const char *calling_ae, const char *host, const char *sop_class,
                         const char *keys, size_t matches, int failed);

/* A C-GET or C-MOVE of study_uid's instances for reader: the user of the association's
 * identity, else "AE@host". */
void pm_audit_note_retrieve(const char *reader, const char *study_uid, int failed);

/* A web sign-in by user from ip: successful (ok) or refused. */
void pm_audit_note_signin(const char *user, const char *ip, int ok);

/* A refusal worth an alert: who (a calling AE, a node id, a CURVE key), from where,
 * and why. */
void pm_audit_note_alert(const char *who, const char *host, const char *why);

/* Pixel data of study_uid (as the requesting peer named it) served to peer (a node id,
 * PM_ID_BYTES). At most one record per peer and study in PM_AUDIT_SERVED_WINDOW_MS. */
#define PM_AUDIT_SERVED_WINDOW_MS (10 * 60 * 1000)
void pm_audit_note_served(const uint8_t *peer, const char *study_uid);

#ifdef __cplusplus
}
#endif

#endif
