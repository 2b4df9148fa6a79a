/* A multipart/related answer (WADO-RS), streamed part by part from files (read as
 * libmicrohttpd asks for more) or from memory, with a random boundary. Internal to
 * node/http. */
#ifndef PM_HTTP_MULTIPART_H
#define PM_HTTP_MULTIPART_H

#include "node/http/internal.h"

typedef struct multipart_s multipart;

/* n parts; fill paths[i] (a file, strdup'ed) or data[i]/lens[i] (malloc'ed), and
 * ctypes[i] (strdup'ed) for each; everything is freed with the multipart. */
multipart *mp_new(size_t n);
void mp_free(void *m);
/* Part i's fields, for filling in. */
char **mp_path(multipart *m, size_t i);
char **mp_data(multipart *m, size_t i);
size_t *mp_len(multipart *m, size_t i);
char **mp_ctype(multipart *m, size_t i);

/* A part whose file is not there yet: when the answer reaches part i with neither a
 * path nor data, fn is called (on the connection's thread, and may block until the file
 * has arrived) to write its path into path; non-zero ends the answer with an error.
 * free_ctx(ctx) runs when the multipart is freed. */
typedef int (*mp_resolve_fn)(void *ctx, size_t i, char *path, size_t pathlen);
void mp_set_resolver(multipart *m, mp_resolve_fn fn, void *ctx, void (*free_ctx)(void *));

/* Answers with the parts (type: the parts' media type); the multipart is consumed. */
enum MHD_Result mp_send(pm_http_req *r, multipart *m, const char *type);

#endif
