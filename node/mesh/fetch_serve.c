/* The serving side of the lazy fetch: a peer's chunk request answered from this
 * node's blobs (the read is noted for the audit trail). */
#include "node/audit/notes.h"
#include "node/mesh/fetch_internal.h"
#include "node/mesh/wire.h"
#include "proto/error.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void pm_fetch_handle_request(pm_fetcher *f, const pm_channel *ch, const Pm__ChunkRequest *req)
{
    Pm__ChunkReply rep = PM__CHUNK_REPLY__INIT;
    rep.hash = req->hash;
    rep.offset = req->offset;
    rep.request_id = req->request_id;
    uint8_t *data = NULL;
    char path[4096];
    int fd = -1;
    uint32_t len = req->length > PM_FETCH_CHUNK ? PM_FETCH_CHUNK : req->length;
    if (req->hash.len != PM_HASH_BYTES ||
        pm_blobs_path(f->blobs, req->hash.data, path, sizeof path) ||
        (fd = open(path, O_RDONLY)) < 0 || !(data = malloc(len ? len : 1))) {
        rep.absent = 1;
    } else {
        ssize_t n = pread(fd, data, len, (off_t)req->offset);
        if (n < 0) {
            rep.absent = 1;
        } else {
            rep.data.data = data;
            rep.data.len = (size_t)n;
            off_t end = lseek(fd, 0, SEEK_END);
            rep.total = end > 0 ? (uint64_t)end : 0;
            f->stats.bytes_served += (uint64_t)n;
            if (req->offset == 0) /* the serving side records the read too (node/audit) */
                pm_audit_note_served(ch->id, req->study_instance_uid);
        }
    }
    if (fd >= 0)
        close(fd);
    Pm__WireMessage msg = PM__WIRE_MESSAGE__INIT;
    msg.kind_case = PM__WIRE_MESSAGE__KIND_CHUNK_REPLY;
    msg.chunk_reply = &rep;
    uint8_t *buf;
    size_t size;
    if (pm_wire_pack(&msg, &buf, &size) == PM_OK)
        pm_transport_reply(f->t, ch, buf, size);
    free(buf);
    free(data);
}
