/* The table of subcommands (commands.h), `help` and `version`. */
#include "node/cli/commands.h"
#include "node/cli/cli.h"
#include "node/mesh/wire.h"
#include "proto/version.h"
#include "store/event.h"
#include "store/store.h"

#include <string.h>

static const pm_cli_command commands[] = {
    {"init", pm_cmd_init,
     "init --name NAME [--listen EP] [--advertise EP] [--dicom-port N] [--ae AE] [--admin EP]",
     "create a node directory: node.conf, identity key, store; prints the node id"},
    {"id", pm_cmd_id, "id", "print this node's id"},
    {"genesis", pm_cmd_genesis, "genesis --mesh NAME [--quorum K]",
     "make this node the first member of a new mesh; prints the mesh id"},
    {"admit", pm_cmd_admit, "admit NODE_ID --name NAME --endpoint EP",
     "approve a new member; prints its join token"},
    {"join", pm_cmd_join, "join TOKEN", "record the mesh and a first peer from a join token"},
    {"revoke", pm_cmd_revoke, "revoke NODE_ID --reason TEXT", "approve revoking a member"},
    {"run", pm_cmd_run, "run", "run the node in the foreground until SIGTERM/SIGINT"},
    {"status", pm_cmd_status, "status [--json]",
     "this node, its mesh, members up/down, feed heads, forks"},
    {"members", pm_cmd_members, "members [--json]", "the membership view"},
    {"digest", pm_cmd_digest, "digest", "hex digest of this node's views"},
    {"import", pm_cmd_import, "import PATH...",
     "ingest DICOM files and folders as if received by C-STORE"},
    {"studies", pm_cmd_studies,
     "studies [--patient-id P] [--name N] [--accession A] [--modality M] [--site NODE] "
     "[--since DATE] [--json]",
     "studies across the whole mesh, with whether each is viewable now"},
    {"fetch", pm_cmd_fetch, "fetch STUDY_UID [--out DIR] [--reporter ID]",
     "bring a study into the local cache from whichever peer holds it (verified)"},
    {"worklist", pm_cmd_worklist,
     "worklist [--state S] [--site NODE] [--subspecialty X] [--priority P] [--overdue] "
     "[--claimed-by ID] [--limit N [--offset N]] [--json]",
     "the network-wide worklist, soonest due first"},
    {"claim", pm_cmd_claim, "claim STUDY_UID --reporter ID",
     "claim an item for a reporter (with a lease)"},
    {"release", pm_cmd_release, "release STUDY_UID --reporter ID", "give a claimed item back"},
    {"report", pm_cmd_report, "report STUDY_UID --reporter ID --file F [--addendum]",
     "submit a report (UTF-8 text)"},
    {"verify", pm_cmd_verify, "verify STUDY_UID --reporter ID",
     "second read / verification of a report"},
    {"reporter", pm_cmd_reporter,
     "reporter add ID --name NAME [--subspecialty X]... [--site NODE]... [--capacity N] | "
     "reporter list [--json] | reporter remove ID",
     "the network's roster of reporters: what they read, where, how much at once"},
    {"next", pm_cmd_next, "next --reporter ID [--json]",
     "the item this reporter should take next (most urgent they may report)"},
    {"assign", pm_cmd_assign, "assign STUDY_UID --reporter ID --by COORDINATOR",
     "a coordinator assigns an item to a reporter (taking it from a holder)"},
    {"flag", pm_cmd_flag, "flag STUDY_UID --priority P --reason TEXT --by SOURCE",
     "raise or lower an item's priority (e.g. an AI triage result); due time follows"},
    {"withdraw", pm_cmd_withdraw, "withdraw STUDY_UID --reason TEXT",
     "on the acquiring node: a study sent in error leaves every worklist"},
    {"reports", pm_cmd_reports, "reports STUDY_UID [--json]", "every report submitted for a study"},
    {"tat", pm_cmd_tat, "tat [--site NODE] [--from DAY] [--to DAY] [--by KEYS] [--json]",
     "turnaround (median, 90th percentile, count) per site and priority"},
    {"user", pm_cmd_user,
     "user add NAME --role ROLE [--reporter ID] | user list [--json] | user remove NAME",
     "people who sign in to the web server (password from stdin; Argon2id)"},
    {"audit", pm_cmd_audit,
     "audit verify [FILE] | audit log [FILE] [--origin NODE] [--study UID | --patient ID] "
     "[--reporter ID] [--type TYPE] [--json] | "
     "audit export --out FILE | audit replay [FILE] --until TIME [--json]",
     "verify, list, export and replay the signed event log"},
    {"backup", pm_cmd_backup, "backup --out DIR", "a consistent copy of this node while it runs"},
    {"restore", pm_cmd_restore, "restore BACKUP_DIR", "make a backup the node directory again"},
    {"check", pm_cmd_check, "check", "re-derive the views and verify every blob's hash"},
    {"confirm", pm_cmd_confirm, "confirm --force", "override: a restored node signs unconfirmed"},
    {"version", pm_cmd_version, "version [--json]",
     "print the version of pacsmesh and of the formats it reads and writes"},
    {"help", pm_cmd_help, "help [COMMAND]", "list the commands, or show one command's usage"},
};

static const size_t n_commands = sizeof commands / sizeof commands[0];

const pm_cli_command *pm_cli_command_find(const char *name)
{
    for (size_t i = 0; name && i < n_commands; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

void pm_cli_print_help(FILE *out)
{
    fprintf(out, "usage: pacsmesh [--dir DIR] COMMAND [--dir DIR] [options]\n\n"
                 "Every command takes --dir DIR (default $PACSMESH_DIR, else /var/lib/pacsmesh)\n"
                 "and --help. Exit status: 0 success, 1 failure, 2 bad usage.\n\ncommands:\n");
    for (size_t i = 0; i < n_commands; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nRun 'pacsmesh COMMAND --help' for a command's options.\n");
}

int pm_cmd_help(int argc, char **argv)
{
    /* Parsed like any command, so that `pacsmesh --dir D help` and `--help` work too. */
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    const pm_cli_command *c = a.nargs ? pm_cli_command_find(a.args[0]) : NULL;
    if (a.nargs && !c) {
        fprintf(stderr, "pacsmesh: unknown command '%s'\n", a.args[0]);
        pm_cli_print_help(stderr);
        return PM_EXIT_USAGE;
    }
    if (c)
        printf("usage: pacsmesh %s\n%s\n", c->usage, c->help);
    else
        pm_cli_print_help(stdout);
    return PM_EXIT_OK;
}

int pm_cmd_version(int argc, char **argv)
{
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, NULL, &a);
    if (rc)
        return rc;
    if (a.nargs)
        return pm_cli_usage(a.usage, "unexpected argument '%s'", a.args[0]);
    if (a.json) {
        pm_cli_print_json(json_pack("{s:s, s:i, s:i, s:i}", "version", pm_version(), "store_format",
                                    PM_STORE_FORMAT, "event_format", PM_EVENT_FORMAT,
                                    "wire_version", PM_WIRE_VERSION));
        return PM_EXIT_OK;
    }
    /* The first line alone is what scripts compare. */
    printf("pacsmesh %s\nstore format %d\nevent format %d\nwire version %d\n", pm_version(),
           PM_STORE_FORMAT, PM_EVENT_FORMAT, PM_WIRE_VERSION);
    return PM_EXIT_OK;
}
