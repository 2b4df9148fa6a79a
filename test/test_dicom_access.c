/* Unit tests of the DICOM edge's access rules (node/dicom/access.c) and of the one rule
 * for C-GET/C-MOVE identifiers (pm_dicom_query_check_retrieve, node/dicom/query.c). */
#include "node/dicom/access.h"
#include "node/dicom/query.h"
#include "proto/error.h"

#include <string.h>

#include "test/check.h"

static void test_parse(void)
{
    pm_access_entry e;
    char why[320];
    CHECK(pm_access_parse("VIEWER", &e, why, sizeof why) == PM_OK);
    CHECK(!strcmp(e.ae, "VIEWER") && !e.host[0] && e.rights == PM_ACCESS_ALL);
    CHECK(pm_access_parse("VIEWER@10.0.0.5:find+get", &e, why, sizeof why) == PM_OK);
    CHECK(!strcmp(e.ae, "VIEWER") && !strcmp(e.host, "10.0.0.5") && e.n_addrs == 1);
    CHECK(!strcmp(e.addrs[0], "10.0.0.5") && e.rights == (PM_ACCESS_FIND | PM_ACCESS_GET));
    CHECK(pm_access_parse("CT1:store", &e, why, sizeof why) == PM_OK);
    CHECK(e.rights == PM_ACCESS_STORE && !e.host[0]);
    CHECK(pm_access_parse("WS@localhost:all", &e, why, sizeof why) == PM_OK);
    CHECK(e.n_addrs >= 1 && !strcmp(e.addrs[0], "127.0.0.1") && e.rights == PM_ACCESS_ALL);

    /* Errors name what is wrong. */
    CHECK(pm_access_parse("VIEWER:read", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(strstr(why, "unknown right 'read'") != NULL);
    CHECK(pm_access_parse("VIEWER:find+", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(pm_access_parse("VIEWER:", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(pm_access_parse("VIEWER@", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(strstr(why, "no host after '@'") != NULL);
    CHECK(pm_access_parse("VIEWER@no.such.host.invalid", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(strstr(why, "does not resolve") != NULL);
    CHECK(pm_access_parse("VIEWER@a/b", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(pm_access_parse("BAD\\AE", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(strstr(why, "not an AE title") != NULL);
    CHECK(pm_access_parse("SEVENTEEN_CHARS_X", &e, why, sizeof why) == PM_E_CONFIG);
    CHECK(pm_access_parse("@10.0.0.5", &e, why, sizeof why) == PM_E_CONFIG);
}

static void test_check(void)
{
    pm_access_entry list[3];
    char why[320];
    CHECK(pm_access_parse("VIEWER@127.0.0.1:echo+find", &list[0], why, sizeof why) == PM_OK);
    CHECK(pm_access_parse("VIEWER@10.0.0.9:get", &list[1], why, sizeof why) == PM_OK);
    CHECK(pm_access_parse("PACS", &list[2], why, sizeof why) == PM_OK);
    unsigned r = 0;
    CHECK(pm_access_check(list, 3, 0, "VIEWER", "127.0.0.1", &r) == PM_ACCESS_ACCEPT);
    CHECK(r == (PM_ACCESS_ECHO | PM_ACCESS_FIND));
    CHECK(pm_access_check(list, 3, 0, "VIEWER  ", "10.0.0.9", &r) == PM_ACCESS_ACCEPT);
    CHECK(r == PM_ACCESS_GET);
    CHECK(pm_access_check(list, 3, 0, "VIEWER", "127.0.0.2", &r) == PM_ACCESS_WRONG_HOST);
    CHECK(r == 0);
    CHECK(pm_access_check(list, 3, 0, "PACS", "192.168.1.1", &r) == PM_ACCESS_ACCEPT);
    CHECK(r == PM_ACCESS_ALL);
    CHECK(pm_access_check(list, 3, 0, "INTRUDER", "127.0.0.1", &r) == PM_ACCESS_UNKNOWN_AE);
    CHECK(pm_access_check(list, 3, 0, "viewer", "127.0.0.1", &r) == PM_ACCESS_UNKNOWN_AE);
    /* store from any: echo and store only, for the unlisted and the wrong host alike */
    CHECK(pm_access_check(list, 3, 1, "INTRUDER", "127.0.0.1", &r) == PM_ACCESS_ACCEPT);
    CHECK(r == (PM_ACCESS_ECHO | PM_ACCESS_STORE));
    CHECK(pm_access_check(list, 3, 1, "VIEWER", "127.0.0.2", &r) == PM_ACCESS_ACCEPT);
    CHECK(r == (PM_ACCESS_ECHO | PM_ACCESS_STORE));
    /* an empty list refuses everyone, unless store from any */
    CHECK(pm_access_check(NULL, 0, 0, "PACS", "127.0.0.1", &r) == PM_ACCESS_EMPTY_LIST);
    CHECK(pm_access_check(NULL, 0, 1, "PACS", "127.0.0.1", &r) == PM_ACCESS_ACCEPT);
    CHECK(!(r & (PM_ACCESS_FIND | PM_ACCESS_GET | PM_ACCESS_MOVE)));
    CHECK(!strcmp(pm_access_right_name(PM_ACCESS_MOVE), "move"));
    CHECK(!strcmp(pm_dicom_refusal_name(PM_DICOM_REFUSED_HOST), "host"));
}

static int retrieve_ok(pm_dicom_level level, int patient_root, const char *pid, const char *study,
                       const char *series, const char *sop)
{
    pm_dicom_query q;
    memset(&q, 0, sizeof q);
    q.level = level;
    q.value[PM_DK_PATIENT_ID] = pid;
    q.value[PM_DK_STUDY_UID] = study;
    q.value[PM_DK_SERIES_UID] = series;
    q.value[PM_DK_SOP_UID] = sop;
    char why[200] = "";
    int rc = pm_dicom_query_check_retrieve(&q, patient_root, why, sizeof why);
    CHECK(rc == PM_OK || strstr(why, "unique key") != NULL || strstr(why, "Patient Root"));
    return rc == PM_OK;
}

static void test_retrieve_keys(void)
{
    const pm_dicom_level ST = PM_DICOM_LEVEL_STUDY, SE = PM_DICOM_LEVEL_SERIES,
                         IM = PM_DICOM_LEVEL_IMAGE, PA = PM_DICOM_LEVEL_PATIENT;
    CHECK(retrieve_ok(ST, 0, NULL, "1.2.3", NULL, NULL));
    CHECK(retrieve_ok(ST, 0, NULL, "1.2.3\\1.2.4", NULL, NULL));
    CHECK(retrieve_ok(ST, 0, NULL, "1.2.3 ", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "", NULL, NULL));   /* universal: every study */
    CHECK(!retrieve_ok(ST, 0, NULL, NULL, NULL, NULL)); /* missing */
    CHECK(!retrieve_ok(ST, 0, NULL, "*", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "1.2.*", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "1.2.?", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "1.2.3\\", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "\\1.2.3", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "1.2.3\\\\1.2.4", NULL, NULL));
    CHECK(!retrieve_ok(ST, 0, NULL, "1.2.3\\ \\1.2.4", NULL, NULL));
    /* levels above: one value each */
    CHECK(retrieve_ok(SE, 0, NULL, "1.2.3", "1.2.3.1\\1.2.3.2", NULL));
    CHECK(!retrieve_ok(SE, 0, NULL, "1.2.3\\1.2.4", "1.2.3.1", NULL));
    CHECK(!retrieve_ok(SE, 0, NULL, "", "1.2.3.1", NULL));
    CHECK(!retrieve_ok(SE, 0, NULL, "1.2.3", "", NULL));
    CHECK(retrieve_ok(IM, 0, NULL, "1.2.3", "1.2.3.1", "1.2.3.1.1"));
    CHECK(!retrieve_ok(IM, 0, NULL, "1.2.3", "1.2.3.1", "*"));
    /* Patient Root: PatientID on top */
    CHECK(retrieve_ok(PA, 1, "PID1", NULL, NULL, NULL));
    CHECK(!retrieve_ok(PA, 1, "PID*", NULL, NULL, NULL));
    CHECK(!retrieve_ok(PA, 1, "", NULL, NULL, NULL));
    CHECK(retrieve_ok(ST, 1, "PID1", "1.2.3", NULL, NULL));
    CHECK(!retrieve_ok(ST, 1, NULL, "1.2.3", NULL, NULL));
    CHECK(!retrieve_ok(PA, 0, "PID1", NULL, NULL, NULL)); /* PATIENT needs Patient Root */
}

int main(void)
{
    test_parse();
    test_check();
    test_retrieve_keys();
    printf("test_dicom_access: ok\n");
    return 0;
}
