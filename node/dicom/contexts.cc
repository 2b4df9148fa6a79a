/* Presentation context negotiation of the DICOM edge: which abstract syntaxes we accept
 * (verification, the query/retrieve models, every storage SOP class), which of the
 * proposed transfer syntaxes we pick for each, and the SCP role a C-GET requester asks
 * for. */
#include "node/dicom/shim_internal.h"

#include <cstring>

static const char *const service_classes[] = {
    UID_VerificationSOPClass,
    UID_FINDPatientRootQueryRetrieveInformationModel,
    UID_FINDStudyRootQueryRetrieveInformationModel,
    UID_GETPatientRootQueryRetrieveInformationModel,
    UID_GETStudyRootQueryRetrieveInformationModel,
    UID_MOVEPatientRootQueryRetrieveInformationModel,
    UID_MOVEStudyRootQueryRetrieveInformationModel,
};

static bool is_service_class(const char *uid)
{
    for (const char *s : service_classes)
        if (strcmp(s, uid) == 0)
            return true;
    return false;
}

/* Every storage SOP class: dcmtk's list, plus any UID dcmtk does not know at all (new
 * or private storage classes), which is what "every storage SOP class" needs. */
static bool is_storage_class(const char *uid)
{
    if (dcmIsaStorageSOPClassUID(uid, ESSC_All))
        return true;
    return uid[0] != '\0' && dcmFindNameOfUID(uid) == nullptr;
}

/* The client's first proposed transfer syntax that dcmtk knows; for DIMSE commands and
 * query identifiers only uncompressed, non-deflated ones. */
static const char *choose_ts(const T_ASC_PresentationContext &pc, bool uncompressed_only)
{
    for (int i = 0; i < pc.transferSyntaxCount; i++) {
        DcmXfer x(pc.proposedTransferSyntaxes[i]);
        if (x.getXfer() == EXS_Unknown)
            continue;
        if (uncompressed_only && (x.isEncapsulated() || x.getStreamCompression() != ESC_none))
            continue;
        return pc.proposedTransferSyntaxes[i];
    }
    return nullptr;
}

void pm_dicom_edge_negotiate_contexts(T_ASC_Parameters *params)
{
    int n = ASC_countPresentationContexts(params);
    for (int i = 0; i < n; i++) {
        T_ASC_PresentationContext pc;
        if (ASC_getPresentationContext(params, i, &pc).bad())
            continue;
        const char *ts = nullptr;
        if (is_service_class(pc.abstractSyntax))
            ts = choose_ts(pc, true);
        else if (is_storage_class(pc.abstractSyntax))
            ts = choose_ts(pc, false); /* stored as it arrives: any syntax will do */
        if (!ts) {
            ASC_refusePresentationContext(params, pc.presentationContextID,
                                          is_service_class(pc.abstractSyntax) ||
                                                  is_storage_class(pc.abstractSyntax)
                                              ? ASC_P_TRANSFERSYNTAXESNOTSUPPORTED
                                              : ASC_P_ABSTRACTSYNTAXNOTSUPPORTED);
            continue;
        }
        /* A C-GET requester proposes the SCP role for the storage classes it wants back;
         * accepting the role it asks for is what lets us send them on this association. */
        T_ASC_SC_ROLE role = ASC_SC_ROLE_DEFAULT;
        if (pc.proposedRole == ASC_SC_ROLE_SCP || pc.proposedRole == ASC_SC_ROLE_SCUSCP)
            role = pc.proposedRole;
        ASC_acceptPresentationContext(params, pc.presentationContextID, ts, role);
    }
}
