#!/bin/bash
# Every C, C++ and header file of the project is as clang-format (.clang-format at the
# top of the tree) would write it: the CI check that keeps one style. A difference
# fails the test and names the file and line; fix it with `clang-format -i FILE`.
# The files are those git tracks (or, outside a git checkout, those under the source
# folders, generated protobuf-c code excluded). Skipped (77) without clang-format.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
    echo "SKIP: test_format: $CLANG_FORMAT is not installed (examples/install-deps.sh installs it)"
    exit 77
fi
cd "$top_srcdir" || exit 1
[ -f .clang-format ] || { echo "FAIL: test_format: no .clang-format in $top_srcdir"; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- '*.c' '*.h' '*.cc')
else
    mapfile -t files < <(find proto crypto store node test bench \
        \( -name '*.c' -o -name '*.h' -o -name '*.cc' \) ! -name '*.pb-c.*' | sort)
fi
[ "${#files[@]}" -gt 0 ] || { echo "FAIL: test_format: no source files found"; exit 1; }
echo "# $("$CLANG_FORMAT" --version | head -n 1); ${#files[@]} files"
if ! out=$("$CLANG_FORMAT" --dry-run --Werror "${files[@]}" 2>&1); then
    printf '%s\n' "$out" | grep -E '^[^ ].*: (error|warning):' | head -n 40
    echo "FAIL: test_format: files differ from clang-format's output (above);" \
        "run clang-format -i on them"
    exit 1
fi
exit 0
