/* Unit test of proto/error: every code has its own description, and the retired
 * numbers (never returned by anything) have none, so that a code added to the enum
 * without a pm_strerror text, or two codes sharing one, fails here. */
#include "proto/error.h"
#include "test/check.h"

#include <string.h>

int main(void)
{
    static const int codes[] = {
        PM_E_NOMEM,    PM_E_IO,     PM_E_INVAL,      PM_E_PARSE,   PM_E_TOOBIG, PM_E_FORMAT,
        PM_E_SIG,      PM_E_CHAIN,  PM_E_GAP,        PM_E_FORK,    PM_E_MESH,   PM_E_REVOKED,
        PM_E_NOTFOUND, PM_E_EXISTS, PM_E_STORE,      PM_E_MAPFULL, PM_E_CONFIG, PM_E_NET,
        PM_E_TIMEOUT,  PM_E_KEY,    PM_E_DICOM,      PM_E_HASH,    PM_E_SEQ,    PM_E_TIME,
        PM_E_UNKNOWN,  PM_E_BUSY,   PM_ALREADY_HELD, PM_OK};
    const size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *t = pm_strerror(codes[i]);
        CHECK(t && *t && strcmp(t, "unknown error") != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(codes[i] != codes[j] && strcmp(t, pm_strerror(codes[j])) != 0);
    }
    /* Every number from -1 to the last code is either listed above or retired. */
    int listed = 0;
    for (int c = -1; c >= PM_E_BUSY; c--) {
        int in = 0;
        for (size_t i = 0; i < n; i++)
            in |= codes[i] == c;
        listed += in;
        if (!in)
            CHECK(strcmp(pm_strerror(c), "unknown error") == 0);
    }
    CHECK_EQ_INT(listed, (int)n - 2); /* less PM_OK and PM_ALREADY_HELD */
    CHECK(strcmp(pm_strerror(-1000), "unknown error") == 0);
    printf("test_error: ok\n");
    return 0;
}
