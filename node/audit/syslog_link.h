/* The connection to the trust's audit record repository: tcp://host:port, or
 * tls://host:port with OpenSSL (TLS 1.2 or later, the repository's certificate checked
 * against syslog_ca or the system's CAs and against the host name; a client
 * certificate when one is configured). Connects when needed and finds a connection the
 * repository closed before writing to it again. Not thread-safe: the sender's only. */
#ifndef PM_AUDIT_SYSLOG_LINK_H
#define PM_AUDIT_SYSLOG_LINK_H

#include <stddef.h>

typedef struct pm_syslog_link pm_syslog_link;

typedef struct {
    const char *url;  /* tcp://host:port or tls://host:port; IPv6 hosts in brackets */
    const char *ca;   /* PEM CA file, or NULL/"" for the system's */
    const char *cert; /* PEM client certificate chain, or NULL/"" for none */
    const char *key;  /* its PEM private key */
} pm_syslog_target;

/* Checks the target and prepares the TLS context; connects nothing yet. PM_E_CONFIG with
 * a reason in err (a bad URL, an unreadable CA, certificate or key). */
int pm_syslog_link_new(const pm_syslog_target *target, pm_syslog_link **out, char *err,
                       size_t errlen);
void pm_syslog_link_destroy(pm_syslog_link **self_p);

/* Writes len bytes, connecting first when there is no live connection, within
 * timeout_ms. PM_OK; PM_E_NET or PM_E_TIMEOUT with a reason in why (the connection is
 * then closed, and the next call connects again). */
int pm_syslog_link_send(pm_syslog_link *self, const void *buf, size_t len, int timeout_ms,
                        char *why, size_t wl);

/* Parses url into host (hostlen bytes) and port, and whether it is tls://. PM_OK or
 * PM_E_INVAL with a reason in why. */
int pm_syslog_parse_url(const char *url, char *host, size_t hostlen, int *port, int *tls, char *why,
                        size_t wl);

#endif
