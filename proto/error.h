/* pacsmesh error codes, shared by every layer.
 *
 * Functions that can fail return int: 0 (PM_OK) on success or one negative PM_E_*
 * code. Positive values are reserved for documented non-error outcomes (for example
 * pm_feed_ingest's PM_ALREADY_HELD). LMDB and errno codes are mapped into these at
 * the store boundary and never leak out. */
#ifndef PM_ERROR_H
#define PM_ERROR_H

enum {
    PM_OK = 0,
    PM_E_NOMEM = -1,     /* out of memory */
    PM_E_IO = -2,        /* file or socket I/O failed (errno logged) */
    PM_E_INVAL = -3,     /* bad argument or malformed user input */
    PM_E_PARSE = -4,     /* bytes do not parse as the expected message */
    PM_E_TOOBIG = -5,    /* message or field over its size limit */
    PM_E_FORMAT = -6,    /* unknown event or store format version */
    PM_E_SIG = -7,       /* signature does not verify */
    PM_E_CHAIN = -8,     /* previous-hash does not match the feed's head */
    PM_E_GAP = -9,       /* sequence number skips ahead of the feed's head */
    PM_E_FORK = -10,     /* a different valid event already holds (origin, seq) */
    PM_E_MESH = -11,     /* event belongs to another mesh */
    PM_E_REVOKED = -12,  /* author was revoked before this event */
    PM_E_NOTFOUND = -13, /* no such key, study, member ... */
    PM_E_EXISTS = -14,   /* refusing to overwrite */
    PM_E_STORE = -15,    /* LMDB failure (details logged) */
    PM_E_MAPFULL = -16,  /* store reached its configured size */
    PM_E_CONFIG = -17,   /* bad configuration */
    PM_E_NET = -18,      /* network failure */
    PM_E_TIMEOUT = -19,  /* deadline passed */
    /* -20 and -21 were "held by another reporter" and "not allowed in this state",
     * never returned: the worklist's refusals are pm_wl_verdict values
     * (node/worklist/states.h), which say which rule refused. */
    PM_E_KEY = -22, /* identity key missing, unreadable or malformed */
    /* -23 was "not a member of the mesh", never returned: PM_E_MESH and
     * PM_E_REVOKED say which. */
    PM_E_DICOM = -24,   /* DICOM data or protocol error */
    PM_E_HASH = -25,    /* content does not match its signed hash */
    PM_E_SEQ = -26,     /* sequence number zero or otherwise impossible */
    PM_E_TIME = -27,    /* wall clock or Lamport value out of range */
    PM_E_UNKNOWN = -28, /* unknown payload type */
    PM_E_BUSY = -29,    /* held by another process (a node already runs here) */
    PM_E_NOSPACE = -30  /* this node's disk is full */
};

/* Non-error outcomes. */
enum { PM_ALREADY_HELD = 1 };

/* A short, static, human-readable description of code. Never NULL. */
const char *pm_strerror(int code);

#endif
