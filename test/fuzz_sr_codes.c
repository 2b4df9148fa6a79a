/* libFuzzer target over pm_dicom_sr_codes (node/dicom/sr_codes.cc), which reads the
 * content tree of SRs that AI products (any sender) store into a study.
 *
 * `make check` builds this with test/fuzz_replay.c (plain gcc) and replays the seed
 * corpus test/corpus/sr_codes/. To fuzz for real, build as the top of
 * test/fuzz_dicom_meta.c says, with node/dicom/sr_codes.cc and node/dicom/scan.c in
 * place of meta.cc, and run over test/corpus/sr_codes.
 *
 * Beyond "no crash, no leak, no undefined behaviour" it checks the contract: PM_OK
 * with every code's strings non-NULL, or PM_E_DICOM with a one-line reason. */
#include "node/dicom/sr_codes.h"
#include "proto/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_code(void *ctx, const char *scheme, const char *value, const char *meaning)
{
    if (!scheme || !value || !meaning)
        abort();
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/pm-fuzz-sr-codes-%ld.dcm", dir && *dir ? dir : "/tmp",
                 (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    size_t codes = 0;
    char err[256] = "";
    int rc = pm_dicom_sr_codes(path, check_code, &codes, err, sizeof err);
    unlink(path);
    if (rc != PM_OK && (rc != PM_E_DICOM || !err[0] || strchr(err, '\n')))
        abort();
    if (codes > 2 * PM_DICOM_SR_CODES_MAX_ITEMS + 1)
        abort();
    return 0;
}
