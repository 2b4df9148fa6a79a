#!/bin/bash
# A bad node.conf stops start-up: `pacsmesh run` (and `status`) exit 1 with one line
# naming the file, the line and the key, and nothing is started: the process is gone,
# run.lock is free, no admin socket, the peer and DICOM ports are still free.
# One case per kind of error: unknown key, unknown section, bad number, bad duration,
# bad size, bad endpoint, bad AE title, bad port, bad address, bad log level, bad rule,
# bad destination, a report destination that is none, bad priority, a key set twice, a metrics address not on loopback.
. "$(dirname "$0")/lib.sh"

command -v flock >/dev/null || skip "flock (util-linux) is needed to check run.lock"

node_init 1 config-errors
CONF=${NODE_DIR[1]}/node.conf
cp "$CONF" "$T/node.conf.orig" || fail "cannot copy node.conf"

nothing_started()
{
    local what=$1
    flock -n "${NODE_DIR[1]}/run.lock" true 2>/dev/null || [ ! -e "${NODE_DIR[1]}/run.lock" ] ||
        fail "$what: run.lock is still held after the refused start (a process kept it)"
    [ ! -S "${NODE_DIR[1]}/admin.sock" ] || fail "$what: an admin socket was left behind"
    port_bindable "${NODE_PORT[1]}" || fail "$what: the peer port ${NODE_PORT[1]} is in use"
    port_bindable "${NODE_DICOM_PORT[1]}" ||
        fail "$what: the DICOM port ${NODE_DICOM_PORT[1]} is in use"
}

# edit SECTION KEY VALUE: a fresh node.conf where SECTION's KEY is VALUE: the key's
# line replaced where the file sets it, else the line appended under a new [SECTION]
# header. Sets LINE to the offending line's number. VALUE "" appends "[SECTION]" alone.
edit()
{
    local section=$1 key=$2 value=$3
    cp "$T/node.conf.orig" "$CONF"
    if [ -z "$key" ]; then
        printf '[%s]\n' "$section" >>"$CONF"
        LINE=$(wc -l <"$CONF")
        return
    fi
    LINE=$($PYTHON - "$CONF" "$section" "$key" "$value" <<'PY'
import sys
path, section, key, value = sys.argv[1:5]
lines = open(path).read().split("\n")
cur = None
for i, line in enumerate(lines):
    s = line.strip()
    if s.startswith("[") and s.endswith("]"):
        cur = s[1:-1]
    elif cur == section and "=" in s and not s.startswith(("#", ";")) \
            and s.split("=", 1)[0].strip() == key:
        lines[i] = f"{key} = {value}"
        open(path, "w").write("\n".join(lines))
        print(i + 1)
        sys.exit(0)
if lines and lines[-1] == "":
    lines.pop()
lines += [f"[{section}]", f"{key} = {value}", ""]
open(path, "w").write("\n".join(lines))
print(len(lines) - 1)
PY
) || fail "cannot edit node.conf"
}

# expect_refused NAME WHERE: with node.conf as edit() left it, `run` and `status` must
# fail with exit 1 and one line naming "<conf>:<LINE>: WHERE", and start nothing.
expect_refused()
{
    local name=$1 where=$2 rc out cmd
    for cmd in run status; do
        rc=0
        out=$(timeout 20 "$PACSMESH" "$cmd" --dir "${NODE_DIR[1]}" 2>&1 >/dev/null) || rc=$?
        [ "$rc" != 124 ] || fail "$name: '$cmd' did not stop within 20 s (it started?)"
        [ "$rc" = 1 ] || fail "$name: '$cmd' exited $rc, expected 1 (stderr: $out)"
        [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] ||
            fail "$name: '$cmd' printed more than one line: $out"
        case $out in
        *"$CONF:$LINE: $where"*) ;;
        *) fail "$name: '$cmd' said '$out'; expected it to name $CONF:$LINE: $where" ;;
        esac
        nothing_started "$name ($cmd)"
    done
    log "refused: $name: ${out#*node.conf}"
}

# refused NAME SECTION KEY VALUE: the key's value is refused, naming [SECTION] KEY.
refused()
{
    edit "$2" "$3" "$4"
    expect_refused "$1" "[$2] $3:"
}

refused "unknown key" gossip speed 3
edit bogus "" ""
expect_refused "unknown section" "[bogus]:"
refused "bad number" gossip interval_ms fast
refused "number out of range" gossip fanout 1000
refused "bad duration" worklist lease forever
refused "duration out of range" worklist due_urgent 0
refused "bad size" cache max_bytes lots
refused "bad endpoint" node listen udp://127.0.0.1:7400
refused "bad peer endpoint" mesh peers "tcp://*:7400"
refused "bad AE title" dicom ae_title THIS_AE_TITLE_IS_TOO_LONG
refused "bad port" dicom port 70000
refused "bad DICOM address" dicom bind not-an-address
refused "bad log level" node log_level loud
refused "bad rule" worklist rule modality=CT
refused "bad rule setting" worklist rule "modality=CT : priority=whenever"
refused "bad destination" dicom.destinations VIEWER nohost
refused "report destination not a destination" dicom report_destination NOWHERE
refused "bad AI rule" worklist ai_rule "code=SCT:1 : priority=soon by=ai:x"
refused "bad priority" worklist default_priority asap
refused "metrics not on loopback" metrics listen 0.0.0.0:9464
refused "metrics on another host" metrics listen 10.1.2.3:9464
cp "$T/node.conf.orig" "$CONF"
printf '[gossip]\nfanout = 3\nfanout = 4\n' >>"$CONF"
LINE=$(wc -l <"$CONF")
expect_refused "key set twice" "[gossip] fanout:"

# The same file without the error starts (so the refusals above were the errors'
# doing) and, with a loopback metrics address, still starts.
cp "$T/node.conf.orig" "$CONF"
alloc_port
printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$PORT" >>"$CONF"
node_start 1
node_stop 1
nothing_started "after a clean stop"
log "a valid node.conf starts and stops cleanly"
exit 0
