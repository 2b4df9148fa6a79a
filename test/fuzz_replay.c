/* A main for libFuzzer targets built without libFuzzer (plain gcc, `make check`): calls
 * LLVMFuzzerTestOneInput once for each file named on the command line, or for each file
 * of a directory named there. With no arguments it replays the directory FUZZ_CORPUS,
 * which the build defines per target (-DFUZZ_CORPUS='"..."'). A crash or sanitizer
 * report fails the test; otherwise it prints how many inputs ran and exits 0. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (!grown)
                free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "fuzz_replay: %s: out of memory\n", path);
        return -1;
    }
    /* An exact-size copy, so that a read past the end is caught by ASan. */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int replay(const char *path, unsigned *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (replay_file(path) != 0)
            return -1;
        ++*count;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *child = malloc(len);
        if (!child) {
            rc = -1;
            break;
        }
        snprintf(child, len, "%s/%s", path, e->d_name);
        if (replay(child, count) != 0)
            rc = -1;
        free(child);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int rc = 0;
    if (argc < 2) {
#ifdef FUZZ_CORPUS
        rc = replay(FUZZ_CORPUS, &count);
#else
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
#endif
    }
    for (int i = 1; i < argc; i++)
        if (replay(argv[i], &count) != 0)
            rc = -1;
    printf("fuzz_replay: %u inputs replayed\n", count);
    return rc == 0 && count > 0 ? 0 : 1;
}
