/* Unit test of the HL7 v2.5 writer and acknowledgement reader (node/ris/hl7.h). */
#include "node/ris/hl7.h"
#include "test/check.h"

static void test_escape(void)
{
    char out[64];
    CHECK_EQ_INT(pm_hl7_escape("a|b^c~d\\e&f", out, sizeof out), 21);
    CHECK(strcmp(out, "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f") == 0);
    CHECK_EQ_INT(pm_hl7_escape("x\ry\tz", out, sizeof out), 5);
    CHECK(strcmp(out, "x y z") == 0); /* a CR would end the segment */
    char tiny[4];
    CHECK(pm_hl7_escape("||", tiny, sizeof tiny) == (size_t)-1);
}

static void test_oru(void)
{
    const char *texts[] = {"Line one|x\nLine two", "Addendum"};
    pm_hl7_report r = {"TRUST^A", "RIS",   "PM1", 86400000,   "P1",   "Doe^^Q", "19700101", "F",
                       "ACC1",    "1.2.3", "CT",  "20260101", "dr.b", 1,        texts,      2};
    char *m = pm_hl7_oru(&r);
    CHECK(m != NULL);
    CHECK(strncmp(m,
                  "MSH|^~\\&|PACSMESH|TRUST\\S\\A|RIS||19700102000000||ORU^R01^ORU_R01|PM1|P|2.5\r",
                  73) == 0);
    CHECK(strstr(m, "\rPID|1||P1||Doe^^Q||19700101|F\r") != NULL); /* empty components kept */
    CHECK(strstr(m, "\rOBR|1|ACC1|1.2.3|CT|||20260101|") != NULL);
    /* OBR-22 results time, OBR-25 status, OBR-32 interpreter, counted from OBR-7. */
    CHECK(strstr(m, "|20260101|||||||||||||||19700102000000|||C|||||||dr.b\r") != NULL);
    CHECK(strstr(m, "OBX|1|TX|REPORT^Report text||Line one\\F\\x||||||C\r") != NULL);
    CHECK(strstr(m, "OBX|2|TX|REPORT^Report text||Line two||||||C\r") != NULL);
    CHECK(strstr(m, "OBX|3|TX|REPORT^Report text||Addendum||||||C\r") != NULL);
    free(m);
}

static void test_ack(void)
{
    char why[128];
    static const char aa[] = "MSH|^~\\&|RIS|T|P|A|1||ACK|9|P|2.5\rMSA|AA|PM1\r";
    static const char ae[] = "MSH|^~\\&|RIS|T|P|A|1||ACK|9|P|2.5\rMSA|AE|PM1|no such order\r";
    static const char other[] = "MSH|^~\\&|RIS\rMSA|AA|PM2\r";
    CHECK_EQ_INT(pm_hl7_ack_accepted(aa, sizeof aa - 1, "PM1", why, sizeof why), 1);
    CHECK_EQ_INT(pm_hl7_ack_accepted(ae, sizeof ae - 1, "PM1", why, sizeof why), 0);
    CHECK(strstr(why, "AE: no such order") != NULL);
    CHECK_EQ_INT(pm_hl7_ack_accepted(other, sizeof other - 1, "PM1", why, sizeof why), 0);
    CHECK_EQ_INT(pm_hl7_ack_accepted("HTTP/1.1", 8, "PM1", why, sizeof why), -1);
    CHECK_EQ_INT(pm_hl7_ack_accepted("MSH|x", 5, "PM1", why, sizeof why), -1);
}

int main(void)
{
    test_escape();
    test_oru();
    test_ack();
    puts("test_hl7: ok");
    return 0;
}
