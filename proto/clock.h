/* Wall-clock time as the event log records it: milliseconds since the Unix epoch, UTC.
 * One definition for every layer. */
#ifndef PM_CLOCK_H
#define PM_CLOCK_H

#include <stdint.h>

uint64_t pm_now_ms(void);

#endif
