/* Unit test of the CLI's argument parsing (node/cli/cli.c) and its command table
 * (node/cli/commands.c): options mixed with positional arguments, `--`, inline
 * values, the errors that are usage errors, the --dir default, global options before
 * the command, and that every command has exactly one row with a usage line. */
#include "node/cli/cli.h"
#include "node/cli/commands.h"
#include "test/check.h"

#include <stdlib.h>
#include <string.h>

/* A writable argv from string literals, as main receives it. */
typedef struct {
    char *v[16];
    int n;
} args_buf;

static args_buf argv_of(const char *const *words)
{
    args_buf b = {.n = 0};
    for (; words[b.n]; b.n++)
        b.v[b.n] = (char *)words[b.n];
    b.v[b.n] = NULL;
    return b;
}

static void test_mixed_options_and_arguments(void)
{
    const char *out = NULL, *reporter = NULL;
    int overdue = 0;
    pm_cli_opt opts[] = {{"out", &out, NULL},
                         {"reporter", &reporter, NULL},
                         {"overdue", NULL, &overdue},
                         {NULL, NULL, NULL}};
    args_buf b = argv_of((const char *[]){"fetch", "A", "--out", "/tmp/x", "B",
                                          "--reporter=dr.bell", "--overdue", "--json", "C", NULL});
    pm_cli_args a;
    CHECK_EQ_INT(pm_cli_parse(b.n, b.v, opts, &a), PM_EXIT_OK);
    CHECK_EQ_INT(a.nargs, 3);
    CHECK(strcmp(a.args[0], "A") == 0 && strcmp(a.args[1], "B") == 0 &&
          strcmp(a.args[2], "C") == 0);
    CHECK(out && strcmp(out, "/tmp/x") == 0);
    CHECK(reporter && strcmp(reporter, "dr.bell") == 0);
    CHECK_EQ_INT(overdue, 1);
    CHECK_EQ_INT(a.json, 1);
    /* The usage line is the command table's. */
    CHECK(strcmp(a.usage, pm_cli_command_find("fetch")->usage) == 0);
    /* The arguments are argv itself: nothing allocated. */
    CHECK(a.args == b.v + 1);
}

static void test_double_dash(void)
{
    args_buf b = argv_of((const char *[]){"import", "--json", "--", "--not-an-option", "x", NULL});
    pm_cli_args a;
    CHECK_EQ_INT(pm_cli_parse(b.n, b.v, NULL, &a), PM_EXIT_OK);
    CHECK_EQ_INT(a.json, 1);
    CHECK_EQ_INT(a.nargs, 2);
    CHECK(strcmp(a.args[0], "--not-an-option") == 0 && strcmp(a.args[1], "x") == 0);
}

static void test_usage_errors(void)
{
    const char *out = NULL;
    int flag = 0;
    pm_cli_opt opts[] = {{"out", &out, NULL}, {"flag", NULL, &flag}, {NULL, NULL, NULL}};
    pm_cli_args a;
    args_buf b1 = argv_of((const char *[]){"fetch", "--nope", NULL});
    CHECK_EQ_INT(pm_cli_parse(b1.n, b1.v, opts, &a), PM_EXIT_USAGE);
    args_buf b2 = argv_of((const char *[]){"fetch", "--out", NULL});
    CHECK_EQ_INT(pm_cli_parse(b2.n, b2.v, opts, &a), PM_EXIT_USAGE);
    args_buf b3 = argv_of((const char *[]){"fetch", "--flag=1", NULL});
    CHECK_EQ_INT(pm_cli_parse(b3.n, b3.v, opts, &a), PM_EXIT_USAGE);
    /* A prefix of an option is not the option. */
    args_buf b4 = argv_of((const char *[]){"fetch", "--ou", "x", NULL});
    CHECK_EQ_INT(pm_cli_parse(b4.n, b4.v, opts, &a), PM_EXIT_USAGE);
}

static void test_dir_default(void)
{
    pm_cli_args a;
    args_buf b = argv_of((const char *[]){"id", NULL});
    unsetenv("PACSMESH_DIR");
    CHECK_EQ_INT(pm_cli_parse(b.n, b.v, NULL, &a), PM_EXIT_OK);
    CHECK(strcmp(a.dir, "/var/lib/pacsmesh") == 0);
    setenv("PACSMESH_DIR", "/srv/node", 1);
    CHECK_EQ_INT(pm_cli_parse(b.n, b.v, NULL, &a), PM_EXIT_OK);
    CHECK(strcmp(a.dir, "/srv/node") == 0);
    args_buf c = argv_of((const char *[]){"id", "--dir", "/elsewhere", NULL});
    CHECK_EQ_INT(pm_cli_parse(c.n, c.v, NULL, &a), PM_EXIT_OK);
    CHECK(strcmp(a.dir, "/elsewhere") == 0);
    unsetenv("PACSMESH_DIR");
}

static void test_globals_before_the_command(void)
{
    args_buf b =
        argv_of((const char *[]){"pacsmesh", "--dir", "/d", "--json", "status", "x", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(b.n, b.v), PM_EXIT_OK);
    const char *want[] = {"pacsmesh", "status", "--dir", "/d", "--json", "x"};
    for (int i = 0; i < 6; i++)
        CHECK(strcmp(b.v[i], want[i]) == 0);
    pm_cli_args a;
    CHECK_EQ_INT(pm_cli_parse(b.n - 1, b.v + 1, NULL, &a), PM_EXIT_OK);
    CHECK(strcmp(a.dir, "/d") == 0 && a.json == 1 && a.nargs == 1);

    /* An option after the command is read later, so it wins. */
    args_buf c = argv_of((const char *[]){"pacsmesh", "--dir=/a", "id", "--dir", "/b", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(c.n, c.v), PM_EXIT_OK);
    CHECK_EQ_INT(pm_cli_parse(c.n - 1, c.v + 1, NULL, &a), PM_EXIT_OK);
    CHECK(strcmp(a.dir, "/b") == 0);

    /* Nothing to move: argv untouched. */
    args_buf d = argv_of((const char *[]){"pacsmesh", "id", "--dir", "/x", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(d.n, d.v), PM_EXIT_OK);
    CHECK(strcmp(d.v[1], "id") == 0 && strcmp(d.v[2], "--dir") == 0);
    /* --version stands for a command. */
    args_buf e = argv_of((const char *[]){"pacsmesh", "--dir", "/x", "--version", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(e.n, e.v), PM_EXIT_OK);
    CHECK(strcmp(e.v[1], "--version") == 0);

    args_buf f1 = argv_of((const char *[]){"pacsmesh", "--bogus", "id", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(f1.n, f1.v), PM_EXIT_USAGE);
    args_buf f2 = argv_of((const char *[]){"pacsmesh", "--dir", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(f2.n, f2.v), PM_EXIT_USAGE);
    args_buf f3 = argv_of((const char *[]){"pacsmesh", "--dir", "/x", NULL});
    CHECK_EQ_INT(pm_cli_hoist_globals(f3.n, f3.v), PM_EXIT_USAGE);
}

static void test_command_table(void)
{
    static const char *const names[] = {
        "init",    "id",     "genesis", "admit",   "join",  "revoke",   "run",   "status",
        "members", "digest", "import",  "studies", "fetch", "worklist", "claim", "release",
        "report",  "verify", "reports", "tat",     "audit", "version",  "help"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const pm_cli_command *c = pm_cli_command_find(names[i]);
        CHECK(c && c->run && c->help && *c->help);
        /* Each usage line starts with the command's own name. */
        CHECK(strncmp(c->usage, names[i], strlen(names[i])) == 0);
    }
    CHECK(pm_cli_command_find("nope") == NULL);
    CHECK(pm_cli_command_find(NULL) == NULL);
}

int main(void)
{
    test_mixed_options_and_arguments();
    test_double_dash();
    test_usage_errors();
    test_dir_default();
    test_globals_before_the_command();
    test_command_table();
    printf("test_cli_parse: ok\n");
    return 0;
}
