/* Who may do what on the DICOM edge: the `[dicom] allowed_aes` entries and the one rule
 * that turns them, and the calling AE title and address of an association, into the
 * services it may use. Plain C, unit-tested and fuzzed without dcmtk.
 *
 * An entry is AE[@host][:right+right...]:
 *   VIEWER                 the AE title from any address, every right
 *   VIEWER@10.0.0.5        only from that address (a host name is resolved when the
 *                          entry is parsed, i.e. when node.conf is loaded or reloaded)
 *   CT1@ct1.example:store  only C-STORE (and nothing else) from that host
 *   WS@10.0.0.7:echo+find+get
 * Rights: echo, store, find, get, move, or all. An AE title may be listed more than
 * once (several hosts); the rights of every entry that matches are combined. */
#ifndef PM_DICOM_ACCESS_H
#define PM_DICOM_ACCESS_H

#include <stddef.h>

#include "node/dicom/dicom.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    PM_ACCESS_ECHO = 1u << 0,
    PM_ACCESS_STORE = 1u << 1,
    PM_ACCESS_FIND = 1u << 2,
    PM_ACCESS_GET = 1u << 3,
    PM_ACCESS_MOVE = 1u << 4,
    PM_ACCESS_ALL = 0x1f
};

#define PM_ACCESS_ADDRS_MAX 8
#define PM_ACCESS_ADDR_LEN 46 /* INET6_ADDRSTRLEN */

typedef struct {
    char ae[PM_DICOM_AE_MAX + 1];
    char host[256];                                      /* as written; "" for any address */
    char addrs[PM_ACCESS_ADDRS_MAX][PM_ACCESS_ADDR_LEN]; /* host resolved (IPv4) */
    size_t n_addrs;
    unsigned rights; /* PM_ACCESS_* */
} pm_access_entry;

/* Parses one entry (syntax above) into out, resolving a host name. PM_OK, or
 * PM_E_CONFIG with a one-line reason naming what was wrong in why. */
int pm_access_parse(const char *text, pm_access_entry *out, char *why, size_t wl);

/* Whether an association may proceed, and with which rights. */
typedef enum {
    PM_ACCESS_ACCEPT = 0, /* *rights says what it may do */
    PM_ACCESS_UNKNOWN_AE, /* no entry has this AE title */
    PM_ACCESS_WRONG_HOST, /* entries have this AE title, none this address */
    PM_ACCESS_EMPTY_LIST  /* no entries at all, and no store from any AE */
} pm_access_verdict;

/* The one rule: the rights of calling AE ae (trailing spaces ignored) from address
 * host under entries[0..n). A listed AE gets the union of the rights of its matching
 * entries. Otherwise, with store_from_any, C-ECHO and C-STORE only; without, refused.
 * Never grants find, get or move to an AE no entry names. */
pm_access_verdict pm_access_check(const pm_access_entry *entries, size_t n, int store_from_any,
                                  const char *ae, const char *host, unsigned *rights);

/* "echo", "store", ... for one PM_ACCESS_* bit; "?" otherwise. */
const char *pm_access_right_name(unsigned right);

/* One line for a log naming what the verdict means ("calling AE title not listed in
 * allowed_aes", ...). Static storage. */
const char *pm_access_verdict_text(pm_access_verdict v);

#ifdef __cplusplus
}
#endif
#endif
