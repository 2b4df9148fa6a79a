/* Unit test of proto/error: every code declared in proto/error.h (read from the
 * header itself, so a code added later is covered without editing this test) has its
 * own description, and the numbers not declared (retired, or never used) have none. */
#include "proto/error.h"
#include "test/check.h"

#include <regex.h>
#include <string.h>

#ifndef ERROR_H
#error "ERROR_H (the path of proto/error.h) is defined by test/proto.am"
#endif

int main(void)
{
    FILE *f = fopen(ERROR_H, "r");
    CHECK(f);
    regex_t re;
    CHECK(regcomp(&re, "^[[:space:]]*(PM_[A-Z_]+)[[:space:]]*=[[:space:]]*(-?[0-9]+)",
                  REG_EXTENDED) == 0);
    int declared[64] = {0}; /* declared[-code] for codes 0..-63 */
    int n = 0, lowest = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        regmatch_t m[3];
        if (regexec(&re, line, 3, m, 0) != 0)
            continue;
        int code = atoi(line + m[2].rm_so);
        const char *t = pm_strerror(code);
        if (strcmp(t, "unknown error") == 0) {
            fprintf(stderr, "test_error: %.*s (%d) has no pm_strerror text\n",
                    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so, code);
            return 1;
        }
        if (code <= 0) {
            CHECK(code > -64 && !declared[-code]);
            declared[-code] = 1;
            if (code < lowest)
                lowest = code;
        }
        n++;
    }
    fclose(f);
    regfree(&re);
    CHECK(n >= 20 && declared[0] && declared[-PM_E_NOMEM] && declared[-PM_E_BUSY]);
    /* Descriptions are distinct, and a number not declared has none. */
    for (int a = 0; a >= lowest - 1; a--) {
        if (!declared[-a]) {
            CHECK(strcmp(pm_strerror(a), "unknown error") == 0);
            continue;
        }
        for (int b = 0; b > a; b--)
            if (declared[-b])
                CHECK(strcmp(pm_strerror(a), pm_strerror(b)) != 0);
    }
    CHECK(strcmp(pm_strerror(PM_ALREADY_HELD), pm_strerror(PM_OK)) != 0);
    CHECK(strcmp(pm_strerror(-1000), "unknown error") == 0);
    printf("test_error: %d codes, each with its own description\n", n);
    return 0;
}
