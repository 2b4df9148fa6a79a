#!/bin/sh
# Installs the Debian 12 packages pacsmesh needs to build, test and run its demo,
# skipping those already present. Run as root (CI and the README's commands do).
set -eu
PACKAGES="build-essential autoconf automake libtool pkg-config
libsodium-dev libzmq3-dev liblmdb-dev lmdb-utils libprotobuf-c-dev protobuf-c-compiler
libdcmtk-dev dcmtk libsndfile1-dev libinih-dev libjansson-dev zlib1g-dev
python3 python3-pydicom python3-hl7 iproute2 clang clang-format orthanc curl
libmicrohttpd-dev libcurl4-gnutls-dev orthanc-dicomweb chromium openssl
libssl-dev python3-lxml"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: run as root to install:$missing" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

# Node.js and npm run the browser and DICOMweb client tests (test/js); whatever
# provides the `npm` command is kept.
if ! command -v npm >/dev/null; then
    echo "installing: nodejs npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
here=$(cd "$(dirname "$0")/.." && pwd)

# The OHIF viewer the web server serves at /viewer/: the @ohif/app release's built
# dist/, at an exact version, its tarball checked against the recorded SHA-1, into
# viewer/ohif/ of this tree (the program looks there, or in $PACSMESH_VIEWER_DIR).
OHIF_VERSION=3.13.2
OHIF_SHA1=26a51ffcc1704c30fff403258a1d7392e9a991f3
if [ ! -r "$here/viewer/ohif/dist/index.html" ] ||
    [ "$(cat "$here/viewer/ohif/.version" 2>/dev/null)" != "$OHIF_VERSION" ]; then
    echo "installing: @ohif/app $OHIF_VERSION (viewer/ohif)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "@ohif/app@$OHIF_VERSION" >/dev/null)
    tgz=$tmp/ohif-app-$OHIF_VERSION.tgz
    [ "$(sha1sum "$tgz" | cut -d' ' -f1)" = "$OHIF_SHA1" ] || {
        echo "install-deps: @ohif/app $OHIF_VERSION does not match its recorded checksum" >&2
        rm -rf "$tmp"
        exit 1
    }
    rm -rf "$here/viewer/ohif"
    mkdir -p "$here/viewer/ohif"
    tar xzf "$tgz" -C "$here/viewer/ohif" --strip-components=1 package/dist package/LICENSE
    echo "$OHIF_VERSION" >"$here/viewer/ohif/.version"
    rm -rf "$tmp"
fi

# The test clients (puppeteer-core drives Debian's chromium; dicomweb-client is OHIF's
# own DICOMweb client), pinned in test/js/package-lock.json. No browser is downloaded.
if [ ! -d "$here/test/js/node_modules/puppeteer-core" ] || [ ! -d "$here/test/js/node_modules/dicomweb-client" ]; then
    echo "installing: test/js (npm ci)"
    (cd "$here/test/js" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --silent)
fi
