# test/http_lib.sh: helpers for the web server's tests (sourced after lib.sh and
# wl_lib.sh). Requests are made with curl; each call leaves the status in HSTATUS and
# the body in $T/body.
#
#   http I METHOD PATH [CURL ARGS...]   request to node I's web server
#   user_add I NAME ROLE [REPORTER]     adds a web user (password NAME-password)
#   login I NAME [JAR]                  signs NAME in; the session cookie goes to JAR
#   jq_body EXPR                        EXPR on the JSON body (bound to d)
#   expect_status CODE                  the last request must have answered CODE

command -v curl >/dev/null || skip "curl is not installed"
HSTATUS=

http()
{
    local i=$1 method=$2 path=$3
    shift 3
    HSTATUS=$(curl -sS --path-as-is -o "$T/body" -w '%{http_code}' -X "$method" \
        --max-time 120 "$@" "http://127.0.0.1:${NODE_HTTP_PORT[i]}$path") || HSTATUS=000
}

user_add()
{
    local i=$1 name=$2 role=$3 rep=${4:-} out
    if [ -n "$rep" ]; then
        out=$(printf '%s-password\n' "$name" | pm "$i" user add "$name" --role "$role" --reporter "$rep" 2>&1)
    else
        out=$(printf '%s-password\n' "$name" | pm "$i" user add "$name" --role "$role" 2>&1)
    fi || fail "user add $name failed: $out"
}

login()
{
    local i=$1 name=$2 jar=${3:-$T/jar-$2}
    http "$i" POST /api/login -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"user\":\"$name\",\"password\":\"$name-password\"}"
    [ "$HSTATUS" = 200 ] || fail "sign-in of $name answered $HSTATUS: $(cat "$T/body")"
}

jq_body()
{
    $PYTHON -c 'import json,sys
d = json.load(open(sys.argv[2]))
r = eval(sys.argv[1])
print(str(r).lower() if isinstance(r, bool) else r)' "$1" "$T/body"
}

expect_status()
{
    [ "$HSTATUS" = "$1" ] || fail "expected HTTP $1, got $HSTATUS: $(head -c 400 "$T/body")"
}

# same_json FILE1 FILE2: the two files hold equal JSON documents (last_seen, which
# moves between two calls, left out).
same_json()
{
    $PYTHON -c 'import json,sys
def norm(x):
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items() if k != "last_seen"}
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x
a, b = (norm(json.load(open(f))) for f in sys.argv[1:3])
sys.exit(0 if a == b else 1)' "$1" "$2"
}
