/* fetch STUDY_UID [--out DIR]: brings a study into the local cache through the
 * running node (which verifies every instance against its signed hash), with a
 * progress bar on a terminal, and optionally writes the instances to DIR. */
#include "node/cli/admin_client.h"
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/progress.h"
#include "proto/error.h"
#include "store/blobs.h"
#include "store/views.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void progress_bar(json_t *st)
{
    double bytes = (double)json_integer_value(json_object_get(st, "bytes"));
    double total = (double)json_integer_value(json_object_get(st, "total"));
    int width = 40, filled = total > 0 ? (int)(width * bytes / total) : width;
    if (filled > width)
        filled = width;
    fprintf(stderr, "\r[%.*s%*s] %6.1f / %.1f MB", filled,
            "########################################", width - filled, "", bytes / 1e6,
            total / 1e6);
}

static int copy_out(const char *from, const char *dir, const char *name)
{
    char *to = pm_node_path(dir, name);
    int in = open(from, O_RDONLY), out = to ? open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;
    /* patient data: owner only, also when overwriting a file of another mode */
    int rc = in >= 0 && out >= 0 && fchmod(out, 0600) == 0 ? PM_OK : PM_E_IO;
    char buf[1 << 16];
    ssize_t n;
    while (!rc && (n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            rc = PM_E_IO;
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = PM_E_IO;
    free(to);
    return rc;
}

/* Writes every instance of the study to dir as <SOPInstanceUID>.dcm. */
static int write_out(pm_blobs *blobs, const Pm__StudyView *sv, const char *dir, unsigned *count)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pm_cli_fail("cannot create %s: %s", dir, strerror(errno));
    for (size_t s = 0; s < sv->study->n_series; s++)
        for (size_t i = 0; i < sv->study->series[s]->n_instances; i++) {
            const Pm__Instance *in = sv->study->series[s]->instances[i];
            char path[4096], name[PM_UID_MAX + 8];
            if (pm_blobs_path(blobs, in->hash.data, path, sizeof path) != PM_OK)
                return pm_cli_fail("instance %s is not in the local cache", in->sop_instance_uid);
            snprintf(name, sizeof name, "%s.dcm", in->sop_instance_uid);
            if (copy_out(path, dir, name))
                return pm_cli_fail("cannot write %s/%s", dir, name);
            (*count)++;
        }
    return PM_EXIT_OK;
}

static int wait_for_job(pm_node *node, json_int_t job, int bar, json_t **final)
{
    pm_progress plain;
    pm_progress_start(&plain, "fetched", "instances");
    for (;;) {
        json_t *req = json_pack("{s:s, s:I}", "cmd", "fetch-status", "job", job), *st = NULL;
        int r = pm_admin_request(node, req, 5000, &st);
        json_decref(req);
        if (r)
            return pm_cli_fail("lost contact with the node: %s", pm_strerror(r));
        const char *state = json_string_value(json_object_get(st, "state"));
        if (!state) {
            json_decref(st);
            return pm_cli_fail("the node forgot the fetch job");
        }
        if (bar)
            progress_bar(st);
        else /* not a terminal: a plain line now and then */
            pm_progress_update(&plain,
                               (uint64_t)json_integer_value(json_object_get(st, "instances_done")),
                               (uint64_t)json_integer_value(json_object_get(st, "bytes")),
                               (uint64_t)json_integer_value(json_object_get(st, "total")));
        if (strcmp(state, "running") != 0) {
            if (bar)
                fputc('\n', stderr);
            *final = st;
            return PM_EXIT_OK;
        }
        json_decref(st);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling interval of the progress display */
    }
}

int pm_cmd_fetch(int argc, char **argv)
{
    const char *out = NULL, *reporter = NULL;
    pm_cli_opt opts[] = {{"out", &out, NULL}, {"reporter", &reporter, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (!rc && a.nargs != 1)
        rc = pm_cli_usage(a.usage, "give exactly one STUDY_UID");
    pm_node node;
    if (rc || (rc = pm_node_open(a.dir, PM_NODE_ALL | PM_NODE_BLOBS, &node))) {
        return rc;
    }
    Pm__StudyView *sv = NULL;
    json_t *st = NULL;
    if (pm_views_study(node.store, a.args[0], &sv) != PM_OK || !sv->study) {
        rc = pm_cli_fail("unknown study %s: no node of the mesh has announced it", a.args[0]);
        goto done;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The reader goes on the record (study-accessed): the reporter if given. */
    if (!reporter)
        reporter = getenv("USER") ? getenv("USER") : "cli";
    json_t *req =
               json_pack("{s:s, s:s, s:s}", "cmd", "fetch", "study", a.args[0], "reader", reporter),
           *reply = NULL;
    int r = pm_admin_request(&node, req, 5000, &reply);
    json_decref(req);
    if (r == PM_E_NOTFOUND) {
        rc = pm_cli_fail("the node is not running: start it with `pacsmesh run` (fetching needs "
                         "the mesh)");
        goto done;
    }
    if (r || json_object_get(reply, "error")) {
        rc = pm_cli_fail("fetch refused: %s",
                         r ? pm_strerror(r) : json_string_value(json_object_get(reply, "error")));
        json_decref(reply);
        goto done;
    }
    json_int_t job = json_integer_value(json_object_get(reply, "job"));
    json_decref(reply);
    if ((rc = wait_for_job(&node, job, isatty(STDERR_FILENO), &st)))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (strcmp(json_string_value(json_object_get(st, "state")), "done") != 0) {
        rc = pm_cli_fail("fetch of %s failed: %s (no holder that is up could serve every "
                         "instance)",
                         a.args[0], json_string_value(json_object_get(st, "error")));
        goto done;
    }
    double bytes = (double)json_integer_value(json_object_get(st, "bytes"));
    printf("fetched %.0f bytes (%lld instances) in %.3f s (%.1f MB/s); study %s is cached\n", bytes,
           (long long)json_integer_value(json_object_get(st, "instances")), secs,
           secs > 0 ? bytes / 1e6 / secs : 0.0, a.args[0]);
    unsigned written = 0;
    if (out && (rc = write_out(node.blobs, sv, out, &written)) == PM_EXIT_OK)
        printf("wrote %u instances to %s\n", written, out);
done:
    json_decref(st);
    if (sv)
        pm__study_view__free_unpacked(sv, NULL);
    pm_node_close(&node);
    return rc;
}
