/* Internal to the structure scan (scan.c): a forward-only reader over a file, a
 * deflated data set in a file, or memory, with a small window for headers and skips
 * that seek (plain files) or read through (deflate, memory). scan_reader.c. */
#ifndef PM_DICOM_SCAN_READER_H
#define PM_DICOM_SCAN_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    int fd;               /* -1: memory */
    const uint8_t *buf;   /* the window (memory: everything) */
    size_t blen, bpos;    /* bytes in the window, next one to use */
    uint8_t *own;         /* window storage for files */
    uint64_t pos;         /* stream position of buf[bpos] */
    uint64_t file_size;   /* files: for skips past the end */
    int inflating, zdone; /* deflated data set */
    z_stream z;
    uint8_t *zin;
    int ioerr; /* a read failed (errno tells why) */
} reader;

/* A reader over len bytes of memory at data (borrowed). */
void pm_dicom_reader_memory(reader *r, const void *data, size_t len);

/* A reader over the file at path: PM_OK, PM_E_IO (cannot open it, errno set) or
 * PM_E_NOMEM. Closed with pm_dicom_reader_close. */
int pm_dicom_reader_open_file(reader *r, const char *path);
void pm_dicom_reader_close(reader *r);

/* Moves more bytes into the window: 1 if some came, 0 at the end (or a read error,
 * then r->ioerr is set). */
int pm_dicom_reader_fill(reader *r);

/* Skips n bytes; 0 if the stream ends first (then it is at its end). */
int pm_dicom_reader_skip(reader *r, uint64_t n);

/* Starts reading the rest of the file as raw deflate (the data set of a deflated
 * transfer syntax follows the meta group). PM_OK or PM_E_NOMEM. */
int pm_dicom_reader_inflate(reader *r);

/* Back to stream position start (a file's, or memory): PM_OK or PM_E_IO. Not for a
 * deflated stream. */
int pm_dicom_reader_rewind(reader *r, uint64_t start);

static inline size_t avail_now(const reader *r)
{
    return r->blen - r->bpos;
}

/* Makes n bytes (n <= 16) available in the window; 0 if the stream ends first. */
static inline int have(reader *r, size_t n)
{
    while (r->blen - r->bpos < n)
        if (!pm_dicom_reader_fill(r))
            return 0;
    return 1;
}

/* Takes n bytes that have() made available. */
static inline void take(reader *r, void *out, size_t n)
{
    memcpy(out, r->buf + r->bpos, n);
    r->bpos += n;
    r->pos += n;
}

#endif
