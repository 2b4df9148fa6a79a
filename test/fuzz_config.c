/* libFuzzer target over the node.conf parser (node/config/).
 *
 * `make check` builds this with test/fuzz_replay.c (plain gcc) and replays the seed
 * corpus test/corpus/config/. To fuzz for real, from the source tree after a build in
 * build-config/ (which generates the protobuf-c headers dicom.h includes):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -Ibuild-config/proto \
 *       $(pkg-config --cflags libprotobuf-c) test/fuzz_config.c node/config/table.c \
 *       node/config/value.c node/config/load.c node/config/edit.c node/worklist/rules.c \
 *       proto/error.c proto/log.c -linih -o /tmp/fuzz_config
 *   mkdir -p /tmp/config-corpus && /tmp/fuzz_config /tmp/config-corpus test/corpus/config
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks that whatever parses
 * dumps back to a file that parses to the same dump, and that the rule matcher and the
 * duration and size parsers survive the same bytes. */
#include "node/config/config.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump_of(const pm_config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        abort();
    pm_config_dump(cfg, f);
    if (fclose(f) != 0)
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    pm_config *cfg = NULL;
    int rc = pm_config_parse("fuzz.conf", (const char *)data, size, "/nonexistent/node", &cfg, err,
                             sizeof err);
    if (rc != PM_OK) {
        /* A failure always explains itself in one line. */
        if (cfg || err[0] == '\0' || strchr(err, '\n'))
            abort();
    } else {
        size_t len1, len2;
        char *dump1 = dump_of(cfg, &len1);
        pm_config *again = NULL;
        if (pm_config_parse("fuzz.conf", dump1, len1, "/nonexistent/node", &again, err,
                            sizeof err) != PM_OK) {
            fprintf(stderr, "dump does not parse back: %s\n%s", err, dump1);
            abort();
        }
        char *dump2 = dump_of(again, &len2);
        if (len1 != len2 || memcmp(dump1, dump2, len1) != 0) {
            fprintf(stderr, "dump changed on a round trip:\n%s---\n%s", dump1, dump2);
            abort();
        }
        free(dump1);
        free(dump2);
        pm_config_destroy(&again);

        /* Apply the rules to a study made of the same bytes. */
        char study[3][65] = {{0}};
        for (size_t i = 0; i < size && i < 3 * 64; i++)
            study[i % 3][i / 3] = data[i] ? (char)data[i] : 'x';
        char priority[PM_WORKLIST_PRIORITY_MAX], sub[PM_WORKLIST_SUBSPECIALTY_MAX];
        int double_read;
        uint64_t due;
        pm_worklist_terms(cfg, study[0], study[1], study[2], UINT64_MAX - 5, priority, sub,
                          &double_read, &due);
        pm_config_destroy(&cfg);
    }

    char text[64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    uint64_t v;
    (void)pm_config_parse_duration(text, &v);
    (void)pm_config_parse_bytes(text, &v);
    (void)pm_config_wildcard_match(text, text + n / 2);
    return 0;
}
