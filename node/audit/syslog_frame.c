/* RFC 5424 messages in RFC 6587 / RFC 5425 octet-counted frames (syslog_frame.h). */
#include "node/audit/syslog_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A header field: printable US-ASCII without spaces, 1..max characters ("-" when empty,
 * the NILVALUE). */
static void header_field(const char *in, size_t max, char *out)
{
    size_t n = 0;
    for (; in && in[n] && n < max; n++)
        out[n] = in[n] > 32 && in[n] < 127 ? in[n] : '_';
    if (n == 0)
        out[n++] = '-';
    out[n] = 0;
}

char *pm_syslog_frame(const char *hostname, const char *app_name, long procid, uint64_t time_ms,
                      const char *msg, size_t *len)
{
    char host[256], app[49], stamp[40];
    header_field(hostname, 255, host);
    header_field(app_name, 48, app);
    time_t secs = (time_t)(time_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03uZ", (unsigned)(time_ms % 1000));
    char head[512];
    int hl = snprintf(head, sizeof head, "<%d>1 %s %s %s %ld %s - \xEF\xBB\xBF", PM_SYSLOG_PRI,
                      stamp, host, app, procid, PM_SYSLOG_MSGID);
    if (hl < 0 || (size_t)hl >= sizeof head)
        return NULL;
    size_t body = (size_t)hl + strlen(msg);
    char prefix[24];
    int pl = snprintf(prefix, sizeof prefix, "%zu ", body);
    char *out = malloc((size_t)pl + body + 1);
    if (!out)
        return NULL;
    memcpy(out, prefix, (size_t)pl);
    memcpy(out + pl, head, (size_t)hl);
    memcpy(out + pl + hl, msg, strlen(msg) + 1);
    *len = (size_t)pl + body;
    return out;
}
