/* The version of this build (configure.ac's AC_INIT), one definition for every place
 * that shows it: `pacsmesh version`, `status --json` and the pacsmesh_build_info
 * metric. The formats it reads and writes have their own numbers: PM_STORE_FORMAT
 * (store/store.h), PM_EVENT_FORMAT (store/event.h), PM_WIRE_VERSION
 * (node/mesh/transport.h). */
#ifndef PM_VERSION_H
#define PM_VERSION_H

/* "X.Y.Z"; static, never NULL. */
const char *pm_version(void);

#endif
