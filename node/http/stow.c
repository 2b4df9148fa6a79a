/* STOW-RS (PS3.18 10.5): POST /dicom-web/studies[/{s}] with multipart/related;
 * type="application/dicom". The body is spooled to a file in the blob directory (at
 * most PM_HTTP_STOW_MAX bytes), split into its parts, and each part is stored through
 * the DICOM edge's provider exactly as a C-STORE would be (ingest, blob, signed event);
 * when the request ends the study is announced, as when an association ends. The answer
 * lists what was stored (ReferencedSOPSequence) and what was not, and why
 * (FailedSOPSequence). */
#include "node/http/dicomweb.h"
#include "node/http/parse.h"
#include "proto/error.h"
#include "proto/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define STOW_PARTS_MAX 10000

/* Failure reasons of PS3.4 (0xA700 out of resources, 0xC000 cannot understand). */
enum { STOW_REFUSED = 0xC000, STOW_NO_ROOM = 0xA700, STOW_WRONG_STUDY = 0xA900 };

typedef struct {
    json_t *ok, *failed;
    unsigned stored;
    const char *base;
} stow_result;

static void failed(stow_result *res, const char *cls, const char *sop, unsigned reason)
{
    json_t *item = json_object();
    json_object_set_new(item, "00081150", pm_dw_attr("UI", cls));
    json_object_set_new(item, "00081155", pm_dw_attr("UI", sop));
    json_object_set_new(item, "00081197", json_pack("{s:s, s:[i]}", "vr", "US", "Value", reason));
    json_array_append_new(res->failed, item);
}

/* Stores one part (its bytes at p, n long). */
static void store_part(pm_http_req *r, const char *study, const char *p, size_t n, stow_result *res)
{
    const pm_dicom_provider *pv = &r->srv->s.provider;
    char tmp[4096], err[256] = "", who[96];
    pm_dicom_meta meta;
    if (pm_blobs_temp_path(r->srv->s.blobs, tmp, sizeof tmp)) {
        failed(res, "", "", STOW_NO_ROOM);
        return;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, p, n) == (ssize_t)n;
    if (fd >= 0)
        close(fd);
    if (!ok || pm_dicom_read_meta(tmp, &meta, err, sizeof err)) {
        unlink(tmp);
        pm_warn("http", "STOW-RS from %s: a part is not DICOM: %s", r->user.name, err);
        failed(res, "", "", STOW_REFUSED);
        return;
    }
    if (study && strcmp(study, meta.study_uid) != 0) {
        unlink(tmp);
        failed(res, meta.sop_class_uid, meta.sop_uid, STOW_WRONG_STUDY);
        return;
    }
    snprintf(who, sizeof who, "STOW %s", r->user.name);
    pm_dicom_store_rq rq = {who, "", tmp, &meta, 0, 0};
    if (pv->store(pv->ctx, &rq, err, sizeof err)) {
        unlink(tmp); /* the provider removes it on success or failure; make sure */
        failed(res, meta.sop_class_uid, meta.sop_uid, STOW_REFUSED);
        return;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/studies/%s/series/%s/instances/%s", res->base, meta.study_uid,
             meta.series_uid, meta.sop_uid);
    json_t *item = json_object();
    json_object_set_new(item, "00081150", pm_dw_attr("UI", meta.sop_class_uid));
    json_object_set_new(item, "00081155", pm_dw_attr("UI", meta.sop_uid));
    json_object_set_new(item, "00081190", pm_dw_attr("UR", url));
    json_array_append_new(res->ok, item);
    res->stored++;
}

enum MHD_Result pm_dw_stow(pm_http_req *r, const char *study)
{
    const char *ct = pm_http_header(r, "Content-Type");
    char boundary[PM_HTTP_BOUNDARY_MAX + 1];
    pm_http_multipart_boundary(ct, boundary, sizeof boundary);
    if (!ct || strncasecmp(ct, "multipart/related", 17) != 0 ||
        (strcasestr(ct, "type=") && !strcasestr(ct, "application/dicom")))
        return pm_http_error(r, 415,
                             "STOW-RS takes multipart/related; "
                             "type=\"application/dicom\"");
    if (!*boundary)
        return pm_http_error(r, 400, "the Content-Type names no boundary");
    if (r->spool_fd < 0 || r->spool_len == 0)
        return pm_http_error(r, 400, "the body is empty");
    char *body = mmap(NULL, r->spool_len, PROT_READ, MAP_PRIVATE, r->spool_fd, 0);
    if (body == MAP_FAILED)
        return pm_http_error(r, 500, "cannot read the spooled body");
    /* A malformed body stores nothing: it is checked whole before the first part is
     * stored. */
    pm_http_part *parts = calloc(STOW_PARTS_MAX, sizeof *parts);
    size_t n = 0;
    char why[128] = "out of memory";
    if (!parts || pm_http_multipart_split(body, r->spool_len, boundary, "application/dicom", parts,
                                          STOW_PARTS_MAX, &n, why, sizeof why) != PM_OK) {
        munmap(body, r->spool_len);
        free(parts);
        return pm_http_error(r, 400, "bad multipart body: %s; nothing was stored", why);
    }
    char base[256];
    pm_dw_base_url(r, base, sizeof base);
    stow_result res = {json_array(), json_array(), 0, base};
    for (size_t i = 0; i < n; i++)
        store_part(r, study, body + parts[i].start, parts[i].len, &res);
    munmap(body, r->spool_len);
    free(parts);
    const pm_dicom_provider *pv = &r->srv->s.provider;
    if (res.stored && pv->association_end)
        pv->association_end(pv->ctx, r->user.name, res.stored); /* announce */
    pm_info("http", "STOW-RS by %s: %u of %zu instance(s) stored", r->user.name, res.stored, n);
    json_t *doc = json_object();
    if (json_array_size(res.ok))
        json_object_set_new(doc, "00081199", json_pack("{s:s, s:o}", "vr", "SQ", "Value", res.ok));
    else
        json_decref(res.ok);
    if (json_array_size(res.failed))
        json_object_set_new(doc, "00081198",
                            json_pack("{s:s, s:o}", "vr", "SQ", "Value", res.failed));
    else
        json_decref(res.failed);
    unsigned status = !res.stored ? 409 : res.stored < n ? 202 : 200;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/dicom+json");
    return pm_http_queue(r, status, resp);
}
