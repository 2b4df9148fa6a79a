/* libFuzzer target over the C-STORE path after the network: what the DICOM edge does
 * with a received data set. The input is one data set as a client sends it, and one
 * selector byte; the target writes it to a spool file the way dcmtk's storeProvider does
 * (preamble and a meta group naming the presentation context's transfer syntax, then
 * the bytes as received), reads it with pm_dicom_read_meta (the bounded scan, then
 * dcmtk, in this process so that the fuzzer sees dcmtk's crashes) and hands it to
 * pm_ingest_instance with take = 1, as the edge's provider does, into a scratch store.
 *
 * Contract checked beyond "no crash, no leak, no undefined behaviour":
 *   - pm_dicom_read_meta gives PM_OK with the UIDs, or PM_E_DICOM with one line;
 *   - pm_ingest_instance agrees with it: it fails when the reader refused, else only
 *     for a patient that differs from the study's (the corpus shares study UIDs);
 *   - the spool file is gone afterwards (taken into the blob store or removed): a
 *     refused instance leaves nothing behind, in the spool or the blob directory;
 *   - an ingested instance is held under the hash of the spool file's bytes.
 *
 * Selector byte (input[0]): bits 0-2 the transfer syntax of the meta group (implicit
 * LE, explicit LE, explicit BE, deflated - the target deflates the bytes itself -,
 * JPEG baseline, an unknown UID, no meta group at all, the bytes as the whole file);
 * bit 3 a scan depth limit of 8 instead of the default.
 *
 * `make check` builds this with test/fuzz_replay.c (plain gcc) and replays the seed
 * corpus test/corpus/dicom_store/. To fuzz for real, with clang and libFuzzer:
 *
 *   mkdir build-fuzz && cd build-fuzz
 *   F='-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined'
 *   ../configure -q CC=clang CXX=clang++ CFLAGS="$F" CXXFLAGS="$F -std=c++17"
 *   make -j libpmcore.a
 *   clang $F -fsanitize=fuzzer -D_GNU_SOURCE -I. -I.. -Iproto -c ../test/fuzz_dicom_store.c
 *   clang++ -fsanitize=fuzzer,address,undefined fuzz_dicom_store.o libpmcore.a \
 *       $(pkg-config --libs dcmtk libsodium libzmq lmdb libprotobuf-c inih jansson zlib) \
 *       -o fuzz_dicom_store
 *   mkdir -p corpus && TMPDIR=/dev/shm ./fuzz_dicom_store -max_len=262144 corpus \
 *       ../test/corpus/dicom_store
 *
 * (TMPDIR on a tmpfs: the store and blobs fsync.) */
#include "crypto/hash.h"
#include "node/config/config.h"
#include "node/dicom/dicom.h"
#include "node/dicom/scan.h"
#include "node/studies/ingest.h"
#include "proto/error.h"
#include "proto/log.h"
#include "store/blobs.h"
#include "store/store.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[256], spool[300], blob_dir[300];
static pm_store *store;
static pm_blobs *blobs;
static pm_config *cfg;
static pm_ingest_ctx ctx;
static unsigned long inputs;

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            rm_tree(child);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void at_exit(void)
{
    pm_blobs_close(&blobs);
    pm_store_close(&store);
    pm_config_destroy(&cfg);
    if (root[0])
        rm_tree(root);
}

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/pm-fuzz-store-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(root))
        abort();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/store", root);
    snprintf(blob_dir, sizeof blob_dir, "%s/blobs", root);
    snprintf(spool, sizeof spool, "%s/blobs/spool", root);
    static const char conf[] = "[node]\nname = fuzz\n";
    char err[256];
    pm_log_set_level(PM_LOG_ERROR);
    if (pm_config_parse("fuzz.conf", conf, sizeof conf - 1, root, &cfg, err, sizeof err) ||
        pm_store_open(dir, UINT64_C(1) << 31, &store) || pm_blobs_open(store, blob_dir, &blobs) ||
        mkdir(spool, 0700) != 0)
        abort();
    pm_store_set_nosync(store);
    ctx = (pm_ingest_ctx){store, blobs, NULL, cfg};
    /* dcmtk in this process: a crash must be the fuzzer's to see. */
    pm_dicom_set_isolation(0);
    atexit(at_exit);
}

static void put(FILE *f, const void *d, size_t n)
{
    if (n && fwrite(d, 1, n, f) != n)
        abort();
}

static void el(FILE *f, uint16_t g, uint16_t e, const char *vr, const char *v, size_t n)
{
    uint8_t h[12] = {g & 0xFF, g >> 8, e & 0xFF, e >> 8, (uint8_t)vr[0], (uint8_t)vr[1]};
    size_t padded = n + (n & 1);
    if (vr[0] == 'O' || (vr[0] == 'U' && vr[1] == 'N')) {
        h[8] = padded & 0xFF, h[9] = padded >> 8 & 0xFF, h[10] = padded >> 16 & 0xFF;
        h[11] = (uint8_t)(padded >> 24);
        put(f, h, 12);
    } else {
        h[6] = padded & 0xFF, h[7] = padded >> 8 & 0xFF;
        put(f, h, 8);
    }
    put(f, v, n);
    if (n & 1)
        put(f, "", 1);
}

/* The meta group dcmtk writes in front of a received data set. */
static void meta(FILE *f, const char *ts)
{
    static const char cls[] = "1.2.840.10008.5.1.4.1.1.2", sop[] = "1.2.826.0.1.3680043.99.8.1",
                      impl[] = "1.2.276.0.7230010.3.0.3.6.7";
    size_t len = 12 + 2 + 8 + (sizeof cls - 1 + 1) + 8 + (sizeof sop - 1 + 1) + 8 +
                 ((strlen(ts) + 1) & ~(size_t)1) + 8 + ((sizeof impl - 1 + 1) & ~(size_t)1);
    uint8_t pre[128] = {0};
    put(f, pre, sizeof pre);
    put(f, "DICM", 4);
    uint8_t gl[4] = {len & 0xFF, len >> 8 & 0xFF, len >> 16 & 0xFF, (uint8_t)(len >> 24)};
    el(f, 0x0002, 0x0000, "UL", (const char *)gl, 4);
    el(f, 0x0002, 0x0001, "OB", "\0\1", 2);
    el(f, 0x0002, 0x0002, "UI", cls, sizeof cls - 1);
    el(f, 0x0002, 0x0003, "UI", sop, sizeof sop - 1);
    el(f, 0x0002, 0x0010, "UI", ts, strlen(ts));
    el(f, 0x0002, 0x0012, "UI", impl, sizeof impl - 1);
}

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t **out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, n);
    *out = malloc(cap ? cap : 1);
    if (!*out)
        abort();
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)n;
    z.next_out = *out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static int count_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        setup();
    if (size < 1)
        return 0;
    inputs++;
    unsigned sel = data[0];
    data++, size--;
    static const char *const syntaxes[] = {"1.2.840.10008.1.2",      "1.2.840.10008.1.2.1",
                                           "1.2.840.10008.1.2.2",    "1.2.840.10008.1.2.1.99",
                                           "1.2.840.10008.1.2.4.50", "1.2.826.0.1.3680043.99.77"};
    char path[400];
    snprintf(path, sizeof path, "%s/rx-fuzz-%lu.dcm", spool, inputs);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    unsigned ts = sel & 7;
    if (ts < 6)
        meta(f, syntaxes[ts]);
    if (ts == 3) {
        uint8_t *z;
        size_t zn = deflate_raw(data, size, &z);
        put(f, z, zn);
        free(z);
    } else {
        put(f, data, size);
    }
    if (fclose(f) != 0)
        abort();
    pm_dicom_limits lim = {sel & 8 ? 8 : 0, 0};
    pm_dicom_set_limits(&lim);
    cfg->dicom_max_nesting = lim.max_depth ? lim.max_depth : PM_DICOM_DEFAULT_MAX_DEPTH;

    pm_dicom_meta m;
    char err[256];
    int rc = pm_dicom_read_meta(path, &m, err, sizeof err);
    if (rc == PM_OK) {
        if (!m.sop_uid[0] || !m.study_uid[0] || !m.series_uid[0] || !m.sop_class_uid[0])
            abort();
    } else if (rc != PM_E_DICOM || !err[0] || strchr(err, '\n')) {
        abort();
    }
    uint8_t hash[PM_HASH_BYTES];
    uint64_t fsize = 0;
    if (pm_hash_file(path, hash, &fsize) != PM_OK)
        abort();
    int blobs_before = count_files(blob_dir);
    char ierr[256];
    pm_ingest_result res;
    int irc = pm_ingest_instance(&ctx, path, 1, NULL, &res, ierr, sizeof ierr);
    /* Refused by the reader exactly when pm_dicom_read_meta refuses; else stored, the
     * same data set again, or refused for its patient (the corpus shares study UIDs). */
    if (rc != PM_OK ? irc == PM_OK : irc != PM_OK && res.outcome != PM_INGEST_REFUSED_PATIENT)
        abort();
    if (access(path, F_OK) == 0)
        abort(); /* the spool file must have been taken over or removed */
    if (irc == PM_OK) {
        if (strcmp(res.study_uid, m.study_uid) != 0)
            abort();
        if (res.outcome == PM_INGEST_STORED && pm_blobs_has(blobs, hash) != 1)
            abort();
        if (res.outcome != PM_INGEST_STORED && res.outcome != PM_INGEST_DUPLICATE)
            abort();
    } else if (count_files(blob_dir) > blobs_before) {
        abort(); /* a refused instance left something in the blob directory */
    }
    if (count_files(spool) != 0)
        abort();
    pm_dicom_set_limits(NULL);
    return 0;
}
