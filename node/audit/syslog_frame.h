/* An RFC 5424 syslog message carrying an audit message, framed for a stream:
 *   LEN SP <85>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG
 * PRI 85 is facility 10 (security/authorization) with severity 5 (notice), as IHE ATNA
 * asks; MSGID is "IHE+RFC-3881"; there is no structured data; MSG is the UTF-8 XML
 * after a byte-order mark. LEN is the octet count of what follows the space (RFC 6587
 * 3.4.1 octet counting over TCP, and RFC 5425 over TLS). Header fields are cut to
 * their RFC 5424 lengths and anything but printable US-ASCII in them becomes '_'. */
#ifndef PM_AUDIT_SYSLOG_FRAME_H
#define PM_AUDIT_SYSLOG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PM_SYSLOG_PRI 85
#define PM_SYSLOG_MSGID "IHE+RFC-3881"

/* The framed message in a new buffer (the caller's to free), its length in *len; NULL
 * when out of memory. */
char *pm_syslog_frame(const char *hostname, const char *app_name, long procid, uint64_t time_ms,
                      const char *msg, size_t *len);

#endif
