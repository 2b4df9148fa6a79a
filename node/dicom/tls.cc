/* DICOM TLS (node/dicom/tls.h). */
#include "node/dicom/tls.h"

#include <unistd.h>

#include <dcmtk/dcmtls/tlslayer.h>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

struct pm_dicom_tls {
    std::string cert, key, ca;
    bool require_client_cert = false;
    DcmTLSTransportLayer *server = nullptr;
};

static bool set(const char *s)
{
    return s && *s;
}

/* A layer of role with our certificate and key, the CA, and the non-downgrading BCP 195
 * profile: TLS 1.2 or later only (dcmtk's plain BCP 195 profile falls back to TLS 1.0). */
static DcmTLSTransportLayer *make_layer(const pm_dicom_tls *t, T_ASC_NetworkRole role,
                                        std::string &why)
{
    DcmTLSTransportLayer *l = new DcmTLSTransportLayer(role, nullptr, OFTrue);
    OFCondition c = l->setTLSProfile(TSP_Profile_BCP195_ND);
    if (c.good())
        c = l->activateCipherSuites();
    if (c.bad()) {
        why = std::string("TLS profile: ") + c.text();
    } else if (l->setPrivateKeyFile(t->key.c_str(), DCF_Filetype_PEM).bad()) {
        why = "tls_key " + t->key + ": not a readable PEM private key";
    } else if (l->setCertificateFile(t->cert.c_str(), DCF_Filetype_PEM).bad()) {
        why = "tls_cert " + t->cert + ": not a readable PEM certificate";
    } else if (!l->checkPrivateKeyMatchesCertificate()) {
        why = "tls_key " + t->key + " is not the key of tls_cert " + t->cert;
    } else if (!t->ca.empty() &&
               l->addTrustedCertificateFile(t->ca.c_str(), DCF_Filetype_PEM).bad()) {
        why = "tls_ca " + t->ca + ": not a readable PEM certificate";
    } else {
        return l;
    }
    delete l;
    return nullptr;
}

int pm_dicom_tls_new(const pm_dicom_settings *st, pm_dicom_tls **out, std::string &why)
{
    *out = nullptr;
    if (!set(st->tls_cert) && !set(st->tls_key)) {
        if (set(st->tls_ca) || st->require_client_cert) {
            why = "tls_ca and require_client_cert need tls_cert and tls_key";
            return PM_E_CONFIG;
        }
        return PM_OK;
    }
    if (!set(st->tls_cert) || !set(st->tls_key)) {
        why = "tls_cert and tls_key must both be set";
        return PM_E_CONFIG;
    }
    if (st->require_client_cert && !set(st->tls_ca)) {
        why = "require_client_cert needs tls_ca (the CA client certificates are checked against)";
        return PM_E_CONFIG;
    }
    pm_dicom_tls *t = new pm_dicom_tls;
    t->cert = st->tls_cert;
    t->key = st->tls_key;
    t->ca = set(st->tls_ca) ? st->tls_ca : "";
    t->require_client_cert = st->require_client_cert != 0;
    t->server = make_layer(t, NET_ACCEPTOR, why);
    if (!t->server) {
        delete t;
        return PM_E_CONFIG;
    }
    /* A client certificate is checked when presented (against tls_ca; none trusted
     * without it), and required when require_client_cert says so. */
    t->server->setCertificateVerification(t->require_client_cert ? DCV_requireCertificate
                                          : t->ca.empty()        ? DCV_ignoreCertificate
                                                                 : DCV_checkCertificate);
    *out = t;
    return PM_OK;
}

void pm_dicom_tls_free(pm_dicom_tls *t)
{
    if (!t)
        return;
    delete t->server;
    delete t;
}

DcmTransportLayer *pm_dicom_tls_server(pm_dicom_tls *t)
{
    return t ? t->server : nullptr;
}

DcmTransportLayer *pm_dicom_tls_client(const pm_dicom_tls *t, std::string &why)
{
    if (!t) {
        why = "the destination needs TLS and this node has no [dicom] tls_cert and tls_key";
        return nullptr;
    }
    if (t->ca.empty()) {
        why = "the destination needs TLS and [dicom] tls_ca is not set to check its certificate";
        return nullptr;
    }
    DcmTLSTransportLayer *l = make_layer(t, NET_REQUESTOR, why);
    if (l)
        l->setCertificateVerification(DCV_requireCertificate);
    return l;
}
