/* DICOM user identity negotiation (PS3.7 D.3.3.7) on the edge: the A-ASSOCIATE-RQ's
 * user identity sub-item checked through the provider's authenticate(), so that a read
 * through a viewer is recorded under a person. C++ internal to the shim. */
#ifndef PM_DICOM_IDENTITY_H
#define PM_DICOM_IDENTITY_H

#ifndef __cplusplus
#error "identity.h is C++ only"
#endif

#include <string>

struct pm_dicom_assoc;

/* Reads the association's user identity sub-item, if any. Username and passcode (type
 * 2) and a bearer token (type 5, the token of POST /api/tokens) are checked: PM_OK with
 * the reader's name in user (and a positive response queued when the requester asked
 * for one), or PM_E_SIG with why when they do not verify. No sub-item, a user name
 * alone (it proves nothing) and types the node cannot check (Kerberos, SAML): PM_OK
 * with user empty, so the AE title and address are recorded. */
int pm_dicom_edge_identity(pm_dicom_assoc &a, std::string &user, std::string &why);

#endif
