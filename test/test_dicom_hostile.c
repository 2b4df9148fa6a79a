/* Unit test of the defences against hostile DICOM files (node/dicom/scan.h and the
 * parser process of pm_dicom_read_meta):
 *
 *  - the bounded structure scan on data sets built byte by byte: nesting in every way
 *    dcmtk makes a sequence (explicit SQ, undefined or defined length, implicit VR
 *    private tags, UN of undefined length per CP-246, big endian, deflated), refused
 *    past the depth limit and accepted at it; the element count limit; pixel data
 *    fragments skipped; a speculative implicit region with garbage accepted; truncation
 *    not an error, misplaced items an error;
 *  - every file of pydicom's test set that dcmtk reads is accepted by the scan (the scan
 *    must never refuse what dcmtk reads well);
 *  - pm_dicom_read_meta refuses 10,000-deep nesting with a one-line reason;
 *  - the wire guard (node/dicom/wire.h): commands and C-FIND identifiers held until
 *    complete and scanned, C-STORE data streamed, size limits;
 *  - the parser process: with the scan switched off (PM_DICOM_UNCHECKED), the same file
 *    makes dcmtk overflow its stack in the parser process, not here; the instance is
 *    refused with a reason naming the signal, and the next file is read by a fresh
 *    parser. */
#include "node/config/config.h"
#include "node/dicom/dicom.h"
#include "node/dicom/scan.h"
#include "node/dicom/wire.h"
#include "test/check.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/wait.h>
#include <zlib.h>

#define PYDICOM "/usr/lib/python3/dist-packages/pydicom/data/test_files"

/* ---- a byte buffer and element builders ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        CHECK(b->p);
    }
    if (n) /* d may be NULL for an empty part */
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put16(buf *b, uint16_t v, int big)
{
    uint8_t x[2] = {big ? v >> 8 : v & 0xFF, big ? v & 0xFF : v >> 8};
    put(b, x, 2);
}

static void put32(buf *b, uint32_t v, int big)
{
    for (int i = 0; i < 4; i++) {
        uint8_t c = big ? (uint8_t)(v >> (24 - 8 * i)) : (uint8_t)(v >> (8 * i));
        put(b, &c, 1);
    }
}

static void tag(buf *b, uint16_t g, uint16_t e, int big)
{
    put16(b, g, big);
    put16(b, e, big);
}

/* An explicit VR element header (value follows). */
static void ehdr(buf *b, uint16_t g, uint16_t e, const char *vr, uint32_t len, int big)
{
    tag(b, g, e, big);
    put(b, vr, 2);
    static const char *const long_vrs = "OB OW OF OD OL OV SQ UN UT UC UR SV UV";
    char v[3] = {vr[0], vr[1], 0};
    if (strstr(long_vrs, v)) {
        put16(b, 0, big);
        put32(b, len, big);
    } else {
        put16(b, (uint16_t)len, big);
    }
}

static void estr(buf *b, uint16_t g, uint16_t e, const char *vr, const char *v, int big)
{
    size_t n = strlen(v);
    ehdr(b, g, e, vr, (uint32_t)(n + (n & 1)), big);
    put(b, v, n);
    if (n & 1)
        put(b, vr[0] == 'U' && vr[1] == 'I' ? "\0" : " ", 1);
}

static void ihdr(buf *b, uint16_t g, uint16_t e, uint32_t len)
{
    tag(b, g, e, 0);
    put32(b, len, 0);
}

static void istr(buf *b, uint16_t g, uint16_t e, const char *v)
{
    size_t n = strlen(v);
    ihdr(b, g, e, (uint32_t)(n + (n & 1)));
    put(b, v, n);
    if (n & 1)
        put(b, " ", 1);
}

static void item(buf *b, uint32_t len, int big)
{
    tag(b, 0xFFFE, 0xE000, big);
    put32(b, len, big);
}

static void delim(buf *b, uint16_t e, int big)
{
    tag(b, 0xFFFE, e, big);
    put32(b, 0, big);
}

/* Header elements of a CT image, explicit VR (LE or BE) or implicit. */
static void ct_header(buf *b, int mode /* 0 implicit, 1 explicit LE, 2 explicit BE */)
{
    int big = mode == 2;
    if (mode) {
        estr(b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2", big);
        estr(b, 0x0008, 0x0018, "UI", "1.2.826.0.1.3680043.99.7.1", big);
        estr(b, 0x0008, 0x0060, "CS", "CT", big);
    } else {
        istr(b, 0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.2");
        istr(b, 0x0008, 0x0018, "1.2.826.0.1.3680043.99.7.1");
        istr(b, 0x0008, 0x0060, "CT");
    }
}

static void ct_tail(buf *b, int mode)
{
    int big = mode == 2;
    if (mode) {
        estr(b, 0x0010, 0x0020, "LO", "HOSTILE1", big);
        estr(b, 0x0020, 0x000D, "UI", "1.2.826.0.1.3680043.99.7.2", big);
        estr(b, 0x0020, 0x000E, "UI", "1.2.826.0.1.3680043.99.7.3", big);
    } else {
        istr(b, 0x0010, 0x0020, "HOSTILE1");
        istr(b, 0x0020, 0x000D, "1.2.826.0.1.3680043.99.7.2");
        istr(b, 0x0020, 0x000E, "1.2.826.0.1.3680043.99.7.3");
    }
}

/* n nested sequences of undefined length, in one of several encodings. */
enum { NEST_SQ_LE, NEST_SQ_BE, NEST_IMPLICIT, NEST_UN };
static void nest_undefined(buf *b, int kind, unsigned n)
{
    int big = kind == NEST_SQ_BE;
    for (unsigned i = 0; i < n; i++) {
        if (kind == NEST_SQ_LE || kind == NEST_SQ_BE)
            ehdr(b, 0x0040, 0xA730, "SQ", 0xFFFFFFFF, big);
        else if (kind == NEST_IMPLICIT || i > 0) /* inside UN: implicit VR (CP-246) */
            ihdr(b, 0x0009, 0x1010, 0xFFFFFFFF);
        else
            ehdr(b, 0x0009, 0x1010, "UN", 0xFFFFFFFF, 0);
        item(b, 0xFFFFFFFF, kind == NEST_SQ_BE);
    }
    for (unsigned i = 0; i < n; i++) {
        delim(b, 0xE00D, big);
        delim(b, 0xE0DD, big);
    }
}

/* n nested sequences of defined length (explicit LE, or implicit: values that start
 * with an item, sequences only by the dictionary). */
static void nest_defined(buf *b, int implicit, unsigned n)
{
    buf body = {0};
    for (unsigned i = 0; i < n; i++) {
        buf next = {0};
        if (implicit)
            ihdr(&next, 0x0009, 0x1010, (uint32_t)(body.n + 8));
        else
            ehdr(&next, 0x0040, 0xA730, "SQ", (uint32_t)(body.n + 8), 0);
        item(&next, (uint32_t)body.n, 0);
        put(&next, body.p, body.n);
        free(body.p);
        body = next;
    }
    put(b, body.p, body.n);
    free(body.p);
}

static int scan(const buf *b, pm_dicom_ts ts, unsigned depth, unsigned long elements,
                pm_dicom_scan_result *r)
{
    pm_dicom_limits lim = {depth, elements};
    return pm_dicom_scan_buffer(b->p, b->n, ts, &lim, r);
}

/* One data set: header, nesting of kind at depth n, tail. */
static buf nested(int kind, unsigned n, int *mode_out)
{
    buf b = {0};
    int mode = kind == NEST_SQ_BE ? 2 : kind == NEST_IMPLICIT ? 0 : 1;
    ct_header(&b, mode);
    if (kind == NEST_IMPLICIT)
        istr(&b, 0x0009, 0x0010, "HOSTILE");
    else if (kind == NEST_UN)
        estr(&b, 0x0009, 0x0010, "LO", "HOSTILE", 0);
    if (kind == NEST_IMPLICIT || kind == NEST_UN)
        nest_undefined(&b, kind, n);
    ct_tail(&b, mode);
    if (kind == NEST_SQ_LE || kind == NEST_SQ_BE)
        nest_undefined(&b, kind, n); /* (0040,A730) after the tail: tag order */
    *mode_out = mode;
    return b;
}

static pm_dicom_ts ts_of_mode(int mode)
{
    return mode == 0   ? PM_DICOM_TS_IMPLICIT_LE
           : mode == 2 ? PM_DICOM_TS_EXPLICIT_BE
                       : PM_DICOM_TS_EXPLICIT_LE;
}

static void test_scan_nesting(void)
{
    pm_dicom_scan_result r;
    for (int kind = NEST_SQ_LE; kind <= NEST_UN; kind++) {
        int mode;
        buf b = nested(kind, 64, &mode);
        CHECK_RC(scan(&b, ts_of_mode(mode), 64, 0, &r));
        CHECK_EQ_INT(r.depth, 64);
        CHECK(!r.truncated);
        /* Unknown encoding: every guess scanned, the limit still holds. */
        CHECK_RC(scan(&b, PM_DICOM_TS_UNKNOWN, 64, 0, &r));
        free(b.p);
        b = nested(kind, 65, &mode);
        CHECK_CODE(scan(&b, ts_of_mode(mode), 64, 0, &r), PM_E_DICOM);
        CHECK(strstr(r.reason, "nested deeper than 64") != NULL);
        CHECK_CODE(scan(&b, PM_DICOM_TS_UNKNOWN, 64, 0, &r), PM_E_DICOM);
        free(b.p);
        b = nested(kind, 10000, &mode);
        CHECK_CODE(scan(&b, ts_of_mode(mode), 0, 0, &r), PM_E_DICOM); /* default 64 */
        CHECK(strstr(r.reason, "nested deeper than 64") != NULL);
        printf("nesting kind %d: 64 accepted, 65 and 10000 refused (%s)\n", kind, r.reason);
        free(b.p);
    }
    for (int implicit = 0; implicit <= 1; implicit++) {
        buf b = {0};
        nest_defined(&b, implicit, 64);
        pm_dicom_ts ts = implicit ? PM_DICOM_TS_IMPLICIT_LE : PM_DICOM_TS_EXPLICIT_LE;
        CHECK_RC(scan(&b, ts, 64, 0, &r));
        CHECK_EQ_INT(r.depth, 64);
        free(b.p);
        b = (buf){0};
        nest_defined(&b, implicit, 2000);
        CHECK_CODE(scan(&b, ts, 64, 0, &r), PM_E_DICOM);
        CHECK(strstr(r.reason, "nested deeper") != NULL);
        free(b.p);
    }
    printf("defined-length nesting (explicit SQ, implicit by the dictionary): refused past 64\n");
}

static void test_scan_elements(void)
{
    pm_dicom_scan_result r;
    buf b = {0};
    ct_header(&b, 1);
    for (int i = 0; i < 5000; i++)
        ehdr(&b, 0x0029, (uint16_t)(0x1000 + i), "LO", 0, 0);
    CHECK_RC(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 6000, &r));
    CHECK_EQ_INT(r.elements, 5003);
    CHECK_CODE(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 4000, &r), PM_E_DICOM);
    CHECK(strstr(r.reason, "more than 4000 elements") != NULL);
    free(b.p);
}

static void test_scan_shapes(void)
{
    pm_dicom_scan_result r;
    /* Pixel data fragments are skipped, whatever they hold (here: what looks like deep
     * nesting, which a parser of fragments never reads). */
    buf b = {0};
    ct_header(&b, 1);
    ct_tail(&b, 1);
    buf frag = {0};
    nest_undefined(&frag, NEST_SQ_LE, 500);
    ehdr(&b, 0x7FE0, 0x0010, "OB", 0xFFFFFFFF, 0);
    item(&b, 0, 0);
    item(&b, (uint32_t)frag.n, 0);
    put(&b, frag.p, frag.n);
    delim(&b, 0xE0DD, 0);
    CHECK_RC(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 0, &r));
    CHECK_EQ_INT(r.depth, 0);
    free(b.p);
    free(frag.p);

    /* Implicit VR: a value that starts like an item but holds garbage is only a guess:
     * accepted, and the scan goes on after it. */
    b = (buf){0};
    ct_header(&b, 0);
    ihdr(&b, 0x0029, 0x1010, 24);
    item(&b, 16, 0);
    put(&b, "\x01\x02\x03\x04\xff\xff\xff\x7f garbage", 16);
    ct_tail(&b, 0);
    CHECK_RC(scan(&b, PM_DICOM_TS_IMPLICIT_LE, 0, 0, &r));
    CHECK(!r.truncated);
    free(b.p);

    /* Truncated: not an error of the scan (dcmtk says "truncated"). */
    int mode;
    b = nested(NEST_SQ_LE, 30, &mode);
    b.n = b.n / 2 + 3;
    CHECK_RC(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 0, &r));
    CHECK(r.truncated);
    free(b.p);

    /* An item where an element belongs; a sequence holding a non-item; an element
     * running past its item. */
    b = (buf){0};
    ct_header(&b, 1);
    item(&b, 0, 0);
    CHECK_CODE(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 0, &r), PM_E_DICOM);
    CHECK(strstr(r.reason, "malformed") && strstr(r.reason, "item outside a sequence"));
    free(b.p);
    b = (buf){0};
    ct_header(&b, 1);
    ehdr(&b, 0x0040, 0xA730, "SQ", 0xFFFFFFFF, 0);
    estr(&b, 0x0010, 0x0020, "LO", "X", 0);
    CHECK_CODE(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 0, &r), PM_E_DICOM);
    free(b.p);
    b = (buf){0};
    ehdr(&b, 0x0040, 0xA730, "SQ", 20, 0);
    item(&b, 12, 0);
    ehdr(&b, 0x0010, 0x0020, "LO", 200, 0);
    put(&b, "0123", 4);
    CHECK_CODE(scan(&b, PM_DICOM_TS_EXPLICIT_LE, 0, 0, &r), PM_E_DICOM);
    CHECK(strstr(r.reason, "past the end of its item") != NULL);
    free(b.p);
    printf("fragments skipped, speculative regions, truncation, malformed structure: ok\n");
}

/* ---- files ---- */

static char *tmp;

static void write_file(const char *path, const void *meta, size_t mlen, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    if (mlen)
        CHECK(fwrite(meta, 1, mlen, f) == mlen);
    if (n)
        CHECK(fwrite(d, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

/* A Part-10 preamble and meta group for transfer syntax ts. */
static buf meta_for(const char *ts)
{
    buf els = {0};
    ehdr(&els, 0x0002, 0x0001, "OB", 2, 0);
    put(&els, "\0\1", 2);
    estr(&els, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.2", 0);
    estr(&els, 0x0002, 0x0003, "UI", "1.2.826.0.1.3680043.99.7.1", 0);
    estr(&els, 0x0002, 0x0010, "UI", ts, 0);
    buf m = {0};
    uint8_t pre[128] = {0};
    put(&m, pre, sizeof pre);
    put(&m, "DICM", 4);
    ehdr(&m, 0x0002, 0x0000, "UL", 4, 0);
    put32(&m, (uint32_t)els.n, 0);
    put(&m, els.p, els.n);
    free(els.p);
    return m;
}

static void test_scan_files(void)
{
    pm_dicom_scan_result r;
    char *path = check_path(tmp, "deep.dcm");
    int mode;
    buf d = nested(NEST_SQ_LE, 10000, &mode);
    buf m = meta_for("1.2.840.10008.1.2.1");
    write_file(path, m.p, m.n, d.p, d.n);
    CHECK_CODE(pm_dicom_scan_file(path, NULL, &r), PM_E_DICOM);
    CHECK(strstr(r.reason, "nested deeper than 64"));
    /* The same bytes deflated. */
    uLongf zn = compressBound(d.n);
    uint8_t *z = malloc(zn);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = d.p;
    zs.avail_in = (uInt)d.n;
    zs.next_out = z;
    zs.avail_out = (uInt)zn;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t zlen = zs.total_out;
    deflateEnd(&zs);
    free(m.p);
    m = meta_for("1.2.840.10008.1.2.1.99");
    write_file(path, m.p, m.n, z, zlen);
    CHECK_CODE(pm_dicom_scan_file(path, NULL, &r), PM_E_DICOM);
    CHECK(strstr(r.reason, "nested deeper than 64"));
    printf("deflated 10000-deep file (%zu bytes from %zu): %s\n", zlen, d.n, r.reason);
    free(d.p);
    d = nested(NEST_SQ_LE, 10, &mode);
    /* deflate the shallow one: accepted */
    memset(&zs, 0, sizeof zs);
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = d.p;
    zs.avail_in = (uInt)d.n;
    zs.next_out = z;
    zs.avail_out = (uInt)zn;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    zlen = zs.total_out;
    deflateEnd(&zs);
    write_file(path, m.p, m.n, z, zlen);
    CHECK_RC(pm_dicom_scan_file(path, NULL, &r));
    CHECK_EQ_INT(r.depth, 10);
    free(z);
    free(d.p);
    free(m.p);
    /* A raw data set (no meta group) of unknown encoding. */
    d = nested(NEST_IMPLICIT, 200, &mode);
    write_file(path, NULL, 0, d.p, d.n);
    CHECK_CODE(pm_dicom_scan_file(path, NULL, &r), PM_E_DICOM);
    free(d.p);
    free(path);
}

/* Every file of pydicom's test set that dcmtk reads (pm_dicom_read_meta without the
 * scan) is accepted by the scan. */
static void test_pydicom_files(void)
{
    DIR *dir = opendir(PYDICOM);
    if (!dir) {
        printf("pydicom's test files are not installed: skipping that part\n");
        return;
    }
    pm_dicom_limits unchecked = {PM_DICOM_UNCHECKED, 0};
    int read_ok = 0, scanned = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.')
            continue;
        char *p = check_path(PYDICOM, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            pm_dicom_meta m;
            char err[256];
            pm_dicom_set_limits(&unchecked);
            int dcmtk = pm_dicom_read_meta(p, &m, err, sizeof err);
            pm_dicom_set_limits(NULL);
            pm_dicom_scan_result r;
            int rc = pm_dicom_scan_file(p, NULL, &r);
            if (dcmtk == PM_OK) {
                read_ok++;
                if (rc != PM_OK)
                    fprintf(stderr, "%s: dcmtk reads it, the scan refuses it: %s\n", e->d_name,
                            r.reason);
                CHECK(rc == PM_OK);
            }
            scanned++;
        }
        free(p);
    }
    closedir(dir);
    printf("pydicom test files: %d scanned, all %d that dcmtk reads accepted\n", scanned, read_ok);
    CHECK(read_ok > 20);
}

static int count_parsers(void)
{
    /* Living children of this process whose argv[0] is pacsmesh-dicom-parser. */
    int n = 0;
    DIR *d = opendir("/proc");
    CHECK(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], line[512] = "", cmd[64] = "";
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char *got = fgets(line, sizeof line, f);
        fclose(f);
        char *rp = got ? strrchr(line, ')') : NULL;
        long ppid = 0;
        char state = 0;
        if (!rp || sscanf(rp + 2, "%c %ld", &state, &ppid) != 2 || ppid != (long)getpid() ||
            state == 'Z')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        if ((f = fopen(path, "r"))) {
            size_t k = fread(cmd, 1, sizeof cmd - 1, f);
            cmd[k] = 0;
            fclose(f);
        }
        if (!strcmp(cmd, "pacsmesh-dicom-parser"))
            n++;
    }
    closedir(d);
    return n;
}

static void test_read_meta_refuses(void)
{
    char *path = check_path(tmp, "deep-meta.dcm");
    pm_dicom_meta m;
    char err[256];
    for (int kind = NEST_SQ_LE; kind <= NEST_UN; kind++) {
        int mode;
        buf d = nested(kind, 10000, &mode);
        buf mt = meta_for(mode == 0   ? "1.2.840.10008.1.2"
                          : mode == 2 ? "1.2.840.10008.1.2.2"
                                      : "1.2.840.10008.1.2.1");
        write_file(path, mt.p, mt.n, d.p, d.n);
        CHECK_CODE(pm_dicom_read_meta(path, &m, err, sizeof err), PM_E_DICOM);
        CHECK(!strcmp(err, "refused: sequences nested deeper than 64 levels"));
        CHECK(m.sop_uid[0] == '\0');
        if (kind == NEST_SQ_LE)
            printf("pm_dicom_read_meta, 10000-deep: %s\n", err);
        free(d.p);
        free(mt.p);
    }
    /* At the limit: read. */
    int mode;
    buf d = nested(NEST_SQ_LE, 64, &mode);
    buf mt = meta_for("1.2.840.10008.1.2.1");
    write_file(path, mt.p, mt.n, d.p, d.n);
    CHECK_RC(pm_dicom_read_meta(path, &m, err, sizeof err));
    CHECK(!strcmp(m.sop_uid, "1.2.826.0.1.3680043.99.7.1"));
    CHECK(!strcmp(m.patient_id, "HOSTILE1"));
    free(d.p);
    free(mt.p);
    printf("pm_dicom_read_meta: 10000-deep refused in 4 encodings; 64-deep read\n");
    free(path);
}

/* Values longer than their VR allows are kept whole, up to PM_DICOM_TEXT_MAX; past it,
 * and UIDs past 64 characters, the instance is refused: never cut. */
static void test_long_values(void)
{
    char *path = check_path(tmp, "long.dcm");
    char desc[1500 + 1], uid[71];
    memset(desc, 'D', sizeof desc - 1);
    desc[sizeof desc - 1] = 0;
    memset(uid, '1', sizeof uid - 1);
    uid[sizeof uid - 1] = 0;
    uid[1] = '.';
    pm_dicom_meta m;
    char err[256];
    buf mt = meta_for("1.2.840.10008.1.2.1");
    for (int round = 0; round < 3; round++) {
        buf b = {0};
        estr(&b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2", 0);
        estr(&b, 0x0008, 0x0018, "UI", round == 2 ? uid : "1.2.826.0.1.3680043.99.7.1", 0);
        char d[1501];
        snprintf(d, sizeof d, "%.*s", round == 0 ? 100 : 1500, desc);
        estr(&b, 0x0008, 0x1030, "LO", d, 0);
        ct_tail(&b, 1);
        write_file(path, mt.p, mt.n, b.p, b.n);
        free(b.p);
        int rc = pm_dicom_read_meta(path, &m, err, sizeof err);
        if (round == 0) {
            CHECK_RC(rc);
            CHECK_EQ_INT(strlen(m.study_description), 100); /* LO allows 64: kept whole */
        } else {
            CHECK_CODE(rc, PM_E_DICOM);
            printf("long value: %s\n", err);
            CHECK(strstr(err, round == 1 ? "refused: StudyDescription is longer than the 1024"
                                         : "refused: SOPInstanceUID is longer than 64"));
        }
    }
    free(mt.p);
    free(path);
}

static void test_parser_process(void)
{
    char *deep = check_path(tmp, "deep-crash.dcm");
    char *good = check_path(tmp, "good.dcm");
    int mode;
    buf d = nested(NEST_SQ_LE, 30000, &mode);
    buf mt = meta_for("1.2.840.10008.1.2.1");
    write_file(deep, mt.p, mt.n, d.p, d.n);
    free(d.p);
    d = nested(NEST_SQ_LE, 3, &mode);
    write_file(good, mt.p, mt.n, d.p, d.n);
    free(d.p);
    free(mt.p);
    pm_dicom_meta m;
    char err[256];
    CHECK_RC(pm_dicom_read_meta(good, &m, err, sizeof err));
    int before = count_parsers();
    CHECK(before >= 1);
    /* Without the scan, dcmtk overflows its stack on 30,000 levels: in the parser. */
    pm_dicom_limits unchecked = {PM_DICOM_UNCHECKED, 0};
    pm_dicom_set_limits(&unchecked);
    CHECK_CODE(pm_dicom_read_meta(deep, &m, err, sizeof err), PM_E_DICOM);
    printf("without the scan, 30000-deep: %s\n", err);
#ifdef __SANITIZE_ADDRESS__
    /* AddressSanitizer catches the overflow itself and ends the parser with status 1. */
    CHECK(strstr(err, "the parser process died of signal") != NULL ||
          strstr(err, "the parser process exited with status") != NULL);
#else
    CHECK(strstr(err, "the parser process died of signal") != NULL);
#endif
    CHECK(!strchr(err, '\n'));
    /* This process is fine; the next file gets a fresh parser. */
    CHECK_RC(pm_dicom_read_meta(good, &m, err, sizeof err));
    CHECK(!strcmp(m.study_uid, "1.2.826.0.1.3680043.99.7.2"));
    pm_dicom_set_limits(NULL);
    CHECK_CODE(pm_dicom_read_meta(deep, &m, err, sizeof err), PM_E_DICOM);
    CHECK(strstr(err, "refused: sequences nested deeper") != NULL);
    CHECK_EQ_INT(count_parsers(), before);
    printf("parser processes: %d before and after a parser crash\n", before);
    free(deep);
    free(good);
}

/* ---- the wire guard ---- */

static buf pdata(uint8_t pcid, int command, int last, const void *frag, size_t n)
{
    buf b = {0};
    uint8_t h[2] = {4, 0};
    put(&b, h, 2);
    put32(&b, (uint32_t)(n + 6), 1);
    put32(&b, (uint32_t)(n + 2), 1);
    uint8_t ph[2] = {pcid, (uint8_t)((command ? 1 : 0) | (last ? 2 : 0))};
    put(&b, ph, 2);
    put(&b, frag, n);
    return b;
}

static buf command_set(uint16_t field, int dataset)
{
    buf c = {0};
    ihdr(&c, 0x0000, 0x0002, 28);
    put(&c, "1.2.840.10008.5.1.4.1.2.2.1\0", 28);
    ihdr(&c, 0x0000, 0x0100, 2);
    put16(&c, field, 0);
    ihdr(&c, 0x0000, 0x0110, 2);
    put16(&c, 1, 0);
    ihdr(&c, 0x0000, 0x0800, 2);
    put16(&c, dataset ? 0x0001 : 0x0101, 0);
    return c;
}

static int feed(pm_dicom_wire *w, buf b, char *why)
{
    int rc = pm_dicom_wire_pdu(w, b.p, b.n, why, 256);
    free(b.p);
    return rc;
}

static void test_wire(void)
{
    char why[256];
    pm_dicom_wire_limits lim = {16384, 0, 0, {0, 0}};
    pm_dicom_wire *w = pm_dicom_wire_new(&lim);
    CHECK(w);
    pm_dicom_wire_set_ts(w, 1, PM_DICOM_TS_EXPLICIT_LE);
    uint8_t h[6] = {4, 0, 0, 0, 0x41, 0x00}; /* 16640 bytes > 16384 + 64 */
    uint32_t len;
    CHECK_CODE(pm_dicom_wire_header(w, h, &len, why, sizeof why), PM_E_TOOBIG);
    CHECK(strstr(why, "P-DATA-TF PDU of 16640 bytes"));
    uint8_t rq[6] = {1, 0, 0x7F, 0, 0, 0};
    CHECK_CODE(pm_dicom_wire_header(w, rq, &len, why, sizeof why), PM_E_TOOBIG);
    uint8_t ok[6] = {1, 0, 0, 0, 0x10, 0};
    CHECK_RC(pm_dicom_wire_header(w, ok, &len, why, sizeof why));
    CHECK_EQ_INT(len, 4096);

    /* A C-FIND: held in two halves until its identifier is complete, then released. */
    buf c = command_set(0x0020, 1);
    CHECK_RC(feed(w, pdata(1, 1, 0, c.p, 10), why));
    CHECK_EQ_INT(pm_dicom_wire_ready(w), 0);
    CHECK_RC(feed(w, pdata(1, 1, 1, c.p + 10, c.n - 10), why));
    CHECK_EQ_INT(pm_dicom_wire_ready(w), 0); /* its identifier is still to come */
    int mode;
    buf id = nested(NEST_SQ_LE, 5, &mode);
    CHECK_RC(feed(w, pdata(1, 0, 0, id.p, id.n / 2), why));
    CHECK_EQ_INT(pm_dicom_wire_ready(w), 0);
    CHECK_RC(feed(w, pdata(1, 0, 1, id.p + id.n / 2, id.n - id.n / 2), why));
    size_t ready = pm_dicom_wire_ready(w);
    CHECK_EQ_INT(ready, 4 * 12 + c.n + id.n);
    uint8_t *out = malloc(ready);
    CHECK_EQ_INT(pm_dicom_wire_take(w, out, ready), ready);
    CHECK(!memcmp(out + 12, c.p, 10)); /* the bytes as sent */
    free(out);
    free(id.p);

    /* A C-STORE's data set goes through as it comes. */
    buf st = command_set(0x0001, 1);
    CHECK_RC(feed(w, pdata(1, 1, 1, st.p, st.n), why));
    CHECK(pm_dicom_wire_ready(w) > 0);
    buf deep = nested(NEST_SQ_LE, 1000, &mode);
    CHECK_RC(feed(w, pdata(1, 0, 0, deep.p, 8000), why));
    CHECK(pm_dicom_wire_ready(w) > st.n + 8000);
    CHECK_RC(feed(w, pdata(1, 0, 1, deep.p + 8000, 100), why));

    /* The same nesting as a C-FIND identifier: refused. */
    CHECK_RC(feed(w, pdata(1, 1, 1, c.p, c.n), why));
    size_t off = 0;
    int rc = PM_OK;
    while (rc == PM_OK && off < deep.n) {
        size_t n = deep.n - off < 8000 ? deep.n - off : 8000;
        rc = feed(w, pdata(1, 0, off + n == deep.n, deep.p + off, n), why);
        off += n;
    }
    CHECK_CODE(rc, PM_E_DICOM);
    CHECK(!strcmp(why, "C-FIND-RQ identifier refused: sequences nested deeper than 64 levels"));
    pm_dicom_wire_free(w);

    /* A data set without its command; a command over its limit. */
    w = pm_dicom_wire_new(&lim);
    CHECK_CODE(feed(w, pdata(1, 0, 1, "ab", 2), why), PM_E_DICOM);
    CHECK(strstr(why, "without its command"));
    pm_dicom_wire_free(w);
    pm_dicom_wire_limits small = {16384, 100, 0, {0, 0}};
    w = pm_dicom_wire_new(&small);
    uint8_t big[120] = {0};
    CHECK_CODE(feed(w, pdata(1, 1, 1, big, sizeof big), why), PM_E_TOOBIG);
    pm_dicom_wire_free(w);
    free(c.p);
    free(st.p);
    free(deep.p);
    printf("wire guard: identifiers held until complete and scanned, C-STORE data streamed\n");
}

/* The [dicom] keys of these defences: defaults, values, refusals. */
static void test_config_keys(void)
{
    static const char base[] = "[node]\nname = n\n";
    pm_config *cfg = NULL;
    char err[512];
    CHECK_RC(pm_config_parse("t.conf", base, sizeof base - 1, tmp, &cfg, err, sizeof err));
    CHECK_EQ_INT(cfg->dicom_idle_timeout_ms, 30000);
    CHECK_EQ_INT(cfg->dicom_read_timeout_ms, 30000);
    CHECK_EQ_INT(cfg->dicom_max_associations, 200);
    CHECK_EQ_INT(cfg->dicom_max_associations_per_host, 32);
    CHECK_EQ_INT(cfg->dicom_max_nesting, 64);
    CHECK_EQ_INT(cfg->dicom_max_elements, 1000000);
    CHECK_EQ_INT(cfg->patient_conflict, PM_CONFIG_CONFLICT_REFUSE);
    pm_config_destroy(&cfg);
    static const char set[] = "[node]\nname = n\n[dicom]\nidle_timeout = 5m\nread_timeout = 10s\n"
                              "max_associations = 50\nmax_associations_per_host = 5\n"
                              "max_nesting = 16\nmax_elements = 5000\n"
                              "patient_conflict = quarantine\n";
    CHECK_RC(pm_config_parse("t.conf", set, sizeof set - 1, tmp, &cfg, err, sizeof err));
    CHECK_EQ_INT(cfg->dicom_idle_timeout_ms, 300000);
    CHECK_EQ_INT(cfg->dicom_read_timeout_ms, 10000);
    CHECK_EQ_INT(cfg->dicom_max_associations, 50);
    CHECK_EQ_INT(cfg->dicom_max_associations_per_host, 5);
    CHECK_EQ_INT(cfg->dicom_max_nesting, 16);
    CHECK_EQ_INT(cfg->dicom_max_elements, 5000);
    CHECK_EQ_INT(cfg->patient_conflict, PM_CONFIG_CONFLICT_QUARANTINE);
    pm_config_destroy(&cfg);
    static const char *const bad[] = {"patient_conflict = ignore", "max_nesting = 2000",
                                      "idle_timeout = 0s", "max_elements = 10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        int n = snprintf(text, sizeof text, "[node]\nname = n\n[dicom]\n%s\n", bad[i]);
        CHECK_CODE(pm_config_parse("t.conf", text, (size_t)n, tmp, &cfg, err, sizeof err),
                   PM_E_CONFIG);
        printf("config: %s -> %s\n", bad[i], err);
        CHECK(strstr(err, "[dicom]") && strstr(err, "t.conf:4"));
    }
}

int main(void)
{
    tmp = check_tmpdir("dicom-hostile");
    test_config_keys();
    test_scan_nesting();
    test_scan_elements();
    test_scan_shapes();
    test_scan_files();
    test_wire();
    test_pydicom_files();
    test_read_meta_refuses();
    test_long_values();
    test_parser_process();
    check_tmpdir_remove(&tmp);
    printf("test_dicom_hostile: ok\n");
    return 0;
}
