/* kill -9 durability (docs/design.md invariant 3). A child process appends events to a
 * store in a loop and writes each sequence number to a pipe only after
 * pm_feed_append returned PM_OK, i.e. after the commit it calls durable. The parent
 * kills it with SIGKILL after a random number of acknowledged appends plus a random few
 * milliseconds, many times, and after each
 * kill reopens the store and checks that every reported event is there, that the
 * heads agree with the feed, and that the whole feed re-parses, verifies and chains.
 *
 * PM_CRASH_SEED=<n> replays one seed; PM_CRASH_ROUNDS=<n> changes the rounds (30). */
#include "test/check.h"

#include "proto/log.h"
#include "store/feed.h"
#include "store/store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <time.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The child: append forever, reporting each durable sequence number. */
static void child(const char *dir, const char *keyfile, int fd)
{
    pm_store *s = NULL;
    pm_identity *id = NULL;
    if (pm_store_open(dir, 1ull << 30, &s) != PM_OK || pm_identity_load(keyfile, &id) != PM_OK)
        _exit(3);
    for (uint64_t i = 0;; i++) {
        char uid[32], reporter[32];
        snprintf(uid, sizeof uid, "1.2.3.%llu", (unsigned long long)(i % 5));
        snprintf(reporter, sizeof reporter, "dr.%llu", (unsigned long long)i);
        Pm__EventBody b = PM__EVENT_BODY__INIT;
        Pm__ItemClaimed c = PM__ITEM_CLAIMED__INIT;
        Pm__StudyAnnounced a = PM__STUDY_ANNOUNCED__INIT;
        if (i % 3 == 0) {
            a.study_instance_uid = uid;
            a.patient_id = "P1";
            b.payload_case = PM__EVENT_BODY__PAYLOAD_STUDY_ANNOUNCED;
            b.study_announced = &a;
        } else {
            c.study_instance_uid = uid;
            c.reporter = reporter;
            b.payload_case = PM__EVENT_BODY__PAYLOAD_ITEM_CLAIMED;
            b.item_claimed = &c;
        }
        pm_event *ev = NULL;
        if (pm_feed_append(s, id, &b, &ev) != PM_OK)
            _exit(4);
        uint64_t seq = ev->body->seq;
        pm_event_destroy(&ev);
        if (write(fd, &seq, sizeof seq) != (ssize_t)sizeof seq)
            _exit(5);
    }
}

typedef struct {
    uint64_t next_seq;
    uint8_t prev[PM_HASH_BYTES];
    int bad;
} walk;

/* Every event re-parses with its signature, follows on in sequence and chains. */
static int check_event(void *ctx, const uint8_t *raw, size_t len)
{
    walk *w = ctx;
    pm_event *ev = NULL;
    int rc = pm_event_parse(raw, len, &ev);
    if (rc != PM_OK) {
        fprintf(stderr, "event %llu does not parse: %s\n", (unsigned long long)w->next_seq,
                pm_strerror(rc));
        w->bad = 1;
        return 1;
    }
    if (ev->body->seq != w->next_seq || memcmp(ev->body->prev.data, w->prev, PM_HASH_BYTES)) {
        fprintf(stderr, "event %llu: seq %llu or prev hash wrong\n",
                (unsigned long long)w->next_seq, (unsigned long long)ev->body->seq);
        w->bad = 1;
        pm_event_destroy(&ev);
        return 1;
    }
    memcpy(w->prev, ev->hash, PM_HASH_BYTES);
    w->next_seq++;
    pm_event_destroy(&ev);
    return 0;
}

static void verify_store(const char *dir, const pm_identity *id, uint64_t reported)
{
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 30, &s));
    pm_head head;
    CHECK_RC(pm_feed_head(s, pm_identity_public(id), &head));
    if (head.seq < reported)
        fprintf(stderr, "lost: child reported seq %llu durable, store head is %llu\n",
                (unsigned long long)reported, (unsigned long long)head.seq);
    CHECK(head.seq >= reported); /* nothing acknowledged is lost */
    pm_head *heads = NULL;
    size_t n = 0;
    CHECK_RC(pm_feed_heads(s, &heads, &n));
    CHECK_EQ_INT(n, 1);
    CHECK(memcmp(&heads[0], &head, sizeof head) == 0);
    free(heads);
    uint64_t events = 0;
    CHECK_RC(pm_store_count_events(s, &events));
    CHECK_EQ_INT(events, head.seq); /* no event beyond the head, none missing */

    walk w = {1, {0}, 0};
    CHECK_RC(pm_feed_read(s, pm_identity_public(id), 1, SIZE_MAX, SIZE_MAX, check_event, &w));
    CHECK(!w.bad);
    CHECK_EQ_INT(w.next_seq, head.seq + 1);
    CHECK(memcmp(w.prev, head.hash, PM_HASH_BYTES) == 0);
    /* The views were committed with the events: the digest is stable across a reopen. */
    char d1[PM_HASH_HEX], d2[PM_HASH_HEX];
    CHECK_RC(pm_store_digest(s, d1));
    pm_store_close(&s);
    CHECK_RC(pm_store_open(dir, 1ull << 30, &s));
    CHECK_RC(pm_store_digest(s, d2));
    CHECK(strcmp(d1, d2) == 0);
    pm_store_close(&s);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    pm_log_set_level(PM_LOG_OFF);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("PM_CRASH_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 0) : (unsigned)(time(NULL) ^ getpid());
    env = getenv("PM_CRASH_ROUNDS");
    int rounds = env ? atoi(env) : 30;
    srand(seed);
    printf("test_crash: seed %u (PM_CRASH_SEED replays)\n", seed);

    char *tmp = check_tmpdir("crash");
    char *dir = check_path(tmp, "store"), *key = check_path(tmp, "node.key");
    pm_identity *id = NULL;
    CHECK_RC(pm_identity_generate(&id));
    CHECK_RC(pm_identity_save(id, key));
    pm_store *s = NULL;
    CHECK_RC(pm_store_open(dir, 1ull << 30, &s));
    Pm__EventBody b = PM__EVENT_BODY__INIT;
    Pm__Genesis g = PM__GENESIS__INIT;
    g.quorum = 1;
    b.payload_case = PM__EVENT_BODY__PAYLOAD_GENESIS;
    b.genesis = &g;
    CHECK_RC(pm_feed_append(s, id, &b, NULL));
    pm_store_close(&s); /* never carry an LMDB environment across fork */

    uint64_t reported = 1, total_kills = 0;
    const uint64_t overall_deadline = now_ms() + 60000;
    for (int round = 0; round < rounds && now_ms() < overall_deadline; round++) {
        int fds[2];
        CHECK(pipe(fds) == 0);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, key, fds[1]);
        }
        close(fds[1]);
        /* Wait for a random number (1..8) of acknowledgements from this child, then kill
         * it at a random moment 0..20 ms later, in the middle of its next appends.
         * Counting acknowledgements rather than waiting a fixed time keeps the test
         * meaningful on a loaded machine, where one fsync can take tens of ms. */
        unsigned want = 1 + (unsigned)rand() % 8, acked = 0;
        uint64_t deadline = now_ms() + 10000, kill_at = 0;
        int eof = 0;
        for (uint64_t t; !eof && (t = now_ms()) < (kill_at ? kill_at : deadline);) {
            if (!kill_at && acked >= want)
                kill_at = t + (unsigned)rand() % 21;
            struct pollfd p = {fds[0], POLLIN, 0};
            int r = poll(&p, 1, (int)((kill_at ? kill_at : deadline) - t));
            if (r < 0 && errno == EINTR)
                continue;
            CHECK(r >= 0);
            if (r == 0)
                break;
            uint64_t seq;
            ssize_t got = read(fds[0], &seq, sizeof seq);
            if (got == 0)
                eof = 1; /* the child died on its own: the status check below says why */
            else if (got == (ssize_t)sizeof seq && seq > reported) {
                reported = seq;
                acked++;
            } else
                CHECK(got == (ssize_t)sizeof seq);
        }
        CHECK(kill(pid, SIGKILL) == 0);
        total_kills++;
        /* What the child wrote before it died is still in the pipe. */
        for (;;) {
            uint64_t seq;
            ssize_t got = read(fds[0], &seq, sizeof seq);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            CHECK(got == (ssize_t)sizeof seq); /* 8-byte writes to a pipe are atomic */
            if (seq > reported)
                reported = seq;
        }
        close(fds[0]);
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fprintf(stderr, "round %d: child exited with status %d\n", round, status);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        verify_store(dir, id, reported);
    }
    printf("test_crash: %llu kills, %llu events acknowledged, all present and chained\n",
           (unsigned long long)total_kills, (unsigned long long)reported);
    CHECK(reported > 1); /* the children did get some work done */
    pm_identity_destroy(&id);
    free(dir);
    free(key);
    check_tmpdir_remove(&tmp);
    return 0;
}
