/* The roster fold: one reporter's view from the registrations of their id. The latest
 * registration that counts, in the total order, holds; a removal deletes the view.
 * Like every fold, a pure function of the events (the view is in the digest). */
#include "proto/error.h"
#include "store/apply_internal.h"

#include <stdlib.h>
#include <string.h>

int pm_apply_derive_reporter(MDB_txn *txn, pm_store *s, const char *reporter_id)
{
    pm_event_list evs = {0};
    int rc = pm_apply_load_key_events(txn, s, KIND_REPORTER, reporter_id, &evs);
    const pm_event *latest = NULL;
    for (size_t i = 0; !rc && i < evs.n; i++)
        if (pm_apply_event_counts(txn, s, evs.items[i]))
            latest = evs.items[i];
    const Pm__ReporterRegistered *r = latest ? latest->body->reporter_registered : NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!rc && r && !r->removed) {
        Pm__ReporterView v = PM__REPORTER_VIEW__INIT;
        v.id = r->reporter_id;
        v.name = r->name;
        v.subspecialties = r->subspecialties;
        v.n_subspecialties = r->n_subspecialties;
        v.sites = r->sites;
        v.n_sites = r->n_sites;
        v.capacity = r->capacity;
        v.registered_by = latest->body->origin;
        v.time_ms = latest->body->wall_ms;
        len = pm__reporter_view__get_packed_size(&v);
        if (!(buf = malloc(len ? len : 1)))
            rc = PM_E_NOMEM;
        else
            pm__reporter_view__pack(&v, buf);
    }
    if (!rc)
        rc = pm_view_write(txn, s, s->reporters, 'r', reporter_id, strlen(reporter_id), buf,
                           buf ? len : 0);
    free(buf);
    pm_event_list_free(&evs);
    return rc;
}
