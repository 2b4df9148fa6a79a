/* libFuzzer target for the audit export file parser (store/auditfile.c): the bytes of
 * a file handed to `pacsmesh audit verify|log|replay FILE`, which may come from anyone.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks what the parser
 * promises: every record handed over is of kind 'E' or 'F', non-empty and at most
 * PM_EVENT_MAX_BYTES; the offset reported never passes the input; and PM_OK is only
 * ever returned for an input that really ends in 'Z' and the BLAKE2b-256 of every byte
 * before it.
 *
 * Built with gcc by `make check` as test/fuzz_auditfile (with test/fuzz_replay.c),
 * which replays the seed corpus test/corpus/auditfile/ (real exports, whole, cut short,
 * with a flipped byte, with a fork record). The real fuzzer, with clang, from a build
 * directory configured with --enable-asan --enable-ubsan after `make libpmcore.a`:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I.. -Iproto \
 *       ../test/fuzz_auditfile.c -o fuzz_auditfile libpmcore.a -lsodium -llmdb \
 *       -lprotobuf-c -lpthread
 *   mkdir -p corpus && ./fuzz_auditfile -max_total_time=600 corpus ../test/corpus/auditfile
 */
#include "crypto/hash.h"
#include "store/auditfile.h"
#include "store/event.h"
#include "test/check.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t records;
    uint64_t bytes;
} tally;

static int on_record(void *ctx, char kind, const uint8_t *raw, size_t len)
{
    tally *t = ctx;
    CHECK(kind == 'E' || kind == 'F');
    CHECK(raw != NULL && len > 0 && len <= PM_EVENT_MAX_BYTES);
    t->records++;
    t->bytes += 5 + len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses a zero-length buffer */
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return 0;
    tally t = {0, 0};
    uint64_t where = UINT64_MAX;
    int rc = pm_auditfile_read_stream(f, on_record, &t, &where);
    fclose(f);
    CHECK(where <= size);
    CHECK(rc == PM_OK || rc == PM_E_FORMAT || rc == PM_E_PARSE || rc == PM_E_HASH ||
          rc == PM_E_NOMEM);
    if (rc == PM_OK) {
        /* The trailer is 'Z' and the hash of everything before it. */
        CHECK(size >= 1 + PM_HASH_BYTES);
        CHECK(data[size - 1 - PM_HASH_BYTES] == 'Z');
        uint8_t want[PM_HASH_BYTES];
        pm_hasher h;
        pm_hasher_init(&h);
        pm_hasher_update(&h, data, size - 1 - PM_HASH_BYTES);
        pm_hasher_final(&h, want);
        CHECK(memcmp(want, data + size - PM_HASH_BYTES, PM_HASH_BYTES) == 0);
        /* Every byte between the magic line and the trailer was a whole record. */
        CHECK(where == size - 1 - PM_HASH_BYTES);
        CHECK(where == strlen("PACSMESH-AUDIT\n1\n") + t.bytes);
    }
    return 0;
}
