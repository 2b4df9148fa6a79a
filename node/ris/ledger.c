/* A delivery ledger (node/ris/ledger.h). */
#include "node/ris/ledger.h"
#include "proto/error.h"
#include "proto/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pm_ris_ledger {
    int fd;
    json_t *delivered; /* study uid -> count: jansson's hash table */
};

static void read_lines(pm_ris_ledger *l, FILE *f)
{
    char line[256], uid[128];
    unsigned long n;
    while (fgets(line, sizeof line, f))
        if (strchr(line, '\n') && sscanf(line, "%127s %lu", uid, &n) == 2)
            json_object_set_new(l->delivered, uid, json_integer((json_int_t)n));
}

int pm_ris_ledger_open(const char *dir, const char *file, pm_ris_ledger **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    pm_ris_ledger *l = calloc(1, sizeof *l);
    if (!l || !(l->delivered = json_object())) {
        free(l);
        return PM_E_NOMEM;
    }
    l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l->fd < 0) {
        pm_error("ris", "cannot open %s: %s", path, strerror(errno));
        pm_ris_ledger_destroy(&l);
        return PM_E_IO;
    }
    FILE *f = fopen(path, "r");
    if (f) {
        read_lines(l, f);
        fclose(f);
    }
    *out = l;
    return PM_OK;
}

void pm_ris_ledger_destroy(pm_ris_ledger **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->fd >= 0)
        close((*self_p)->fd);
    json_decref((*self_p)->delivered);
    free(*self_p);
    *self_p = NULL;
}

size_t pm_ris_ledger_delivered(const pm_ris_ledger *self, const char *study_uid)
{
    return (size_t)json_integer_value(json_object_get(self->delivered, study_uid));
}

int pm_ris_ledger_put(pm_ris_ledger *self, const char *study_uid, size_t reports)
{
    char line[160];
    int n = snprintf(line, sizeof line, "%s %zu\n", study_uid, reports);
    if (n <= 0 || (size_t)n >= sizeof line)
        return PM_E_INVAL;
    if (write(self->fd, line, (size_t)n) != n || fsync(self->fd) != 0) {
        pm_error("ris", "cannot record a delivery of study %s: %s", study_uid, strerror(errno));
        return PM_E_IO;
    }
    json_object_set_new(self->delivered, study_uid, json_integer((json_int_t)reports));
    return PM_OK;
}
