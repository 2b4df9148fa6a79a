#include "node/mesh/liveness.h"
#include "proto/error.h"

#include <stdlib.h>
#include <string.h>

const pm_peer_liveness *pm_liveness_find(const pm_liveness *l, const uint8_t *id)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (memcmp(l->peers[i].id, id, PM_ID_BYTES) == 0)
            return &l->peers[i];
    return NULL;
}

int pm_liveness_is_up(const pm_liveness *l, const uint8_t *id)
{
    const pm_peer_liveness *p = pm_liveness_find(l, id);
    return p && p->up;
}

json_t *pm_liveness_to_json(const pm_liveness *l)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < l->n; i++) {
        const pm_peer_liveness *p = &l->peers[i];
        char hex[PM_ID_HEX];
        pm_hex_encode(p->id, PM_ID_BYTES, hex);
        json_t *e = json_pack("{s:b, s:I}", "up", p->up, "last_seen", (json_int_t)p->last_seen_ms);
        if (e && p->has_digest) {
            char d[PM_HASH_HEX];
            pm_hex_encode(p->digest, PM_HASH_BYTES, d);
            json_object_set_new(e, "digest", json_string(d));
        }
        if (!e || json_object_set_new(o, hex, e) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int pm_liveness_from_json(const json_t *o, pm_liveness *out)
{
    out->peers = NULL;
    out->n = 0;
    if (!json_is_object(o))
        return PM_E_PARSE;
    out->peers = calloc(json_object_size(o) + 1, sizeof *out->peers);
    if (!out->peers)
        return PM_E_NOMEM;
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)o, key, e)
    {
        pm_peer_liveness *p = &out->peers[out->n];
        if (pm_hex_decode(key, p->id, PM_ID_BYTES) != PM_OK) {
            pm_liveness_free(out);
            return PM_E_PARSE;
        }
        p->up = json_is_true(json_object_get(e, "up"));
        p->last_seen_ms = (uint64_t)json_integer_value(json_object_get(e, "last_seen"));
        const char *digest = json_string_value(json_object_get(e, "digest"));
        p->has_digest = digest && pm_hex_decode(digest, p->digest, PM_HASH_BYTES) == PM_OK;
        out->n++;
    }
    return PM_OK;
}

void pm_liveness_free(pm_liveness *l)
{
    free(l->peers);
    l->peers = NULL;
    l->n = 0;
}
