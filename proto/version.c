#include "proto/version.h"

/* configure defines PACKAGE_VERSION from AC_INIT; a build without it is a build
 * outside autotools, which should say so rather than print a made-up number. */
#ifndef PACKAGE_VERSION
#error "PACKAGE_VERSION is not defined: build with ./configure && make"
#endif

const char *pm_version(void)
{
    return PACKAGE_VERSION;
}
