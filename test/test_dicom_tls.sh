#!/bin/bash
# DICOM TLS on the edge (docs/operations.md, "Securing the DICOM edge"), with a test PKI
# made here by openssl (a CA, server and client certificates, an expired one, one of
# another CA):
#   - dcmtk's own TLS clients (echoscu, storescu, findscu +tls) work against the node;
#   - plain TCP to the TLS port, a client without a certificate, an expired or foreign
#     certificate: refused at the handshake, logged with the source, counted, sent to
#     the audit repository as a security alert (110113); the node
#     keeps serving the others;
#   - TLS to a plain node's port is refused by that node's wire guard;
#   - C-MOVE to a destination marked tls goes over TLS (storescp +tls), its certificate
#     checked against tls_ca;
#   - Orthanc as a TLS peer: Orthanc C-STOREs to the node over TLS with its client
#     certificate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dicom_lib.sh"
dicom_init
command -v openssl >/dev/null || skip "openssl is not installed"
/usr/bin/python3 -c 'import lxml.etree' 2>/dev/null || skip "python3-lxml is not installed"

# ---- a test PKI ------------------------------------------------------------------------
PKI=$T/pki
mkdir -p "$PKI/db"
(
    cd "$PKI" || exit 1
    req() { openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null; }
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=Test Trust CA" 2>/dev/null &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.pem -days 30 \
            -subj "/CN=Rogue CA" 2>/dev/null || exit 1
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    for leaf in server:ca client:ca orthanc:ca rogue:rogue-ca; do
        req "${leaf%%:*}" && openssl x509 -req -in "${leaf%%:*}.csr" -CA "${leaf#*:}.pem" \
            -CAkey "${leaf#*:}.key" -CAcreateserial -out "${leaf%%:*}.pem" -days 30 \
            -extfile san.ext 2>/dev/null || exit 1
    done
    # Expired: signed by the CA with a validity wholly in the past (openssl ca's dates).
    : >db/index.txt
    echo 01 >db/serial
    printf '[ca]\ndefault_ca = c\n[c]\ndatabase = db/index.txt\nserial = db/serial\nnew_certs_dir = db\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' >ca.cnf
    req expired && openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
        -out expired.pem -startdate 20200101000000Z -enddate 20200201000000Z -notext 2>/dev/null
) || fail "cannot make the test PKI"
out=$(openssl verify -CAfile "$PKI/ca.pem" "$PKI/expired.pem" 2>&1) && fail "the expired certificate verifies"
case $out in *"has expired"*) ;; *) fail "the expired certificate is not expired: $out" ;; esac

# ---- a TLS node (1) and a plain one (2) -------------------------------------------------
A=1 B=2
mesh_create 2
node_set_conf $A dicom tls_cert "$PKI/server.pem"
node_set_conf $A dicom tls_key "$PKI/server.key"
node_set_conf $A dicom tls_ca "$PKI/ca.pem"
node_set_conf $A dicom require_client_cert yes
alloc_port
SCP_PORT=$PORT
node_set_conf $A dicom.destinations TLS_DEST "127.0.0.1:$SCP_PORT tls"
alloc_port
METRICS_PORT=$PORT
node_set_conf $A metrics listen "127.0.0.1:$METRICS_PORT"
# A's audit repository (IHE ATNA): refused handshakes are security alerts there.
alloc_port
ATNA_PORT=$PORT
node_set_conf $A audit syslog "tcp://127.0.0.1:$ATNA_PORT"
node_set_conf $A audit syslog_retry 1s
/usr/bin/python3 "$(dirname "$0")/atna_listener.py" "$ATNA_PORT" "$T/atna.jsonl" "$T/stop-atna" \
    "$(dirname "$0")/dicom_audit_message.rng" --limit 300 &
STARTED_PIDS+=("$!")
on_exit "touch '$T/stop-atna'"
node_start_all
P=${NODE_DICOM_PORT[A]}
TLS=(+tls "$PKI/client.key" "$PKI/client.pem" +cf "$PKI/ca.pem")
tls_up() { echoscu "${TLS[@]}" -to 2 -aet ECHO -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1; }
wait_until 30 tls_up
wait_until 30 dicom_up $B
grep -q "listening on 127.0.0.1:$P as PACSMESH (max PDU 131072, TLS only)" "${NODE_LOG[A]}" ||
    fail "the node does not say it speaks TLS only"

S1=$(gen_study "$T/s1" 1 3 TLS0001 "TLS^ONE" 20240301) || fail "gen_study failed"
storescu "${TLS[@]}" -aet PACS_A -aec PACSMESH +sd +r 127.0.0.1 "$P" "$T/s1" >"$T/store.log" 2>&1 ||
    fail "storescu +tls failed: $(tail -n 3 "$T/store.log")"
instances() # the NumberOfSeriesRelatedInstances findscu +tls reports for S1's series
{
    findscu -v "${TLS[@]}" -aet VIEWER_B -aec PACSMESH -S -k QueryRetrieveLevel=SERIES \
        -k "StudyInstanceUID=$S1" -k NumberOfSeriesRelatedInstances 127.0.0.1 "$P" 2>&1 |
        sed -n 's/.*\[\([0-9]*\) *\].*NumberOfSeriesRelatedInstances.*/\1/p' | head -n 1
}
three() { [ "$(instances)" = 3 ]; }
wait_until 20 three
log "echoscu, storescu and findscu +tls: stored 3 instances over TLS and found them"

# ---- refusals at the handshake ---------------------------------------------------------
handshakes() { log_count $A "TLS handshake with .* failed"; }
h0=$(handshakes)
echoscu -to 5 -aet ECHO -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1 && fail "plain TCP to the TLS port was served"
echoscu +tla +cf "$PKI/ca.pem" -to 5 -aet ECHO -aec PACSMESH 127.0.0.1 "$P" >/dev/null 2>&1 &&
    fail "a TLS client without a certificate was served (require_client_cert)"
echoscu +tls "$PKI/expired.key" "$PKI/expired.pem" +cf "$PKI/ca.pem" -to 5 -aet ECHO -aec PACSMESH \
    127.0.0.1 "$P" >/dev/null 2>&1 && fail "an expired client certificate was accepted"
echoscu +tls "$PKI/rogue.key" "$PKI/rogue.pem" +cf "$PKI/ca.pem" -to 5 -aet ECHO -aec PACSMESH \
    127.0.0.1 "$P" >/dev/null 2>&1 && fail "a certificate of another CA was accepted"
# The node's own certificate is checked by clients too: one trusting only the rogue CA refuses it.
echoscu +tls "$PKI/client.key" "$PKI/client.pem" +cf "$PKI/rogue-ca.pem" -to 5 -aet ECHO -aec PACSMESH \
    127.0.0.1 "$P" >/dev/null 2>&1 && fail "a client accepted the node's certificate against the wrong CA"
four() { [ "$(handshakes)" -ge $((${h0:-0} + 4)) ]; }
wait_until 20 four
grep "TLS handshake with .* failed" "${NODE_LOG[A]}" | grep -q "127.0.0.1" ||
    fail "the handshake failures do not name the source"
grep -E "TLS handshake with .* failed" "${NODE_LOG[A]}" | grep -qi "certificate" ||
    fail "no handshake failure names the certificate: $(grep 'TLS handshake' "${NODE_LOG[A]}" | head -n 4)"
wait_until 30 atna_has "$T/atna.jsonl" 'm["event_id"] == "110113" and m["outcome"] == "4" and "TLS handshake refused" in (m["description"] or "") and m["participants"][0]["host"] == "127.0.0.1"'
v=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | sed -n 's/^pacsmesh_dicom_refused_total{reason="tls"} \([0-9]*\).*/\1/p')
[ -n "$v" ] && [ "$v" -ge 4 ] || fail "pacsmesh_dicom_refused_total{reason=\"tls\"} is '$v', not >= 4"
# BCP 195: nothing below TLS 1.2; TLS 1.2 with a good certificate works.
tls_floor_holds "127.0.0.1:$P" -cert "$PKI/client.pem" -key "$PKI/client.key" -CAfile "$PKI/ca.pem"
tls_up || fail "the node stopped serving TLS clients after the refusals"
# TLS to the plain node: its wire guard refuses the ClientHello as a PDU; it keeps serving.
echoscu "${TLS[@]}" -to 5 -aet ECHO -aec PACSMESH 127.0.0.1 "${NODE_DICOM_PORT[B]}" >/dev/null 2>&1 &&
    fail "TLS to a plain port succeeded"
dicom_up $B || fail "the plain node stopped serving after a TLS ClientHello"
log "plain TCP, no certificate, expired or foreign certificate refused ($v counted); TLS to a plain port refused"

# ---- C-MOVE to a TLS destination --------------------------------------------------------
mkdir -p "$T/moved"
$PYTHON - "$SCP_PORT" "$T/moved" "$PKI" >>"$T/scp.log" 2>&1 <<'EOF' &
import socket, subprocess, sys
port, out, pki = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
while True:
    c, _ = s.accept()
    subprocess.Popen(["storescp", "--inetd", "+tls", pki + "/server.key", pki + "/server.pem",
                      "+cf", pki + "/ca.pem", "-aet", "TLS_DEST", "+xa", "-od", out],
                     stdin=c.fileno(), stdout=c.fileno(), close_fds=True)
    c.close()
EOF
STARTED_PIDS+=("$!")
wait_until 10 tcp_reachable 0 127.0.0.1 "$SCP_PORT"
# dcmtk 3.6.7's movescu has no TLS: the C-MOVE-RQ comes from test/dicom_raw.py over ssl.
$PYTHON -S - "$top_srcdir/test" "$P" "$S1" "$PKI" <<'EOF' || fail "C-MOVE over TLS failed"
import sys
sys.path.insert(0, sys.argv[1]); import dicom_raw as dr
port, study, pki = int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
tls = (pki + "/client.pem", pki + "/client.key", pki + "/ca.pem")
s = dr.open_association(port, calling=b"VIEWER_B", contexts=((dr.MOVE_STUDY, dr.IVLE),), tls=tls)
st = dr.move_study(s, b"TLS_DEST", study)
assert st == 0, "C-MOVE status 0x%04x" % st
dr.release(s)
EOF
moved() { [ "$(ls "$T/moved" | wc -l)" = 3 ]; }
wait_until 20 moved
log "C-MOVE to a destination marked tls: 3 instances sent over TLS"

# ---- Orthanc as a TLS peer --------------------------------------------------------------
if command -v Orthanc >/dev/null; then
    alloc_port
    OPORT=$PORT
    mkdir -p "$T/orthanc/db"
    cat >"$T/orthanc/orthanc.json" <<JSON
{ "Name": "tls-peer", "StorageDirectory": "$T/orthanc/db", "IndexDirectory": "$T/orthanc/db",
  "HttpPort": $OPORT, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "DicomServerEnabled": false, "DicomAet": "ORTHANC", "Plugins": [],
  "DicomTlsEnabled": true, "DicomTlsCertificate": "$PKI/orthanc.pem",
  "DicomTlsPrivateKey": "$PKI/orthanc.key", "DicomTlsTrustedCertificates": "$PKI/ca.pem",
  "DicomTlsRemoteCertificateRequired": true,
  "DicomModalities": { "node": { "AET": "PACSMESH", "Host": "127.0.0.1", "Port": $P,
                                 "UseDicomTls": true } } }
JSON
    Orthanc "$T/orthanc/orthanc.json" >"$T/orthanc.log" 2>&1 &
    STARTED_PIDS+=("$!")
    orthanc_up() { curl -sf "http://127.0.0.1:$OPORT/system" >/dev/null; }
    wait_until 60 orthanc_up
    S2=$(gen_study "$T/s2" 1 2 TLS0002 "TLS^TWO" 20240302) || fail "gen_study failed"
    for f in "$T/s2"/*.dcm; do
        curl -sf -X POST --data-binary @"$f" "http://127.0.0.1:$OPORT/instances" >/dev/null ||
            fail "Orthanc refused $f"
    done
    curl -sf -X POST -d "{\"Resources\": [\"$(curl -sf "http://127.0.0.1:$OPORT/studies" |
        $PYTHON -c 'import json,sys; print(json.load(sys.stdin)[0])')\"], \"Synchronous\": true}" \
        "http://127.0.0.1:$OPORT/modalities/node/store" >"$T/ostore.json" ||
        fail "Orthanc's C-STORE over TLS failed: $(tail -n 5 "$T/orthanc.log")"
    got() # the node holds S2's 2 instances
    {
        findscu -v "${TLS[@]}" -aet VIEWER_B -aec PACSMESH -S -k QueryRetrieveLevel=STUDY \
            -k "StudyInstanceUID=$S2" -k NumberOfStudyRelatedInstances 127.0.0.1 "$P" 2>&1 |
            grep -q '\[2 *\].*NumberOfStudyRelatedInstances'
    }
    wait_until 20 got
    log "Orthanc $(dpkg-query -W -f '${Version}' orthanc 2>/dev/null) C-STOREd a study to the node over TLS"
else
    log "Orthanc not installed: the Orthanc TLS peer part is skipped"
fi
nodes_alive
echo "PASS: $TEST_NAME"
