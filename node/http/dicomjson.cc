#include "node/http/dicomjson.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcjson.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

extern "C" {
#include "proto/error.h"
}

namespace
{

struct BulkFormat : DcmJsonFormatCompact {
    std::string base;
    explicit BulkFormat(const char *b) : DcmJsonFormatCompact(OFFalse), base(b ? b : "") {}
    OFBool asBulkDataURI(const DcmTagKey &tag, OFString &uri) override
    {
        if (tag != DCM_PixelData && tag != DCM_FloatPixelData && tag != DCM_DoubleFloatPixelData)
            return OFFalse;
        char t[9];
        snprintf(t, sizeof t, "%04X%04X", tag.getGroup(), tag.getElement());
        uri = (base + t).c_str();
        return OFTrue;
    }
};

int say(char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", what);
    return PM_E_DICOM;
}

char *copy_out(const std::string &s, size_t *len)
{
    char *p = static_cast<char *>(malloc(s.size() + 1));
    if (p) {
        memcpy(p, s.data(), s.size());
        p[s.size()] = 0;
        *len = s.size();
    }
    return p;
}

} // namespace

extern "C" int pm_dw_instance_json(const char *path, const char *bulk_base, char **out,
                                   size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    try {
        DcmFileFormat ff;
        if (ff.loadFile(path).bad())
            return say(err, errlen, "the stored instance cannot be read");
        std::ostringstream os;
        BulkFormat fmt(bulk_base);
        os << "{"; /* the data set writes its members, not the object around them */
        if (ff.getDataset()->writeJson(os, fmt).bad())
            return say(err, errlen, "the instance cannot be written as DICOM JSON");
        os << "}";
        *out = copy_out(os.str(), outlen);
        return *out ? PM_OK : PM_E_NOMEM;
    } catch (...) {
        return say(err, errlen, "dcmtk failed reading the instance");
    }
}

/* The compressed frame: fragment items 1.. of the pixel sequence. A single frame is all
 * fragments; a multi-frame file is assumed to hold one fragment per frame. */
static int encapsulated_frame(DcmPixelData *pd, E_TransferSyntax xfer, unsigned frame,
                              unsigned nframes, std::string &bytes)
{
    DcmPixelSequence *seq = NULL;
    if (pd->getEncapsulatedRepresentation(xfer, NULL, seq).bad() || !seq)
        return PM_E_DICOM;
    unsigned long items = seq->card(); /* item 0 is the offset table */
    if (items < 2)
        return PM_E_NOTFOUND;
    unsigned long first = 1, last = items - 1;
    if (nframes > 1) {
        if (items - 1 != nframes)
            return PM_E_DICOM;
        first = last = frame;
    }
    for (unsigned long i = first; i <= last; i++) {
        DcmPixelItem *it = NULL;
        Uint8 *data = NULL;
        if (seq->getItem(it, i).bad() || !it || it->getUint8Array(data).bad())
            return PM_E_DICOM;
        if (data)
            bytes.append(reinterpret_cast<char *>(data), it->getLength());
    }
    return PM_OK;
}

extern "C" int pm_dw_frame(const char *path, unsigned frame, char **out, size_t *outlen,
                           char ts[65], char *err, size_t errlen)
{
    *out = NULL;
    ts[0] = 0;
    try {
        DcmFileFormat ff;
        if (ff.loadFile(path).bad())
            return say(err, errlen, "the stored instance cannot be read");
        DcmDataset *ds = ff.getDataset();
        Sint32 nframes = 1;
        if (ds->findAndGetSint32(DCM_NumberOfFrames, nframes).bad() || nframes < 1)
            nframes = 1;
        if (frame < 1 || frame > (unsigned)nframes)
            return PM_E_NOTFOUND;
        DcmElement *el = NULL;
        if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
            return PM_E_NOTFOUND;
        DcmPixelData *pd = OFstatic_cast(DcmPixelData *, el);
        E_TransferSyntax xfer = ds->getOriginalXfer();
        DcmXfer x(xfer);
        std::string bytes;
        if (x.isEncapsulated()) {
            int rc = encapsulated_frame(pd, xfer, frame, (unsigned)nframes, bytes);
            if (rc)
                return rc == PM_E_NOTFOUND ? rc : say(err, errlen, "cannot split the frames");
            snprintf(ts, 65, "%s", x.getXferID());
        } else {
            Uint32 size = 0, start = 0;
            OFString model;
            if (pd->getUncompressedFrameSize(ds, size).bad() || size == 0)
                return say(err, errlen, "cannot size the frame");
            bytes.resize(size);
            if (pd->getUncompressedFrame(ds, frame - 1, start, &bytes[0], size, model).bad())
                return say(err, errlen, "cannot read the frame");
            snprintf(ts, 65, "%s", UID_LittleEndianExplicitTransferSyntax);
        }
        *out = copy_out(bytes, outlen);
        return *out ? PM_OK : PM_E_NOMEM;
    } catch (...) {
        return say(err, errlen, "dcmtk failed reading the frame");
    }
}

extern "C" int pm_dw_bulk(const char *path, unsigned group, unsigned element, char **out,
                          size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    try {
        DcmFileFormat ff;
        if (ff.loadFile(path).bad())
            return say(err, errlen, "the stored instance cannot be read");
        DcmDataset *ds = ff.getDataset();
        DcmElement *el = NULL;
        DcmTagKey tag((Uint16)group, (Uint16)element);
        if (ds->findAndGetElement(tag, el).bad() || !el)
            return PM_E_NOTFOUND;
        DcmEVR vr = el->ident();
        std::string bytes;
        if (tag == DCM_PixelData && DcmXfer(ds->getOriginalXfer()).isEncapsulated()) {
            Sint32 nframes = 1;
            if (ds->findAndGetSint32(DCM_NumberOfFrames, nframes).bad() || nframes < 1)
                nframes = 1;
            for (Sint32 f = 1; f <= nframes; f++)
                if (encapsulated_frame(OFstatic_cast(DcmPixelData *, el), ds->getOriginalXfer(),
                                       (unsigned)f, (unsigned)nframes, bytes))
                    return say(err, errlen, "cannot split the frames");
        } else if (vr == EVR_OW || vr == EVR_PixelData || vr == EVR_ox) {
            Uint16 *w = NULL;
            if (el->getUint16Array(w).bad() || !w)
                return PM_E_NOTFOUND;
            bytes.assign(reinterpret_cast<char *>(w), el->getLength());
        } else if (vr == EVR_OB || vr == EVR_UN || vr == EVR_OF || vr == EVR_OD || vr == EVR_OL) {
            Uint8 *b = NULL;
            if (el->getUint8Array(b).bad() || !b)
                return PM_E_NOTFOUND;
            bytes.assign(reinterpret_cast<char *>(b), el->getLength());
        } else {
            return PM_E_NOTFOUND;
        }
        *out = copy_out(bytes, outlen);
        return *out ? PM_OK : PM_E_NOMEM;
    } catch (...) {
        return say(err, errlen, "dcmtk failed reading the attribute");
    }
}
