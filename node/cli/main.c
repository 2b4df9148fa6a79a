/* pacsmesh: one program, subcommands dispatched from the table in commands.c, which
 * also drives `pacsmesh help` and every usage line. */
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/cli/remote.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "pacsmesh: libsodium failed to initialise\n");
        return PM_EXIT_FAIL;
    }
    /* Everything this program writes may hold patient data (blobs, the spool, audit
     * exports, backups, fetched studies, reports; also what dcmtk and LMDB create, with
     * modes of their own): owner only, whatever the umask it was started with. */
    umask(077);
    /* `pacsmesh --dir D status` is `pacsmesh status --dir D`. */
    int rc = pm_cli_hoist_globals(argc, argv);
    if (rc)
        return rc;
    if (argc < 2) {
        pm_cli_print_help(stderr);
        return PM_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0)
        name = "version";
    const pm_cli_command *c = pm_cli_command_find(name);
    if (!c) {
        fprintf(stderr, "pacsmesh: unknown command '%s'\n", name);
        pm_cli_print_help(stderr);
        return PM_EXIT_USAGE;
    }
    argv[1] = (char *)c->name; /* so that the command finds its own row */
    if (c->run != pm_cmd_help)
        for (int a = 2; a < argc; a++)
            if (strcmp(argv[a], "--help") == 0) {
                printf("usage: pacsmesh %s\n%s\n", c->usage, c->help);
                return PM_EXIT_OK;
            }
    if (pm_remote_wanted(argc - 1, argv + 1)) /* COMMAND --node URL: another node's API */
        return pm_remote_run(argc - 1, argv + 1);
    return c->run(argc - 1, argv + 1);
}
