/* Serving only what was signed: before a blob is sent to a viewer, it is checked
 * against its content hash (the hash its instance was announced and signed with, which
 * is also its file name) and passes the bounded structure scan (dcmtk parses it to send
 * it). Checking costs one read of the file; a blob checked before is not read again as
 * long as its file is the same: same device and inode, size, and modification and
 * status-change times (an edit changes the ctime, which no user can set back).
 * Thread-safe; the memory of checked files is per process and bounded. */
#ifndef PM_VERIFY_H
#define PM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* PM_OK: the file at path is the blob `hash`. PM_E_HASH: it hashes to something else
 * (why: "hashes to <hex>"); PM_E_DICOM: refused by the scan (why); PM_E_IO. */
int pm_blob_verify(const uint8_t hash[32], const char *path, char *why, size_t wl);

/* Records that the file at path is the blob `hash`, without reading it: for a blob
 * just made from a file whose hash and structure were checked on the way in. */
void pm_blob_verify_mark(const uint8_t hash[32], const char *path);

/* As pm_blob_verify for a file its caller has just hashed to `hash` itself (the fetch's
 * adopter): only the structure scan is run, and the file remembered as checked, so that
 * serving it does not read it to hash it again. PM_OK or PM_E_DICOM (why). */
int pm_blob_verify_hashed(const uint8_t hash[32], const char *path, char *why, size_t wl);

/* Forgets what was checked of this blob (its file was replaced). */
void pm_blob_verify_forget(const uint8_t hash[32]);

#endif
