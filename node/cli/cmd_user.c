/* pacsmesh user add|list|remove: the people who may sign in to this node's web server
 * (node/users/users.h). The password is read from stdin, never from the command line,
 * so it stays out of the process list and shell history. */
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "node/users/users.h"
#include "proto/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The users file of the node at dir; the caller frees it. */
static char *users_path(const char *dir)
{
    pm_node node;
    if (pm_node_open(dir, PM_NODE_CONFIG, &node))
        return NULL;
    char *path = node.cfg->http_users && *node.cfg->http_users ? strdup(node.cfg->http_users)
                                                               : pm_node_path(dir, "users");
    pm_node_close(&node);
    return path;
}

/* One line of stdin without its line end, in guarded memory wiped by the caller. */
static char *read_password(void)
{
    char *pw = sodium_malloc(PM_USER_PASSWORD_MAX + 2);
    if (!pw)
        return NULL;
    if (!fgets(pw, PM_USER_PASSWORD_MAX + 2, stdin)) {
        sodium_free(pw);
        return NULL;
    }
    pw[strcspn(pw, "\r\n")] = 0;
    return pw;
}

static int user_add(const pm_cli_args *a, const char *path, const char *role_text,
                    const char *reporter)
{
    pm_role role;
    if (a->nargs != 2)
        return pm_cli_usage(a->usage, "user add takes exactly one NAME");
    if (!role_text || pm_users_role_parse(role_text, &role))
        return pm_cli_usage(a->usage, "--role is one of reporter, coordinator, auditor, admin");
    if (role == PM_ROLE_REPORTER && !reporter)
        return pm_cli_usage(a->usage, "a reporter needs --reporter ID (the reporter id they "
                                      "claim and report under)");
    char *pw = read_password();
    if (!pw)
        return pm_cli_fail("no password on stdin (give it as one line)");
    char err[512] = "";
    int rc = pm_users_add(path, a->args[1], role, reporter, pw, err, sizeof err);
    sodium_free(pw);
    if (rc)
        return rc == PM_E_INVAL ? pm_cli_usage(a->usage, "%s", err) : pm_cli_fail("%s", err);
    printf("added user %s (%s%s%s)\n", a->args[1], role_text, reporter ? ", reporter " : "",
           reporter ? reporter : "");
    return PM_EXIT_OK;
}

static int user_list(const pm_cli_args *a, const char *path)
{
    pm_users *u = NULL;
    char err[512] = "";
    if (pm_users_load(path, &u, err, sizeof err))
        return pm_cli_fail("%s", err);
    json_t *list = json_array();
    for (size_t i = 0; i < pm_users_count(u); i++) {
        const pm_user *x = pm_users_at(u, i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s?}", "name", x->name, "role",
                                              pm_users_role_name(x->role), "reporter",
                                              *x->reporter ? x->reporter : NULL));
    }
    pm_users_destroy(&u);
    if (a->json) {
        pm_cli_print_json(list);
        return PM_EXIT_OK;
    }
    static const char *const head[] = {"NAME", "ROLE", "REPORTER"};
    pm_table *t = pm_table_new(3, head);
    size_t i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        const char *rep = json_string_value(json_object_get(o, "reporter"));
        const char *row[] = {json_string_value(json_object_get(o, "name")),
                             json_string_value(json_object_get(o, "role")), rep ? rep : ""};
        pm_table_add(t, row);
    }
    pm_table_print(t, stdout);
    pm_table_destroy(&t);
    json_decref(list);
    return PM_EXIT_OK;
}

int pm_cmd_user(int argc, char **argv)
{
    const char *role = NULL, *reporter = NULL;
    pm_cli_opt opts[] = {{"role", &role, NULL}, {"reporter", &reporter, NULL}, {NULL, NULL, NULL}};
    pm_cli_args a;
    int rc = pm_cli_parse(argc, argv, opts, &a);
    if (rc)
        return rc;
    const char *verb = a.nargs ? a.args[0] : "";
    char *path = NULL;
    if (strcmp(verb, "add") && strcmp(verb, "list") && strcmp(verb, "remove"))
        rc = pm_cli_usage(a.usage, "say add, list or remove");
    else if (!(path = users_path(a.dir)))
        rc = PM_EXIT_FAIL;
    else if (strcmp(verb, "add") == 0)
        rc = user_add(&a, path, role, reporter);
    else if (strcmp(verb, "list") == 0)
        rc = a.nargs == 1 ? user_list(&a, path) : pm_cli_usage(a.usage, "user list takes no NAME");
    else if (a.nargs != 2)
        rc = pm_cli_usage(a.usage, "user remove takes exactly one NAME");
    else {
        char err[512] = "";
        int r = pm_users_remove(path, a.args[1], err, sizeof err);
        rc = r ? pm_cli_fail("%s", err) : PM_EXIT_OK;
        if (!r)
            printf("removed user %s\n", a.args[1]);
    }
    free(path);
    return rc;
}
