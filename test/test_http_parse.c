/* Unit test of the web server's multipart parsing (node/http/parse.c), which STOW-RS
 * uses: the boundary of a Content-Type (quoted or not, its length limit, no control
 * characters) and the split of a body into parts (offsets of each part's data, headers
 * and preamble skipped, a delimiter inside data, and each way a body is refused, with
 * its reason). The other parsers there are covered through test/test_http.sh and
 * test/fuzz_http. */
#include "node/http/parse.h"
#include "test/check.h"

#include <stdio.h>
#include <string.h>

static void test_boundary(void)
{
    char b[PM_HTTP_BOUNDARY_MAX + 1], ct[200];
    pm_http_multipart_boundary("multipart/related; type=\"application/dicom\"; boundary=pmb0", b,
                               sizeof b);
    CHECK(strcmp(b, "pmb0") == 0);
    pm_http_multipart_boundary("multipart/related; BOUNDARY=\"a b;c\"; type=x", b, sizeof b);
    CHECK(strcmp(b, "a b;c") == 0);
    pm_http_multipart_boundary("multipart/related; boundary=x\ty", b, sizeof b);
    CHECK(strcmp(b, "x") == 0);
    pm_http_multipart_boundary("multipart/related; type=\"application/dicom\"", b, sizeof b);
    CHECK(*b == 0);
    pm_http_multipart_boundary(NULL, b, sizeof b);
    CHECK(*b == 0);
    pm_http_multipart_boundary("multipart/related; boundary=\"\"", b, sizeof b);
    CHECK(*b == 0);
    pm_http_multipart_boundary("multipart/related; boundary=ab\r\ncd", b, sizeof b);
    CHECK(*b == 0);
    /* 70 characters is the most (RFC 2046); 71 is none, not a truncated one */
    snprintf(ct, sizeof ct, "multipart/related; boundary=%070d", 7);
    pm_http_multipart_boundary(ct, b, sizeof b);
    CHECK(strlen(b) == 70);
    snprintf(ct, sizeof ct, "multipart/related; boundary=%071d", 7);
    pm_http_multipart_boundary(ct, b, sizeof b);
    CHECK(*b == 0);
    pm_http_multipart_boundary("multipart/related; boundary=abcdef", b, 6);
    CHECK(*b == 0);
}

/* Splits the NUL-terminated body (the NUL not included) by boundary "pmb". */
static int split(const char *body, pm_http_part *parts, size_t max, size_t *n, char *why)
{
    return pm_http_multipart_split(body, strlen(body), "pmb", "application/dicom", parts, max, n,
                                   why, 128);
}

static void test_split_valid(void)
{
    const char *body = "preamble\r\n--pmb\r\nContent-Type: application/dicom\r\n\r\nDICM one"
                       "\r\n--pmb\r\n\r\nx--pmb y\r\n-pmb\r\n--pmb\r\ncontent-type:  "
                       "APPLICATION/DICOM; transfer-syntax=1.2\r\nX: 1\r\n\r\n\r\n--pmb--\r\n";
    pm_http_part p[4];
    size_t n = 0;
    char why[128] = "";
    CHECK_RC(split(body, p, 4, &n, why));
    CHECK_EQ_INT(n, 3);
    CHECK(p[0].len == 8 && memcmp(body + p[0].start, "DICM one", 8) == 0);
    /* the boundary not after CRLF "--" is data */
    CHECK(p[1].len == 14 && memcmp(body + p[1].start, "x--pmb y\r\n-pmb", 14) == 0);
    CHECK_EQ_INT(p[2].len, 0);
    CHECK(memcmp(body + p[2].start, "\r\n--pmb--", 9) == 0);
}

static void test_split_refused(void)
{
    static const struct {
        const char *body, *why;
        int rc;
    } cases[] = {
        {"", "the body holds no part delimited by its boundary", PM_E_INVAL},
        {"--pmb--\r\n", "the body holds no parts", PM_E_INVAL},
        {"--pmb\nContent-Type: application/dicom\n\nDICM\n--pmb--\n",
         "a boundary line does not end with CRLF", PM_E_INVAL},
        {"--pmb\r\nContent-Type: application/dicom\r\n", "a part's headers do not end", PM_E_INVAL},
        {"--pmb\r\nContent-Type: text/plain\r\n\r\nhi\r\n--pmb--",
         "a part is not application/dicom", PM_E_INVAL},
        {"--pmb\r\n\r\nDICM cut short\r\n--pm", "the last part is not closed by the boundary",
         PM_E_INVAL},
        /* the closing delimiter ends with "--" */
        {"--pmb\r\n\r\nDICM\r\n--pmb", "a boundary line does not end with CRLF", PM_E_INVAL},
        /* the boundary followed by more characters is not taken as data */
        {"--pmb\r\n\r\na\r\n--pmbz\r\n--pmb--", "a boundary line does not end with CRLF",
         PM_E_INVAL},
        {"--pmb\r\n\r\na\r\n--pmb\r\n\r\nb\r\n--pmb\r\n\r\nc\r\n--pmb--", "too many parts",
         PM_E_TOOBIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pm_http_part p[2];
        size_t n = 0;
        char why[128] = "";
        CHECK_CODE(split(cases[i].body, p, 2, &n, why), cases[i].rc);
        if (strcmp(why, cases[i].why) != 0) {
            fprintf(stderr, "case %zu: why is \"%s\", expected \"%s\"\n", i, why, cases[i].why);
            exit(1);
        }
    }
    pm_http_part p[1];
    size_t n = 0;
    char why[128] = "";
    CHECK_CODE(
        pm_http_multipart_split("--\r\n\r\nx\r\n----", 13, "", NULL, p, 1, &n, why, sizeof why),
        PM_E_INVAL);
    CHECK(strcmp(why, "the boundary is empty or too long") == 0);
}

/* The body need not end in a NUL: a split that would read past len finds nothing. */
static void test_split_bounded(void)
{
    const char *body = "--pmb\r\n\r\nDICM\r\n--pmb--";
    pm_http_part p[1];
    size_t n = 0;
    char why[128] = "";
    CHECK_CODE(
        pm_http_multipart_split(body, strlen(body) - 2, "pmb", NULL, p, 1, &n, why, sizeof why),
        PM_E_INVAL);
    CHECK(strcmp(why, "a boundary line does not end with CRLF") == 0);
    CHECK_RC(pm_http_multipart_split(body, strlen(body), "pmb", NULL, p, 1, &n, why, sizeof why));
    CHECK(n == 1 && p[0].start == 9 && p[0].len == 4);
}

int main(void)
{
    test_boundary();
    test_split_valid();
    test_split_refused();
    test_split_bounded();
    printf("test_http_parse: ok\n");
    return 0;
}
