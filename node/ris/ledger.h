/* A delivery ledger, DIR/ris-delivered (what the trust's RIS acknowledged) or
 * DIR/report-sr-delivered (which reports' SRs the trust's PACS stored): node-local
 * state, not an event: another node never sends this trust's reports. One line per
 * acknowledgement, "STUDY_UID REPORTS\n" (how many report texts the acknowledged
 * message carried), appended and fsynced before the delivery counts, so a crash
 * (kill -9) at any moment at worst sends a report again, never loses one. */
#ifndef PM_RIS_LEDGER_H
#define PM_RIS_LEDGER_H

#include <stddef.h>

typedef struct pm_ris_ledger pm_ris_ledger;

/* Opens (creating) the ledger dir/file and reads it. Lines that do not parse (a torn last
 * line after a crash) are skipped. PM_E_IO, PM_E_NOMEM. */
int pm_ris_ledger_open(const char *dir, const char *file, pm_ris_ledger **out);
void pm_ris_ledger_destroy(pm_ris_ledger **self_p);

/* How many report texts of study_uid the RIS has acknowledged (0: none). */
size_t pm_ris_ledger_delivered(const pm_ris_ledger *self, const char *study_uid);

/* Records an acknowledgement durably. PM_E_IO. */
int pm_ris_ledger_put(pm_ris_ledger *self, const char *study_uid, size_t reports);

#endif
