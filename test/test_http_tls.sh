#!/bin/bash
# [http] tls_cert and tls_key: the web server speaks HTTPS only, TLS 1.2 or later; the
# session cookie is Secure; a bad key pair stops start-up with a clear message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"
command -v openssl >/dev/null || skip "openssl is not installed"

mesh_create 1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null ||
    fail "openssl could not make a certificate"
node_set_conf 1 http tls_cert "$T/cert.pem"
node_set_conf 1 http tls_key "$T/key.pem"
node_start 1
user_add 1 admin1 admin
URL=https://127.0.0.1:${NODE_HTTP_PORT[1]}
code=$(curl -sS --cacert "$T/cert.pem" -o "$T/body" -w '%{http_code}' -u admin1:admin1-password "$URL/api/me") ||
    fail "HTTPS request failed"
[ "$code" = 200 ] || fail "HTTPS /api/me answered $code"
curl -sS --cacert "$T/cert.pem" -D "$T/h" -o /dev/null -H 'Content-Type: application/json' \
    -d '{"user":"admin1","password":"admin1-password"}' "$URL/api/login" || fail "HTTPS sign-in failed"
grep -i '^set-cookie:' "$T/h" | grep -q Secure || fail "the session cookie is not Secure over HTTPS"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:${NODE_HTTP_PORT[1]}/api/me") || true
case $code in 2* | 3* | 4*) fail "plain HTTP was answered ($code) by an HTTPS-only server" ;; esac
log "plain HTTP refused (curl: $code); HTTPS answers"
tls_floor_holds "127.0.0.1:${NODE_HTTP_PORT[1]}" -CAfile "$T/cert.pem"
log "TLS 1.0 and 1.1 refused, TLS 1.2 accepted"
node_stop 1
node_set_conf 1 http tls_key "$T/cert.pem" # not a key
out=$(timeout 20 "$PACSMESH" run --dir "${NODE_DIR[1]}" 2>&1) && fail "the node started with a bad TLS key"
printf '%s\n' "$out" | grep -qi "tls\|https\|key" || fail "no clear message for a bad TLS key: $out"
log "PASS"
