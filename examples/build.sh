#!/bin/sh
# Builds pacsmesh out of tree in BUILD_DIR (default ./build), configuring once.
# Extra arguments go to configure (e.g. --enable-asan --enable-ubsan).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" -q "$@"
make -j"$(nproc)" >/dev/null
echo "built $build/pacsmesh"
