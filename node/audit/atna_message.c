/* The DICOM audit message of an audit record (node/audit/atna_message.h). */
#include "node/audit/atna_message.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *code, *text;
} coded;

/* What each kind of record is in DICOM's terms (PS3.15 A.5.3 and PS3.16's DCM codes).
 * role: the requesting user's RoleIDCode as the data moves: 'S' source, 'D' destination,
 * 0 none; this node then takes the other role. */
typedef struct {
    coded event;
    char action; /* EventActionCode: C create, R read, U update, E execute */
    coded type;  /* EventTypeCode, or none */
    char role;
} kind_terms;

static const kind_terms TERMS[PM_AUDIT_KIND_COUNT] = {
    [PM_AUDIT_QUERY] = {{"110112", "Query"}, 'E', {NULL, NULL}, 'S'},
    [PM_AUDIT_RETRIEVE] = {{"110104", "DICOM Instances Transferred"}, 'R', {NULL, NULL}, 'D'},
    [PM_AUDIT_STORE] = {{"110104", "DICOM Instances Transferred"}, 'C', {NULL, NULL}, 'S'},
    [PM_AUDIT_ACCESS] = {{"110103", "DICOM Instances Accessed"}, 'R', {NULL, NULL}, 0},
    [PM_AUDIT_SERVED] = {{"110104", "DICOM Instances Transferred"}, 'R', {NULL, NULL}, 'D'},
    [PM_AUDIT_SIGNIN] = {{"110114", "User Authentication"}, 'E', {"110122", "Login"}, 0},
    [PM_AUDIT_ALERT] = {{"110113", "Security Alert"}, 'E', {"110126", "Node Authentication"}, 0},
    [PM_AUDIT_RECORD] = {{"110110", "Patient Record"}, 'U', {NULL, NULL}, 0},
    [PM_AUDIT_MEMBERSHIP] = {{"110113", "Security Alert"},
                             'E',
                             {"110128", "Network Configuration"},
                             0},
};

/* Length of the UTF-8 sequence starting at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] < 0x80                    ? 1
               : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0; /* overlong, or past U+10FFFF */
    return n;
}

size_t pm_atna_escape(const char *s, char *out, size_t outlen)
{
    size_t need = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        char tmp[8];
        const char *piece = tmp;
        size_t n = utf8_len(p), plen;
        if (n == 1 && strchr("&<>\"'", *p)) {
            piece = *p == '&'   ? "&amp;"
                    : *p == '<' ? "&lt;"
                    : *p == '>' ? "&gt;"
                    : *p == '"' ? "&quot;"
                                : "&apos;";
            plen = strlen(piece);
        } else if (n == 1 && *p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
            tmp[0] = '?'; /* not allowed in XML 1.0 at all */
            plen = 1;
        } else if (n == 0) {
            tmp[0] = '?'; /* not UTF-8 */
            plen = 1;
            n = 1;
        } else {
            piece = (const char *)p;
            plen = n;
        }
        if (*p == '\t' || *p == '\n' || *p == '\r') { /* kept through attribute normalisation */
            snprintf(tmp, sizeof tmp, "&#%d;", *p);
            piece = tmp;
            plen = strlen(tmp);
        }
        if (out && need + plen < outlen)
            memcpy(out + need, piece, plen);
        need += plen;
        p += n;
    }
    if (out && outlen)
        out[need < outlen ? need : outlen - 1] = 0;
    return need;
}

static void put_escaped(FILE *f, const char *s)
{
    size_t n = pm_atna_escape(s, NULL, 0);
    char *buf = malloc(n + 1);
    if (buf) {
        pm_atna_escape(s, buf, n + 1);
        fputs(buf, f);
    }
    free(buf);
}

/* An attribute: ` name="value"`; nothing when value is NULL or empty. */
static void attr(FILE *f, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    fprintf(f, " %s=\"", name);
    put_escaped(f, value);
    fputc('"', f);
}

static void code_element(FILE *f, const char *element, const char *code, const char *system,
                         const char *text)
{
    fprintf(f, "<%s csd-code=\"%s\" codeSystemName=\"%s\"", element, code, system);
    attr(f, "originalText", text);
    fputs("/>", f);
}

static void base64_text(FILE *f, const char *s)
{
    size_t len = strlen(s), cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (b) {
        sodium_bin2base64(b, cap, (const unsigned char *)s, len, sodium_base64_VARIANT_ORIGINAL);
        fputs(b, f);
    }
    free(b);
}

static void event_identification(FILE *f, const pm_audit_record *r, const kind_terms *t)
{
    char when[40];
    time_t secs = (time_t)(r->time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03uZ", (unsigned)(r->time_ms % 1000));
    fprintf(f,
            "<EventIdentification EventActionCode=\"%c\" EventDateTime=\"%s\" "
            "EventOutcomeIndicator=\"%d\">",
            t->action, when, r->failed ? 4 : 0);
    code_element(f, "EventID", t->event.code, "DCM", t->event.text);
    if (t->type.code)
        code_element(f, "EventTypeCode", t->type.code, "DCM", t->type.text);
    if ((r->failed || r->kind == PM_AUDIT_ALERT) && r->detail && *r->detail) {
        fputs("<EventOutcomeDescription>", f);
        put_escaped(f, r->detail);
        fputs("</EventOutcomeDescription>", f);
    }
    fputs("</EventIdentification>", f);
}

static int is_ip_address(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return host && (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1);
}

static void participant(FILE *f, const char *user, const char *alt, int requestor, const char *host,
                        char role)
{
    fputs("<ActiveParticipant", f);
    attr(f, "UserID", user && *user ? user : "unknown");
    attr(f, "AlternativeUserID", alt);
    fprintf(f, " UserIsRequestor=\"%s\"", requestor ? "true" : "false");
    attr(f, "NetworkAccessPointID", host);
    if (host && *host)
        fprintf(f, " NetworkAccessPointTypeCode=\"%d\"", is_ip_address(host) ? 2 : 1);
    fputc('>', f);
    if (role == 'S')
        code_element(f, "RoleIDCode", "110153", "DCM", "Source Role ID");
    else if (role == 'D')
        code_element(f, "RoleIDCode", "110152", "DCM", "Destination Role ID");
    fputs("</ActiveParticipant>", f);
}

static void participants(FILE *f, const pm_audit_record *r, const kind_terms *t,
                         const pm_atna_source *src)
{
    char pid[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    char node_role = t->role == 'S' ? 'D' : t->role == 'D' ? 'S' : 0;
    participant(f, r->user, NULL, 1, r->host, t->role);
    participant(f, src->ae_title, pid, 0, src->host, node_role);
}

static void source_identification(FILE *f, const pm_atna_source *src)
{
    fputs("<AuditSourceIdentification", f);
    attr(f, "AuditEnterpriseSiteID", src->site_id);
    attr(f, "AuditSourceID", src->source_id && *src->source_id ? src->source_id : "pacsmesh");
    fputc('>', f);
    code_element(f, "AuditSourceTypeCode", "4", "DCM", "Application Server process");
    fputs("</AuditSourceIdentification>", f);
}

/* One ParticipantObjectIdentification; name, query and detail are optional. */
static void object(FILE *f, const char *id, int type, int role, const char *id_code,
                   const char *id_system, const char *id_text, const char *name, const char *query,
                   const char *detail_type, const char *detail)
{
    fputs("<ParticipantObjectIdentification", f);
    attr(f, "ParticipantObjectID", id);
    fprintf(f, " ParticipantObjectTypeCode=\"%d\" ParticipantObjectTypeCodeRole=\"%d\">", type,
            role);
    code_element(f, "ParticipantObjectIDTypeCode", id_code, id_system, id_text);
    if (name && *name) {
        fputs("<ParticipantObjectName>", f);
        put_escaped(f, name);
        fputs("</ParticipantObjectName>", f);
    } else if (query) {
        fputs("<ParticipantObjectQuery>", f);
        base64_text(f, query);
        fputs("</ParticipantObjectQuery>", f);
    }
    if (detail && *detail) {
        fputs("<ParticipantObjectDetail", f);
        attr(f, "type", detail_type);
        fputs(" value=\"", f);
        base64_text(f, detail);
        fputs("\"/>", f);
    }
    fputs("</ParticipantObjectIdentification>", f);
}

static void objects(FILE *f, const pm_audit_record *r)
{
    if (r->kind == PM_AUDIT_QUERY) /* 2 system object, role 3 report; the keys asked */
        object(f, r->object_id && *r->object_id ? r->object_id : "unknown", 2, 3, "110181", "DCM",
               "SOP Class UID", NULL, r->detail ? r->detail : "", NULL, NULL);
    if (r->kind == PM_AUDIT_MEMBERSHIP && r->object_id && *r->object_id)
        object(f, r->object_id, 2, 13, "110182", "DCM", "Node ID", NULL, NULL, "Description",
               r->detail);
    if (r->study_uid && *r->study_uid)
        object(f, r->study_uid, 2, 3, "110180", "DCM", "Study Instance UID", NULL, NULL,
               r->kind == PM_AUDIT_RECORD ? "Description" : NULL,
               r->kind == PM_AUDIT_RECORD ? r->detail : NULL);
    if (r->patient_id && *r->patient_id) /* 1 person, role 1 patient */
        object(f, r->patient_id, 1, 1, "2", "RFC-3881", "Patient Number", r->patient_name, NULL,
               NULL, NULL);
}

char *pm_atna_message(const pm_audit_record *r, const pm_atna_source *src)
{
    if (r->kind >= PM_AUDIT_KIND_COUNT)
        return NULL;
    const kind_terms *t = &TERMS[r->kind];
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fputs("<AuditMessage>", f);
    event_identification(f, r, t);
    participants(f, r, t, src);
    source_identification(f, src);
    objects(f, r);
    fputs("</AuditMessage>", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
