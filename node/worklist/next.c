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

typedef struct {
    size_t index;
    int cls;
    int64_t left;
    const char *uid;
} candidate;

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

long pm_next_pick(const Pm__ReporterView *r, const Pm__ReporterView *const *roster, size_t n_roster,
                  const Pm__StudyView *const *items, size_t n, uint64_t now_ms)
{
    candidate *c = calloc(n + 1, sizeof *c);
    if (!c)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (pm_next_eligible(r, items[i], now_ms))
            c[m++] = (candidate){i, urgency_class(items[i], now_ms), share_left(items[i], now_ms),
                                 items[i]->study->study_instance_uid};
    long pick = -1;
    if (m > 0) {
        qsort(c, m, sizeof *c, by_urgency);
        size_t place = place_among_peers(r, roster, n_roster, items[c[0].index], now_ms);
        pick = (long)c[place % m].index;
    }
    free(c);
    return pick;
}
