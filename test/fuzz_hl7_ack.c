/* libFuzzer target over pm_hl7_ack_accepted (node/ris/hl7.c): the bytes a RIS answers
 * with are outside bytes. Also checks the escaping round trip invariant: an escaped
 * string contains no HL7 delimiter but the escape character. `make check` replays the
 * corpus in test/corpus/hl7_ack with test/fuzz_replay.c; to fuzz for real:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Ibuild -Ibuild/proto \
 *       test/fuzz_hl7_ack.c node/ris/hl7.c -o /tmp/fuzz_hl7_ack
 *   /tmp/fuzz_hl7_ack -max_total_time=600 test/corpus/hl7_ack */
#include "node/ris/hl7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[128];
    (void)pm_hl7_ack_accepted((const char *)data, size, "PM0123456789abcdef01", why, sizeof why);
    char *s = malloc(size + 1), *esc = malloc(6 * size + 1);
    if (s && esc) {
        memcpy(s, data, size);
        s[size] = '\0';
        size_t n = pm_hl7_escape(s, esc, 6 * size + 1);
        if (n == (size_t)-1 || strpbrk(esc, "|^~&\r\n"))
            abort(); /* a delimiter left unescaped would split the message */
    }
    free(s);
    free(esc);
    return 0;
}
