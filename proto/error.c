#include "proto/error.h"

const char *pm_strerror(int code)
{
    switch (code) {
    case PM_OK: return "success";
    case PM_ALREADY_HELD: return "already held";
    case PM_E_NOMEM: return "out of memory";
    case PM_E_IO: return "input/output error";
    case PM_E_INVAL: return "invalid argument";
    case PM_E_PARSE: return "malformed message";
    case PM_E_TOOBIG: return "message too large";
    case PM_E_FORMAT: return "unknown format version";
    case PM_E_SIG: return "bad signature";
    case PM_E_CHAIN: return "broken chain: previous hash does not match";
    case PM_E_GAP: return "sequence gap";
    case PM_E_FORK: return "fork: a different event holds this sequence number";
    case PM_E_MESH: return "event belongs to another mesh";
    case PM_E_REVOKED: return "author was revoked";
    case PM_E_NOTFOUND: return "not found";
    case PM_E_EXISTS: return "already exists";
    case PM_E_STORE: return "store error";
    case PM_E_MAPFULL: return "store is full";
    case PM_E_CONFIG: return "bad configuration";
    case PM_E_NET: return "network error";
    case PM_E_TIMEOUT: return "timed out";
    case PM_E_KEY: return "identity key missing or malformed";
    case PM_E_DICOM: return "DICOM error";
    case PM_E_HASH: return "content does not match its signed hash";
    case PM_E_SEQ: return "impossible sequence number";
    case PM_E_TIME: return "time out of range";
    case PM_E_UNKNOWN: return "unknown payload type";
    case PM_E_BUSY: return "in use by another process";
    case PM_E_NOSPACE: return "no space left on this node's disk";
    }
    return "unknown error";
}
