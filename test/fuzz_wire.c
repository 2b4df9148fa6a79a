/* libFuzzer target for the wire codec (node/mesh/wire.c): the bytes any peer, or
 * anyone who gets past CURVE, can send a node.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks the codec's promise:
 * whatever pm_wire_unpack accepts is of this wire version, of a known kind, and packs
 * back to exactly the bytes it came from (so nothing in the input was ignored); and
 * the result unpacks again.
 *
 * Built with gcc by `make check` as test/fuzz_wire (with test/fuzz_replay.c), which
 * replays the seed corpus test/corpus/wire/ (one message of each kind, and broken
 * ones). The real fuzzer, with clang, from a build directory (it has the generated
 * protobuf-c code):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I.. -Iproto -I. \
 *       ../test/fuzz_wire.c ../node/mesh/wire.c proto/wire.pb-c.c ../proto/error.c \
 *       -lprotobuf-c -o fuzz_wire
 *   mkdir -p corpus && ./fuzz_wire -max_total_time=600 corpus ../test/corpus/wire
 */
#include "node/mesh/wire.h"
#include "proto/error.h"
#include "test/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Pm__WireMessage *msg = NULL;
    int rc = pm_wire_unpack(data, size, &msg);
    CHECK(rc == PM_OK || rc == PM_E_PARSE || rc == PM_E_FORMAT || rc == PM_E_UNKNOWN ||
          rc == PM_E_TOOBIG);
    if (rc != PM_OK) {
        CHECK(msg == NULL);
        return 0;
    }
    CHECK(msg->version == PM_WIRE_VERSION);
    uint8_t *again = NULL;
    size_t len = 0;
    CHECK_RC(pm_wire_pack(msg, &again, &len));
    CHECK(len == size);
    Pm__WireMessage *second = NULL;
    CHECK_RC(pm_wire_unpack(again, len, &second));
    CHECK(second->kind_case == msg->kind_case);
    pm_wire_free(&second);
    pm_wire_free(&msg);
    free(again);
    return 0;
}
