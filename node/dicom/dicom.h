/* The DICOM edge: a DICOM SCP (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE; Study Root and
 * Patient Root; all four levels) implemented over dcmtk in a C++ shim that catches
 * every exception at this C boundary. Everything the edge needs from the rest of the
 * node comes through pm_dicom_provider; the edge itself holds no study data.
 *
 * Threads: pm_dicom_server_start spawns the edge's own thread(s). Provider callbacks
 * are called from those threads; the provider must be thread-safe for that. */
#ifndef PM_DICOM_H
#define PM_DICOM_H

#include "node/dicom/defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "proto/view.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PM_DICOM_UID_MAX 64
#define PM_DICOM_AE_MAX 16

/* Metadata the node needs from one instance (read by pm_dicom_read_meta). Strings are
 * NUL-terminated, trimmed of DICOM padding, empty when absent, and whole: a UID longer
 * than 64 characters, or a text value longer than PM_DICOM_TEXT_MAX, is refused by
 * pm_dicom_read_meta, never cut (values longer than their VR allows, as some devices
 * write them, are kept as they are up to that bound). */
#define PM_DICOM_TEXT_MAX 1024
typedef struct {
    char study_uid[PM_DICOM_UID_MAX + 1];
    char series_uid[PM_DICOM_UID_MAX + 1];
    char sop_uid[PM_DICOM_UID_MAX + 1];
    char sop_class_uid[PM_DICOM_UID_MAX + 1];
    char transfer_syntax_uid[PM_DICOM_UID_MAX + 1];
    char patient_id[PM_DICOM_TEXT_MAX + 1];
    char issuer_of_patient_id[PM_DICOM_TEXT_MAX + 1];
    char patient_name[PM_DICOM_TEXT_MAX + 1];
    char patient_birth_date[PM_DICOM_TEXT_MAX + 1];
    char patient_sex[PM_DICOM_TEXT_MAX + 1];
    char study_date[PM_DICOM_TEXT_MAX + 1];
    char study_time[PM_DICOM_TEXT_MAX + 1];
    char accession_number[PM_DICOM_TEXT_MAX + 1];
    char study_description[PM_DICOM_TEXT_MAX + 1];
    char referring_physician[PM_DICOM_TEXT_MAX + 1];
    char study_id[PM_DICOM_TEXT_MAX + 1];
    char modality[PM_DICOM_TEXT_MAX + 1];
    char series_description[PM_DICOM_TEXT_MAX + 1];
    char body_part[PM_DICOM_TEXT_MAX + 1];
    int series_number;
    int instance_number;
} pm_dicom_meta;

/* Reads a DICOM Part-10 file (or a raw data set without meta header) and fills out.
 * Returns PM_OK, or PM_E_DICOM with a one-line reason in err (e.g. "not a DICOM file",
 * "missing SOPInstanceUID", "truncated", "refused: sequences nested deeper than 64
 * levels"). Never throws, never aborts on bad input: the structure is scanned within
 * the limits of pm_dicom_set_limits (node/dicom/scan.h) first, and dcmtk reads the file
 * in a separate parser process, so a file that crashes dcmtk is refused with a reason. */
int pm_dicom_read_meta(const char *path, pm_dicom_meta *out, char *err, size_t errlen);

/* Whether pm_dicom_read_meta has dcmtk read in a parser process (1, the default) or in
 * the calling process (0: fuzzers, which must see dcmtk's crashes). Process-wide. */
void pm_dicom_set_isolation(int on);

/* One instance received by C-STORE, handed to the provider's store(). */
typedef struct {
    const char *calling_ae;
    const char *peer_host;     /* the calling address */
    const char *tmp_path;      /* the Part-10 file, exactly as the sender encoded it */
    const pm_dicom_meta *meta; /* read from it by the edge */
    uint16_t status;           /* out: when non-zero, the DIMSE status to answer */
    int quarantined;           /* out: kept aside, not stored in its study */
} pm_dicom_store_rq;

typedef struct {
    void *ctx;

    /* C-STORE: the provider makes the instance in rq->tmp_path durable (blob + signed
     * event) and returns PM_OK (with rq->quarantined set when it kept it aside instead),
     * or a negative PM_E_* code and a reason in err; the edge then answers with
     * rq->status if set, else 0xA700 for a lack of resources, else 0xC000. The provider
     * takes the file over (moves or removes it). */
    int (*store)(void *ctx, pm_dicom_store_rq *rq, char *err, size_t errlen);

    /* The association that delivered stored instances ended (released or aborted). */
    void (*association_end)(void *ctx, const char *calling_ae, unsigned stored);

    /* Calls fn for each study of the mesh's views; only the study with study_uid, or only
     * studies of patient_id, when those are non-NULL (the provider may use an index). The
     * StudyView is borrowed for the duration of the call to fn. Stops early and returns
     * fn's value when fn returns non-zero; else PM_OK. */
    int (*for_each_study)(void *ctx, const char *study_uid, const char *patient_id,
                          int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx);

    /* Optional (NULL: the edge walks every study): calls fn for each study whose
     * StudyDate lies within [from, to] (YYYYMMDD, inclusive; "" leaves that end open),
     * using the provider's date index. The edge still applies all matching rules. */
    int (*for_each_study_dated)(void *ctx, const char *from, const char *to,
                                int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx);

    /* Optional (NULL: not used): calls fn for each study whose attribute attr (store/
     * views.h PM_ATTR_*: accession, patient name, modality, referrer, description) is
     * value (exact) or starts with it, case-insensitively for names and descriptions:
     * a superset of what matches, from the provider's attribute index. The edge still
     * applies all matching rules. */
    int (*for_each_study_by_attr)(void *ctx, char attr, const char *value, int exact,
                                  int (*fn)(void *fctx, const Pm__StudyView *study), void *fctx);

    /* Before a C-GET or C-MOVE of instances of study_uid: makes their bytes local, fetching
     * lazily from peers what is not cached, and records the access. PM_OK or a negative
     * code (then the edge fails those sub-operations). */
    int (*prepare_study)(void *ctx, const char *calling_ae, const char *study_uid);

    /* Optional (NULL: prepare_study is used, and the whole study is waited for): starts
     * making the bytes of study_uid local without waiting, and records the access as
     * prepare_study does; *fetch receives a handle for await_blob. PM_OK or a negative
     * code (then the edge sends what is here and fails the rest). */
    int (*begin_study)(void *ctx, const char *reader, const char *study_uid, uint64_t *fetch);

    /* Optional, with begin_study: waits until the blob with this content hash, one of
     * the fetch begun as `fetch`, is local (PM_OK) or cannot be (a negative code), so
     * that each instance goes out as soon as it has arrived and been verified. */
    int (*await_blob)(void *ctx, uint64_t fetch, const uint8_t hash[32]);

    /* Path of the local file holding the blob with this content hash (after
     * prepare_study). Writes at most pathlen bytes; PM_E_NOTFOUND if not local. */
    int (*blob_path)(void *ctx, const uint8_t hash[32], char *path, size_t pathlen);

    /* Optional: before the file at path is sent as the instance sop_uid of study_uid,
     * whether it is the blob with this content hash (the instance's signed hash) and
     * safe to parse. PM_OK; PM_E_HASH when it is damaged (the provider has logged and
     * recorded that, and set the copy aside: prepare_study fetches the instance again
     * from another holder); another code when it cannot be served. why: one line. */
    int (*verify_blob)(void *ctx, const uint8_t hash[32], const char *path, const char *study_uid,
                       const char *sop_uid, char *why, size_t wl);

    /* Optional: an association or a request was refused for a reason of access
     * (PM_DICOM_REFUSED_*), already logged with its source by the edge; for metrics. */
    void (*refused)(void *ctx, int why);

    /* Optional (NULL: user identities are ignored): checks the user identity an
     * A-ASSOCIATE-RQ carries, either a user name and passcode (token NULL) or a token of
     * the web server's POST /api/tokens (user and password NULL). PM_OK with the name to
     * record as the reader (the user's reporter id, else their name) in name; PM_E_SIG
     * when the passcode or token is wrong, unknown or expired. host: the calling address
     * (sign-in failures are limited per address and per user name). */
    int (*authenticate)(void *ctx, const char *host, const char *user, const char *password,
                        const char *token, char *name, size_t namelen);
} pm_dicom_provider;

/* Why the edge refused something, for the provider's refused() and metrics. */
enum {
    PM_DICOM_REFUSED_CALLED_AE = 0, /* called AE title is not the node's */
    PM_DICOM_REFUSED_CALLING_AE,    /* calling AE title not listed (or the list empty) */
    PM_DICOM_REFUSED_HOST,          /* listed AE title from an address not listed for it */
    PM_DICOM_REFUSED_RIGHTS,        /* a service the calling AE has no right to */
    PM_DICOM_REFUSED_IDENTITY,      /* user identity wrong or missing when required */
    PM_DICOM_REFUSED_TLS,           /* TLS handshake failed (certificate, plain TCP) */
    PM_DICOM_REFUSED_IDENTIFIER,    /* C-GET/C-MOVE unique key not one UID or a UID list */
    PM_DICOM_REFUSED_COUNT
};

/* "called_ae", "calling_ae", "host", "rights", "identity", "tls", "identifier". */
const char *pm_dicom_refusal_name(int why);

typedef struct {
    char destination_ae[PM_DICOM_AE_MAX + 1];
    char host[256];
    int port;
    int tls; /* the destination speaks DICOM TLS: the sub-association uses it */
} pm_dicom_destination;

typedef struct {
    char ae_title[PM_DICOM_AE_MAX + 1];
    char bind_address[64]; /* "127.0.0.1", or "0.0.0.0" for all */
    int port;
    /* Access (node/dicom/access.h), replaceable while serving by pm_dicom_server_set_access:
     * allowed_aes entries AE[@host][:rights], NULL-terminated; NULL or empty: nobody may
     * query or retrieve, and only with store_from_any may anyone echo or store. */
    const char *const *allowed_aes;
    int store_from_any;
    const pm_dicom_destination *destinations; /* C-MOVE targets */
    size_t n_destinations;
    /* DICOM TLS: with tls_cert and tls_key set (PEM files) the port speaks TLS only
     * (BCP 195 profile, TLS 1.2 or later). tls_ca: PEM CA certificates the clients' and
     * TLS destinations' certificates are verified against; require_client_cert: a
     * client without a certificate signed by tls_ca is refused. NULL or "": unset. */
    const char *tls_cert, *tls_key, *tls_ca;
    int require_client_cert;
    const char *spool_dir; /* where incoming instances are written before store() */
    unsigned max_pdu;      /* bytes; 0 means the default */
    /* Below, 0 means the default given (node/dicom/defaults.h). */
    unsigned idle_timeout_ms;           /* no message for this long: closed (30 s) */
    unsigned read_timeout_ms;           /* the rest of a begun PDU or message (30 s) */
    unsigned max_associations;          /* at once, in total (200) */
    unsigned max_associations_per_host; /* at once, from one calling address (32) */
    unsigned max_nesting;               /* sequence nesting of data sets (64) */
    unsigned long max_elements;         /* elements of one data set (1,000,000) */
    unsigned max_find_results;          /* matches of one C-FIND; 0: no limit */
} pm_dicom_settings;

typedef struct pm_dicom_server pm_dicom_server;

/* Binds the port and starts serving on the edge's own thread(s). The settings and
 * provider are copied (strings included). PM_E_NET if the port cannot be bound. */
int pm_dicom_server_start(const pm_dicom_settings *settings, const pm_dicom_provider *provider,
                          pm_dicom_server **out);

/* Replaces the access part of the settings (allowed_aes, store_from_any, destinations;
 * copied) for associations that begin from now on; those under way keep theirs. Returns
 * PM_OK, or PM_E_CONFIG (the old access is kept) when an entry does not parse. */
int pm_dicom_server_set_access(pm_dicom_server *self, const pm_dicom_settings *settings);

/* Stops accepting, lets running associations finish or aborts them within about a
 * second, joins the threads and frees. Accepts NULL; clears the pointer. */
void pm_dicom_server_stop(pm_dicom_server **self_p);

/* Why an instance could not be made local, from the provider's code (begin_study,
 * await_blob, prepare_study), as a viewer is told: its holder is down, nobody holds
 * it, every copy is damaged, this node's disk is full, or this node may not read yet.
 * Static text, never NULL. */
const char *pm_dicom_unavailable(int rc);

#ifdef __cplusplus
}
#endif
#endif
