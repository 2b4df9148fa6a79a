# test/lib.sh: shell library for pacsmesh integration tests (sourced, not run).
#
# Every test gets its own temporary directory ($T, removed on exit), its own ports
# (reserved so tests running in parallel never collide) and its own node directories
# ($T/n1, $T/n2, ...). Nodes are driven only through the CLI, as a user would.
#
#   . "$(dirname "$0")/lib.sh"
#   mesh_create 3            # init + genesis + admit + join, CLI only
#   node_start_all
#   wait_until 20 digests_equal
#
# Node i is described by NODE_DIR[i], NODE_ID[i], NODE_PORT[i], NODE_DICOM_PORT[i],
# NODE_EP[i] (its advertised endpoint), NODE_HTTP_PORT[i] (its web server), NODE_LOG[i] and NODE_PID[i] (while running).
# Before node_init, a test may set NODE_HOST[i] (address to listen on, default
# 127.0.0.1) and NODE_NS[i] (a network namespace to run the node in).
#
# Exit status follows automake: 0 pass, 1 fail, 77 skip.

set -u
set -o pipefail

# ---- where things are -------------------------------------------------------------

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_builddir:=$LIB_DIR/../build}"
: "${top_srcdir:=$LIB_DIR/..}"
PACSMESH=${PACSMESH:-$top_builddir/pacsmesh}
if [ -z "${PYTHON:-}" ]; then
    # The system interpreter, started without site packages: quick to start.
    if [ -x /usr/bin/python3 ]; then PYTHON="/usr/bin/python3 -S"; else PYTHON="python3 -S"; fi
fi
TEST_NAME=$(basename "$0" .sh)

declare -a NODE_DIR=() NODE_ID=() NODE_PORT=() NODE_DICOM_PORT=() NODE_EP=() NODE_LOG=()
declare -a NODE_PID=() NODE_HOST=() NODE_NS=() NODE_HTTP_PORT=()
declare -a STARTED_PIDS=()      # every process this test started, and only those
declare -a CLEANUP_HOOKS=()     # commands run (last first) when the test exits
declare -a RESERVED_PORTS=()
LIB_DUMPED=0
T=

# ---- messages and outcomes ---------------------------------------------------------

now_ms() { date +%s%3N; }
log() { printf '# %s %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }

fail()
{
    printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
    dump_state >&2
    exit 1
}

skip()
{
    printf 'SKIP: %s: %s\n' "$TEST_NAME" "$*"
    exit 77
}

# Prints what every node looks like and the tail of its log (once per test).
dump_state()
{
    [ "$LIB_DUMPED" = 1 ] && return 0
    LIB_DUMPED=1
    local i
    for i in "${!NODE_DIR[@]}"; do
        local st="stopped"
        if node_alive "$i"; then
            st="running (pid ${NODE_PID[i]})"
        elif [ -n "${NODE_PID[i]:-}" ]; then
            st="DIED on its own (pid ${NODE_PID[i]}: crashed or exited)"
        fi
        printf -- '--- node %s %s [%s] digest %s events %s\n' "$i" "${NODE_ID[i]:0:8}" "$st" \
            "$(pm "$i" digest 2>/dev/null || echo '?')" "$(events_count "$i" 2>/dev/null || echo '?')"
        if [ -s "${NODE_LOG[i]:-/nonexistent}" ]; then
            printf -- '--- last lines of %s\n' "${NODE_LOG[i]}"
            tail -n "${DUMP_LINES:-40}" "${NODE_LOG[i]}"
        fi
    done
}

# ---- the temporary directory and cleanup ------------------------------------------

lib_cleanup()
{
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
        dump_state >&2
    fi
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${STARTED_PIDS[@]}"; do
        pid_wait_gone "$pid" 5000 || kill -KILL "$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null
    done
    local k
    for ((k = ${#CLEANUP_HOOKS[@]} - 1; k >= 0; k--)); do
        eval "${CLEANUP_HOOKS[k]}"
    done
    local p
    for p in "${RESERVED_PORTS[@]}"; do
        rm -rf "$PORT_LOCK_DIR/$p"
    done
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "${PM_KEEP_TMP:-0}" = 1 ]; then
            echo "# kept $T" >&2
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

on_exit() { CLEANUP_HOOKS+=("$*"); }

trap lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -x "$PACSMESH" ] || fail "no pacsmesh binary at $PACSMESH (set top_builddir)"
command -v ${PYTHON%% *} >/dev/null || skip "python3 is needed by the test library"
T=$(mktemp -d "${TMPDIR:-/tmp}/pm-${TEST_NAME#test_}.XXXXXX") || fail "mktemp failed"

# ---- ports ---------------------------------------------------------------------------
#
# Ports come from 20000..31999 (below the kernel's ephemeral range, so outgoing
# connections never take them), starting at an offset derived from $$. A port is
# reserved by creating $PORT_LOCK_DIR/PORT (mkdir is atomic) holding our PID, and used
# only if it can also be bound right now; reservations of dead processes are reclaimed.

PORT_LOCK_DIR=${TMPDIR:-/tmp}/pacsmesh-test-ports
mkdir -p "$PORT_LOCK_DIR" 2>/dev/null
PORT_NEXT=$((20000 + ($$ * 53) % 12000))

port_bindable()
{
    $PYTHON - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# alloc_port: prints nothing; sets PORT to a free, reserved port.
alloc_port()
{
    local tries p owner
    for ((tries = 0; tries < 2000; tries++)); do
        p=$PORT_NEXT
        PORT_NEXT=$((PORT_NEXT + 1))
        [ "$PORT_NEXT" -ge 32000 ] && PORT_NEXT=20000
        if ! mkdir "$PORT_LOCK_DIR/$p" 2>/dev/null; then
            owner=$(cat "$PORT_LOCK_DIR/$p/pid" 2>/dev/null)
            if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
                rm -rf "$PORT_LOCK_DIR/$p" # a dead test's reservation
                mkdir "$PORT_LOCK_DIR/$p" 2>/dev/null || continue
            else
                continue
            fi
        fi
        echo $$ >"$PORT_LOCK_DIR/$p/pid"
        if port_bindable "$p"; then
            RESERVED_PORTS+=("$p")
            PORT=$p
            return 0
        fi
        rm -rf "$PORT_LOCK_DIR/$p"
    done
    fail "no free port found"
}

# ---- the CLI -------------------------------------------------------------------------

# pm I COMMAND ARGS...: runs pacsmesh COMMAND on node I.
pm()
{
    local i=$1 cmd=$2
    shift 2
    "$PACSMESH" "$cmd" --dir "${NODE_DIR[i]}" "$@"
}

# pmjson I COMMAND ARGS... -- PYEXPR: evaluates PYEXPR on the command's JSON output
# (bound to d) and prints the result.
pmjson()
{
    local i=$1
    shift
    local args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        args+=("$1")
        shift
    done
    shift
    local out
    out=$(pm "$i" "${args[@]}" --json) || return 1
    printf '%s' "$out" | $PYTHON -c 'import json,sys
d = json.load(sys.stdin)
r = eval(sys.argv[1])
print(str(r).lower() if isinstance(r, bool) else r)' "$1"
}

events_count() { pmjson "$1" status -- 'd["events"]'; }
digest_of() { pm "$1" digest; }

# member_state I ID: the state of member ID in node I's view ("absent" if unknown).
member_state()
{
    pmjson "$1" members -- "next((m['state'] for m in d if m['id'] == '$2'), 'absent')"
}

# member_up I ID: "true" when node I sees member ID up.
member_up() { pmjson "$1" members -- "next((m['up'] for m in d if m['id'] == '$2'), False)"; }

# is_member I ID / is_not_member I ID: conditions for wait_until.
is_member() { [ "$(member_state "$1" "$2")" = member ]; }
is_not_member() { [ "$(member_state "$1" "$2")" != member ]; }
is_up() { [ "$(member_up "$1" "$2")" = true ]; }
is_down() { [ "$(member_up "$1" "$2")" = false ]; }

# members_ok I N: node I's view holds exactly N members, all `member` and `up`.
members_ok()
{
    [ "$(pmjson "$1" members -- \
        "len(d) == $2 and all(m['state'] == 'member' and m['up'] for m in d)")" = true ]
}

# Conditions for wait_until / holds_for (which take a command, so a condition must be
# a function evaluated at each poll, never "$(...)" evaluated once at the call).
state_is() { [ "$(member_state "$1" "$2")" = "$3" ]; }   # I ID STATE
digest_is() { [ "$(digest_of "$1")" = "$2" ]; }           # I DIGEST
events_are() { [ "$(events_count "$1")" = "$2" ]; }       # I COUNT
log_grew() { [ "$(log_count "$1" "$2")" -gt "$3" ]; }    # I PATTERN COUNT

# member_count I STATE: how many members of node I's view are in STATE.
member_count() { pmjson "$1" members -- "sum(1 for m in d if m['state'] == '$2')"; }

# random_id: the id of a fresh node that will never run (an id must be a valid
# Ed25519 key, so it is made by `pacsmesh init` in a throwaway directory).
random_id()
{
    local d
    d=$(mktemp -d "$T/ghost.XXXXXX") || return 1
    "$PACSMESH" init --dir "$d/n" --name ghost --listen tcp://127.0.0.1:9 >/dev/null &&
        "$PACSMESH" id --dir "$d/n"
}

# ---- nodes ---------------------------------------------------------------------------

# The calling AE titles the tests' DICOM clients use, allowed everything on every node
# node_init creates (a test may set TEST_ALLOWED_AES before, or node_set_conf after).
TEST_ALLOWED_AES=${TEST_ALLOWED_AES:-"ECHO ECHO_LOOP PACS_A PACS_B PACS_X VIEWER VIEWER_B METRICS_T RAW_SCU RAW_ECHO IDLE_SCU ORTHANC"}

# node_init I [NAME]: creates node I's directory with its own ports.
node_init()
{
    local i=$1 name=${2:-node$1}
    local host=${NODE_HOST[i]:-127.0.0.1}
    NODE_HOST[i]=$host
    NODE_DIR[i]=$T/n$i
    NODE_LOG[i]=$T/n$i.log
    alloc_port
    NODE_PORT[i]=$PORT
    alloc_port
    NODE_DICOM_PORT[i]=$PORT
    NODE_EP[i]=tcp://$host:${NODE_PORT[i]}
    local out
    out=$("$PACSMESH" init --dir "${NODE_DIR[i]}" --name "$name" --listen "${NODE_EP[i]}" \
        --dicom-port "${NODE_DICOM_PORT[i]}" 2>&1) || fail "init of node $i failed: $out"
    NODE_ID[i]=$(pm "$i" id) || fail "id of node $i failed"
    # Each node's web server on its own port (the default 8042 would collide).
    alloc_port
    NODE_HTTP_PORT[i]=$PORT
    printf '\n[http]\nlisten = 127.0.0.1:%s\n' "$PORT" >>"${NODE_DIR[i]}/node.conf"
    # The DICOM edge refuses every calling AE it does not list: list the tests' clients.
    node_set_conf "$i" dicom allowed_aes "$TEST_ALLOWED_AES"
    [ "${#NODE_ID[i]}" = 64 ] || fail "node $i: id '${NODE_ID[i]}' is not 64 hex digits"
}

# node_set_conf I SECTION KEY VALUE: sets a key in node I's node.conf (before `run`).
node_set_conf()
{
    $PYTHON - "${NODE_DIR[$1]}/node.conf" "$2" "$3" "$4" <<'EOF' || fail "cannot edit node.conf"
import sys
path, section, key, value = sys.argv[1:5]
lines = open(path).read().split("\n")
out, cur, done = [], None, False
for line in lines:
    s = line.strip()
    if s.startswith("[") and s.endswith("]"):
        if cur == section and not done:
            out.append(f"{key} = {value}")
            done = True
        cur = s[1:-1]
    elif cur == section and not s.startswith(("#", ";")) and "=" in s \
            and s.split("=", 1)[0].strip() == key:
        if not done:
            out.append(f"{key} = {value}")
            done = True
        continue
    out.append(line)
if not done:
    if cur != section:
        out.append(f"[{section}]")
    out.append(f"{key} = {value}")
open(path, "w").write("\n".join(out))
EOF
}

# admit_by J I: member J approves node I; prints the join token.
admit_by()
{
    local j=$1 i=$2 out
    out=$(pm "$j" admit "${NODE_ID[i]}" --name "node$i" --endpoint "${NODE_EP[i]}" 2>&1) ||
        fail "node $j could not admit node $i: $out"
    printf '%s\n' "$out" | tail -n 1
}

# join_with I TOKEN: node I joins with TOKEN.
join_with()
{
    local out
    out=$(pm "$1" join "$2" 2>&1) || fail "node $1 could not join: $out"
}

# mesh_create N [QUORUM]: nodes 1..N form a mesh with the CLI alone: init, genesis on
# node 1, admission of each other node and its join. With QUORUM 1 (the default) node 1
# approves everyone and no node is started. With QUORUM K > 1 the approvers (nodes
# 1..K) must be running members to approve, so they are started as they are admitted;
# the others are left stopped.
mesh_create()
{
    local n=$1 q=${2:-1} i j out
    for ((i = 1; i <= n; i++)); do
        [ -n "${NODE_ID[i]:-}" ] || node_init "$i"
    done
    out=$(pm 1 genesis --mesh "$TEST_NAME-$$" --quorum "$q" 2>&1) || fail "genesis failed: $out"
    MESH_ID=$(printf '%s\n' "$out" | tail -n 1)
    for ((i = 2; i <= n; i++)); do
        local tok="" approvers=$((i - 1 < q ? i - 1 : q))
        for ((j = 1; j <= approvers; j++)); do
            if [ "$q" -gt 1 ]; then
                node_start "$j"
                wait_until 20 is_member "$j" "${NODE_ID[j]}"
            fi
            tok=$(admit_by "$j" "$i")
        done
        join_with "$i" "$tok"
        if [ "$q" -gt 1 ] && [ "$i" -le "$q" ]; then
            node_start "$i"
        fi
    done
}

node_alive()
{
    local pid=${NODE_PID[$1]:-}
    [ -n "$pid" ] && pid_alive "$pid"
}

# pid_alive PID: true while PID runs (a zombie counts as gone).
pid_alive()
{
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# pid_wait_gone PID MS: waits up to MS milliseconds for PID to end.
pid_wait_gone()
{
    local deadline=$(($(now_ms) + $2))
    while pid_alive "$1"; do
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.05
    done
    return 0
}

node_running() { [ "$(pmjson "$1" status -- 'd["running"]' 2>/dev/null)" = true ]; }

# node_start I: runs `pacsmesh run` for node I in the background (in NODE_NS[I] if
# set), logging to NODE_LOG[I], and waits until its admin socket answers.
node_start()
{
    local i=$1
    node_alive "$i" && return 0
    echo "=== start $(date +%H:%M:%S.%3N)" >>"${NODE_LOG[i]}"
    if [ -n "${NODE_NS[i]:-}" ]; then
        ip netns exec "${NODE_NS[i]}" "$PACSMESH" run --dir "${NODE_DIR[i]}" \
            </dev/null >>"${NODE_LOG[i]}" 2>&1 &
    else
        "$PACSMESH" run --dir "${NODE_DIR[i]}" </dev/null >>"${NODE_LOG[i]}" 2>&1 &
    fi
    NODE_PID[i]=$!
    STARTED_PIDS+=("$!")
    local deadline=$(($(now_ms) + 15000))
    until node_running "$i"; do
        node_alive "$i" || fail "node $i exited as it started"
        [ "$(now_ms)" -ge "$deadline" ] && fail "node $i did not answer within 15 s of starting"
        sleep 0.05
    done
}

# nodes_alive [I...]: fails the test if a node that was started (default: every one)
# is no longer running, e.g. it crashed.
nodes_alive()
{
    local nodes=("$@") i
    [ ${#nodes[@]} = 0 ] && nodes=("${!NODE_PID[@]}")
    for i in "${nodes[@]}"; do
        [ -z "${NODE_PID[i]:-}" ] || node_alive "$i" || fail "node $i died (crashed?)"
    done
}

node_start_all()
{
    local i
    for i in "${!NODE_DIR[@]}"; do node_start "$i"; done
}

# node_stop I: SIGTERM, then waits (10 s at most) for a clean exit with status 0.
node_stop()
{
    local i=$1 pid=${NODE_PID[$1]:-} rc=0
    [ -n "$pid" ] || fail "node_stop $i: the node was not started"
    kill -TERM "$pid" 2>/dev/null
    pid_wait_gone "$pid" 10000 || {
        kill -KILL "$pid" 2>/dev/null
        fail "node $i did not stop within 10 s of SIGTERM"
    }
    wait "$pid" || rc=$?
    NODE_PID[i]=
    [ "$rc" = 0 ] || fail "node $i exited with status $rc after SIGTERM"
}

# node_kill9 I: SIGKILL, and waits for the process to be gone.
node_kill9()
{
    local i=$1 pid=${NODE_PID[$1]:-}
    [ -n "$pid" ] || fail "node_kill9 $i: the node was not started"
    kill -KILL "$pid" 2>/dev/null
    pid_wait_gone "$pid" 10000 || fail "node $i survived SIGKILL"
    { wait "$pid"; } 2>/dev/null # quietly: bash would report "Killed"
    NODE_PID[i]=
}

# ---- waiting -------------------------------------------------------------------------

# wait_until SECONDS CMD...: polls CMD (quietly) until it succeeds; after SECONDS it
# fails the test, naming CMD and dumping the nodes' state and logs. Sets WAITED_MS.
wait_until()
{
    local secs=$1
    shift
    local start deadline
    start=$(now_ms)
    deadline=$((start + secs * 1000))
    while ! "$@" >/dev/null 2>&1; do
        if [ "$(now_ms)" -ge "$deadline" ]; then
            fail "timed out after ${secs} s waiting for: $*"
        fi
        sleep 0.1
    done
    WAITED_MS=$(($(now_ms) - start))
}

# holds_for SECONDS CMD...: CMD must stay true for SECONDS (for what must NOT happen:
# a gossip interval is 0.5 s, so a few seconds are many rounds).
holds_for()
{
    local secs=$1
    shift
    local deadline=$(($(now_ms) + secs * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 || fail "no longer true (within ${secs} s): $*"
        sleep 0.2
    done
}

# not CMD...: true when CMD fails (for wait_until / holds_for).
not() { ! "$@"; }

# ---- convergence ---------------------------------------------------------------------

# digests_equal [I...]: every node given (default: every running node) prints the same
# digest.
digests_equal()
{
    local nodes=("$@") i d first=""
    if [ ${#nodes[@]} = 0 ]; then
        for i in "${!NODE_DIR[@]}"; do node_alive "$i" && nodes+=("$i"); done
    fi
    [ ${#nodes[@]} -gt 0 ] || return 1
    for i in "${nodes[@]}"; do
        d=$(pm "$i" digest 2>/dev/null) || return 1
        [ -n "$d" ] || return 1
        if [ -z "$first" ]; then first=$d; elif [ "$d" != "$first" ]; then return 1; fi
    done
    return 0
}

# show_digests: one line per node, for the test's output.
show_digests()
{
    local i
    for i in "${!NODE_DIR[@]}"; do
        printf '#   node %s %s %s\n' "$i" "${NODE_ID[i]:0:8}" "$(pm "$i" digest 2>/dev/null)"
    done
}

# log_count I PATTERN: how many lines of node I's log match PATTERN (grep -E).
log_count() { grep -cE -- "$2" "${NODE_LOG[$1]}" 2>/dev/null || true; }

# tls_floor_holds HOST:PORT [OPENSSL-ARGS...]: the server refuses TLS 1.0 and 1.1 at the
# handshake, even from a client that offers them (its own floor lowered so that it does
# try), and accepts TLS 1.2 (BCP 195). OPENSSL-ARGS: s_client's -CAfile, -cert, -key.
tls_floor_holds()
{
    local at=$1 old
    shift
    for old in -tls1 -tls1_1; do
        openssl s_client -connect "$at" "$old" -cipher 'DEFAULT:@SECLEVEL=0' "$@" </dev/null \
            >"$T/tls-old.log" 2>&1
        grep -q "^New, (NONE)" "$T/tls-old.log" ||
            fail "$at did not refuse $old: $(grep -E 'New|Protocol|Cipher' "$T/tls-old.log" | head -n 3)"
    done
    openssl s_client -connect "$at" -tls1_2 "$@" </dev/null >"$T/tls-new.log" 2>&1
    grep -q "^New, TLS" "$T/tls-new.log" || fail "TLS 1.2 to $at failed: $(tail -n 3 "$T/tls-new.log")"
}

# ---- network namespaces ---------------------------------------------------------------
#
# netns_switch: creates a "switch" namespace with a bridge and no route out (skips the
# test when namespaces cannot be made). netns_host I: puts node I in its own namespace,
# linked to the bridge by a veth pair whose switch end is "p$I", at 10.77.0.I/24.
# Names carry the test's PID, so parallel runs never meet; all are deleted on exit.

NS_PREFIX=pm$$
NS_SWITCH=

netns_switch()
{
    command -v ip >/dev/null || skip "the ip command (iproute2) is not installed"
    [ "$(id -u)" = 0 ] || skip "network namespaces need root (run as root, as CI does)"
    NS_SWITCH=$NS_PREFIX-sw
    ip netns add "$NS_SWITCH" 2>/dev/null || skip "'ip netns add' is not permitted here"
    on_exit "ip netns del $NS_SWITCH 2>/dev/null"
    ip -n "$NS_SWITCH" link add br0 type bridge || fail "cannot create the bridge"
    ip -n "$NS_SWITCH" link set br0 up || fail "cannot bring the bridge up"
    ip -n "$NS_SWITCH" link set lo up
}

netns_host()
{
    local i=$1 ns=$NS_PREFIX-n$1
    ip netns add "$ns" || fail "cannot create namespace $ns"
    on_exit "ip netns del $ns 2>/dev/null"
    ip -n "$NS_SWITCH" link add "p$i" type veth peer name eth0 netns "$ns" ||
        fail "cannot create the veth pair of node $i"
    ip -n "$NS_SWITCH" link set "p$i" master br0 up || fail "cannot plug node $i in"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.77.0.$i/24" dev eth0 || fail "cannot address node $i"
    ip -n "$ns" link set eth0 up
    NODE_NS[i]=$ns
    NODE_HOST[i]=10.77.0.$i
}

# netns_cut I / netns_mend I: unplugs / replugs node I's cable at the switch.
netns_cut() { ip -n "$NS_SWITCH" link set "p$1" down || fail "cannot cut node $1"; }
netns_mend() { ip -n "$NS_SWITCH" link set "p$1" up || fail "cannot reconnect node $1"; }

# tcp_reachable FROM_NODE HOST PORT: can node FROM_NODE's namespace open a TCP
# connection to HOST:PORT (within 2 s)?
tcp_reachable()
{
    local ns=${NODE_NS[$1]:-}
    local code='import socket,sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)'
    if [ -n "$ns" ]; then
        ip netns exec "$ns" $PYTHON -c "$code" "$2" "$3" 2>/dev/null
    else
        $PYTHON -c "$code" "$2" "$3" 2>/dev/null
    fi
}
