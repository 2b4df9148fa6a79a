#!/bin/sh
# Installs the Debian 12 packages pacsmesh needs to build, test and run its demo,
# skipping those already present. Run as root (CI and the README's commands do).
set -eu
PACKAGES="build-essential autoconf automake libtool pkg-config
libsodium-dev libzmq3-dev liblmdb-dev lmdb-utils libprotobuf-c-dev protobuf-c-compiler
libdcmtk-dev dcmtk libsndfile1-dev libinih-dev libjansson-dev
python3 python3-pydicom python3-hl7 iproute2 clang clang-format orthanc curl"
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
