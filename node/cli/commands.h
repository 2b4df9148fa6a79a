/* The subcommands and the one table that describes them: name, function, usage line
 * and one-line help. The table drives dispatch (main.c), `pacsmesh help`, `COMMAND
 * --help` and every usage message (pm_cli_parse looks the usage line up by command
 * name), so a command's usage is written once, here. Adding a command is one row in
 * commands.c and its function in a cmd_*.c. Each function returns an exit status
 * (PM_EXIT_*); argv[0] is the command's name. */
#ifndef PM_COMMANDS_H
#define PM_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage; /* without the leading "pacsmesh " */
    const char *help;
} pm_cli_command;

/* The row of the command called name, or NULL. */
const pm_cli_command *pm_cli_command_find(const char *name);

/* Prints the list of commands with their help lines. */
void pm_cli_print_help(FILE *out);

int pm_cmd_help(int argc, char **argv);
int pm_cmd_version(int argc, char **argv);
int pm_cmd_init(int argc, char **argv);
int pm_cmd_id(int argc, char **argv);
int pm_cmd_genesis(int argc, char **argv);
int pm_cmd_admit(int argc, char **argv);
int pm_cmd_join(int argc, char **argv);
int pm_cmd_revoke(int argc, char **argv);
int pm_cmd_members(int argc, char **argv);
int pm_cmd_digest(int argc, char **argv);
int pm_cmd_status(int argc, char **argv);
int pm_cmd_run(int argc, char **argv);
int pm_cmd_audit(int argc, char **argv);
int pm_cmd_import(int argc, char **argv);
int pm_cmd_studies(int argc, char **argv);
int pm_cmd_fetch(int argc, char **argv);
int pm_cmd_worklist(int argc, char **argv);
int pm_cmd_claim(int argc, char **argv);
int pm_cmd_release(int argc, char **argv);
int pm_cmd_report(int argc, char **argv);
int pm_cmd_verify(int argc, char **argv);
int pm_cmd_reports(int argc, char **argv);
int pm_cmd_tat(int argc, char **argv);
int pm_cmd_assign(int argc, char **argv);
int pm_cmd_flag(int argc, char **argv);
int pm_cmd_withdraw(int argc, char **argv);
int pm_cmd_reporter(int argc, char **argv);
int pm_cmd_next(int argc, char **argv);
int pm_cmd_user(int argc, char **argv);
int pm_cmd_backup(int argc, char **argv);
int pm_cmd_restore(int argc, char **argv);
int pm_cmd_confirm(int argc, char **argv);
int pm_cmd_check(int argc, char **argv);

#endif
