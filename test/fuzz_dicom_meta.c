/* libFuzzer target over pm_dicom_read_meta (node/dicom/meta.cc), the parser that sees
 * DICOM files from imports, peers and DICOM clients.
 *
 * `make check` builds this with test/fuzz_replay.c (plain gcc) and replays the seed
 * corpus test/corpus/dicom_meta/. To fuzz for real, after a build in build-dicom/:
 *
 *   F="-g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -Ibuild-dicom/proto"
 *   for c in test/fuzz_dicom_meta.c proto/error.c proto/log.c; do
 *       clang $F -c $c -o /tmp/$(basename $c .c).o; done
 *   clang++ $F -std=c++17 node/dicom/meta.cc /tmp/fuzz_dicom_meta.o /tmp/error.o /tmp/log.o \
 *       $(pkg-config --libs dcmtk libprotobuf-c) -o /tmp/fuzz_dicom_meta
 *   mkdir -p /tmp/dicom-corpus && /tmp/fuzz_dicom_meta /tmp/dicom-corpus test/corpus/dicom_meta
 *
 * (pm_dicom_read_meta scans the file first: add node/dicom/scan.c and
 * node/dicom/scan_reader.c, and -lz, to the clang++ line.)
 *
 * pm_dicom_read_meta reads a path, so each input goes through one temporary file. Beyond
 * "no crash, no leak, no undefined behaviour" it checks the contract: PM_OK with the
 * UIDs filled in, or PM_E_DICOM with a one-line reason. */
#include "node/dicom/dicom.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        pm_dicom_set_isolation(0); /* dcmtk in this process: its crashes are ours to see */
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/pm-fuzz-dicom-meta-%ld.dcm", dir && *dir ? dir : "/tmp",
                 (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);

    pm_dicom_meta m;
    char err[128];
    int rc = pm_dicom_read_meta(path, &m, err, sizeof err);
    unlink(path);
    if (rc == PM_OK) {
        if (!m.sop_uid[0] || !m.study_uid[0] || !m.series_uid[0] || !m.sop_class_uid[0])
            abort();
    } else if (rc != PM_E_DICOM || !err[0] || strchr(err, '\n')) {
        abort();
    }
    return 0;
}
