/* The serving check of node/studies/verify.h. */
#include "node/studies/verify.h"
#include "crypto/hash.h"
#include "node/dicom/scan.h"
#include "proto/error.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* What was checked: one slot per hash prefix (a newer check of another blob with the
 * same prefix replaces it; it is checked again next time, nothing worse). */
#define SLOTS 16384
typedef struct {
    uint8_t hash[PM_HASH_BYTES];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    int valid;
} checked;

static checked slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static checked *slot_of(const uint8_t hash[PM_HASH_BYTES])
{
    return &slots[(hash[0] << 8 | hash[1]) % SLOTS];
}

static int same_file(const checked *c, const uint8_t hash[PM_HASH_BYTES], const struct stat *st)
{
    return c->valid && !memcmp(c->hash, hash, PM_HASH_BYTES) && c->dev == st->st_dev &&
           c->ino == st->st_ino && c->size == st->st_size &&
           c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           c->ctime.tv_sec == st->st_ctim.tv_sec && c->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static void remember(checked *c, const uint8_t hash[PM_HASH_BYTES], const struct stat *st)
{
    pthread_mutex_lock(&lock);
    memcpy(c->hash, hash, PM_HASH_BYTES);
    c->dev = st->st_dev;
    c->ino = st->st_ino;
    c->size = st->st_size;
    c->mtime = st->st_mtim;
    c->ctime = st->st_ctim;
    c->valid = 1;
    pthread_mutex_unlock(&lock);
}

int pm_blob_verify(const uint8_t hash[32], const char *path, char *why, size_t wl)
{
    struct stat st;
    if (why && wl)
        why[0] = 0;
    if (stat(path, &st) != 0) {
        snprintf(why, wl, "cannot read it");
        return PM_E_IO;
    }
    checked *c = slot_of(hash);
    pthread_mutex_lock(&lock);
    int known = same_file(c, hash, &st);
    pthread_mutex_unlock(&lock);
    if (known)
        return PM_OK;
    uint8_t got[PM_HASH_BYTES];
    uint64_t size;
    if (pm_hash_file(path, got, &size) != PM_OK) {
        snprintf(why, wl, "cannot read it");
        return PM_E_IO;
    }
    if (memcmp(got, hash, PM_HASH_BYTES) != 0) {
        char hex[PM_HASH_HEX];
        pm_hex_encode(got, PM_HASH_BYTES, hex);
        snprintf(why, wl, "hashes to %.16s..., not its signed hash", hex);
        return PM_E_HASH;
    }
    pm_dicom_limits lim;
    pm_dicom_get_limits(&lim);
    pm_dicom_scan_result r;
    if (pm_dicom_scan_file(path, &lim, &r) == PM_E_DICOM) {
        snprintf(why, wl, "%s", r.reason);
        return PM_E_DICOM;
    }
    /* The file may have changed while it was read: remember what was seen before. */
    remember(c, hash, &st);
    return PM_OK;
}

int pm_blob_verify_hashed(const uint8_t hash[32], const char *path, char *why, size_t wl)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, wl, "cannot read it");
        return PM_E_IO;
    }
    pm_dicom_limits lim;
    pm_dicom_get_limits(&lim);
    pm_dicom_scan_result r;
    if (pm_dicom_scan_file(path, &lim, &r) == PM_E_DICOM) {
        snprintf(why, wl, "%s", r.reason);
        return PM_E_DICOM;
    }
    remember(slot_of(hash), hash, &st);
    return PM_OK;
}

void pm_blob_verify_mark(const uint8_t hash[32], const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        remember(slot_of(hash), hash, &st);
}

void pm_blob_verify_forget(const uint8_t hash[32])
{
    checked *c = slot_of(hash);
    pthread_mutex_lock(&lock);
    if (!memcmp(c->hash, hash, PM_HASH_BYTES))
        c->valid = 0;
    pthread_mutex_unlock(&lock);
}
