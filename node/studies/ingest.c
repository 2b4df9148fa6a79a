#include "node/studies/ingest.h"
#include "crypto/hash.h"
#include "node/dicom/scan.h"
#include "node/mesh/fetch.h"
#include "node/studies/modalities.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/feed.h"
#include "store/views.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INSTANCE_PREFIX "i/"
#define DIRTY_PREFIX "a/"

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = -1, rc = PM_E_IO;
    if (in < 0)
        return PM_E_IO;
    out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (out >= 0) {
        char buf[1 << 16];
        ssize_t n;
        rc = PM_OK;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n) {
                rc = PM_E_IO;
                break;
            }
        if (n < 0)
            rc = PM_E_IO;
        if (close(out) != 0)
            rc = PM_E_IO;
        if (rc)
            unlink(to);
    }
    close(in);
    return rc;
}

/* The local record of one instance: a StudyAnnounced with one series of one instance. */
static uint8_t *pack_record(const pm_dicom_meta *m, const uint8_t hash[PM_HASH_BYTES],
                            uint64_t size, uint8_t (*chunks)[PM_HASH_BYTES], size_t n_chunks,
                            size_t *len)
{
    ProtobufCBinaryData *pieces = NULL;
    if (n_chunks > 1 && !(pieces = calloc(n_chunks, sizeof *pieces)))
        return NULL;
    Pm__Instance in = PM__INSTANCE__INIT;
    in.sop_instance_uid = (char *)m->sop_uid;
    in.sop_class_uid = (char *)m->sop_class_uid;
    in.instance_number = m->instance_number;
    in.size = size;
    in.hash.data = (uint8_t *)hash;
    in.hash.len = PM_HASH_BYTES;
    in.transfer_syntax_uid = (char *)m->transfer_syntax_uid;
    if (pieces) { /* one chunk needs no list: the whole-instance hash covers it */
        for (size_t i = 0; i < n_chunks; i++) {
            pieces[i].data = chunks[i];
            pieces[i].len = PM_HASH_BYTES;
        }
        in.chunk_size = PM_FETCH_CHUNK;
        in.chunk_hashes = pieces;
        in.n_chunk_hashes = n_chunks;
    }
    Pm__Instance *ins[1] = {&in};
    Pm__Series se = PM__SERIES__INIT;
    se.series_instance_uid = (char *)m->series_uid;
    se.modality = (char *)m->modality;
    se.series_number = m->series_number;
    se.description = (char *)m->series_description;
    se.body_part = (char *)m->body_part;
    se.instances = ins;
    se.n_instances = 1;
    Pm__Series *ses[1] = {&se};
    Pm__StudyAnnounced st = PM__STUDY_ANNOUNCED__INIT;
    st.study_instance_uid = (char *)m->study_uid;
    st.patient_id = (char *)m->patient_id;
    st.patient_name = (char *)m->patient_name;
    st.patient_birth_date = (char *)m->patient_birth_date;
    st.patient_sex = (char *)m->patient_sex;
    st.study_date = (char *)m->study_date;
    st.study_time = (char *)m->study_time;
    st.accession_number = (char *)m->accession_number;
    st.study_description = (char *)m->study_description;
    st.referring_physician = (char *)m->referring_physician;
    st.study_id = (char *)m->study_id;
    st.series = ses;
    st.n_series = 1;
    *len = pm__study_announced__get_packed_size(&st);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        pm__study_announced__pack(&st, buf);
    free(pieces);
    return buf;
}

typedef struct {
    size_t klen;
    const uint8_t *hash;
    int found, differs;
} existing_record;

static int find_existing(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    existing_record *e = ctx;
    if (klen != e->klen)
        return 0;
    Pm__StudyAnnounced *r = pm__study_announced__unpack(NULL, vlen, val);
    e->found = 1;
    e->differs = !r || !r->n_series || !r->series[0]->n_instances ||
                 r->series[0]->instances[0]->hash.len != PM_HASH_BYTES ||
                 memcmp(r->series[0]->instances[0]->hash.data, e->hash, PM_HASH_BYTES) != 0;
    if (r)
        pm__study_announced__free_unpacked(r, NULL);
    return 1;
}

int pm_ingest_file(const pm_ingest_ctx *c, const char *path, int take, char *study_uid, char *err,
                   size_t errlen)
{
    pm_dicom_meta meta;
    if (c->cfg) { /* [dicom] max_nesting and max_elements, for import as for C-STORE */
        pm_dicom_limits lim = {c->cfg->dicom_max_nesting, c->cfg->dicom_max_elements};
        pm_dicom_set_limits(&lim);
    }
    int rc = pm_dicom_read_meta(path, &meta, err, errlen);
    if (rc) {
        if (take)
            unlink(path);
        return rc;
    }
    char tmp[4096];
    if (take) {
        snprintf(tmp, sizeof tmp, "%s", path);
    } else {
        pm_blobs_temp_path(c->blobs, tmp, sizeof tmp);
        if ((rc = copy_file(path, tmp))) {
            snprintf(err, errlen, "cannot copy into the blob store: %s", strerror(errno));
            return rc;
        }
    }
    uint8_t hash[PM_HASH_BYTES];
    uint64_t size;
    uint8_t(*chunks)[PM_HASH_BYTES] = NULL;
    size_t n_chunks = 0;
    if ((rc = pm_blobs_adopt_chunked(c->blobs, tmp, 1, PM_FETCH_CHUNK, hash, &size, &chunks,
                                     &n_chunks))) {
        snprintf(err, errlen, "cannot store the blob: %s", pm_strerror(rc));
        return rc;
    }
    size_t rec_len;
    uint8_t *rec = pack_record(&meta, hash, size, chunks, n_chunks, &rec_len);
    free(chunks);
    if (!rec)
        return PM_E_NOMEM;
    /* Keys: i/STUDY NUL SOP, and the study's announce mark a/STUDY. */
    char ikey[2 + 2 * PM_DICOM_UID_MAX + 2 + 20], akey[2 + PM_DICOM_UID_MAX + 1];
    size_t slen = strlen(meta.study_uid), olen = strlen(meta.sop_uid);
    memcpy(ikey, INSTANCE_PREFIX, 2);
    memcpy(ikey + 2, meta.study_uid, slen);
    ikey[2 + slen] = 0;
    memcpy(ikey + 3 + slen, meta.sop_uid, olen);
    size_t ilen = 3 + slen + olen;
    /* A duplicate SOP Instance UID with identical content is a success; with different
     * content it is kept too, under a key suffixed with its hash, and flagged. */
    existing_record ex = {ilen, hash, 0, 0};
    pm_store_local_each(c->store, ikey, ilen, find_existing, &ex);
    if (ex.found && ex.differs) {
        char hex[17];
        pm_hex_encode(hash, 8, hex);
        ikey[ilen] = 0;
        memcpy(ikey + ilen + 1, hex, 16);
        ilen += 17;
        pm_warn("ingest",
                "instance %s of study %s received again with different content: "
                "both kept (flagged)",
                meta.sop_uid, meta.study_uid);
    }
    int n = snprintf(akey, sizeof akey, "%s%s", DIRTY_PREFIX, meta.study_uid);
    /* The mark carries a fresh value each time: an announcer clears it only if it is
     * still the value it saw before collecting the instances (see announce_study). */
    uint8_t generation[8];
    randombytes_buf(generation, sizeof generation);
    const char *keys[2] = {ikey, akey};
    size_t klens[2] = {ilen, (size_t)n};
    const void *vals[2] = {rec, generation};
    size_t vlens[2] = {rec_len, sizeof generation};
    rc = pm_store_local_write(c->store, keys, klens, vals, vlens, 2);
    free(rec);
    if (rc) {
        snprintf(err, errlen, "cannot record the instance: %s", pm_strerror(rc));
        return rc;
    }
    snprintf(study_uid, PM_DICOM_UID_MAX + 1, "%s", meta.study_uid);
    return PM_OK;
}

/* ---- announcing ----------------------------------------------------------------- */

typedef struct {
    Pm__StudyAnnounced *study; /* the first record, whose study fields are used */
    Pm__StudyAnnounced **records;
    size_t n;
    int failed;
} study_records;

static int collect_record(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen;
    study_records *s = ctx;
    Pm__StudyAnnounced *r = pm__study_announced__unpack(NULL, vlen, val);
    Pm__StudyAnnounced **grown = r ? realloc(s->records, (s->n + 1) * sizeof *grown) : NULL;
    if (!grown) {
        if (r)
            pm__study_announced__free_unpacked(r, NULL);
        s->failed = 1;
        return 0;
    }
    s->records = grown;
    s->records[s->n++] = r;
    return 0;
}

static int by_instance_number(const void *a, const void *b)
{
    const Pm__Instance *x = *(Pm__Instance *const *)a, *y = *(Pm__Instance *const *)b;
    if (x->instance_number != y->instance_number)
        return x->instance_number < y->instance_number ? -1 : 1;
    return strcmp(x->sop_instance_uid, y->sop_instance_uid);
}

/* Builds and appends the announcement of one study from its local records. */
static int announce_study(const pm_ingest_ctx *c, const char *uid)
{
    /* The mark's value before the records are read: an instance ingested after this
     * point changes it, so the mark survives and the study is announced again. */
    char akey[2 + PM_DICOM_UID_MAX + 1];
    int alen = snprintf(akey, sizeof akey, "%s%s", DIRTY_PREFIX, uid);
    void *mark = NULL;
    size_t mark_len = 0;
    if (pm_store_local_get(c->store, akey, &mark, &mark_len) != PM_OK)
        return PM_OK; /* announced meanwhile by another announcer */
    char prefix[2 + PM_DICOM_UID_MAX + 2];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "%s%s", INSTANCE_PREFIX, uid) + 1;
    study_records recs = {0};
    int rc = pm_store_local_each(c->store, prefix, plen, collect_record, &recs);
    if (!rc && (recs.failed || !recs.n))
        rc = recs.failed ? PM_E_NOMEM : PM_E_NOTFOUND;
    Pm__Series *series = NULL, **series_ptrs = NULL;
    Pm__Instance **instances = NULL;
    size_t n_series = 0;
    char modalities[PM_STUDY_MODALITIES_MAX] = "";
    const char *body_part = "";
    if (rc)
        goto done;
    /* Group the instances by series, in the order series were first seen. */
    series = calloc(recs.n, sizeof *series);
    series_ptrs = calloc(recs.n, sizeof *series_ptrs);
    instances = calloc(recs.n, sizeof *instances);
    if (!series || !series_ptrs || !instances) {
        rc = PM_E_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < recs.n; i++) {
        Pm__Series *rs = recs.records[i]->n_series ? recs.records[i]->series[0] : NULL;
        if (!rs || !rs->n_instances)
            continue;
        size_t s;
        for (s = 0; s < n_series; s++)
            if (strcmp(series[s].series_instance_uid, rs->series_instance_uid) == 0)
                break;
        if (s == n_series) {
            series[s] = *rs;
            series[s].instances = NULL;
            series[s].n_instances = 0;
            series_ptrs[n_series++] = &series[s];
            if (!body_part[0])
                body_part = rs->body_part;
        }
        series[s].n_instances++;
    }
    /* Lay the instances out contiguously per series. */
    size_t at = 0;
    for (size_t s = 0; s < n_series; s++) {
        series[s].instances = instances + at;
        size_t k = 0;
        for (size_t i = 0; i < recs.n; i++) {
            Pm__Series *rs = recs.records[i]->n_series ? recs.records[i]->series[0] : NULL;
            if (rs && rs->n_instances &&
                strcmp(rs->series_instance_uid, series[s].series_instance_uid) == 0)
                series[s].instances[k++] = rs->instances[0];
        }
        qsort(series[s].instances, k, sizeof *series[s].instances, by_instance_number);
        at += k;
    }
    Pm__StudyAnnounced st = *recs.records[0];
    st.series = series_ptrs;
    st.n_series = n_series;
    pm_study_modalities(&st, modalities, sizeof modalities);

    /* Worklist terms: kept from our earlier announcement so a growing study keeps its
     * due time; else from this node's [worklist] rules. */
    Pm__WorklistTerms terms = PM__WORKLIST_TERMS__INIT;
    char priority[PM_WORKLIST_PRIORITY_MAX], subspecialty[PM_WORKLIST_SUBSPECIALTY_MAX];
    int double_read = 0;
    Pm__StudyView *prev = NULL;
    if (pm_views_study(c->store, uid, &prev) == PM_OK && prev->study && prev->study->terms &&
        memcmp(prev->site.data, pm_identity_public(c->id), PM_ID_BYTES) == 0) {
        snprintf(priority, sizeof priority, "%s", prev->study->terms->priority);
        snprintf(subspecialty, sizeof subspecialty, "%s", prev->study->terms->subspecialty);
        double_read = prev->study->terms->double_read;
        terms.due_ms = prev->study->terms->due_ms;
    } else {
        pm_worklist_terms(c->cfg, modalities, body_part, st.study_description, pm_now_ms(),
                          priority, subspecialty, &double_read, &terms.due_ms);
    }
    if (prev)
        pm__study_view__free_unpacked(prev, NULL);
    terms.priority = priority;
    terms.subspecialty = subspecialty;
    terms.double_read = double_read;
    st.terms = &terms;

    Pm__EventBody body = PM__EVENT_BODY__INIT;
    body.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
    body.study_announced = &st;
    if ((rc = pm_feed_append(c->store, c->id, &body, NULL)) == PM_OK) {
        rc = pm_store_local_delete_if(c->store, akey, (size_t)alen, mark, mark_len);
        pm_info("ingest", "announced study %s: %zu series, %zu instances, priority %s", uid,
                n_series, recs.n, priority);
    }
done:
    free(mark);
    for (size_t i = 0; i < recs.n; i++)
        pm__study_announced__free_unpacked(recs.records[i], NULL);
    free(recs.records);
    free(series);
    free(series_ptrs);
    free(instances);
    return rc;
}

typedef struct {
    char (*uids)[PM_DICOM_UID_MAX + 1];
    size_t n;
} dirty_list;

static int collect_dirty(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)val, (void)vlen;
    dirty_list *d = ctx;
    if (klen < 3 || klen - 2 > PM_DICOM_UID_MAX)
        return 0;
    char(*grown)[PM_DICOM_UID_MAX + 1] = realloc(d->uids, (d->n + 1) * sizeof *grown);
    if (!grown)
        return PM_E_NOMEM;
    d->uids = grown;
    memcpy(d->uids[d->n], (const char *)key + 2, klen - 2);
    d->uids[d->n][klen - 2] = 0;
    d->n++;
    return 0;
}

/* One announcer at a time in this process (DICOM threads ending associations, the
 * main loop's quiet-period check): no study is announced twice at once. */
static pthread_mutex_t announce_lock = PTHREAD_MUTEX_INITIALIZER;

int pm_ingest_announce(const pm_ingest_ctx *c, unsigned *announced)
{
    dirty_list d = {0};
    *announced = 0;
    pthread_mutex_lock(&announce_lock);
    int rc = pm_store_local_each(c->store, DIRTY_PREFIX, 2, collect_dirty, &d);
    for (size_t i = 0; !rc && i < d.n; i++) {
        int r = announce_study(c, d.uids[i]);
        if (r == PM_OK)
            (*announced)++;
        else
            pm_error("ingest", "cannot announce study %s: %s", d.uids[i], pm_strerror(r));
        if (r == PM_E_MESH) {
            rc = r;
        }
    }
    pthread_mutex_unlock(&announce_lock);
    free(d.uids);
    return rc;
}
