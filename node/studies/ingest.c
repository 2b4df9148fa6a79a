/* Taking one instance in (see ingest.h); announcing its study is announce.c. */
#include "node/studies/ingest.h"
#include "crypto/hash.h"
#include "node/dicom/scan.h"
#include "node/mesh/fetch.h"
#include "node/studies/group_commit.h"
#include "node/studies/incidents.h"
#include "node/studies/ingest_internal.h"
#include "node/studies/patient.h"
#include "node/studies/verify.h"
#include "proto/clock.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/views.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    st.issuer_of_patient_id = (char *)m->issuer_of_patient_id;
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
    int found;
    uint8_t hash[PM_HASH_BYTES]; /* of the instance already recorded under the key */
} existing_record;

static int find_existing(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    existing_record *e = ctx;
    if (klen != e->klen)
        return 0;
    Pm__StudyAnnounced *r = pm__study_announced__unpack(NULL, vlen, val);
    e->found = 1;
    memset(e->hash, 0, sizeof e->hash);
    if (r && r->n_series && r->series[0]->n_instances &&
        r->series[0]->instances[0]->hash.len == PM_HASH_BYTES)
        memcpy(e->hash, r->series[0]->instances[0]->hash.data, PM_HASH_BYTES);
    if (r)
        pm__study_announced__free_unpacked(r, NULL);
    return 1;
}

/* The hash of a file's data set: its bytes after the preamble and meta group, which a
 * sender's toolkit writes its own way (implementation UID, source AE title). */
static int dataset_hash(const char *path, uint8_t out[PM_HASH_BYTES])
{
    uint64_t off = 0;
    int rc = pm_dicom_dataset_offset(path, &off);
    int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PM_E_IO;
    if (lseek(fd, (off_t)off, SEEK_SET) < 0) {
        close(fd);
        return PM_E_IO;
    }
    pm_hasher h;
    pm_hasher_init(&h);
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        pm_hasher_update(&h, buf, (size_t)n);
    close(fd);
    if (n < 0)
        return PM_E_IO;
    pm_hasher_final(&h, out);
    return PM_OK;
}

/* Whether the file at path holds the same data set as the blob already recorded. */
static int same_instance(const pm_ingest_ctx *c, const char *path,
                         const uint8_t known[PM_HASH_BYTES])
{
    uint8_t h[PM_HASH_BYTES], a[PM_HASH_BYTES], b[PM_HASH_BYTES];
    uint64_t size;
    if (pm_hash_file(path, h, &size) == PM_OK && !memcmp(h, known, PM_HASH_BYTES))
        return 1;
    char blob[4096];
    return pm_blobs_path(c->blobs, known, blob, sizeof blob) == PM_OK &&
           dataset_hash(blob, a) == PM_OK && dataset_hash(path, b) == PM_OK &&
           !memcmp(a, b, PM_HASH_BYTES);
}

/* Instances of one study are taken in one at a time (their patient is checked against
 * the study's, then recorded); different studies in parallel. */
#define STRIPES 64
static pthread_mutex_t stripes[STRIPES] = {[0 ... STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t *stripe_of(const char *study_uid)
{
    unsigned h = 5381;
    for (const char *p = study_uid; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return &stripes[h % STRIPES];
}

static const char *source_label(const pm_ingest_source *src, char *buf, size_t n)
{
    if (!src || !src->calling_ae || !*src->calling_ae)
        snprintf(buf, n, "import");
    else if (src->peer_host && *src->peer_host)
        snprintf(buf, n, "%s (%s)", src->calling_ae, src->peer_host);
    else
        snprintf(buf, n, "%s", src->calling_ae);
    return buf;
}

/* Moves (take) or copies the file into <blobs>/quarantine/; its new path in out. */
static int quarantine_file(const pm_ingest_ctx *c, const char *path, int take,
                           const pm_dicom_meta *m, char *out, size_t outlen)
{
    char tmp[4096];
    pm_blobs_temp_path(c->blobs, tmp, sizeof tmp);
    char *slash = strrchr(tmp, '/');
    if (!slash)
        return PM_E_IO;
    *slash = 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%.4000s/quarantine", tmp);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return PM_E_IO;
    snprintf(out, outlen, "%.4000s/%013llu-%.64s.dcm", dir, (unsigned long long)pm_now_ms(),
             m->sop_uid);
    if (take)
        return rename(path, out) == 0 ? PM_OK : PM_E_IO;
    return copy_file(path, out);
}

/* The instance's patient differs from its study's: refused or quarantined, recorded. */
static int patient_conflict(const pm_ingest_ctx *c, const char *path, int take,
                            const pm_dicom_meta *m, const pm_patient *known, const char *differs,
                            const pm_ingest_source *src, pm_ingest_result *res, char *err,
                            size_t errlen)
{
    char who[128], file[4200] = "";
    source_label(src, who, sizeof who);
    int quarantine = c->cfg && c->cfg->patient_conflict == PM_CONFIG_CONFLICT_QUARANTINE;
    if (quarantine && quarantine_file(c, path, take, m, file, sizeof file) != PM_OK) {
        pm_error("ingest", "cannot quarantine %s: %s; refusing it instead", path, strerror(errno));
        quarantine = 0;
        file[0] = 0;
    }
    if (!quarantine && take)
        unlink(path);
    pm_warn("ingest",
            "instance %s of study %s from %s %s: its %s differs from the study's "
            "(PatientID '%s' issuer '%s', the study's '%s' issuer '%s')%s%s",
            m->sop_uid, m->study_uid, who, quarantine ? "quarantined" : "refused", differs,
            m->patient_id, m->issuer_of_patient_id, known->id, known->issuer,
            quarantine ? " in " : "", file);
    pm_patient_incident in = {quarantine ? "quarantined" : "refused",
                              m->study_uid,
                              m->sop_uid,
                              src && src->calling_ae && *src->calling_ae ? src->calling_ae
                                                                         : "import",
                              src && src->peer_host ? src->peer_host : "",
                              m->patient_id,
                              m->issuer_of_patient_id,
                              known->id,
                              known->issuer,
                              differs,
                              file};
    pm_incident_patient(c->store, &in);
    res->outcome = quarantine ? PM_INGEST_QUARANTINED : PM_INGEST_REFUSED_PATIENT;
    /* The reply names no one's patient: only that this one differs. */
    snprintf(err, errlen, "%s: its %s differs from the study known under this Study Instance UID",
             quarantine ? "quarantined" : "refused", differs);
    return PM_E_DICOM;
}

/* Whether this node has been revoked from the mesh (then it takes nothing in). */
static int revoked(const pm_ingest_ctx *c)
{
    if (!c->id)
        return 0;
    Pm__MemberView *mv = NULL;
    int r = pm_views_member(c->store, pm_identity_public(c->id), &mv) == PM_OK && mv->state &&
            strcmp(mv->state, "revoked") == 0;
    if (mv)
        pm__member_view__free_unpacked(mv, NULL);
    return r;
}

/* This node has been revoked from the mesh: the instance is refused. */
static int refuse_revoked(const char *path, int take, const pm_dicom_meta *m,
                          const pm_ingest_source *src, pm_ingest_result *res, char *err,
                          size_t errlen)
{
    char who[128];
    pm_warn("ingest", "instance %s from %s refused: this node has been revoked from the mesh",
            m->sop_uid, source_label(src, who, sizeof who));
    res->outcome = PM_INGEST_REFUSED_REVOKED;
    snprintf(err, errlen, "refused: this node has been revoked from the mesh");
    if (take)
        unlink(path);
    return PM_E_REVOKED;
}

/* The key of the instance's record, i/STUDY NUL SOP, into ikey (INSTANCE_KEY_MAX bytes,
 * room left for a hash suffix); returns its length. */
#define INSTANCE_KEY_MAX (2 + 2 * PM_DICOM_UID_MAX + 2 + 20)
static size_t instance_key(const pm_dicom_meta *m, char ikey[INSTANCE_KEY_MAX])
{
    size_t slen = strlen(m->study_uid), olen = strlen(m->sop_uid);
    memcpy(ikey, PM_INGEST_INSTANCE_PREFIX, 2);
    memcpy(ikey + 2, m->study_uid, slen);
    ikey[2 + slen] = 0;
    memcpy(ikey + 3 + slen, m->sop_uid, olen);
    return 3 + slen + olen;
}

/* The file as a blob hashed and synced here, in this association's thread: the spool
 * file itself (take) or a copy of it. */
static int prepare_blob(const pm_ingest_ctx *c, const char *path, int take, pm_blob_prep *prep,
                        char *err, size_t errlen)
{
    int rc;
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
    memset(prep, 0, sizeof *prep);
    snprintf(prep->tmp_path, sizeof prep->tmp_path, "%s", tmp);
    prep->pinned = 1;
    if ((rc = pm_blobs_prepare(c->blobs, prep, NULL, PM_FETCH_CHUNK))) {
        snprintf(err, errlen, "cannot store the blob: %s", pm_strerror(rc));
        return rc;
    }
    return PM_OK;
}

/* Moves the prepared blob into place and records it with the instance (under ikey, with
 * a hash suffix when again: a different data set under a SOP Instance UID already held)
 * and its study's announce mark, in one transaction shared with whatever else arrives
 * meanwhile (node/studies/group_commit.h). */
static int record_instance(const pm_ingest_ctx *c, const pm_dicom_meta *m, pm_blob_prep *prep,
                           char ikey[INSTANCE_KEY_MAX], size_t ilen, int again, char *err,
                           size_t errlen)
{
    char akey[2 + PM_DICOM_UID_MAX + 1];
    size_t rec_len;
    uint8_t *rec = pack_record(m, prep->hash, prep->size, prep->chunks, prep->n_chunks, &rec_len);
    free(prep->chunks);
    prep->chunks = NULL;
    if (!rec) {
        unlink(prep->tmp_path);
        return PM_E_NOMEM;
    }
    if (again) {
        char hex[17];
        pm_hex_encode(prep->hash, 8, hex);
        ikey[ilen] = 0;
        memcpy(ikey + ilen + 1, hex, 16);
        ilen += 17;
        pm_warn("ingest",
                "instance %s of study %s received again with a different data set: "
                "both kept (flagged)",
                m->sop_uid, m->study_uid);
    }
    int n = snprintf(akey, sizeof akey, "%s%s", PM_INGEST_MARK_PREFIX, m->study_uid);
    /* The mark carries a fresh value each time: an announcer clears it only if it is
     * still the value it saw before collecting the instances (see announce.c). */
    uint8_t generation[8];
    randombytes_buf(generation, sizeof generation);
    char pkey[INSTANCE_KEY_MAX];
    memcpy(pkey, ikey, ilen);
    memcpy(pkey, PM_INGEST_PENDING_PREFIX, 2);
    pm_blob_kv kvs[3] = {{ikey, ilen, rec, rec_len},
                         {pkey, ilen, rec, rec_len},
                         {akey, (size_t)n, generation, sizeof generation}};
    int rc = pm_group_commit(c->blobs, prep, kvs, 3);
    free(rec);
    if (rc) {
        snprintf(err, errlen, "cannot record the instance: %s", pm_strerror(rc));
        return rc;
    }
    /* Hashed and scanned on the way in: served without reading it again. */
    char blob[4096];
    if (pm_blobs_path(c->blobs, prep->hash, blob, sizeof blob) == PM_OK)
        pm_blob_verify_mark(prep->hash, blob);
    return PM_OK;
}

static int ingest(const pm_ingest_ctx *c, const char *path, int take, const pm_dicom_meta *m,
                  const pm_ingest_source *src, pm_ingest_result *res, char *err, size_t errlen)
{
    int rc;
    if (revoked(c))
        return refuse_revoked(path, take, m, src, res, err, errlen);
    pm_patient known, incoming;
    pm_patient_of_meta(m, &incoming);
    if (pm_patient_of_study(c->store, m->study_uid, &known) == PM_OK) {
        const char *differs = pm_patient_differs(&known, &incoming);
        if (differs)
            return patient_conflict(c, path, take, m, &known, differs, src, res, err, errlen);
    }
    char ikey[INSTANCE_KEY_MAX];
    size_t ilen = instance_key(m, ikey);
    /* A SOP Instance UID already held with the same data set (a re-send; an import of
     * what also came by C-STORE, whose meta header another toolkit wrote) is the same
     * instance: nothing changes. With a different data set it is kept too, under a key
     * suffixed with its hash, and flagged. */
    existing_record ex = {ilen, 0, {0}};
    pm_store_local_each(c->store, ikey, ilen, find_existing, &ex);
    if (ex.found && same_instance(c, path, ex.hash)) {
        if (take)
            unlink(path);
        res->outcome = PM_INGEST_DUPLICATE;
        pm_debug("ingest", "instance %s of study %s received again: already held", m->sop_uid,
                 m->study_uid);
        return PM_OK;
    }
    pm_blob_prep prep;
    if ((rc = prepare_blob(c, path, take, &prep, err, errlen)))
        return rc;
    if ((rc = record_instance(c, m, &prep, ikey, ilen, ex.found, err, errlen)))
        return rc;
    res->outcome = PM_INGEST_STORED;
    return PM_OK;
}

int pm_ingest_instance(const pm_ingest_ctx *c, const char *path, int take,
                       const pm_ingest_source *src, pm_ingest_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    pm_dicom_meta meta;
    int rc;
    if (src && src->meta) {
        meta = *src->meta;
    } else {
        if (c->cfg) { /* [dicom] max_nesting and max_elements, for import as for C-STORE */
            pm_dicom_limits lim = {c->cfg->dicom_max_nesting, c->cfg->dicom_max_elements};
            pm_dicom_set_limits(&lim);
        }
        if ((rc = pm_dicom_read_meta(path, &meta, err, errlen))) {
            if (take)
                unlink(path);
            return rc;
        }
    }
    snprintf(res->study_uid, sizeof res->study_uid, "%s", meta.study_uid);
    pthread_mutex_t *mu = stripe_of(meta.study_uid);
    pthread_mutex_lock(mu);
    rc = ingest(c, path, take, &meta, src, res, err, errlen);
    pthread_mutex_unlock(mu);
    return rc;
}

int pm_ingest_file(const pm_ingest_ctx *c, const char *path, int take, char *study_uid, char *err,
                   size_t errlen)
{
    pm_ingest_result res;
    int rc = pm_ingest_instance(c, path, take, NULL, &res, err, errlen);
    if (rc == PM_OK)
        snprintf(study_uid, PM_DICOM_UID_MAX + 1, "%s", res.study_uid);
    return rc;
}
