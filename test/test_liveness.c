/* Unit test of peer liveness (node/mesh/liveness.c): what the daemon's parts read
 * (is_up, find) answers for known, unknown and "not running" (NULL); and the admin
 * socket's JSON form reads back to the same array, refusing what is not that form. */
#include "test/check.h"

#include "node/mesh/liveness.h"

#include <string.h>

static pm_liveness two_peers(pm_peer_liveness p[2])
{
    memset(p, 0, 2 * sizeof *p);
    memset(p[0].id, 0xa1, PM_ID_BYTES);
    p[0].up = 1;
    p[0].last_seen_ms = 1764000000123ull;
    p[0].has_digest = 1;
    memset(p[0].digest, 0x5c, PM_HASH_BYTES);
    memset(p[1].id, 0xb2, PM_ID_BYTES);
    p[1].last_seen_ms = 0; /* never heard from */
    return (pm_liveness){p, 2};
}

static void test_lookups(void)
{
    pm_peer_liveness p[2];
    pm_liveness l = two_peers(p);
    uint8_t other[PM_ID_BYTES];
    memset(other, 0xc3, sizeof other);
    CHECK(pm_liveness_is_up(&l, p[0].id));
    CHECK(!pm_liveness_is_up(&l, p[1].id));
    CHECK(!pm_liveness_is_up(&l, other));
    CHECK(!pm_liveness_is_up(NULL, p[0].id)); /* not running: nobody is up */
    CHECK(pm_liveness_find(&l, p[1].id) == &p[1]);
    CHECK(pm_liveness_find(&l, other) == NULL);
}

static void test_json_round_trip(void)
{
    pm_peer_liveness p[2];
    pm_liveness l = two_peers(p), back;
    json_t *o = pm_liveness_to_json(&l);
    CHECK(o && json_object_size(o) == 2);
    CHECK_RC(pm_liveness_from_json(o, &back));
    CHECK_EQ_INT(back.n, 2);
    for (size_t i = 0; i < 2; i++) {
        const pm_peer_liveness *b = pm_liveness_find(&back, p[i].id);
        CHECK(b != NULL);
        CHECK_EQ_INT(b->up, p[i].up);
        CHECK_EQ_INT(b->last_seen_ms, p[i].last_seen_ms);
        CHECK_EQ_INT(b->has_digest, p[i].has_digest);
        CHECK(!b->has_digest || memcmp(b->digest, p[i].digest, PM_HASH_BYTES) == 0);
    }
    pm_liveness_free(&back);
    CHECK(back.peers == NULL && back.n == 0);
    json_decref(o);
}

static void test_refusals(void)
{
    pm_liveness out;
    json_t *arr = json_array();
    CHECK_CODE(pm_liveness_from_json(arr, &out), PM_E_PARSE);
    CHECK_CODE(pm_liveness_from_json(NULL, &out), PM_E_PARSE);
    json_t *bad = json_pack("{s:{s:b}}", "not-hex", "up", 1);
    CHECK_CODE(pm_liveness_from_json(bad, &out), PM_E_PARSE);
    CHECK(out.peers == NULL && out.n == 0);
    json_decref(bad);
    json_decref(arr);
}

int main(void)
{
    test_lookups();
    test_json_round_trip();
    test_refusals();
    return 0;
}
