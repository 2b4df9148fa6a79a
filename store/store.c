#include "proto/error.h"
#include "proto/log.h"
#include "store/apply_internal.h"
#include "store/store_internal.h"
#include "store/study_index.h"
#include "store/study_union.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int pm_store_mdb_error(int rc, const char *what)
{
    if (rc == 0)
        return PM_OK;
    if (rc == MDB_NOTFOUND)
        return PM_E_NOTFOUND;
    pm_error("store", "%s: %s", what, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return PM_E_MAPFULL;
    if (rc == ENOMEM)
        return PM_E_NOMEM;
    return PM_E_STORE;
}

int pm_store_txn_begin(pm_store *self, int write, MDB_txn **txn)
{
    return pm_store_mdb_error(mdb_txn_begin(self->env, NULL, write ? 0 : MDB_RDONLY, txn),
                              "begin transaction");
}

int pm_store_txn_commit(MDB_txn *txn)
{
    return pm_store_mdb_error(mdb_txn_commit(txn), "commit");
}

void pm_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

uint64_t pm_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int pm_meta_get_u64(MDB_txn *txn, pm_store *self, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, self->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return PM_OK;
    }
    if (rc)
        return pm_store_mdb_error(rc, key);
    if (v.mv_size != 8)
        return PM_E_STORE;
    *out = pm_get_be64(v.mv_data);
    return PM_OK;
}

int pm_meta_put_u64(MDB_txn *txn, pm_store *self, const char *key, uint64_t value)
{
    uint8_t buf[8];
    pm_put_be64(buf, value);
    MDB_val k = {strlen(key), (void *)key}, v = {8, buf};
    return pm_store_mdb_error(mdb_put(txn, self->meta, &k, &v, 0), key);
}

/* 256-bit little-endian add or subtract of h into acc. */
static void digest_fold(uint8_t acc[PM_HASH_BYTES], const uint8_t h[PM_HASH_BYTES], int subtract)
{
    unsigned carry = 0;
    for (int i = 0; i < PM_HASH_BYTES; i++) {
        if (!subtract) {
            unsigned s = (unsigned)acc[i] + h[i] + carry;
            acc[i] = (uint8_t)s;
            carry = s >> 8;
        } else {
            int s = (int)acc[i] - h[i] - (int)carry;
            carry = s < 0;
            acc[i] = (uint8_t)(s + (carry ? 256 : 0));
        }
    }
}

static void record_hash(char table, const void *key, size_t klen, const void *val, size_t vlen,
                        uint8_t out[PM_HASH_BYTES])
{
    pm_hasher h;
    uint8_t lens[17];
    lens[0] = (uint8_t)table;
    pm_put_be64(lens + 1, klen);
    pm_put_be64(lens + 9, vlen);
    pm_hasher_init(&h);
    pm_hasher_update(&h, lens, sizeof lens);
    pm_hasher_update(&h, key, klen);
    pm_hasher_update(&h, val, vlen);
    pm_hasher_final(&h, out);
}

int pm_view_write(MDB_txn *txn, pm_store *self, MDB_dbi dbi, char table, const void *key,
                  size_t klen, const void *val, size_t vlen)
{
    uint8_t acc[PM_HASH_BYTES] = {0}, h[PM_HASH_BYTES];
    MDB_val dk = {6, "digest"}, dv;
    int rc = mdb_get(txn, self->meta, &dk, &dv);
    if (rc == 0 && dv.mv_size == PM_HASH_BYTES)
        memcpy(acc, dv.mv_data, PM_HASH_BYTES);
    else if (rc != MDB_NOTFOUND)
        return pm_store_mdb_error(rc, "read digest");

    MDB_val k = {klen, (void *)key}, old;
    rc = mdb_get(txn, dbi, &k, &old);
    if (rc == 0) {
        if (val && old.mv_size == vlen && memcmp(old.mv_data, val, vlen) == 0)
            return PM_OK; /* unchanged */
        record_hash(table, key, klen, old.mv_data, old.mv_size, h);
        digest_fold(acc, h, 1);
    } else if (rc != MDB_NOTFOUND) {
        return pm_store_mdb_error(rc, "read view");
    }
    if (val) {
        MDB_val v = {vlen, (void *)val};
        if ((rc = mdb_put(txn, dbi, &k, &v, 0)))
            return pm_store_mdb_error(rc, "write view");
        record_hash(table, key, klen, val, vlen, h);
        digest_fold(acc, h, 0);
    } else if (rc == 0 && (rc = mdb_del(txn, dbi, &k, NULL))) {
        return pm_store_mdb_error(rc, "delete view");
    }
    dv.mv_size = PM_HASH_BYTES;
    dv.mv_data = acc;
    return pm_store_mdb_error(mdb_put(txn, self->meta, &dk, &dv, 0), "write digest");
}

static int open_dbi(MDB_txn *txn, const char *name, MDB_dbi *dbi)
{
    return pm_store_mdb_error(mdb_dbi_open(txn, name, MDB_CREATE, dbi), name);
}

static int check_format(pm_store *self, MDB_txn *txn)
{
    uint64_t format = 0;
    int rc = pm_meta_get_u64(txn, self, "format", &format);
    if (rc)
        return rc;
    if (format == 0)
        return pm_meta_put_u64(txn, self, "format", PM_STORE_FORMAT);
    if (format != PM_STORE_FORMAT) {
        pm_error("store", "store format %llu is not the %d this build reads",
                 (unsigned long long)format, PM_STORE_FORMAT);
        return PM_E_FORMAT;
    }
    return PM_OK;
}

/* Derived data a store keeps at a version (meta key): one written by a build with
 * another is derived again from what it derives from, once, with a line saying so. */
static int upgrade_derived(pm_store *self, MDB_txn *txn, const char *key, uint64_t want,
                           const char *doing, int (*derive)(MDB_txn *, pm_store *))
{
    uint64_t version = 0;
    int rc = pm_meta_get_u64(txn, self, key, &version);
    if (rc || version == want)
        return rc;
    MDB_stat st;
    if (mdb_stat(txn, self->studies, &st) == 0 && st.ms_entries > 0)
        pm_info("store", "%s (%zu studies) for this version", doing, (size_t)st.ms_entries);
    rc = derive(txn, self);
    return rc ? rc : pm_meta_put_u64(txn, self, key, want);
}

/* Indexes are derived from the views; the study views from the events (they are pure
 * functions of them: invariant 2), when an older fold derived them; the naming index
 * (store/apply_internal.h: KIND_NAMING) from the events, when a store has none. */
static int upgrade_study_data(pm_store *self, MDB_txn *txn)
{
    int rc = upgrade_derived(self, txn, "index_version", PM_STUDY_INDEX_VERSION,
                             "rebuilding the study indexes", pm_study_indexes_rebuild);
    if (!rc)
        rc = upgrade_derived(self, txn, "study_view_version", PM_STUDY_VIEW_VERSION,
                             "deriving the study views again", pm_apply_rederive_studies);
    /* The naming index is derived from the events alone. */
    return rc ? rc
              : upgrade_derived(self, txn, "naming_index_version", PM_NAMING_INDEX_VERSION,
                                "indexing the events by the reporter they name",
                                pm_apply_index_naming_all);
}

/* A data.mdb shorter than the pages its meta page names would make the first read of a
 * missing page a SIGBUS ("Bus error") in whatever command touched it: refused here with
 * the file's name instead. */
static int check_file_size(pm_store *self, const char *dir)
{
    MDB_envinfo info;
    MDB_stat st;
    struct stat fs;
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (mdb_env_info(self->env, &info) != 0 || mdb_env_stat(self->env, &st) != 0 ||
        stat(path, &fs) != 0)
        return PM_OK;
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)fs.st_size >= need)
        return PM_OK;
    pm_error("store",
             "%s is truncated or damaged: %llu bytes, but its pages reach byte %llu; restore "
             "the node from a backup (pacsmesh restore)",
             path, (unsigned long long)fs.st_size, (unsigned long long)need);
    return PM_E_STORE;
}

int pm_store_open(const char *dir, uint64_t map_size, pm_store **out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        pm_error("store", "cannot create %s: %s", dir, strerror(errno));
        return PM_E_IO;
    }
    pm_store *self = calloc(1, sizeof *self);
    if (!self)
        return PM_E_NOMEM;
    MDB_txn *txn = NULL; /* set only once begun: the failure path aborts it if so */
    int rc = pm_store_mdb_error(mdb_env_create(&self->env), "create environment");
    if (rc)
        goto fail;
    mdb_env_set_maxdbs(self->env, 24);
    mdb_env_set_maxreaders(self->env, 256);
    mdb_env_set_mapsize(self->env, map_size ? map_size : PM_STORE_DEFAULT_MAP);
    /* MDB_NOTLS: read transactions are not tied to a thread, so the DICOM edge's
     * threads and the main loop can each hold their own. */
    rc = mdb_env_open(self->env, dir, MDB_NOTLS, 0600);
    if (rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_VERSION_MISMATCH) {
        pm_error("store",
                 "%s/data.mdb is damaged or not a pacsmesh store (%s); restore the node "
                 "from a backup (pacsmesh restore)",
                 dir, mdb_strerror(rc));
        rc = PM_E_STORE;
        goto fail;
    }
    if ((rc = pm_store_mdb_error(rc, dir)) || (rc = check_file_size(self, dir)))
        goto fail;
    if ((rc = pm_store_txn_begin(self, 1, &txn)))
        goto fail;
    if ((rc = open_dbi(txn, "meta", &self->meta)) || (rc = check_format(self, txn)) ||
        (rc = open_dbi(txn, "events", &self->events)) ||
        (rc = open_dbi(txn, "heads", &self->heads)) ||
        (rc = open_dbi(txn, "order", &self->order)) ||
        (rc = open_dbi(txn, "bykey", &self->bykey)) ||
        (rc = open_dbi(txn, "forks", &self->forks)) ||
        (rc = open_dbi(txn, "members", &self->members)) ||
        (rc = open_dbi(txn, "studies", &self->studies)) ||
        (rc = open_dbi(txn, "reporters", &self->reporters)) ||
        (rc = open_dbi(txn, "bypatient", &self->bypatient)) ||
        (rc = open_dbi(txn, "bydate", &self->bydate)) ||
        (rc = open_dbi(txn, "bydue", &self->bydue)) ||
        (rc = open_dbi(txn, "byfinal", &self->byfinal)) ||
        (rc = open_dbi(txn, "byattr", &self->byattr)) ||
        (rc = open_dbi(txn, "open", &self->open)) || (rc = open_dbi(txn, "blobs", &self->blobs)) ||
        (rc = open_dbi(txn, "local", &self->local)))
        goto fail;
    if ((rc = upgrade_study_data(self, txn)))
        goto fail;
    rc = pm_store_txn_commit(txn);
    txn = NULL;
    if (rc)
        goto fail;
    *out = self;
    return PM_OK;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (self->env)
        mdb_env_close(self->env);
    free(self);
    return rc;
}

void pm_store_close(pm_store **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdb_env_close((*self_p)->env);
    free(*self_p);
    *self_p = NULL;
}

void pm_store_set_nosync(pm_store *self)
{
    mdb_env_set_flags(self->env, MDB_NOSYNC, 1);
}

int pm_store_mesh_id(pm_store *self, uint8_t out[PM_HASH_BYTES])
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {4, "mesh"}, v;
    rc = mdb_get(txn, self->meta, &k, &v);
    if (rc == 0 && v.mv_size == PM_HASH_BYTES)
        memcpy(out, v.mv_data, PM_HASH_BYTES);
    rc = rc == 0 ? (v.mv_size == PM_HASH_BYTES ? PM_OK : PM_E_STORE)
                 : pm_store_mdb_error(rc, "read mesh id");
    mdb_txn_abort(txn);
    return rc;
}

int pm_store_set_mesh_id(pm_store *self, const uint8_t id[PM_HASH_BYTES])
{
    uint8_t have[PM_HASH_BYTES];
    int rc = pm_store_mesh_id(self, have);
    if (rc == PM_OK)
        return memcmp(have, id, PM_HASH_BYTES) == 0 ? PM_OK : PM_E_EXISTS;
    if (rc != PM_E_NOTFOUND)
        return rc;
    MDB_txn *txn;
    if ((rc = pm_store_txn_begin(self, 1, &txn)))
        return rc;
    MDB_val k = {4, "mesh"}, v = {PM_HASH_BYTES, (void *)id};
    if ((rc = pm_store_mdb_error(mdb_put(txn, self->meta, &k, &v, 0), "write mesh id"))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

int pm_store_digest(pm_store *self, char out[PM_HASH_HEX])
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 0, &txn);
    if (rc)
        return rc;
    uint8_t acc[PM_HASH_BYTES] = {0};
    MDB_val k = {6, "digest"}, v;
    rc = mdb_get(txn, self->meta, &k, &v);
    if (rc == 0 && v.mv_size == PM_HASH_BYTES)
        memcpy(acc, v.mv_data, PM_HASH_BYTES);
    rc = (rc == 0 || rc == MDB_NOTFOUND) ? PM_OK : pm_store_mdb_error(rc, "read digest");
    mdb_txn_abort(txn);
    /* Hash the accumulator once more so the printed digest is a plain hash value. */
    uint8_t h[PM_HASH_BYTES];
    pm_hash(acc, sizeof acc, h);
    pm_hex_encode(h, PM_HASH_BYTES, out);
    return rc;
}

int pm_store_copy(pm_store *self, const char *dir)
{
    return pm_store_mdb_error(mdb_env_copy2(self->env, dir, MDB_CP_COMPACT), "copy the store");
}

int pm_store_count_events(pm_store *self, uint64_t *events)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 0, &txn);
    if (rc)
        return rc;
    MDB_stat st;
    rc = pm_store_mdb_error(mdb_stat(txn, self->events, &st), "stat events");
    if (!rc)
        *events = st.ms_entries;
    mdb_txn_abort(txn);
    return rc;
}

int pm_store_local_put(pm_store *self, const char *key, const void *val, size_t len)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 1, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    if ((rc = pm_store_mdb_error(mdb_put(txn, self->local, &k, &v, 0), "write local"))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

int pm_store_local_get(pm_store *self, const char *key, void **val, size_t *len)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 0, &txn);
    if (rc)
        return rc;
    MDB_val k = {strlen(key), (void *)key}, v;
    rc = pm_store_mdb_error(mdb_get(txn, self->local, &k, &v), "read local");
    if (!rc) {
        *val = malloc(v.mv_size ? v.mv_size : 1);
        if (*val) {
            memcpy(*val, v.mv_data, v.mv_size);
            *len = v.mv_size;
        } else {
            rc = PM_E_NOMEM;
        }
    }
    mdb_txn_abort(txn);
    return rc;
}

int pm_store_local_write(pm_store *self, const char *const *keys, const size_t *klens,
                         const void *const *vals, const size_t *vlens, size_t n)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 1, &txn);
    for (size_t i = 0; !rc && i < n; i++) {
        MDB_val k = {klens[i], (void *)keys[i]};
        if (vals[i]) {
            MDB_val v = {vlens[i], (void *)vals[i]};
            rc = pm_store_mdb_error(mdb_put(txn, self->local, &k, &v, 0), "write local");
        } else {
            int r = mdb_del(txn, self->local, &k, NULL);
            rc = r == MDB_NOTFOUND ? PM_OK : pm_store_mdb_error(r, "delete local");
        }
    }
    if (rc) {
        if (txn)
            mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}

int pm_store_local_each(pm_store *self, const void *prefix, size_t plen, pm_local_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = pm_store_txn_begin(self, 0, &txn);
    if (rc)
        return rc;
    mdb_cursor_open(txn, self->local, &cur);
    MDB_val k = {plen, (void *)prefix}, v;
    int r = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (!rc && r == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        rc = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

int pm_store_local_delete_if(pm_store *self, const void *key, size_t klen, const void *expect,
                             size_t elen)
{
    MDB_txn *txn;
    int rc = pm_store_txn_begin(self, 1, &txn);
    if (rc)
        return rc;
    MDB_val k = {klen, (void *)key}, v;
    if (mdb_get(txn, self->local, &k, &v) == 0 && v.mv_size == elen &&
        memcmp(v.mv_data, expect, elen) == 0 &&
        (rc = pm_store_mdb_error(mdb_del(txn, self->local, &k, NULL), "delete local"))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return pm_store_txn_commit(txn);
}
