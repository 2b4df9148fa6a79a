#!/bin/bash
# The command line as a user meets it: `pacsmesh --version` and `version` (the same
# first line, X.Y.Z, the formats), the version in `status --json`, `--dir` before the
# command meaning the same as after it, and each command's usage line being one text:
# what `help COMMAND`, `COMMAND --help` and a usage error print are the same line.
. "$(dirname "$0")/lib.sh"

# Versions.
v1=$("$PACSMESH" --version) || fail "--version failed"
v2=$("$PACSMESH" version) || fail "version failed"
[ "$v1" = "$v2" ] || fail "--version and version differ: '$v1' / '$v2'"
first=$(printf '%s\n' "$v1" | head -n 1)
[[ "$first" =~ ^pacsmesh\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "first line is '$first'"
printf '%s\n' "$v1" | grep -qx 'store format [0-9]*' || fail "no store format in: $v1"
printf '%s\n' "$v1" | grep -qx 'event format [0-9]*' || fail "no event format in: $v1"
version=${first#pacsmesh }
json=$("$PACSMESH" version --json) || fail "version --json failed"
[ "$(printf '%s' "$json" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["version"])')" \
    = "$version" ] || fail "version --json says otherwise: $json"
log "version $version"

# --dir before the command.
out=$("$PACSMESH" --dir "$T/n1" init --name first 2>&1) || fail "--dir before init: $out"
[ -f "$T/n1/node.conf" ] || fail "--dir before init did not create $T/n1/node.conf"
id_before=$("$PACSMESH" --dir "$T/n1" id) || fail "--dir DIR id failed"
id_after=$("$PACSMESH" id --dir "$T/n1") || fail "id --dir DIR failed"
id_eq=$("$PACSMESH" --dir="$T/n1" id) || fail "--dir=DIR id failed"
[ "$id_before" = "$id_after" ] && [ "$id_eq" = "$id_after" ] ||
    fail "ids differ: '$id_before' '$id_after' '$id_eq'"
[ "$(PACSMESH_DIR=/nonexistent "$PACSMESH" --dir "$T/n1" id)" = "$id_after" ] ||
    fail "--dir before the command does not override PACSMESH_DIR"
# Global --json reaches the command.
st=$("$PACSMESH" --dir "$T/n1" --json status) || fail "--dir DIR --json status failed"
[ "$(printf '%s' "$st" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["version"])')" \
    = "$version" ] || fail "status --json has no version $version: $st"

# Usage errors: exit 2, before or after the command.
rc=0
"$PACSMESH" --bogus id >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "unknown global option: exit $rc"
rc=0
"$PACSMESH" --dir "$T/n1" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "options without a command: exit $rc"

# One usage line per command, wherever it is shown.
for cmd in init genesis admit fetch claim report worklist audit; do
    from_help=$("$PACSMESH" help "$cmd" | head -n 1)
    from_flag=$("$PACSMESH" "$cmd" --help | head -n 1)
    from_error=$("$PACSMESH" "$cmd" --no-such-option 2>&1 >/dev/null | grep '^usage:')
    [ "$from_help" = "$from_flag" ] && [ "$from_flag" = "$from_error" ] ||
        fail "$cmd: usage differs: '$from_help' / '$from_flag' / '$from_error'"
    [[ "$from_help" == "usage: pacsmesh $cmd"* ]] || fail "$cmd: usage is '$from_help'"
done
"$PACSMESH" help | grep -q '^  version ' || fail "help does not list version"
[ "$("$PACSMESH" --dir "$T/n1" --help init | head -n 1)" = "$("$PACSMESH" help init | head -n 1)" ] ||
    fail "--dir DIR --help init differs from help init"
"$PACSMESH" --dir "$T/n1" help >/dev/null || fail "--dir DIR help failed"
rc=0
"$PACSMESH" help no-such-command >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "help of an unknown command: exit $rc"
exit 0
