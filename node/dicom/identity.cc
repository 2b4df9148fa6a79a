/* User identity negotiation on the DICOM edge (node/dicom/identity.h). */
#include "node/dicom/identity.h"
#include "node/dicom/shim_internal.h"

#include <cstring>

#include <dcmtk/dcmnet/dcuserid.h>

extern "C" {
#include <sodium.h>

#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

/* A field of the sub-item as a string; dcmtk hands over a copy made with new[]. Fields
 * holding a NUL are refused (they would be cut). */
static bool field(const UserIdentityNegotiationSubItemRQ *rq, bool primary, std::string &out)
{
    char *buf = nullptr;
    Uint16 len = 0;
    if (primary)
        rq->getPrimField(buf, len);
    else
        rq->getSecField(buf, len);
    bool ok = !buf || memchr(buf, '\0', len) == nullptr;
    out.assign(buf ? buf : "", buf && ok ? len : 0);
    if (buf) {
        sodium_memzero(buf, len);
        delete[] buf;
    }
    return ok;
}

int pm_dicom_edge_identity(pm_dicom_assoc &a, std::string &user, std::string &why)
{
    user.clear();
    UserIdentityNegotiationSubItemRQ *rq = nullptr;
    ASC_getUserIdentRQ(a.assoc->params, &rq);
    if (!rq)
        return PM_OK;
    T_ASC_UserIdentityNegotiationMode type = rq->getIdentityType();
    if (type != ASC_USER_IDENTITY_USER_PASSWORD && type != ASC_USER_IDENTITY_JWT) {
        pm_info(LOG_MOD,
                "association from %s: user identity of type %d not checked; recording the AE",
                a.label.c_str(), (int)type);
        return PM_OK;
    }
    const pm_dicom_provider &p = a.srv->provider;
    if (!p.authenticate) {
        why = "this node checks no user identities";
        return PM_E_SIG;
    }
    std::string prim, sec;
    bool ok = field(rq, true, prim) && field(rq, false, sec);
    char name[128] = "";
    int rc = PM_E_SIG;
    if (ok && !prim.empty())
        rc = type == ASC_USER_IDENTITY_JWT
                 ? p.authenticate(p.ctx, a.host.c_str(), nullptr, nullptr, prim.c_str(), name,
                                  sizeof name)
                 : p.authenticate(p.ctx, a.host.c_str(), prim.c_str(), sec.c_str(), nullptr, name,
                                  sizeof name);
    sodium_memzero(&sec[0], sec.size());
    if (type == ASC_USER_IDENTITY_JWT)
        sodium_memzero(&prim[0], prim.size());
    if (rc != PM_OK) {
        why = type == ASC_USER_IDENTITY_JWT ? "token not valid" : "user name or passcode wrong";
        if (type == ASC_USER_IDENTITY_USER_PASSWORD && ok)
            why += " (user " + prim.substr(0, 64) + ")";
        return PM_E_SIG;
    }
    user = name;
    if (rq->isPosResponseRequested()) {
        /* Positive response: for user name and passcode it carries no server response
         * (PS3.7 D.3.3.7.2). dcmtk 3.6.7 declares ASC_setIdentAC but does not export it. */
        UserIdentityNegotiationSubItemAC *ac = new UserIdentityNegotiationSubItemAC();
        ac->setServerResponse("", 0);
        delete a.assoc->params->DULparams.ackUserIdentNeg;
        a.assoc->params->DULparams.ackUserIdentNeg = ac;
    }
    pm_info(LOG_MOD, "association from %s: user %s", a.label.c_str(), name);
    return PM_OK;
}
