/* Writes the seed corpus of test/fuzz_event.c into a directory:
 *   test/gen_event_corpus ../test/corpus/event
 * The output is deterministic (fixed keys, clocks and Lamport values), so the
 * committed files only change when the schema or the signing rules do. */
#include <stdio.h>
#include <sys/stat.h>

int fuzz_event_write_corpus(const char *dir);

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    mkdir(argv[1], 0755);
    return fuzz_event_write_corpus(argv[1]) == 0 ? 0 : 1;
}
