/* HL7 v2.5 ORU^R01 and its acknowledgement (node/ris/hl7.h). */
#include "node/ris/hl7.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t pm_hl7_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s; s++) {
        const char *esc = NULL;
        char plain[2] = {*s, 0};
        switch (*s) {
        case '|': esc = "\\F\\"; break;
        case '^': esc = "\\S\\"; break;
        case '~': esc = "\\R\\"; break;
        case '\\': esc = "\\E\\"; break;
        case '&': esc = "\\T\\"; break;
        default:
            if ((unsigned char)*s < 0x20 || *s == 0x7f)
                plain[0] = ' ';
            esc = plain;
        }
        size_t n = strlen(esc);
        if (o + n + 1 > outlen)
            return (size_t)-1;
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
    return o;
}

/* A growing string: the message being built. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap ? 2 * t->cap : 1024) + n;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_raw(text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* One field value, escaped. */
static void put_field(text *t, const char *s)
{
    size_t cap = 6 * strlen(s) + 1;
    char *buf = malloc(cap);
    if (!buf) {
        t->failed = 1;
        return;
    }
    pm_hl7_escape(s, buf, cap);
    put_raw(t, buf);
    free(buf);
}

/* A DICOM person name ("Family^Given^Middle^Prefix^Suffix", first group only) as an
 * HL7 XPN: the same component order, each component escaped. */
static void put_person_name(text *t, const char *pn)
{
    const char *end = strchr(pn, '=');
    size_t len = end ? (size_t)(end - pn) : strlen(pn);
    char *copy = strndup(pn, len);
    if (!copy) {
        t->failed = 1;
        return;
    }
    /* Components may be empty ("^Given"): split at every '^', keeping them. */
    for (char *c = copy;;) {
        char *caret = strchr(c, '^');
        if (caret)
            *caret = '\0';
        put_field(t, c);
        if (!caret)
            break;
        put_raw(t, "^");
        c = caret + 1;
    }
    free(copy);
}

static void hl7_time(uint64_t ms, char out[15])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

/* OBX lines: one per line of each text, numbered from 1. */
static void put_observations(text *t, const pm_hl7_report *r)
{
    const char *status = r->correction ? "C" : "F";
    int n = 0;
    for (size_t i = 0; i < r->n_texts; i++) {
        const char *line = r->texts[i];
        while (*line) {
            const char *nl = strpbrk(line, "\r\n");
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            char *one = strndup(line, len), num[16];
            if (!one) {
                t->failed = 1;
                return;
            }
            snprintf(num, sizeof num, "%d", ++n);
            put_raw(t, "OBX|");
            put_raw(t, num);
            put_raw(t, "|TX|REPORT^Report text||");
            put_field(t, one);
            put_raw(t, "||||||");
            put_raw(t, status);
            put_raw(t, "\r");
            free(one);
            line += len;
            if (*line == '\r' && line[1] == '\n')
                line++;
            if (*line)
                line++;
        }
    }
}

char *pm_hl7_oru(const pm_hl7_report *r)
{
    text t = {0};
    char when[15];
    hl7_time(r->time_ms, when);
    put_raw(&t, "MSH|^~\\&|PACSMESH|");
    put_field(&t, r->sending_facility);
    put_raw(&t, "|");
    put_field(&t, r->receiving_application);
    put_raw(&t, "||");
    put_raw(&t, when);
    put_raw(&t, "||ORU^R01^ORU_R01|");
    put_field(&t, r->control_id);
    put_raw(&t, "|P|2.5\rPID|1||");
    put_field(&t, r->patient_id);
    put_raw(&t, "||");
    put_person_name(&t, r->patient_name);
    put_raw(&t, "||");
    put_field(&t, r->birth_date);
    put_raw(&t, "|");
    put_field(&t, r->sex);
    put_raw(&t, "\rOBR|1|");
    put_field(&t, r->accession); /* OBR-2 placer order number */
    put_raw(&t, "|");
    put_field(&t, r->study_uid); /* OBR-3 filler order number */
    put_raw(&t, "|");
    put_field(&t, r->description); /* OBR-4 universal service identifier */
    put_raw(&t, "|||");
    put_field(&t, r->study_date); /* OBR-7 observation date */
    /* OBR-8 .. OBR-21 empty; OBR-22 results time; OBR-25 status; OBR-32 interpreter. */
    put_raw(&t, "|||||||||||||||");
    put_raw(&t, when);
    put_raw(&t, "|||");
    put_raw(&t, r->correction ? "C" : "F");
    put_raw(&t, "|||||||");
    put_field(&t, r->reporter);
    put_raw(&t, "\r");
    put_observations(&t, r);
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

/* Field n (0 = the segment name) of the segment starting at seg, into out. */
static void field_of(const char *seg, const char *end, int n, char *out, size_t outlen)
{
    const char *p = seg;
    for (int i = 0; i < n && p < end; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        p = bar ? bar + 1 : end;
    }
    const char *bar = memchr(p, '|', (size_t)(end - p));
    size_t len = (size_t)((bar ? bar : end) - p);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

int pm_hl7_ack_accepted(const char *msg, size_t len, const char *control_id, char *why,
                        size_t whylen)
{
    const char *end = msg + len;
    if (len < 4 || memcmp(msg, "MSH|", 4) != 0) {
        snprintf(why, whylen, "the answer is not an HL7 message");
        return -1;
    }
    for (const char *seg = msg; seg < end;) {
        const char *cr = memchr(seg, '\r', (size_t)(end - seg));
        const char *seg_end = cr ? cr : end;
        if (seg_end - seg >= 4 && memcmp(seg, "MSA|", 4) == 0) {
            char code[8], id[64], text[160];
            field_of(seg, seg_end, 1, code, sizeof code);
            field_of(seg, seg_end, 2, id, sizeof id);
            field_of(seg, seg_end, 3, text, sizeof text);
            if (strcmp(id, control_id) != 0) {
                snprintf(why, whylen, "the acknowledgement is for message %s, not %s", id,
                         control_id);
                return 0;
            }
            if (strcmp(code, "AA") == 0 || strcmp(code, "CA") == 0)
                return 1;
            snprintf(why, whylen, "the RIS answered %s%s%s", code, *text ? ": " : "", text);
            return 0;
        }
        seg = cr ? cr + 1 : end;
    }
    snprintf(why, whylen, "the answer has no MSA segment");
    return -1;
}
