/* A multipart/related answer streamed from files or memory (multipart.h). */
#include "node/http/multipart.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct multipart_s {
    size_t nparts, cur;
    char **paths; /* files, or NULL entries with data[] */
    char **data;
    size_t *lens, *offs;
    char **ctypes;
    FILE *f;
    char head[512];
    size_t head_len, head_off;
    int in_body, done;
    int delimited; /* the delimiter after part cur - 1 went out: a client knows it whole */
    char boundary[48];
    mp_resolve_fn resolve;
    void *resolve_ctx;
    void (*free_resolve_ctx)(void *);
};

void mp_set_resolver(multipart *m, mp_resolve_fn fn, void *ctx, void (*free_ctx)(void *))
{
    m->resolve = fn;
    m->resolve_ctx = ctx;
    m->free_resolve_ctx = free_ctx;
}

/* Part i's file, once it is there (mp_set_resolver). */
static int resolve_part(multipart *m, size_t i)
{
    if (m->paths[i] || m->data[i] || !m->resolve)
        return 0;
    char path[4096];
    if (m->resolve(m->resolve_ctx, i, path, sizeof path) != 0)
        return -1;
    m->paths[i] = strdup(path);
    return m->paths[i] ? 0 : -1;
}

void mp_free(void *cls)
{
    multipart *m = cls;
    if (m->f)
        fclose(m->f);
    if (m->free_resolve_ctx)
        m->free_resolve_ctx(m->resolve_ctx);
    for (size_t i = 0; i < m->nparts; i++) {
        free(m->paths[i]);
        free(m->data[i]);
        free(m->ctypes[i]);
    }
    free(m->paths);
    free(m->data);
    free(m->lens);
    free(m->offs);
    free(m->ctypes);
    free(m);
}

static ssize_t mp_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    multipart *m = cls;
    for (;;) {
        if (m->head_off < m->head_len) {
            size_t n = m->head_len - m->head_off < max ? m->head_len - m->head_off : max;
            memcpy(buf, m->head + m->head_off, n);
            m->head_off += n;
            return (ssize_t)n;
        }
        if (m->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (m->in_body) {
            size_t i = m->cur;
            if (m->paths[i]) {
                size_t n = fread(buf, 1, max, m->f);
                if (n > 0)
                    return (ssize_t)n;
                fclose(m->f);
                m->f = NULL;
            } else if (m->offs[i] < m->lens[i]) {
                size_t left = m->lens[i] - m->offs[i], n = left < max ? left : max;
                memcpy(buf, m->data[i] + m->offs[i], n);
                m->offs[i] += n;
                return (ssize_t)n;
            }
            m->in_body = 0;
            m->cur++;
            /* The delimiter goes out at once, before the next part's file is awaited
             * (mp_set_resolver): the client has this part whole while the next comes. */
            m->head_off = 0;
            m->head_len = (size_t)snprintf(m->head, sizeof m->head, "\r\n--%s", m->boundary);
            m->delimited = 1;
            continue;
        }
        m->head_off = 0;
        if (m->cur == m->nparts) {
            if (m->delimited) /* the close delimiter: what went out, and "--" */
                m->head_len = (size_t)snprintf(m->head, sizeof m->head, "--\r\n");
            else /* no part at all */
                m->head_len =
                    (size_t)snprintf(m->head, sizeof m->head, "\r\n--%s--\r\n", m->boundary);
            m->done = 1;
            continue;
        }
        if (resolve_part(m, m->cur) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (m->paths[m->cur] && !(m->f = fopen(m->paths[m->cur], "rb")))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (m->delimited)
            m->head_len = (size_t)snprintf(m->head, sizeof m->head, "\r\nContent-Type: %s\r\n\r\n",
                                           m->ctypes[m->cur]);
        else
            m->head_len =
                (size_t)snprintf(m->head, sizeof m->head, "--%s\r\nContent-Type: %s\r\n\r\n",
                                 m->boundary, m->ctypes[m->cur]);
        m->in_body = 1;
    }
}

multipart *mp_new(size_t n)
{
    multipart *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->paths = calloc(n + 1, sizeof *m->paths);
    m->data = calloc(n + 1, sizeof *m->data);
    m->lens = calloc(n + 1, sizeof *m->lens);
    m->offs = calloc(n + 1, sizeof *m->offs);
    m->ctypes = calloc(n + 1, sizeof *m->ctypes);
    if (!m->paths || !m->data || !m->lens || !m->offs || !m->ctypes) {
        mp_free(m);
        return NULL;
    }
    m->nparts = n;
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(m->boundary, sizeof m->boundary, "pacsmesh-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    return m;
}

enum MHD_Result mp_send(pm_http_req *r, multipart *m, const char *type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, mp_read, m, mp_free);
    if (!resp) {
        mp_free(m);
        return MHD_NO;
    }
    char ct[160];
    snprintf(ct, sizeof ct, "multipart/related; type=\"%s\"; boundary=%s", type, m->boundary);
    MHD_add_response_header(resp, "Content-Type", ct);
    return pm_http_queue(r, 200, resp);
}

char **mp_path(multipart *m, size_t i)
{
    return &m->paths[i];
}

char **mp_data(multipart *m, size_t i)
{
    return &m->data[i];
}

size_t *mp_len(multipart *m, size_t i)
{
    return &m->lens[i];
}

char **mp_ctype(multipart *m, size_t i)
{
    return &m->ctypes[i];
}
