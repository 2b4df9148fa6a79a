/* node/audit without a network: XML escaping (markup, quotes, control characters, bytes
 * that are not UTF-8), the audit message of each kind of record, the RFC 5424 header
 * and its octet count, the syslog URL, and the journal's durability rules (a record
 * read back as written, a torn last line skipped, a cursor reset after compaction). */
#include "node/audit/atna_message.h"
#include "node/audit/journal.h"
#include "node/audit/syslog_frame.h"
#include "node/audit/syslog_link.h"
#include "test/check.h"

#include <fcntl.h>

static void test_escape(void)
{
    char out[256];
    pm_atna_escape("a<b>&\"c'", out, sizeof out);
    CHECK(strcmp(out, "a&lt;b&gt;&amp;&quot;c&apos;") == 0);
    pm_atna_escape("x\x01y\tz", out, sizeof out);
    CHECK(strcmp(out, "x?y&#9;z") == 0);
    pm_atna_escape("M\xfcller \xc3\xa9", out, sizeof out); /* Latin-1 u-umlaut; UTF-8 e-acute */
    CHECK(strcmp(out, "M?ller \xc3\xa9") == 0);
    pm_atna_escape("\xed\xa0\x80!", out, sizeof out); /* a UTF-16 surrogate is not UTF-8 */
    CHECK(strcmp(out, "??"
                      "?!") == 0);
    CHECK(pm_atna_escape("&&&&", out, 5) == 20 && strlen(out) == 4);
}

static void test_messages(void)
{
    pm_atna_source src = {"St Elsewhere", "ab12", "PACSMESH", "node1.example"};
    pm_audit_record q = {PM_AUDIT_QUERY,
                         1700000000123ull,
                         0,
                         "VIEWER",
                         "10.0.0.7",
                         NULL,
                         NULL,
                         NULL,
                         "1.2.840.10008.5.1.4.1.2.2.1",
                         "PatientID=<1&2>\n"};
    char *xml = pm_atna_message(&q, &src);
    CHECK(xml);
    CHECK(strstr(xml, "<EventID csd-code=\"110112\" codeSystemName=\"DCM\""));
    CHECK(strstr(xml, "EventDateTime=\"2023-11-14T22:13:20.123Z\""));
    CHECK(strstr(xml,
                 "UserID=\"VIEWER\" UserIsRequestor=\"true\" NetworkAccessPointID=\"10.0.0.7\" "
                 "NetworkAccessPointTypeCode=\"2\""));
    CHECK(strstr(xml, "<ParticipantObjectQuery>UGF0aWVudElEPTwxJjI+Cg==</ParticipantObjectQuery>"));
    CHECK(!strstr(xml, "<1&2>"));
    free(xml);
    pm_audit_record s = {PM_AUDIT_SIGNIN, 1, 1, "eve\"", "::1", NULL, NULL, NULL, NULL, "no"};
    xml = pm_atna_message(&s, &src);
    CHECK(xml && strstr(xml, "EventOutcomeIndicator=\"4\"") && strstr(xml, "UserID=\"eve&quot;\""));
    CHECK(strstr(xml, "<EventTypeCode csd-code=\"110122\""));
    free(xml);
    pm_audit_record r = {PM_AUDIT_RETRIEVE, 1,     0,         "VIEWER", NULL,
                         "1.2.3",           "P<1", "DOE^J&R", NULL,     NULL};
    xml = pm_atna_message(&r, &src);
    CHECK(xml && strstr(xml, "ParticipantObjectID=\"1.2.3\" ParticipantObjectTypeCode=\"2\""));
    CHECK(strstr(xml, "ParticipantObjectID=\"P&lt;1\" ParticipantObjectTypeCode=\"1\""));
    CHECK(strstr(xml, "<ParticipantObjectName>DOE^J&amp;R</ParticipantObjectName>"));
    CHECK(strstr(xml, "csd-code=\"110152\"")); /* the viewer is the destination */
    free(xml);
}

static void test_frame(void)
{
    size_t len = 0;
    char *f = pm_syslog_frame("host name", "app", 42, 1700000000123ull, "<AuditMessage/>", &len);
    CHECK(f);
    char *sp = strchr(f, ' ');
    CHECK(sp && (size_t)strtoul(f, NULL, 10) == len - (size_t)(sp + 1 - f));
    CHECK(strncmp(
              sp + 1,
              "<85>1 2023-11-14T22:13:20.123Z host_name app 42 IHE+RFC-3881 - \xEF\xBB\xBF<Audit",
              strlen("<85>1 2023-11-14T22:13:20.123Z host_name app 42 IHE+RFC-3881 - ") + 9) == 0);
    free(f);
}

static void test_url(void)
{
    char host[64], why[256];
    int port = 0, tls = -1;
    CHECK(pm_syslog_parse_url("tls://audit.example:6514", host, sizeof host, &port, &tls, why,
                              sizeof why) == PM_OK);
    CHECK(strcmp(host, "audit.example") == 0 && port == 6514 && tls == 1);
    CHECK(pm_syslog_parse_url("tcp://[::1]:514", host, sizeof host, &port, &tls, why, sizeof why) ==
          PM_OK);
    CHECK(strcmp(host, "::1") == 0 && port == 514 && tls == 0);
    const char *bad[] = {"udp://h:514",   "tcp://h",    "tcp://:514",     "tcp://h:0",
                         "tcp://h:70000", "tcp://h:5x", "tls://[::1]514", "h:514"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(pm_syslog_parse_url(bad[i], host, sizeof host, &port, &tls, why, sizeof why) ==
              PM_E_INVAL);
        CHECK(strstr(why, bad[i])); /* the error names what was wrong */
    }
}

static int collect(void *ctx, const pm_audit_record *r, uint64_t next)
{
    char *seen = ctx;
    strcat(seen, r->user ? r->user : "-");
    strcat(seen, ",");
    (void)next;
    return 0;
}

static int save_zero(void *ctx, uint64_t off)
{
    *(uint64_t *)ctx = off + 1000;
    return PM_OK;
}

static void test_journal(void)
{
    char *dir = check_tmpdir("atna_message");
    pm_audit_journal *j = NULL;
    CHECK_RC(pm_audit_journal_open(dir, &j));
    pm_audit_record a = {.kind = PM_AUDIT_SIGNIN, .user = "ann"};
    pm_audit_record b = {.kind = PM_AUDIT_QUERY, .user = "B\xff", .detail = "PatientID=1"};
    CHECK_RC(pm_audit_journal_append(j, &a));
    CHECK_RC(pm_audit_journal_append(j, &b));
    char path[4096];
    snprintf(path, sizeof path, "%s/atna-journal", dir);
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, "{\"kind\":\"query\",\"us", 19) == 19); /* torn by a crash */
    close(fd);
    char seen[256] = "";
    CHECK_RC(pm_audit_journal_read(j, 0, 10, collect, seen));
    CHECK(strcmp(seen, "ann,B?,") == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    uint64_t cursor = 0;
    CHECK(pm_audit_journal_compact(j, pm_audit_journal_size(j), save_zero, &cursor) == 0);
    pm_audit_journal_destroy(&j);
    CHECK(j == NULL);
    pm_audit_journal_destroy(&j); /* safe twice */
    check_tmpdir_remove(&dir);
}

int main(void)
{
    test_escape();
    test_messages();
    test_frame();
    test_url();
    test_journal();
    puts("test_atna_message: ok");
    return 0;
}
