/* libFuzzer target over pm_access_parse and pm_access_check (node/dicom/access.c): an
 * allowed_aes entry is bytes from node.conf, and the calling AE title bytes come from a
 * client. Invariants: a parsed entry's AE title is 1-16 characters, its rights are
 * within PM_ACCESS_ALL, and an AE the entry names gets at most the entry's rights.
 * Inputs with a host name make a resolver lookup: keep the corpus to IPv4 literals.
 * `make check` replays test/corpus/dicom_access with test/fuzz_replay.c; to fuzz:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Ibuild -Ibuild/proto \
 *       test/fuzz_dicom_access.c node/dicom/access.c -o /tmp/fuzz_dicom_access
 *   /tmp/fuzz_dicom_access -max_total_time=600 test/corpus/dicom_access */
#include "node/dicom/access.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 512 || memchr(data, '\0', size))
        return 0;
    char text[513];
    memcpy(text, data, size);
    text[size] = '\0';
    pm_access_entry e;
    char why[320];
    if (pm_access_parse(text, &e, why, sizeof why) != PM_OK)
        return 0;
    size_t n = strlen(e.ae);
    if (n == 0 || n > PM_DICOM_AE_MAX || (e.rights & ~(unsigned)PM_ACCESS_ALL) || !e.rights)
        abort();
    unsigned rights = 0;
    const char *host = e.n_addrs ? e.addrs[0] : "127.0.0.1";
    if (pm_access_check(&e, 1, 0, e.ae, host, &rights) != PM_ACCESS_ACCEPT || (rights & ~e.rights))
        abort();
    return 0;
}
