/* `pacsmesh COMMAND --node URL ...`: the worklist commands against another node's REST
 * API (docs/web.md) instead of a node directory, so a reporter needs no account on the
 * node's host. Credentials: $PACSMESH_TOKEN (a bearer token from POST /api/tokens), or
 * $PACSMESH_USER and $PACSMESH_PASSWORD. The reporter is the signed-in user's. */
#ifndef PM_CLI_REMOTE_H
#define PM_CLI_REMOTE_H

/* 1 if argv (a command's, argv[0] its name) holds --node. */
int pm_remote_wanted(int argc, char **argv);

/* Runs the command remotely; an exit status (PM_EXIT_*). */
int pm_remote_run(int argc, char **argv);

#endif
