/* Unit tests of node/config: defaults, every key, every kind of error (file, line and
 * key named), worklist rules, editing in place, and the file `init` writes. Each test
 * runs in its own temporary directory. */
#include "node/config/config.h"
#include "proto/error.h"
#include "proto/log.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;

/* Always on, whatever NDEBUG says; stops the test at the first failure. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,        \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                     \
            failures++;                                                                            \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static char dir[256];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void run(const char *name, void (*fn)(void))
{
    snprintf(dir, sizeof dir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    int before = failures;
    fn();
    printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name, in a static buffer (one at a time). */
static const char *in_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Loads text written as dir/node.conf. */
static int load_text(const char *text, pm_config **cfg, char *err, size_t errlen)
{
    write_text(in_dir("node.conf"), text);
    return pm_config_load(in_dir("node.conf"), dir, cfg, err, errlen);
}

/* ---------------------------------------------------------------- tests */

static void test_defaults(void)
{
    pm_config *cfg = NULL;
    char err[512] = "";
    int rc = load_text("[node]\nname = St Elsewhere\n", &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK && cfg);
    CHECK_STR(cfg->path, in_dir("node.conf"));
    CHECK_STR(cfg->name, "St Elsewhere");
    CHECK_STR(cfg->listen, "tcp://0.0.0.0:7400");
    CHECK_STR(cfg->advertise, "tcp://127.0.0.1:7400");
    char admin[600];
    snprintf(admin, sizeof admin, "ipc://%s/admin.sock", dir);
    CHECK_STR(cfg->admin, admin);
    CHECK(cfg->log_level == PM_LOG_INFO);
    CHECK_STR(cfg->mesh_id, "");
    CHECK(cfg->quorum == 1);
    CHECK(cfg->n_peers == 0 && cfg->peers == NULL);
    CHECK_STR(cfg->ae_title, "PACSMESH");
    CHECK(cfg->dicom_port == 11112);
    CHECK_STR(cfg->dicom_bind, "127.0.0.1");
    CHECK(cfg->allow_store_from_any == 0 && cfg->dicom_require_client_cert == 0);
    CHECK(cfg->n_allowed_aes == 0);
    CHECK(cfg->max_pdu == 131072);
    CHECK(cfg->n_destinations == 0);
    CHECK(cfg->gossip_interval_ms == 500);
    CHECK(cfg->gossip_fanout == 3);
    CHECK(cfg->gossip_max_batch == 1024);
    CHECK(cfg->cache_max_bytes == 10ULL << 30);
    CHECK_STR(cfg->metrics_listen, "");
    CHECK(cfg->due_immediate_ms == 3600000ULL);
    CHECK(cfg->due_urgent_ms == 24 * 3600000ULL);
    CHECK(cfg->due_routine_ms == 28 * 86400000ULL);
    CHECK(cfg->lease_ms == 4 * 3600000ULL);
    CHECK_STR(cfg->default_priority, "routine");
    CHECK(cfg->n_rules == 0);
    pm_config_destroy(&cfg);
    CHECK(cfg == NULL);
    pm_config_destroy(&cfg); /* safe twice */
    pm_config_destroy(NULL);

    /* node_dir NULL: the directory holding the file. */
    CHECK(pm_config_load(in_dir("node.conf"), NULL, &cfg, err, sizeof err) == PM_OK);
    CHECK_STR(cfg->admin, admin);
    pm_config_destroy(&cfg);

    /* Listening on one address: advertise that address. */
    CHECK(load_text("[node]\nname = a\nlisten = tcp://10.2.3.4:7000\n", &cfg, err, sizeof err) ==
          PM_OK);
    CHECK_STR(cfg->advertise, "tcp://10.2.3.4:7000");
    pm_config_destroy(&cfg);
    CHECK(load_text("[node]\nname = a\nlisten = tcp://*:7001\n", &cfg, err, sizeof err) == PM_OK);
    CHECK_STR(cfg->advertise, "tcp://127.0.0.1:7001");
    pm_config_destroy(&cfg);
}

static const char full_conf[] =
    "; every key set\n"
    "[node]\n"
    "name = Royal Infirmary\n"
    "listen = tcp://0.0.0.0:7401\n"
    "advertise = tcp://pacs.ri.nhs.uk:7401\n"
    "admin = ipc:///run/pacsmesh/admin.sock\n"
    "log_level = debug\n"
    "\n"
    "[mesh]\n"
    "id = 0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef\n"
    "quorum = 2\n"
    "peers = tcp://10.0.0.1:7400, tcp://10.0.0.2:7400\n"
    "  peers = tcp://[fd00::3]:7400   \n"
    "\n"
    "[dicom]\n"
    "ae_title = RI_MESH\n"
    "port = 104\n"
    "bind = 127.0.0.1\n"
    "allowed_aes = VIEWER1 VIEWER2,MODALITY_CT\n"
    "max_pdu = 65536\n"
    "\n"
    "[dicom.destinations]\n"
    "VIEWER1 = 10.1.1.5:104\n"
    "VIEWER2 = [::1]:11113\n"
    "\n"
    "[gossip]\n"
    "interval_ms = 250\n"
    "fanout = 4\n"
    "max_batch = 128\n"
    "\n"
    "[cache]\n"
    "max_bytes = 500MB\n"
    "\n"
    "[metrics]\n"
    "listen = 127.0.0.1:9464\n"
    "\n"
    "[worklist]\n"
    "due_immediate = 30m\n"
    "due_urgent = 12h\n"
    "due_routine = 3w\n"
    "default_priority = urgent\n"
    "lease = 1h30m\n"
    "rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro\n"
    "rule = modality=MG : subspecialty=breast double_read=yes due=14d\n"
    "rule = description=\"*TRAUMA ?ERIES*\" : priority=immediate\n";

static void test_every_key(void)
{
    pm_config *cfg = NULL;
    char err[512] = "";
    int rc = load_text(full_conf, &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK);
    CHECK_STR(cfg->name, "Royal Infirmary");
    CHECK_STR(cfg->listen, "tcp://0.0.0.0:7401");
    CHECK_STR(cfg->advertise, "tcp://pacs.ri.nhs.uk:7401");
    CHECK_STR(cfg->admin, "ipc:///run/pacsmesh/admin.sock");
    CHECK(cfg->log_level == PM_LOG_DEBUG);
    CHECK_STR(cfg->mesh_id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    CHECK(cfg->quorum == 2);
    CHECK(cfg->n_peers == 3);
    CHECK_STR(cfg->peers[0], "tcp://10.0.0.1:7400");
    CHECK_STR(cfg->peers[1], "tcp://10.0.0.2:7400");
    CHECK_STR(cfg->peers[2], "tcp://[fd00::3]:7400");
    CHECK(cfg->peers[3] == NULL);
    CHECK_STR(cfg->ae_title, "RI_MESH");
    CHECK(cfg->dicom_port == 104);
    CHECK_STR(cfg->dicom_bind, "127.0.0.1");
    CHECK(cfg->n_allowed_aes == 3);
    CHECK_STR(cfg->allowed_aes[0], "VIEWER1");
    CHECK_STR(cfg->allowed_aes[1], "VIEWER2");
    CHECK_STR(cfg->allowed_aes[2], "MODALITY_CT");
    CHECK(cfg->allowed_aes[3] == NULL);
    CHECK(cfg->max_pdu == 65536);
    CHECK(cfg->n_destinations == 2);
    CHECK_STR(cfg->destinations[0].destination_ae, "VIEWER1");
    CHECK_STR(cfg->destinations[0].host, "10.1.1.5");
    CHECK(cfg->destinations[0].port == 104);
    CHECK_STR(cfg->destinations[1].host, "::1");
    CHECK(cfg->destinations[1].port == 11113);
    CHECK(cfg->gossip_interval_ms == 250);
    CHECK(cfg->gossip_fanout == 4);
    CHECK(cfg->gossip_max_batch == 128);
    CHECK(cfg->cache_max_bytes == 500000000ULL);
    CHECK_STR(cfg->metrics_listen, "127.0.0.1:9464");
    CHECK(cfg->due_immediate_ms == 30 * 60000ULL);
    CHECK(cfg->due_urgent_ms == 12 * 3600000ULL);
    CHECK(cfg->due_routine_ms == 21 * 86400000ULL);
    CHECK_STR(cfg->default_priority, "urgent");
    CHECK(cfg->lease_ms == 90 * 60000ULL);
    CHECK(cfg->n_rules == 3);
    CHECK_STR(cfg->rules[0].conditions_text,
              "modality=CT body_part=HEAD : priority=urgent subspecialty=neuro");
    CHECK(cfg->rules[0].line == 43);
    CHECK_STR(cfg->rules[0].modality, "CT");
    CHECK_STR(cfg->rules[0].body_part, "HEAD");
    CHECK(cfg->rules[0].description == NULL);
    CHECK_STR(cfg->rules[0].priority, "urgent");
    CHECK_STR(cfg->rules[0].subspecialty, "neuro");
    CHECK(cfg->rules[0].double_read == 0 && cfg->rules[0].due_ms == 0);
    CHECK_STR(cfg->rules[1].priority, "");
    CHECK(cfg->rules[1].double_read == 1);
    CHECK(cfg->rules[1].due_ms == 14 * 86400000ULL);
    CHECK_STR(cfg->rules[2].description, "*TRAUMA ?ERIES*");

    /* The dump is itself a node.conf that loads to the same configuration. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    pm_config_dump(cfg, m);
    fclose(m);
    CHECK(strstr(text, "max_bytes = 500000000\n") || strstr(text, "max_bytes = 500MB\n"));
    CHECK(strstr(text, "due_routine = 21d\n"));
    CHECK(strstr(text, "VIEWER2 = [::1]:11113\n"));
    pm_config *again = NULL;
    rc = pm_config_parse("dump", text, len, dir, &again, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    free(text);
    CHECK(rc == PM_OK);
    CHECK(again->n_peers == 3 && again->n_rules == 3 && again->n_destinations == 2);
    CHECK(again->cache_max_bytes == cfg->cache_max_bytes);
    CHECK(again->lease_ms == cfg->lease_ms);
    CHECK_STR(again->advertise, cfg->advertise);
    pm_config_destroy(&again);
    pm_config_destroy(&cfg);
}

/* Each bad file must fail with "<path>:<line>:" and name the key (or section). */
static void test_errors(void)
{
    static const struct {
        const char *what, *text;
        int line;
        const char *key, *also;
    } cases[] = {
        {"unknown section", "[node]\nname = a\n\n[nodes]\nx = 1\n", 4, "[nodes]",
         "unknown section"},
        {"empty unknown section", "[node]\nname = a\n[foo]\n", 3, "[foo]", "unknown section"},
        {"unknown key", "[node]\nname = a\nlisten_on = tcp://*:1\n", 3, "[node] listen_on",
         "unknown key"},
        {"key outside section", "name = a\n[node]\n", 1, "name", "outside any section"},
        {"bad number", "[node]\nname = a\n[gossip]\n\ninterval_ms = fast\n", 5,
         "[gossip] interval_ms", "\"fast\" is not a number of milliseconds (10..60000)"},
        {"out of bounds", "[node]\nname = a\n[mesh]\nquorum = 101\n", 4, "[mesh] quorum",
         "out of range (1..100)"},
        {"out of bounds pdu", "[node]\nname = a\n[dicom]\nmax_pdu = 1024\n", 4, "[dicom] max_pdu",
         "out of range"},
        {"negative", "[node]\nname = a\n[gossip]\nfanout = -3\n", 4, "[gossip] fanout",
         "not a number of peers"},
        {"bad port", "[node]\nname = a\n[dicom]\nport = 70000\n", 4, "[dicom] port", "70000"},
        {"bad duration", "[node]\nname = a\n[worklist]\nlease = 4 hours\n", 4, "[worklist] lease",
         "not a duration"},
        {"duration out of range", "[node]\nname = a\n[worklist]\ndue_urgent = 10ms\n", 4,
         "[worklist] due_urgent", "out of range"},
        {"bad size", "[node]\nname = a\n[cache]\nmax_bytes = lots\n", 4, "[cache] max_bytes",
         "not a size"},
        {"bad endpoint", "[node]\nname = a\nlisten = 0.0.0.0:7400\n", 3, "[node] listen",
         "not an endpoint"},
        {"wildcard advertise", "[node]\nname = a\nadvertise = tcp://0.0.0.0:7400\n", 3,
         "[node] advertise", "wildcard"},
        {"bad peer", "[node]\nname = a\n[mesh]\npeers = tcp://a:1\npeers = tcp://b:1 tcp://c\n", 5,
         "[mesh] peers", "\"tcp://c\""},
        {"metrics not loopback", "[node]\nname = a\n[metrics]\nlisten = 0.0.0.0:9464\n", 4,
         "[metrics] listen", "loopback"},
        {"bad bind", "[node]\nname = a\n[dicom]\nbind = example\n", 4, "[dicom] bind",
         "not an IP address"},
        {"bad AE title", "[node]\nname = a\n[dicom]\nae_title = WAY_TOO_LONG_AE_TITLE\n", 4,
         "[dicom] ae_title", "not an AE title"},
        {"AE backslash", "[node]\nname = a\n[dicom]\nallowed_aes = OK BAD\\AE\n", 4,
         "[dicom] allowed_aes", "not an AE title"},
        {"bad destination", "[node]\nname = a\n[dicom.destinations]\nVIEWER = 10.0.0.5\n", 4,
         "[dicom.destinations] VIEWER", "not host:port"},
        {"bad destination port", "[node]\nname = a\n[dicom.destinations]\nV = h:0\n", 4,
         "[dicom.destinations] V", "not host:port"},
        {"bad destination AE", "[node]\nname = a\n[dicom.destinations]\nA\\B = h:104\n", 4,
         "[dicom.destinations] A\\B", "not an AE title"},
        {"duplicate destination", "[node]\nname = a\n[dicom.destinations]\nV = h:1\nV = h:2\n", 5,
         "[dicom.destinations] V", "first on line 4"},
        {"bad rule syntax", "[node]\nname = a\n[worklist]\nrule = modality=CT priority=urgent\n", 4,
         "[worklist] rule", "CONDITIONS : SETTINGS"},
        {"rule unknown condition",
         "[node]\nname = a\n[worklist]\nrule = colour=red : priority=urgent\n", 4,
         "[worklist] rule", "unknown condition \"colour\""},
        {"rule no settings", "[node]\nname = a\n[worklist]\nrule = modality=CT :\n", 4,
         "[worklist] rule", "no settings"},
        {"rule bad priority", "[node]\nname = a\n[worklist]\nrule = modality=CT : priority=asap\n",
         4, "[worklist] rule", "not a priority"},
        {"rule bad double_read", "[node]\nname = a\n[worklist]\nrule = : double_read=maybe\n", 4,
         "[worklist] rule", "yes or no"},
        {"rule bad due", "[node]\nname = a\n[worklist]\nrule = modality=CT : due=soon\n", 4,
         "[worklist] rule", "not a duration"},
        {"rule unclosed quote", "[node]\nname = a\n[worklist]\nrule = description=\"CT : due=1h\n",
         4, "[worklist] rule", "CONDITIONS : SETTINGS"},
        {"bad priority", "[node]\nname = a\n[worklist]\ndefault_priority = high\n", 4,
         "[worklist] default_priority", "not a priority (immediate, urgent, routine)"},
        {"bad log level", "[node]\nname = a\nlog_level = verbose\n", 3, "[node] log_level",
         "not a log level"},
        {"bad mesh id", "[node]\nname = a\n[mesh]\nid = 1234\n", 4, "[mesh] id", "not a mesh id"},
        {"set twice", "[node]\nname = a\nname = b\n", 3, "[node] name", "first on line 2"},
        {"syntax", "[node]\nname = a\nthis is not a key\n", 3, "syntax error",
         "\"this is not a key\""},
        {"unclosed section", "[node]\nname = a\n[dicom\n", 3, "syntax error", "[dicom"},
        {"long line",
         "[node]\nname = a\n[mesh]\npeers = "
         "tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 "
         "tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 "
         "tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1 tcp://a:1\n",
         4, "[mesh] peers", "longer than"},
        {"first error wins", "[node]\nname = a\n[gossip]\nfanout = 0\nfanout = x\n[bad]\n", 4,
         "[gossip] fanout", "out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pm_config *cfg = NULL;
        char err[512] = "", want[600];
        int rc = load_text(cases[i].text, &cfg, err, sizeof err);
        snprintf(want, sizeof want, "%s:%d: ", in_dir("node.conf"), cases[i].line);
        if (getenv("TEST_VERBOSE"))
            printf("    %-24s %s\n", cases[i].what, err);
        if (rc != PM_E_CONFIG || cfg || strncmp(err, want, strlen(want)) != 0 ||
            !strstr(err, cases[i].key) || !strstr(err, cases[i].also) || strchr(err, '\n')) {
            fprintf(stderr, "case \"%s\": rc %d, message: %s\n  want: %s... %s ... %s\n",
                    cases[i].what, rc, err, want, cases[i].key, cases[i].also);
            CHECK(0);
        }
    }

    /* Missing name: an error naming the file and the key, with no line. */
    pm_config *cfg = NULL;
    char err[512];
    CHECK(load_text("[dicom]\nport = 104\n", &cfg, err, sizeof err) == PM_E_CONFIG);
    CHECK(strstr(err, "node.conf: [node] name"));
    /* A missing file is an I/O error. */
    CHECK(pm_config_load(in_dir("nope.conf"), NULL, &cfg, err, sizeof err) == PM_E_IO);
    CHECK(strstr(err, "nope.conf") && cfg == NULL);
    /* A NULL error buffer is fine. */
    CHECK(load_text("[x]\n", &cfg, NULL, 0) == PM_E_CONFIG);
}

static void test_lexical(void)
{
    /* BOM, CRLF, indentation, ';' and '#' comments, inline ';' comments. */
    pm_config *cfg = NULL;
    char err[512] = "";
    int rc = load_text("\xEF\xBB\xBF# comment\r\n[node]\r\n    name = A ; inline\r\n"
                       "\tlisten = tcp://127.0.0.1:9\r\n; other\r\n",
                       &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK);
    CHECK_STR(cfg->name, "A");
    CHECK_STR(cfg->listen, "tcp://127.0.0.1:9");
    pm_config_destroy(&cfg);
    /* An indented line is a key of its own, never a continuation of the previous value. */
    CHECK(load_text("[node]\nname = A\n  bogus\n", &cfg, err, sizeof err) == PM_E_CONFIG);
    CHECK(strstr(err, ":3: syntax error"));
    /* The NUL byte. */
    write_text(in_dir("node.conf"), "");
    FILE *f = fopen(in_dir("node.conf"), "w");
    fwrite("[node]\nname = a\0b\n", 1, 18, f);
    fclose(f);
    CHECK(pm_config_load(in_dir("node.conf"), dir, &cfg, err, sizeof err) == PM_E_CONFIG);
    CHECK(strstr(err, ":2:") && strstr(err, "NUL"));
}

static void test_parsers(void)
{
    uint64_t v;
    CHECK(pm_config_parse_duration("90s", &v) == PM_OK && v == 90000);
    CHECK(pm_config_parse_duration("15m", &v) == PM_OK && v == 900000);
    CHECK(pm_config_parse_duration("1h", &v) == PM_OK && v == 3600000);
    CHECK(pm_config_parse_duration("28d", &v) == PM_OK && v == 28 * 86400000ULL);
    CHECK(pm_config_parse_duration("500ms", &v) == PM_OK && v == 500);
    CHECK(pm_config_parse_duration("1h30m", &v) == PM_OK && v == 5400000);
    CHECK(pm_config_parse_duration("2w", &v) == PM_OK && v == 14 * 86400000ULL);
    CHECK(pm_config_parse_duration("0", &v) == PM_OK && v == 0);
    CHECK(pm_config_parse_duration("", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("90", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("h", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("1x", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("-1s", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("1 h", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("99999999999999999999d", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_duration("9999999999999999d", &v) == PM_E_INVAL);

    CHECK(pm_config_parse_bytes("1024", &v) == PM_OK && v == 1024);
    CHECK(pm_config_parse_bytes("10MiB", &v) == PM_OK && v == 10 << 20);
    CHECK(pm_config_parse_bytes("5GB", &v) == PM_OK && v == 5000000000ULL);
    CHECK(pm_config_parse_bytes("10GiB", &v) == PM_OK && v == 10ULL << 30);
    CHECK(pm_config_parse_bytes("500 mb", &v) == PM_OK && v == 500000000ULL);
    CHECK(pm_config_parse_bytes("2TiB", &v) == PM_OK && v == 2ULL << 40);
    CHECK(pm_config_parse_bytes("1.5GB", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_bytes("GB", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_bytes("", &v) == PM_E_INVAL);
    CHECK(pm_config_parse_bytes("16384PiB", &v) == PM_E_INVAL);

    char buf[32];
    CHECK_STR(pm_config_format_duration(28 * 86400000ULL, buf, sizeof buf), "28d");
    CHECK_STR(pm_config_format_duration(5400000, buf, sizeof buf), "90m");
    CHECK_STR(pm_config_format_duration(1500, buf, sizeof buf), "1500ms");
    CHECK_STR(pm_config_format_bytes(10ULL << 30, buf, sizeof buf), "10GiB");
    CHECK_STR(pm_config_format_bytes(1000, buf, sizeof buf), "1KB");
    CHECK_STR(pm_config_format_bytes(1001, buf, sizeof buf), "1001");

    CHECK(pm_config_wildcard_match("*", ""));
    CHECK(pm_config_wildcard_match("*", NULL));
    CHECK(pm_config_wildcard_match("ct", "CT"));
    CHECK(pm_config_wildcard_match("*head*", "CT HEAD W/O"));
    CHECK(pm_config_wildcard_match("C?", "CR"));
    CHECK(!pm_config_wildcard_match("C?", "C"));
    CHECK(!pm_config_wildcard_match("CT", "CTA"));
    CHECK(pm_config_wildcard_match("a*b*c", "aXXbYYbZc"));
    CHECK(!pm_config_wildcard_match("a*b*c", "aXXbYYbZ"));
    CHECK(pm_config_wildcard_match("**a", "a"));
}

static void test_rules(void)
{
    pm_config *cfg = NULL;
    char err[512] = "";
    int rc = load_text("[node]\nname = a\n[worklist]\n"
                       "due_immediate = 1h\ndue_urgent = 24h\ndue_routine = 28d\n"
                       "rule = modality=CT body_part=HEAD : priority=urgent subspecialty=neuro\n"
                       "rule = modality=ct : priority=routine subspecialty=body\n"
                       "rule = modality=M? : subspecialty=breast double_read=yes\n"
                       "rule = description=\"*stroke*\" : priority=immediate due=15m\n"
                       "rule = body_part=CHEST description=*XR* : subspecialty=chest\n",
                       &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK && cfg->n_rules == 5);
    char prio[16], sub[64];
    int dr;
    uint64_t due, now = 1000000;

    /* First match wins: CT HEAD is neuro, not body. Case-insensitive values. */
    pm_worklist_terms(cfg, "CT", "head", "CT BRAIN", now, prio, sub, &dr, &due);
    CHECK_STR(prio, "urgent");
    CHECK_STR(sub, "neuro");
    CHECK(dr == 0 && due == now + 24 * 3600000ULL);
    pm_worklist_terms(cfg, "CT", "ABDOMEN", "", now, prio, sub, &dr, &due);
    CHECK_STR(prio, "routine");
    CHECK_STR(sub, "body");
    CHECK(due == now + 28 * 86400000ULL);
    /* A multi-modality study matches if any of its modalities does. */
    pm_worklist_terms(cfg, "SR\\CT", "HEAD", "", now, prio, sub, &dr, &due);
    CHECK_STR(sub, "neuro");
    /* ? wildcard, double read; priority not set by the rule: the default. */
    pm_worklist_terms(cfg, "MG", "BREAST", "", now, prio, sub, &dr, &due);
    CHECK_STR(prio, "routine");
    CHECK_STR(sub, "breast");
    CHECK(dr == 1);
    pm_worklist_terms(cfg, "MRI", "BREAST", "", now, prio, sub, &dr, &due);
    CHECK_STR(sub, ""); /* M? does not match three letters */
    /* * wildcard in a quoted description; the rule's own due time. */
    pm_worklist_terms(cfg, "MR", "", "MR Acute Stroke Protocol", now, prio, sub, &dr, &due);
    CHECK_STR(sub, "breast"); /* rule 3 came first: MR matches M? */
    pm_worklist_terms(cfg, "XA", NULL, "Acute STROKE", now, prio, sub, &dr, &due);
    CHECK_STR(prio, "immediate");
    CHECK(due == now + 15 * 60000ULL);
    /* Every condition of a rule must hold. */
    pm_worklist_terms(cfg, "CR", "CHEST", "XR CHEST PA", now, prio, sub, &dr, &due);
    CHECK_STR(sub, "chest");
    pm_worklist_terms(cfg, "CR", "CHEST", "CHEST PA", now, prio, sub, &dr, &due);
    CHECK_STR(sub, "");
    /* No rule: the defaults. */
    pm_worklist_terms(cfg, NULL, NULL, NULL, now, prio, sub, &dr, &due);
    CHECK_STR(prio, "routine");
    CHECK_STR(sub, "");
    CHECK(dr == 0 && due == now + 28 * 86400000ULL);
    CHECK(pm_worklist_due_for(cfg, "immediate") == 3600000ULL);
    pm_config_destroy(&cfg);

    /* default_priority drives both the priority and the due time of unmatched studies. */
    CHECK(load_text("[node]\nname = a\n[worklist]\ndefault_priority = urgent\ndue_urgent = 2h\n",
                    &cfg, err, sizeof err) == PM_OK);
    pm_worklist_terms(cfg, "US", "", "", 0, prio, sub, &dr, &due);
    CHECK_STR(prio, "urgent");
    CHECK(due == 2 * 3600000ULL);
    pm_config_destroy(&cfg);
}

static void test_set(void)
{
    const char *path = in_dir("node.conf");
    char err[512] = "";
    write_text(path, "# top comment\n"
                     "[node]\n"
                     "name = a   ; the name\n"
                     "\n"
                     "[mesh]\n"
                     "# The mesh id.\n"
                     "# id = \n"
                     "quorum = 1\n"
                     "\n"
                     "# dicom below\n"
                     "[dicom]\n"
                     "port = 104\n"
                     "port = 105\n"
                     "ae_title = X");
    chmod(path, 0640);
    const char *id = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";
    /* Added after the commented-out template line. */
    CHECK(pm_config_set(path, "mesh", "id", id, err, sizeof err) == PM_OK);
    /* Replaced, the duplicate dropped. */
    CHECK(pm_config_set(path, "dicom", "port", "11112", err, sizeof err) == PM_OK);
    /* Added at the end of the section (after its last key). */
    CHECK(pm_config_set(path, "node", "listen", "tcp://0.0.0.0:7500", err, sizeof err) == PM_OK);
    /* A new section at the end; a list key gets one line per item. */
    CHECK(pm_config_set(path, "gossip", "fanout", "5", err, sizeof err) == PM_OK);
    CHECK(pm_config_set(path, "mesh", "peers", "tcp://h1:7400, tcp://h2:7400", err, sizeof err) ==
          PM_OK);
    CHECK(pm_config_set(path, "dicom.destinations", "VIEWER", "10.0.0.9:104", err, sizeof err) ==
          PM_OK);
    CHECK_STR(read_text(path),
              "# top comment\n"
              "[node]\n"
              "name = a   ; the name\n"
              "listen = tcp://0.0.0.0:7500\n"
              "\n"
              "[mesh]\n"
              "# The mesh id.\n"
              "# id = \n"
              "id = ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\n"
              "quorum = 1\n"
              "peers = tcp://h1:7400\n"
              "peers = tcp://h2:7400\n"
              "\n"
              "# dicom below\n"
              "[dicom]\n"
              "port = 11112\n"
              "ae_title = X\n"
              "\n"
              "[gossip]\n"
              "fanout = 5\n"
              "\n"
              "[dicom.destinations]\n"
              "VIEWER = 10.0.0.9:104\n");
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    /* Replacing a list replaces every line of it. */
    CHECK(pm_config_set(path, "mesh", "peers", "tcp://h3:7400", err, sizeof err) == PM_OK);
    pm_config *cfg = NULL;
    CHECK(pm_config_load(path, dir, &cfg, err, sizeof err) == PM_OK);
    CHECK_STR(cfg->mesh_id, id);
    CHECK(cfg->n_peers == 1);
    CHECK_STR(cfg->peers[0], "tcp://h3:7400");
    CHECK(cfg->dicom_port == 11112 && cfg->gossip_fanout == 5 && cfg->n_destinations == 1);
    pm_config_destroy(&cfg);

    /* Refused: bad values, unknown keys, missing files; the file is left alone. */
    char before[65536];
    snprintf(before, sizeof before, "%s", read_text(path));
    CHECK(pm_config_set(path, "mesh", "id", "xyz", err, sizeof err) == PM_E_CONFIG);
    CHECK(strstr(err, "[mesh] id") && strstr(err, "not a mesh id"));
    CHECK(pm_config_set(path, "mesh", "colour", "red", err, sizeof err) == PM_E_CONFIG);
    CHECK(pm_config_set(path, "meshes", "id", "", err, sizeof err) == PM_E_CONFIG);
    CHECK(pm_config_set(path, "node", "name", "a\nb", err, sizeof err) == PM_E_CONFIG);
    CHECK(pm_config_set(path, "dicom.destinations", "V", "nohost", err, sizeof err) == PM_E_CONFIG);
    CHECK_STR(read_text(path), before);
    CHECK(pm_config_set(in_dir("missing.conf"), "mesh", "id", id, err, sizeof err) == PM_E_IO);
    /* No temporary files left behind. */
    CHECK(access(in_dir("missing.conf"), F_OK) != 0);
}

static void test_write_default(void)
{
    const char *path = in_dir("node.conf");
    char err[512] = "";
    int rc =
        pm_config_write_default(path, "St Elsewhere", NULL, NULL, 0, NULL, NULL, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK);
    pm_config *cfg = NULL;
    rc = pm_config_load(path, dir, &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK);
    CHECK_STR(cfg->name, "St Elsewhere");
    CHECK_STR(cfg->listen, "tcp://0.0.0.0:7400");
    CHECK(cfg->dicom_port == 11112);
    CHECK_STR(cfg->ae_title, "PACSMESH");
    pm_config_destroy(&cfg);
    /* Documented: every key of the table appears, commented. */
    const char *text = read_text(path);
    CHECK(strstr(text, "# listen = tcp://0.0.0.0:7400\n"));
    CHECK(strstr(text, "# due_routine = 28d\n"));
    CHECK(strstr(text, "# rule = modality=CT body_part=HEAD : priority=urgent"));
    CHECK(strstr(text, "[dicom.destinations]\n"));
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);

    /* Refuses to overwrite. */
    CHECK(pm_config_write_default(path, "Other", NULL, NULL, 0, NULL, NULL, err, sizeof err) ==
          PM_E_EXISTS);
    CHECK(strstr(err, "node.conf") && strstr(err, "exists"));

    /* Overrides round-trip; genesis's pm_config_set lands next to the template. */
    const char *p2 = in_dir("node2.conf");
    rc = pm_config_write_default(p2, "Node Two", "tcp://0.0.0.0:7402", "tcp://127.0.0.1:7402",
                                 11113, "NODE2", "ipc:///tmp/n2.sock", err, sizeof err);
    CHECK(rc == PM_OK);
    CHECK(pm_config_set(p2, "mesh", "id",
                        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", err,
                        sizeof err) == PM_OK);
    CHECK(pm_config_set(p2, "mesh", "peers", "tcp://127.0.0.1:7400", err, sizeof err) == PM_OK);
    CHECK(pm_config_load(p2, dir, &cfg, err, sizeof err) == PM_OK);
    CHECK_STR(cfg->name, "Node Two");
    CHECK_STR(cfg->listen, "tcp://0.0.0.0:7402");
    CHECK_STR(cfg->advertise, "tcp://127.0.0.1:7402");
    CHECK_STR(cfg->admin, "ipc:///tmp/n2.sock");
    CHECK(cfg->dicom_port == 11113);
    CHECK_STR(cfg->ae_title, "NODE2");
    CHECK_STR(cfg->mesh_id, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    CHECK(cfg->n_peers == 1);
    pm_config_destroy(&cfg);
    CHECK(strstr(read_text(p2), "# id =\nid = 0011"));

    /* Bad overrides are refused and nothing is written. */
    const char *p3 = in_dir("node3.conf");
    CHECK(pm_config_write_default(p3, "n", "localhost:7400", NULL, 0, NULL, NULL, err,
                                  sizeof err) == PM_E_CONFIG);
    CHECK(strstr(err, "[node] listen"));
    CHECK(pm_config_write_default(p3, "n", NULL, NULL, 0, "BAD\\AE", NULL, err, sizeof err) ==
          PM_E_CONFIG);
    CHECK(strstr(err, "[dicom] ae_title"));
    CHECK(pm_config_write_default(p3, "n", NULL, NULL, 70000, NULL, NULL, err, sizeof err) ==
          PM_E_CONFIG);
    CHECK(pm_config_write_default(p3, NULL, NULL, NULL, 0, NULL, NULL, err, sizeof err) ==
          PM_E_INVAL);
    CHECK(access(p3, F_OK) != 0);
}

static void test_example(void)
{
    pm_config *cfg = NULL;
    char err[512] = "";
    int rc = pm_config_load(EXAMPLES_DIR "/node.conf", dir, &cfg, err, sizeof err);
    if (rc != PM_OK)
        fprintf(stderr, "%s\n", err);
    CHECK(rc == PM_OK);
    CHECK(cfg->n_rules > 0 && cfg->n_destinations > 0);
    pm_config_destroy(&cfg);
}

int main(void)
{
    run("defaults", test_defaults);
    run("every key", test_every_key);
    run("errors name file, line and key", test_errors);
    run("lexical details", test_lexical);
    run("duration, size and wildcard parsers", test_parsers);
    run("worklist rules", test_rules);
    run("pm_config_set", test_set);
    run("write_default", test_write_default);
    run("examples/node.conf", test_example);
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
