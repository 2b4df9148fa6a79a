/* The bounded structure scan of node/dicom/scan.h.
 *
 * The walk follows dcmtk 3.6.7's reader (dcmdata/libsrc/dcitem.cc, dcsequen.cc) in what
 * decides the structure: which tags are items and delimiters, the length field of each
 * explicit VR, what becomes a sequence (VR SQ; UN or an unknown VR of undefined length,
 * read as implicit little endian per CP-246; in implicit VR whatever the dictionary says,
 * approximated here by "undefined length" or "starts with an item"), what becomes a
 * pixel sequence (fragments, never parsed). Its own recursion is bounded by the depth
 * limit, so the scan itself cannot exhaust a stack.
 *
 * Regions the scan only guesses to be sequences (implicit VR values that start like an
 * item; items that may be compressed pixel fragments) are "speculative": what is wrong
 * inside them is not an error, the scan resumes at the end of the region. Everything is
 * checked against the nearest enclosing defined length, so a resumed scan never starts
 * past it. */
#include "node/dicom/scan.h"
#include "node/dicom/dicom.h"
#include "node/dicom/scan_reader.h"
#include "proto/error.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define UNDEF 0xFFFFFFFFu
#define NO_END UINT64_MAX

/* ---- the scan ---- */

enum { MODE_IMPLICIT_LE, MODE_EXPLICIT_LE, MODE_EXPLICIT_BE, MODE_IMPLICIT_BE };

/* Outcomes of one level: fine; the bytes ended (the scan stops, not an error);
 * malformed (an error, unless inside a speculative region); a limit (always final). */
enum { S_OK, S_EOF, S_MAL, S_LIMIT, S_SHORT };

typedef struct {
    reader *r;
    unsigned max_depth;
    unsigned long max_elements;
    pm_dicom_scan_result res;
    int spec; /* > 0 inside a speculative region */
    char ts_uid[PM_DICOM_UID_MAX + 1];
} scanner;

static int mal(scanner *s, const char *why)
{
    if (!s->spec) {
        snprintf(s->res.reason, sizeof s->res.reason, "malformed DICOM: %s at byte %llu", why,
                 (unsigned long long)s->r->pos);
        s->res.offset = s->r->pos;
        s->res.refusal = PM_DICOM_SCAN_MALFORMED;
    }
    return S_MAL;
}

static int eof(scanner *s)
{
    s->res.truncated = 1;
    return s->r->ioerr ? S_LIMIT : S_EOF;
}

/* A value that runs past the end of the data. dcmtk refuses such a file as truncated
 * too, but where it cannot leave a value on disk (a deflated data set, a data set in
 * memory) it first allocates the length the element claims: refused here instead. */
static int short_value(scanner *s, uint32_t len)
{
    s->res.truncated = 1;
    if (s->r->ioerr)
        return S_LIMIT;
    snprintf(s->res.reason, sizeof s->res.reason,
             "truncated (a value of %lu bytes runs past the end of the data)", (unsigned long)len);
    s->res.offset = s->r->pos;
    s->res.refusal = PM_DICOM_SCAN_TRUNCATED;
    return S_SHORT;
}

static int count(scanner *s)
{
    if (++s->res.elements <= s->max_elements)
        return S_OK;
    snprintf(s->res.reason, sizeof s->res.reason, "more than %lu elements", s->max_elements);
    s->res.offset = s->r->pos;
    s->res.refusal = PM_DICOM_SCAN_LIMIT;
    return S_LIMIT;
}

static uint16_t u16(const uint8_t *b, int big)
{
    return big ? (uint16_t)(b[0] << 8 | b[1]) : (uint16_t)(b[1] << 8 | b[0]);
}

static uint32_t u32(const uint8_t *b, int big)
{
    return big ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]
               : (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

static int is_big(int mode)
{
    return mode == MODE_EXPLICIT_BE || mode == MODE_IMPLICIT_BE;
}
static int is_explicit(int mode)
{
    return mode == MODE_EXPLICIT_LE || mode == MODE_EXPLICIT_BE;
}

/* What dcmtk's DcmVR makes of two VR bytes, as far as structure goes. */
typedef enum {
    VR_SHORT,  /* 2-byte length field */
    VR_LONG,   /* reserved bytes and a 4-byte length field: OB, OD, ... UT, future VRs */
    VR_SQ,     /* sequence */
    VR_UN,     /* UN or unknown: a sequence read as implicit LE when of undefined length */
    VR_OBOW,   /* OB, OW, ox: pixel data with undefined length is a pixel sequence */
    VR_PX,     /* px: always pixel data */
    VR_NA,     /* na: a 4-byte length field without reserved bytes; dcmtk refuses it */
    VR_REFUSED /* pi: dcmtk refuses the element */
} vr_kind;

static vr_kind vr_of(const uint8_t v[2])
{
    static const char *const long_vrs[] = {"OD", "OF", "OL", "OV", "UC",
                                           "UR", "UT", "SV", "UV", "lt"};
    static const char *const short_vrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL",
                                            "FD", "IS", "LO", "LT", "PN", "SH", "SL", "SS",
                                            "ST", "TM", "UI", "UL", "US", "xs", "up"};
    char c[3] = {(char)v[0], (char)v[1], 0};
    if (!strcmp(c, "SQ"))
        return VR_SQ;
    if (!strcmp(c, "UN"))
        return VR_UN;
    if (!strcmp(c, "OB") || !strcmp(c, "OW") || !strcmp(c, "ox"))
        return VR_OBOW;
    if (!strcmp(c, "px"))
        return VR_PX;
    if (!strcmp(c, "na"))
        return VR_NA;
    if (!strcmp(c, "pi"))
        return VR_REFUSED;
    for (size_t i = 0; i < sizeof long_vrs / sizeof *long_vrs; i++)
        if (!strcmp(c, long_vrs[i]))
            return VR_LONG;
    for (size_t i = 0; i < sizeof short_vrs / sizeof *short_vrs; i++)
        if (!strcmp(c, short_vrs[i]))
            return VR_SHORT;
    /* dcmtk: unknown upper-case pairs are future VRs (extended length, read as UN);
     * anything else is an illegal VR with a 2-byte length field. */
    if (c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z')
        return VR_UN;
    return VR_SHORT;
}

/* Ends. dcmtk treats the defined length of a sequence or item as a soft end: the
 * container is complete once that many bytes are read, and what runs past it is read on
 * (only an element of defined length directly in an item of defined length must fit in
 * it). The scan does the same with "own" ends. A speculative region's end is hard: the
 * guess is abandoned there, and no read crosses it. */
typedef struct {
    uint64_t own;  /* this container's own end, or NO_END */
    uint64_t hard; /* the enclosing speculative region's end, or NO_END */
} ends;

static int scan_dataset(scanner *s, int mode, ends x, unsigned depth);

/* n more bytes within the hard end? */
static int fits(scanner *s, const ends *x, uint64_t n)
{
    return x->hard == NO_END || s->r->pos + n <= x->hard;
}

static int deeper(scanner *s, unsigned depth)
{
    if (depth > s->res.depth)
        s->res.depth = depth;
    if (depth <= s->max_depth)
        return S_OK;
    snprintf(s->res.reason, sizeof s->res.reason, "sequences nested deeper than %u levels",
             s->max_depth);
    s->res.offset = s->r->pos;
    s->res.refusal = PM_DICOM_SCAN_LIMIT;
    return S_LIMIT;
}

static int speculate(scanner *s, int mode, uint64_t region_end, uint64_t hard, unsigned depth,
                     int as_items, int maybe_frag);

static ends own(uint64_t end, uint64_t hard)
{
    return (ends){end, hard};
}

/* The items of a sequence (or pixel sequence) whose value starts here. */
static int scan_sequence(scanner *s, int mode, ends x, unsigned depth, int pixel, int maybe_frag)
{
    reader *r = s->r;
    int big = is_big(mode);
    for (;;) {
        if (x.own != NO_END && r->pos >= x.own)
            return S_OK;
        if (!fits(s, &x, 8))
            return mal(s, "sequence runs past the end of its region");
        if (!have(r, 8))
            return eof(s);
        uint8_t h[8];
        take(r, h, 8);
        int rc = count(s);
        if (rc)
            return rc;
        uint16_t g = u16(h, big), e = u16(h + 2, big);
        uint32_t len = u32(h + 4, big);
        if (g == 0xFFFE && e == 0xE0DD)
            return S_OK;
        if (g != 0xFFFE || e != 0xE000)
            return mal(s, pixel ? "a pixel sequence holds something other than an item"
                                : "a sequence holds something other than an item");
        if (pixel) {
            if (len == UNDEF)
                return mal(s, "pixel data fragment of undefined length");
            if (!fits(s, &x, len))
                return mal(s, "fragment runs past the end of its region");
            if (!pm_dicom_reader_skip(r, len))
                return short_value(s, len);
            continue;
        }
        if (len == UNDEF) {
            rc = scan_dataset(s, mode, own(NO_END, x.hard), depth);
        } else {
            if (!fits(s, &x, len))
                return mal(s, "item runs past the end of its region");
            uint64_t item_end = r->pos + len;
            if (maybe_frag)
                rc = speculate(s, mode, item_end, x.hard, depth, 0, 0);
            else
                rc = scan_dataset(s, mode, own(item_end, x.hard), depth);
        }
        if (rc)
            return rc;
    }
}

/* Inside a region the scan only guesses the structure of, errors end the guess: the
 * scan resumes at the region's end. */
static int speculate(scanner *s, int mode, uint64_t region_end, uint64_t hard, unsigned depth,
                     int as_items, int maybe_frag)
{
    ends x = own(region_end, region_end < hard ? region_end : hard);
    s->spec++;
    int rc = as_items ? scan_sequence(s, mode, x, depth, 0, maybe_frag)
                      : scan_dataset(s, mode, x, depth);
    s->spec--;
    if (rc == S_MAL || (rc == S_OK && s->r->pos < region_end))
        rc = pm_dicom_reader_skip(s->r, region_end - s->r->pos) ? S_OK : eof(s);
    return rc;
}

/* An element's header after its tag: its VR (explicit VR only: else VR_UN), whether
 * that VR was "OX" (dcmtk reads pixel data with it as OW), and its value length. */
typedef struct {
    vr_kind vr;
    int vr_ox;
    uint32_t len;
} element_head;

/* The next 4 header bytes, within the hard end: S_OK, or why not. */
static int header_bytes(scanner *s, const ends *x, uint8_t v[4])
{
    if (!fits(s, x, 4))
        return mal(s, "element header runs past the end of its region");
    if (!have(s->r, 4))
        return eof(s);
    take(s->r, v, 4);
    return S_OK;
}

static int read_element_head(scanner *s, int mode, const ends *x, element_head *h)
{
    reader *r = s->r;
    int big = is_big(mode);
    uint8_t v[4];
    int rc;
    h->vr = VR_UN;
    h->vr_ox = 0;
    if (!is_explicit(mode)) {
        if ((rc = header_bytes(s, x, v)))
            return rc;
        h->len = u32(v, big);
        return S_OK;
    }
    if (!fits(s, x, 4))
        return mal(s, "element header runs past the end of its region");
    if (!have(r, 4))
        return eof(s);
    take(r, v, 2);
    h->vr = vr_of(v);
    h->vr_ox = v[0] == 'O' && v[1] == 'X';
    if (h->vr == VR_SHORT || h->vr == VR_REFUSED) {
        take(r, v, 2);
        h->len = u16(v, big);
    } else {
        if (h->vr != VR_NA)
            take(r, v, 2); /* reserved */
        if ((rc = header_bytes(s, x, v)))
            return rc;
        h->len = u32(v, big);
    }
    if (h->vr == VR_NA || h->vr == VR_REFUSED)
        return mal(s, "element with VR na or pi");
    return S_OK;
}

/* A value of undefined length: a sequence, a pixel sequence, or (explicit VR, any other
 * VR) a value dcmtk would read as 4 GiB. */
static int scan_undefined_value(scanner *s, int mode, ends x, unsigned depth, const element_head *h,
                                int pixel_tag)
{
    ends inner = own(NO_END, x.hard);
    if (!is_explicit(mode)) {
        if (pixel_tag)
            return scan_sequence(s, mode, inner, depth, 1, 0);
        /* Implicit VR: a sequence, UN (a sequence too) or private pixel data, by the
         * dictionary: items of defined length may be fragments. */
        return deeper(s, depth + 1) ?: scan_sequence(s, mode, inner, depth + 1, 0, 1);
    }
    switch (h->vr) {
    case VR_SQ: return deeper(s, depth + 1) ?: scan_sequence(s, mode, inner, depth + 1, 0, 0);
    case VR_UN:
        if (h->vr_ox && pixel_tag)
            return scan_sequence(s, mode, inner, depth, 1, 0);
        /* CP-246: a sequence in implicit VR little endian */
        return deeper(s, depth + 1) ?: scan_sequence(s, MODE_IMPLICIT_LE, inner, depth + 1, 0, 0);
    case VR_PX:
    case VR_OBOW:
        /* Pixel data, or (any other OB/OW) a pixel sequence if a private dictionary says
         * so, else refused by dcmtk: fragments either way. */
        return scan_sequence(s, mode, inner, depth, 1, 0);
    default:
        /* A string or number of "undefined length": dcmtk takes it as a value of 4 GiB,
         * running to the end of the data. */
        if (!fits(s, &x, h->len))
            return mal(s, "value of undefined length");
        return pm_dicom_reader_skip(s->r, h->len) ? mal(s, "value of undefined length")
                                                  : short_value(s, h->len);
    }
}

/* A value of defined length: skipped, but for a sequence (explicit SQ, or in implicit VR
 * a value that starts with an item) and the meta header's TransferSyntaxUID, kept. */
static int scan_defined_value(scanner *s, int mode, ends x, unsigned depth, const element_head *h,
                              int ts_tag)
{
    reader *r = s->r;
    uint32_t len = h->len;
    /* dcmtk: a value of defined length must fit in an item of defined length. */
    if (x.own != NO_END && depth > 0 && r->pos + len > x.own)
        return mal(s, "element runs past the end of its item");
    if (!fits(s, &x, len))
        return mal(s, "element runs past the end of its region");
    uint64_t value_end = r->pos + len;
    if (ts_tag && len <= PM_DICOM_UID_MAX && h->vr != VR_SQ) {
        if (!have(r, len))
            return eof(s);
        char uid[PM_DICOM_UID_MAX + 1];
        take(r, uid, len);
        uid[len] = 0;
        snprintf(s->ts_uid, sizeof s->ts_uid, "%s", uid);
        return S_OK;
    }
    if (is_explicit(mode)) {
        if (h->vr == VR_SQ)
            return deeper(s, depth + 1)
                       ?: scan_sequence(s, mode, own(value_end, x.hard), depth + 1, 0, 0);
        return pm_dicom_reader_skip(r, len) ? S_OK : short_value(s, len);
    }
    /* Implicit VR: a value that starts with an item may be a sequence by the dictionary. */
    int big = is_big(mode);
    if (len >= 8 && have(r, 4) && u16(r->buf + r->bpos, big) == 0xFFFE &&
        u16(r->buf + r->bpos + 2, big) == 0xE000)
        return deeper(s, depth + 1) ?: speculate(s, mode, value_end, x.hard, depth + 1, 1, 1);
    return pm_dicom_reader_skip(r, len) ? S_OK : short_value(s, len);
}

/* One element whose tag (g, e) has just been read, in a container with ends x: its
 * header, then its value. */
static int scan_element(scanner *s, int mode, ends x, unsigned depth, uint16_t g, uint16_t e)
{
    element_head h;
    int rc = read_element_head(s, mode, &x, &h);
    if (rc)
        return rc;
    if (h.len == UNDEF)
        return scan_undefined_value(s, mode, x, depth, &h, g == 0x7FE0 && e == 0x0010);
    return scan_defined_value(s, mode, x, depth, &h, g == 0x0002 && e == 0x0010);
}

/* The elements of a data set (depth 0) or item. */
static int scan_dataset(scanner *s, int mode, ends x, unsigned depth)
{
    reader *r = s->r;
    int big = is_big(mode);
    for (;;) {
        if (x.own != NO_END && r->pos >= x.own)
            return S_OK;
        if (!fits(s, &x, 4))
            return mal(s, "item runs past the end of its region");
        if (!have(r, 4)) {
            if (depth == 0 && avail_now(r) == 0 && !r->ioerr)
                return S_OK; /* the end of the data set, between elements */
            return eof(s);
        }
        uint8_t t[4];
        take(r, t, 4);
        uint16_t g = u16(t, big), e = u16(t + 2, big);
        int rc = count(s);
        if (rc)
            return rc;
        if (g == 0xFFFE && (e == 0xE00D || e == 0xE0DD || e == 0xE000)) {
            if (!fits(s, &x, 4))
                return mal(s, "delimiter runs past the end of its region");
            if (!have(r, 4))
                return eof(s);
            uint8_t l[4];
            take(r, l, 4);
            if (e == 0xE00D)
                return S_OK; /* end of item (at the top, dcmtk stops reading there) */
            return mal(s, e == 0xE000 ? "an item outside a sequence"
                                      : "a sequence delimiter outside a sequence");
        }
        if ((rc = scan_element(s, mode, x, depth, g, e)))
            return rc;
    }
}

static unsigned long effective_max_elements(const pm_dicom_limits *lim)
{
    return lim && lim->max_elements ? lim->max_elements : PM_DICOM_DEFAULT_MAX_ELEMENTS;
}

static unsigned effective_max_depth(const pm_dicom_limits *lim)
{
    unsigned d = lim && lim->max_depth ? lim->max_depth : PM_DICOM_DEFAULT_MAX_DEPTH;
    return d > PM_DICOM_MAX_DEPTH_LIMIT ? PM_DICOM_MAX_DEPTH_LIMIT : d;
}

static void scanner_init(scanner *s, reader *r, const pm_dicom_limits *lim)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    s->max_depth = effective_max_depth(lim);
    s->max_elements = effective_max_elements(lim);
}

/* The verdict of a finished scan: PM_OK, or PM_E_DICOM / PM_E_IO with a reason. */
static int verdict(scanner *s, int rc, pm_dicom_scan_result *res)
{
    int out = PM_OK;
    if (s->r->ioerr) {
        snprintf(s->res.reason, sizeof s->res.reason, "read error: %s", strerror(errno));
        out = PM_E_IO;
    } else if (rc == S_LIMIT || rc == S_MAL || rc == S_SHORT) {
        out = PM_E_DICOM;
    } else {
        s->res.refusal = PM_DICOM_SCAN_OK;
        s->res.reason[0] = 0;
    }
    if (res)
        *res = s->res;
    return out;
}

static int mode_of(pm_dicom_ts ts)
{
    switch (ts) {
    case PM_DICOM_TS_IMPLICIT_LE: return MODE_IMPLICIT_LE;
    case PM_DICOM_TS_EXPLICIT_BE: return MODE_EXPLICIT_BE;
    default: return MODE_EXPLICIT_LE;
    }
}

/* A data set whose encoding is not known: dcmtk guesses it from the first bytes, using
 * its dictionary. Every encoding it may pick is scanned; any that passes a limit
 * refuses the data set, and so does malformed structure in all of them. */
static int scan_unknown(reader *r0, uint64_t start, const pm_dicom_limits *lim,
                        pm_dicom_scan_result *res)
{
    static const int modes[] = {MODE_EXPLICIT_LE, MODE_IMPLICIT_LE, MODE_EXPLICIT_BE,
                                MODE_IMPLICIT_BE};
    pm_dicom_scan_result first_mal;
    int n_mal = 0;
    memset(&first_mal, 0, sizeof first_mal);
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        if (i > 0 && pm_dicom_reader_rewind(r0, start) != PM_OK) {
            if (res)
                snprintf(res->reason, sizeof res->reason, "read error: %s", strerror(errno));
            return PM_E_IO;
        }
        scanner s;
        scanner_init(&s, r0, lim);
        int rc = scan_dataset(&s, modes[i], own(NO_END, NO_END), 0);
        if (r0->ioerr || rc == S_LIMIT)
            return verdict(&s, rc, res);
        /* In a wrong guess, misplaced structure and lengths past the end are expected. */
        if ((rc == S_MAL || rc == S_SHORT) && n_mal++ == 0)
            first_mal = s.res;
        if (rc != S_MAL && rc != S_SHORT && res && i == 0)
            *res = s.res;
    }
    if (n_mal == 4) {
        if (res)
            *res = first_mal;
        return PM_E_DICOM;
    }
    return PM_OK;
}

int pm_dicom_scan_buffer(const void *data, size_t len, pm_dicom_ts ts, const pm_dicom_limits *lim,
                         pm_dicom_scan_result *res)
{
    reader r;
    pm_dicom_reader_memory(&r, data, len);
    if (res)
        memset(res, 0, sizeof *res);
    if (ts == PM_DICOM_TS_DEFLATED) {
        if (res)
            snprintf(res->reason, sizeof res->reason, "deflated data set in memory");
        return PM_E_INVAL;
    }
    if (ts == PM_DICOM_TS_UNKNOWN)
        return scan_unknown(&r, 0, lim, res);
    scanner s;
    scanner_init(&s, &r, lim);
    return verdict(&s, scan_dataset(&s, mode_of(ts), own(NO_END, NO_END), 0), res);
}

/* The meta group, as dcmtk reads it (dcmetinf.cc): explicit VR little endian, or
 * implicit in some old files; when it starts with its group length (0002,0000), every
 * element within that length whatever its group, else elements as long as their group
 * is 0002. Leaves the reader at the data set. */
static int scan_meta(scanner *s)
{
    reader *r = s->r;
    int mode = MODE_EXPLICIT_LE;
    if (have(r, 6) && !(r->buf[r->bpos + 4] >= 'A' && r->buf[r->bpos + 4] <= 'Z'))
        mode = MODE_IMPLICIT_LE;
    uint64_t start = r->pos, end = NO_END;
    if (mode == MODE_EXPLICIT_LE && have(r, 12) && !memcmp(r->buf + r->bpos, "\2\0\0\0UL\4\0", 8))
        end = start + 12 + u32(r->buf + r->bpos + 8, 0);
    else if (mode == MODE_IMPLICIT_LE && have(r, 12) &&
             !memcmp(r->buf + r->bpos, "\2\0\0\0\4\0\0\0", 8))
        end = start + 12 + u32(r->buf + r->bpos + 8, 0);
    for (;;) {
        if (end != NO_END ? r->pos >= end
                          : !have(r, 4) || (u16(r->buf + r->bpos, 0) != 0x0002 &&
                                            u16(r->buf + r->bpos, 1) != 0x0002))
            return S_OK;
        if (!have(r, 4))
            return eof(s);
        uint8_t t[4];
        take(r, t, 4);
        int rc = count(s);
        if (rc)
            return rc;
        if ((rc = scan_element(s, mode, own(NO_END, NO_END), 0, u16(t, 0), u16(t + 2, 0))))
            return rc;
    }
}

int pm_dicom_scan_file(const char *path, const pm_dicom_limits *lim, pm_dicom_scan_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    reader r;
    int orc = pm_dicom_reader_open_file(&r, path);
    if (orc == PM_E_IO && res)
        snprintf(res->reason, sizeof res->reason, "cannot open: %s", strerror(errno));
    if (orc)
        return orc;
    scanner s;
    scanner_init(&s, &r, lim);
    int rc = S_OK, out;
    /* Preamble and DICM marker, then the meta group; or a bare meta group; or a raw
     * data set. */
    if (have(&r, 132) && memcmp(r.buf + 128, "DICM", 4) == 0)
        pm_dicom_reader_skip(&r, 132);
    int has_meta = have(&r, 4) && u16(r.buf + r.bpos, 0) == 0x0002;
    if (has_meta)
        rc = scan_meta(&s);
    if (rc != S_OK) {
        out = verdict(&s, rc, res);
    } else {
        pm_dicom_ts ts = has_meta ? pm_dicom_ts_of_uid(s.ts_uid) : PM_DICOM_TS_UNKNOWN;
        if (ts == PM_DICOM_TS_UNKNOWN) {
            unsigned long meta_elements = s.res.elements;
            out = scan_unknown(&r, r.pos, lim, res);
            if (res)
                res->elements += meta_elements;
        } else {
            if (ts == PM_DICOM_TS_DEFLATED && pm_dicom_reader_inflate(&r) != PM_OK)
                rc = S_LIMIT;
            else
                rc = scan_dataset(&s, mode_of(ts), own(NO_END, NO_END), 0);
            out = verdict(&s, rc, res);
        }
    }
    pm_dicom_reader_close(&r);
    return out;
}

int pm_dicom_dataset_offset(const char *path, uint64_t *offset)
{
    *offset = 0;
    reader r;
    int rc = pm_dicom_reader_open_file(&r, path);
    if (rc)
        return rc;
    scanner s;
    pm_dicom_limits lim = {PM_DICOM_MAX_DEPTH_LIMIT, ~0UL};
    scanner_init(&s, &r, &lim);
    if (have(&r, 132) && memcmp(r.buf + 128, "DICM", 4) == 0)
        pm_dicom_reader_skip(&r, 132);
    int m = S_OK;
    if (have(&r, 4) && u16(r.buf + r.bpos, 0) == 0x0002)
        m = scan_meta(&s);
    rc = r.ioerr ? PM_E_IO : m == S_OK || m == S_EOF ? PM_OK : PM_E_DICOM;
    *offset = r.pos;
    pm_dicom_reader_close(&r);
    return rc;
}

/* ---- the process-wide limits ---- */

static _Atomic unsigned cur_depth;
static _Atomic unsigned long cur_elements;

void pm_dicom_set_limits(const pm_dicom_limits *lim)
{
    atomic_store(&cur_depth, lim ? lim->max_depth : 0);
    atomic_store(&cur_elements, lim ? lim->max_elements : 0);
}

void pm_dicom_get_limits(pm_dicom_limits *out)
{
    if (atomic_load(&cur_depth) == PM_DICOM_UNCHECKED) {
        out->max_depth = PM_DICOM_UNCHECKED;
        out->max_elements = 0;
        return;
    }
    out->max_depth = effective_max_depth(&(pm_dicom_limits){atomic_load(&cur_depth), 0});
    out->max_elements = effective_max_elements(&(pm_dicom_limits){0, atomic_load(&cur_elements)});
}
