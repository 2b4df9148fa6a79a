#include "store/auditfile.h"
#include "proto/error.h"
#include "store/event.h"
#include "store/feed.h"
#include "store/forks.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[] = "PACSMESH-AUDIT\n1\n";

typedef struct {
    FILE *f;
    pm_hasher h;
    uint64_t count;
    int failed;
} writer;

static void put(writer *w, const void *data, size_t len)
{
    if (fwrite(data, 1, len, w->f) != len)
        w->failed = 1;
    pm_hasher_update(&w->h, data, len);
}

static void put_record(writer *w, char kind, const uint8_t *raw, size_t len)
{
    uint8_t head[5] = {(uint8_t)kind, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                       (uint8_t)(len >> 8), (uint8_t)len};
    put(w, head, sizeof head);
    put(w, raw, len);
}

static int write_event(void *ctx, const uint8_t *raw, size_t len)
{
    writer *w = ctx;
    put_record(w, 'E', raw, len);
    w->count++;
    return 0;
}

/* Every fork branch event, so that an export holds all that the views derive from. */
static int write_fork(void *ctx, const uint8_t *raw, size_t len)
{
    put_record(ctx, 'F', raw, len);
    return 0;
}

int pm_auditfile_export(pm_store *store, const char *path, uint64_t *count)
{
    size_t plen = strlen(path) + 8;
    char *tmp = malloc(plen);
    if (!tmp)
        return PM_E_NOMEM;
    snprintf(tmp, plen, "%s.tmp", path);
    writer w;
    memset(&w, 0, sizeof w);
    /* names and report text: owner only, whatever the umask */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    w.f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "wb") : NULL;
    if (!w.f) {
        if (fd >= 0)
            close(fd);
        free(tmp);
        return PM_E_IO;
    }
    pm_hasher_init(&w.h);
    put(&w, MAGIC, strlen(MAGIC));
    int rc = pm_feed_for_each(store, write_event, &w);
    if (!rc)
        rc = pm_forks_each(store, NULL, write_fork, &w);
    uint8_t hash[PM_HASH_BYTES];
    pm_hasher_final(&w.h, hash);
    uint8_t z = 'Z';
    if (fwrite(&z, 1, 1, w.f) != 1 || fwrite(hash, 1, sizeof hash, w.f) != sizeof hash)
        w.failed = 1;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
        w.failed = 1;
    fclose(w.f);
    if (!rc && w.failed)
        rc = PM_E_IO;
    if (!rc && rename(tmp, path) != 0)
        rc = PM_E_IO;
    if (rc)
        unlink(tmp);
    free(tmp);
    *count = w.count;
    return rc;
}

int pm_auditfile_read(const char *path, pm_auditfile_fn fn, void *ctx, uint64_t *where)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return PM_E_IO;
    int rc = pm_auditfile_read_stream(f, fn, ctx, where);
    fclose(f);
    return rc;
}

int pm_auditfile_read_stream(FILE *f, pm_auditfile_fn fn, void *ctx, uint64_t *where)
{
    pm_hasher h;
    pm_hasher_init(&h);
    int rc = PM_OK;
    uint8_t *buf = NULL;
    char magic[sizeof MAGIC];
    uint64_t off = 0;
    if (fread(magic, 1, strlen(MAGIC), f) != strlen(MAGIC) ||
        memcmp(magic, MAGIC, strlen(MAGIC)) != 0) {
        rc = PM_E_FORMAT;
        goto done;
    }
    pm_hasher_update(&h, magic, strlen(MAGIC));
    off = strlen(MAGIC);
    for (;;) {
        uint8_t head[5];
        if (fread(head, 1, 1, f) != 1) {
            rc = PM_E_PARSE; /* the 'Z' trailer is missing: truncated */
            break;
        }
        if (head[0] == 'Z') {
            uint8_t want[PM_HASH_BYTES], got[PM_HASH_BYTES];
            if (fread(want, 1, sizeof want, f) != sizeof want || fgetc(f) != EOF) {
                rc = PM_E_PARSE;
                break;
            }
            pm_hasher_final(&h, got);
            rc = memcmp(want, got, PM_HASH_BYTES) == 0 ? PM_OK : PM_E_HASH;
            break;
        }
        if ((head[0] != 'E' && head[0] != 'F') || fread(head + 1, 1, 4, f) != 4) {
            rc = PM_E_PARSE;
            break;
        }
        size_t len = (size_t)head[1] << 24 | (size_t)head[2] << 16 | (size_t)head[3] << 8 | head[4];
        if (len == 0 || len > PM_EVENT_MAX_BYTES) {
            rc = PM_E_PARSE;
            break;
        }
        uint8_t *grown = realloc(buf, len);
        if (!grown) {
            rc = PM_E_NOMEM;
            break;
        }
        buf = grown;
        if (fread(buf, 1, len, f) != len) {
            rc = PM_E_PARSE;
            break;
        }
        pm_hasher_update(&h, head, 5);
        pm_hasher_update(&h, buf, len);
        if ((rc = fn(ctx, (char)head[0], buf, len)))
            break;
        off += 5 + len;
    }
done:
    if (where)
        *where = off;
    free(buf);
    return rc;
}
