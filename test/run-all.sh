#!/bin/sh
# Every test: installs what is missing, builds, runs `make check`, and prints
# "N passed, N failed" last. Exit status 0 only if nothing failed.
# SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/examples/install-deps.sh" || exit 1
if [ "${SANITIZE:-0}" = 1 ]; then
    export BUILD_DIR="${BUILD_DIR:-$top/build-san}"
    "$top/examples/build.sh" --enable-asan --enable-ubsan || exit 1
else
    export BUILD_DIR="${BUILD_DIR:-$top/build}"
    "$top/examples/build.sh" || exit 1
fi
cd "$BUILD_DIR"
make -j"$(nproc)" check >/dev/null 2>&1
status=$?
for log in $(find test -name '*.log' ! -name test-suite.log | sort); do
    result=$(sed -n 's/^:test-result: //p' "${log%.log}.trs" 2>/dev/null | head -1)
    printf '%-6s %s\n' "${result:-?}" "${log%.log}"
    [ "$result" = FAIL ] || [ "$result" = ERROR ] && tail -25 "$log"
done
pass=$(sed -n 's/^# PASS: *//p' test-suite.log 2>/dev/null)
skip=$(sed -n 's/^# SKIP: *//p' test-suite.log 2>/dev/null)
fail=$(sed -n 's/^# FAIL: *//p' test-suite.log 2>/dev/null)
error=$(sed -n 's/^# ERROR: *//p' test-suite.log 2>/dev/null)
failed=$(( ${fail:-0} + ${error:-0} ))
[ -f test-suite.log ] || failed=1
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "${skip:-0} skipped"
echo "${pass:-0} passed, $failed failed"
[ "$failed" = 0 ]
