/* "Next for me" (node/worklist/next.h). */
#include "node/worklist/next.h"
#include "node/config/value.h"
#include "node/worklist/states.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int reads_subspecialty(const Pm__ReporterView *r, const char *sub)
{
    if (!sub || !*sub)
        return 1; /* general work */
    for (size_t i = 0; i < r->n_subspecialties; i++)
        if (strcasecmp(r->subspecialties[i], sub) == 0)
            return 1;
    return 0;
}

static int credentialed_for(const Pm__ReporterView *r, const ProtobufCBinaryData *site)
{
    if (r->n_sites == 0)
        return 1;
    for (size_t i = 0; i < r->n_sites; i++)
        if (r->sites[i].len == site->len && memcmp(r->sites[i].data, site->data, site->len) == 0)
            return 1;
    return 0;
}

int pm_next_eligible(const Pm__ReporterView *r, const Pm__StudyView *sv, uint64_t now_ms)
{
    if (!sv->study || sv->withdrawn || strcmp(pm_wl_state(sv, now_ms), "unreported") != 0)
        return 0;
    const char *sub = sv->study->terms ? sv->study->terms->subspecialty : "";
    return reads_subspecialty(r, sub) && credentialed_for(r, &sv->site);
}

size_t pm_next_claims_held(const Pm__ReporterView *r, const Pm__StudyView *const *items, size_t n,
                           uint64_t now_ms)
{
    size_t held = 0;
    for (size_t i = 0; i < n; i++)
        held += strcmp(pm_wl_state(items[i], now_ms), "claimed") == 0 && items[i]->claim &&
                strcmp(items[i]->claim->reporter, r->id) == 0;
    return held;
}

/* Urgency class: the priority's rank (0 immediate, 1 urgent, 2 routine; an unknown name
 * counts as routine), an at-risk item ranked as urgent at least. */
static int urgency_class(const Pm__StudyView *sv, uint64_t now_ms)
{
    int rank = pm_config_priority_index(pm_wl_priority(sv));
    if (rank < 0)
        rank = 2;
    return rank > 1 && pm_wl_at_risk(sv, now_ms) ? 1 : rank;
}

/* The share of the due window left, in millionths (negative when overdue). */
static int64_t share_left(const Pm__StudyView *sv, uint64_t now_ms)
{
    uint64_t due = pm_wl_due_ms(sv);
    if (!due)
        return INT64_MAX;
    int64_t window = due > sv->announced_ms ? (int64_t)(due - sv->announced_ms) : 1;
    return ((int64_t)due - (int64_t)now_ms) * 1000000 / window;
}

/* An eligible item as the ranking keeps it: its rank, not its view. */
typedef struct {
    size_t offered; /* its place in the order offered */
    int cls;
    int64_t left;
    char *uid;
} candidate;

struct pm_next_ranking {
    const Pm__ReporterView *r;
    const Pm__ReporterView *const *roster;
    size_t n_roster;
    uint64_t now_ms;
    candidate *c;
    size_t n, cap, offered;
    size_t top_place; /* r's place among its peers for the most urgent item so far */
    int failed;       /* out of memory */
};

static int by_urgency(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->cls != y->cls)
        return x->cls - y->cls;
    if (x->left != y->left)
        return x->left < y->left ? -1 : 1;
    return strcmp(x->uid, y->uid); /* a total order: every node ranks alike */
}

/* r's place, by id, among the roster's reporters taking work (capacity above 0) who
 * are eligible for item sv: a reporter who takes none is not spread over. */
static size_t place_among_peers(const Pm__ReporterView *r, const Pm__ReporterView *const *roster,
                                size_t n_roster, const Pm__StudyView *sv, uint64_t now_ms)
{
    size_t place = 0;
    for (size_t i = 0; i < n_roster; i++)
        if (strcmp(roster[i]->id, r->id) < 0 && roster[i]->capacity > 0 &&
            pm_next_eligible(roster[i], sv, now_ms))
            place++;
    return place;
}

pm_next_ranking *pm_next_ranking_new(const Pm__ReporterView *r,
                                     const Pm__ReporterView *const *roster, size_t n_roster,
                                     uint64_t now_ms)
{
    pm_next_ranking *k = calloc(1, sizeof *k);
    if (k)
        *k = (pm_next_ranking){.r = r, .roster = roster, .n_roster = n_roster, .now_ms = now_ms};
    return k;
}

int pm_next_ranking_offer(pm_next_ranking *k, const Pm__StudyView *sv)
{
    size_t offered = k->offered++;
    if (k->failed || !pm_next_eligible(k->r, sv, k->now_ms))
        return k->failed;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 64;
        candidate *grown = realloc(k->c, cap * sizeof *grown);
        if (!grown)
            return k->failed = 1;
        k->c = grown;
        k->cap = cap;
    }
    candidate *c = &k->c[k->n];
    *c = (candidate){offered, urgency_class(sv, k->now_ms), share_left(sv, k->now_ms),
                     strdup(sv->study->study_instance_uid)};
    if (!c->uid)
        return k->failed = 1;
    /* The spread depends on the most urgent item, known only at the end: r's place is
     * worked out whenever a more urgent one is offered, while its view is at hand. */
    if (k->n == 0 || by_urgency(c, &k->c[0]) < 0) {
        k->top_place = place_among_peers(k->r, k->roster, k->n_roster, sv, k->now_ms);
        candidate top = *c;
        *c = k->c[0];
        k->c[0] = top;
    }
    k->n++;
    return 0;
}

long pm_next_ranking_pick(pm_next_ranking *k, char **uid)
{
    if (k->failed || k->n == 0)
        return -1;
    qsort(k->c, k->n, sizeof *k->c, by_urgency);
    const candidate *pick = &k->c[k->top_place % k->n];
    if (uid && !(*uid = strdup(pick->uid)))
        return -1;
    return (long)pick->offered;
}

void pm_next_ranking_free(pm_next_ranking **k_p)
{
    if (!k_p || !*k_p)
        return;
    for (size_t i = 0; i < (*k_p)->n; i++)
        free((*k_p)->c[i].uid);
    free((*k_p)->c);
    free(*k_p);
    *k_p = NULL;
}

long pm_next_pick(const Pm__ReporterView *r, const Pm__ReporterView *const *roster, size_t n_roster,
                  const Pm__StudyView *const *items, size_t n, uint64_t now_ms)
{
    pm_next_ranking *k = pm_next_ranking_new(r, roster, n_roster, now_ms);
    for (size_t i = 0; k && i < n; i++)
        pm_next_ranking_offer(k, items[i]);
    long pick = k ? pm_next_ranking_pick(k, NULL) : -1;
    pm_next_ranking_free(&k);
    return pick;
}
