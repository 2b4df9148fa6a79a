/* Admission to the DICOM edge: the access rules (node/dicom/access.h) applied to each
 * association as it is received (called AE title, calling AE title and address, user
 * identity) and to each request on it (rights), with the access snapshot that a SIGHUP
 * reload replaces. Refusals are logged with their source and counted. */
#include "node/audit/notes.h"
#include "node/dicom/identity.h"
#include "node/dicom/shim_internal.h"

#include <cstring>

extern "C" {
#include "proto/error.h"
#include "proto/log.h"
}

#define LOG_MOD "dicom"

void pm_dicom_edge_refused(pm_dicom_server *srv, int why)
{
    if (srv->provider.refused)
        srv->provider.refused(srv->provider.ctx, why);
}

/* The access part of settings, parsed (host names resolved). */
static int build_access(const pm_dicom_settings *st, std::shared_ptr<const pm_dicom_access> &out)
{
    auto acc = std::make_shared<pm_dicom_access>();
    for (const char *const *p = st->allowed_aes; p && *p; p++) {
        pm_access_entry e;
        char why[320];
        if (pm_access_parse(*p, &e, why, sizeof why) != PM_OK) {
            pm_error(LOG_MOD, "allowed_aes entry: %s", why);
            return PM_E_CONFIG;
        }
        acc->entries.push_back(e);
    }
    acc->store_from_any = st->store_from_any != 0;
    if (acc->entries.empty())
        pm_warn(LOG_MOD, "[dicom] allowed_aes is empty: %s",
                acc->store_from_any ? "any AE may store, none may query or retrieve"
                                    : "every association will be refused");
    for (size_t i = 0; i < st->n_destinations; i++)
        acc->destinations.push_back(st->destinations[i]);
    out = acc;
    return PM_OK;
}

int pm_dicom_edge_set_access(pm_dicom_server *srv, const pm_dicom_settings *st)
{
    std::shared_ptr<const pm_dicom_access> acc;
    int rc = build_access(st, acc);
    if (rc != PM_OK)
        return rc;
    std::lock_guard<std::mutex> g(srv->access_mu);
    srv->access = acc;
    return PM_OK;
}

extern "C" int pm_dicom_server_set_access(pm_dicom_server *self, const pm_dicom_settings *settings)
{
    if (!self || !settings)
        return PM_E_INVAL;
    try {
        int rc = pm_dicom_edge_set_access(self, settings);
        size_t n = 0;
        for (const char *const *p = settings->allowed_aes; p && *p; p++)
            n++;
        if (rc == PM_OK)
            pm_info(LOG_MOD, "access rules replaced: %zu allowed_aes entries, %zu destinations", n,
                    settings->n_destinations);
        return rc;
    } catch (...) {
        return PM_E_NOMEM;
    }
}

/* Every refusal is also an ATNA security alert (node/audit). */
static void reject(pm_dicom_assoc &a, T_ASC_RejectParametersReason reason, int why_kind,
                   const char *why_text)
{
    pm_audit_note_alert(a.calling_ae.c_str(), a.host.c_str(), why_text);
    T_ASC_RejectParameters rej = {ASC_RESULT_REJECTEDPERMANENT, ASC_SOURCE_SERVICEUSER, reason};
    ASC_rejectAssociation(a.assoc, &rej);
    pm_dicom_edge_refused(a.srv, why_kind);
}

static std::string trimmed(const char *s)
{
    std::string t(s ? s : "");
    while (!t.empty() && t.back() == ' ')
        t.pop_back();
    return t;
}

bool pm_dicom_edge_admit(pm_dicom_assoc &a)
{
    {
        std::lock_guard<std::mutex> g(a.srv->access_mu);
        a.access = a.srv->access;
    }
    std::string called = trimmed(a.assoc->params->DULparams.calledAPTitle);
    if (called != a.srv->ae_title) {
        pm_warn(LOG_MOD,
                "association from %s refused: called AE title '%s' is not this node's (%s)",
                a.label.c_str(), called.c_str(), a.srv->ae_title.c_str());
        reject(a, ASC_REASON_SU_CALLEDAETITLENOTRECOGNIZED, PM_DICOM_REFUSED_CALLED_AE,
               "DICOM association refused: called AE title is not this node's");
        return false;
    }
    const pm_dicom_access &acc = *a.access;
    pm_access_verdict v =
        pm_access_check(acc.entries.data(), acc.entries.size(), acc.store_from_any,
                        a.calling_ae.c_str(), a.host.c_str(), &a.rights);
    if (v != PM_ACCESS_ACCEPT) {
        pm_warn(LOG_MOD, "association from AE %s at %s refused: %s",
                trimmed(a.calling_ae.c_str()).c_str(), a.host.c_str(), pm_access_verdict_text(v));
        reject(a, ASC_REASON_SU_CALLINGAETITLENOTRECOGNIZED,
               v == PM_ACCESS_WRONG_HOST ? PM_DICOM_REFUSED_HOST : PM_DICOM_REFUSED_CALLING_AE,
               pm_access_verdict_text(v));
        return false;
    }
    std::string user, why;
    int rc = pm_dicom_edge_identity(a, user, why);
    if (rc != PM_OK) {
        pm_warn(LOG_MOD, "association from %s refused: user identity: %s", a.label.c_str(),
                why.c_str());
        reject(a, ASC_REASON_SU_NOREASON, PM_DICOM_REFUSED_IDENTITY,
               "DICOM association refused: user identity not accepted");
        return false;
    }
    a.reader = !user.empty() ? user : trimmed(a.calling_ae.c_str()) + "@" + a.host;
    return true;
}

bool pm_dicom_edge_may(pm_dicom_assoc &a, unsigned right, const char *service)
{
    if (a.rights & right)
        return true;
    const pm_dicom_access &acc = *a.access;
    if (acc.entries.empty())
        pm_warn(LOG_MOD, "%s from AE %s at %s refused: allowed_aes is empty, so no AE may %s",
                service, trimmed(a.calling_ae.c_str()).c_str(), a.host.c_str(),
                pm_access_right_name(right));
    else
        pm_warn(LOG_MOD, "%s from AE %s at %s refused: no '%s' right in allowed_aes", service,
                trimmed(a.calling_ae.c_str()).c_str(), a.host.c_str(), pm_access_right_name(right));
    pm_audit_note_alert(a.calling_ae.c_str(), a.host.c_str(), "DICOM request refused: no right");
    pm_dicom_edge_refused(a.srv, PM_DICOM_REFUSED_RIGHTS);
    return false;
}
