/* The subcommands: one entry each in main.c's table, which drives dispatch and
 * `pacsmesh help`. Each returns an exit status (PM_EXIT_*). */
#ifndef PM_COMMANDS_H
#define PM_COMMANDS_H

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

#endif
