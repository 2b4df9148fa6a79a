/* The structure scan's reader (node/dicom/scan_reader.h). */
#include "node/dicom/scan_reader.h"
#include "proto/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUF_SIZE 65536

int pm_dicom_reader_fill(reader *r)
{
    if (r->fd < 0)
        return 0;
    if (r->bpos < r->blen) { /* keep what is left at the start of the window */
        memmove(r->own, r->own + r->bpos, r->blen - r->bpos);
        r->blen -= r->bpos;
    } else {
        r->blen = 0;
    }
    r->bpos = 0;
    if (!r->inflating) {
        ssize_t n;
        do
            n = read(r->fd, r->own + r->blen, BUF_SIZE - r->blen);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            r->ioerr = 1;
            return 0;
        }
        r->blen += (size_t)n;
        return n > 0;
    }
    if (r->zdone)
        return 0;
    size_t before = r->blen;
    r->z.next_out = r->own + r->blen;
    r->z.avail_out = (uInt)(BUF_SIZE - r->blen);
    while (r->z.avail_out > 0 && !r->zdone) {
        if (r->z.avail_in == 0) {
            ssize_t n;
            do
                n = read(r->fd, r->zin, BUF_SIZE);
            while (n < 0 && errno == EINTR);
            if (n <= 0) {
                r->ioerr = n < 0;
                r->zdone = 1;
                break;
            }
            r->z.next_in = r->zin;
            r->z.avail_in = (uInt)n;
        }
        int zr = inflate(&r->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END || (zr != Z_OK && zr != Z_BUF_ERROR)) {
            r->zdone = 1; /* the end, or corrupt: what came out so far is the data set */
            break;
        }
    }
    r->blen = BUF_SIZE - r->z.avail_out;
    return r->blen > before;
}

int pm_dicom_reader_skip(reader *r, uint64_t n)
{
    uint64_t in_buf = avail_now(r);
    if (n <= in_buf) {
        r->bpos += (size_t)n;
        r->pos += n;
        return 1;
    }
    r->bpos = r->blen;
    r->pos += in_buf;
    n -= in_buf;
    if (r->fd >= 0 && !r->inflating) {
        if (r->pos + n > r->file_size) {
            r->pos = r->file_size;
            return 0;
        }
        if (lseek(r->fd, (off_t)n, SEEK_CUR) < 0) {
            r->ioerr = 1;
            return 0;
        }
        r->pos += n;
        return 1;
    }
    while (n > 0) {
        if (!pm_dicom_reader_fill(r))
            return 0;
        uint64_t k = avail_now(r) < n ? avail_now(r) : n;
        r->bpos += (size_t)k;
        r->pos += k;
        n -= k;
    }
    return 1;
}

int pm_dicom_reader_inflate(reader *r)
{
    r->zin = malloc(BUF_SIZE);
    if (!r->zin)
        return PM_E_NOMEM;
    memset(&r->z, 0, sizeof r->z);
    if (inflateInit2(&r->z, -MAX_WBITS) != Z_OK)
        return PM_E_NOMEM;
    r->inflating = 1;
    /* What the window still holds is the start of the compressed stream. */
    size_t left = avail_now(r);
    memcpy(r->zin, r->buf + r->bpos, left);
    r->z.next_in = r->zin;
    r->z.avail_in = (uInt)left;
    r->bpos = r->blen = 0;
    return PM_OK;
}

void pm_dicom_reader_memory(reader *r, const void *data, size_t len)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->buf = data;
    r->blen = len;
}

int pm_dicom_reader_open_file(reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return PM_E_IO;
    struct stat st;
    r->own = malloc(BUF_SIZE);
    if (!r->own || fstat(r->fd, &st) != 0) {
        pm_dicom_reader_close(r);
        return PM_E_NOMEM;
    }
    r->buf = r->own;
    r->file_size = (uint64_t)st.st_size;
    return PM_OK;
}

void pm_dicom_reader_close(reader *r)
{
    if (r->inflating)
        inflateEnd(&r->z);
    free(r->zin);
    free(r->own);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

int pm_dicom_reader_rewind(reader *r, uint64_t start)
{
    if (r->fd < 0) {
        r->bpos = (size_t)start;
        r->pos = start;
        return PM_OK;
    }
    if (lseek(r->fd, (off_t)start, SEEK_SET) < 0)
        return PM_E_IO;
    r->bpos = r->blen = 0;
    r->pos = start;
    r->ioerr = 0;
    return PM_OK;
}
