/* MLLP (HL7's minimal lower layer protocol): one message framed by VT ... FS CR over
 * TCP, answered by one framed acknowledgement. The client side only. */
#ifndef PM_RIS_MLLP_H
#define PM_RIS_MLLP_H

#include <stddef.h>

/* Connects to host:port, sends msg, and reads the framed answer into ack (acklen
 * bytes; *ack_len receives its length, the framing removed), all within timeout_ms.
 * PM_E_NET (could not connect, or the peer closed), PM_E_TIMEOUT, PM_E_PARSE (the
 * answer is not framed), PM_E_TOOBIG (the answer does not fit). why says what. */
int pm_mllp_exchange(const char *hostport, const char *msg, int timeout_ms, char *ack,
                     size_t acklen, size_t *ack_len, char *why, size_t whylen);

#endif
