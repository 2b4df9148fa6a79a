/* libFuzzer target over the DICOM edge's wire guard (node/dicom/wire.c), which sees
 * every byte a client sends before dcmtk does. The input is one selector byte and a
 * stream of PDUs; the target cuts the stream into PDUs by their headers, as the edge's
 * connection does, and feeds them until the guard refuses one or the bytes end.
 *
 * Contract checked beyond "no crash, no leak, no undefined behaviour": the guard never
 * alters, reorders or invents bytes (what it releases is exactly a prefix of the PDUs
 * fed, in order), it releases nothing of a refused PDU, and a refusal comes with one
 * line of reason.
 *
 * Selector byte: bits 0-1 the transfer syntax of presentation context 1 (implicit LE,
 * explicit LE, explicit BE, none), bit 2 small limits (1 KiB commands, 8 KiB
 * identifiers, nesting 8).
 *
 * `make check` builds this with test/fuzz_replay.c (plain gcc) and replays the corpus
 * test/corpus/dicom_wire/. To fuzz for real, in a build-fuzz/ configured as described
 * at the top of test/fuzz_dicom_store.c:
 *
 *   clang $F -fsanitize=fuzzer -D_GNU_SOURCE -I. -I.. -Iproto -c ../test/fuzz_dicom_wire.c
 *   clang++ -fsanitize=fuzzer,address,undefined fuzz_dicom_wire.o libpmcore.a \
 *       $(pkg-config --libs dcmtk libsodium libzmq lmdb libprotobuf-c inih jansson zlib) \
 *       -o fuzz_dicom_wire
 *   mkdir -p corpus-wire && ./fuzz_dicom_wire corpus-wire ../test/corpus/dicom_wire */
#include "node/dicom/wire.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    data++, size--;
    pm_dicom_wire_limits lim = {16384, 0, 0, {0, 0}};
    if (sel & 4) {
        lim.max_command = 1024;
        lim.max_identifier = 8192;
        lim.data_limits.max_depth = 8;
    }
    pm_dicom_wire *w = pm_dicom_wire_new(&lim);
    if (!w)
        abort();
    static const pm_dicom_ts ts[] = {PM_DICOM_TS_IMPLICIT_LE, PM_DICOM_TS_EXPLICIT_LE,
                                     PM_DICOM_TS_EXPLICIT_BE};
    if ((sel & 3) < 3)
        pm_dicom_wire_set_ts(w, 1, ts[sel & 3]);
    size_t off = 0, released = 0;
    uint8_t out[4096];
    char why[256];
    while (size - off >= 6) {
        uint32_t len;
        why[0] = 0;
        if (pm_dicom_wire_header(w, data + off, &len, why, sizeof why) != PM_OK) {
            if (!why[0] || strchr(why, '\n'))
                abort();
            break;
        }
        if (size - off - 6 < len)
            break;
        size_t before = pm_dicom_wire_ready(w);
        int rc = pm_dicom_wire_pdu(w, data + off, 6 + (size_t)len, why, sizeof why);
        if (rc != PM_OK) {
            if (rc != PM_E_DICOM && rc != PM_E_TOOBIG && rc != PM_E_NOMEM)
                abort();
            if (!why[0] || strchr(why, '\n') || pm_dicom_wire_ready(w) != before)
                abort();
            break;
        }
        off += 6 + (size_t)len;
        /* Take a part now and then, as dcmtk reads in pieces. */
        size_t k;
        while ((k = pm_dicom_wire_take(w, out, 1 + (off % sizeof out))) > 0) {
            if (released + k > off || memcmp(out, data + released, k) != 0)
                abort();
            released += k;
            if (k < 1 + (off % sizeof out))
                break;
        }
    }
    size_t k;
    while ((k = pm_dicom_wire_take(w, out, sizeof out)) > 0) {
        if (released + k > off || memcmp(out, data + released, k) != 0)
            abort();
        released += k;
    }
    pm_dicom_wire_free(w);
    return 0;
}
