#!/usr/bin/python3
"""Writes a synthetic AI product's result into a study, as an AI triage tool would send
it: `sr OUT STUDY_FILE SCHEME VALUE MEANING` a Comprehensive SR whose content tree holds
a finding (DCM 121071 "Finding") coded SCHEME:VALUE MEANING; `series OUT STUDY_FILE
DESCRIPTION` a Secondary Capture instance in a result series so described. The study's
patient and study attributes are copied from STUDY_FILE (one of its instances)."""
import sys

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def code(scheme, value, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def base(study_file, sop_class, modality, series_description):
    src = pydicom.dcmread(study_file)
    ds = Dataset()
    for k in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
              "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "ReferringPhysicianName"):
        if k in src:
            setattr(ds, k, src.data_element(k).value)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 900, 1
    ds.Modality, ds.SeriesDescription, ds.Manufacturer = modality, series_description, "Synthetic AI"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def sr(out, study_file, scheme, value, meaning):
    ds = base(study_file, "1.2.840.10008.5.1.4.1.1.88.33", "SR", "AI triage result")
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([code("DCM", "126000", "Imaging Measurement Report")])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    finding = Dataset()
    finding.RelationshipType, finding.ValueType = "CONTAINS", "CODE"
    finding.ConceptNameCodeSequence = Sequence([code("DCM", "121071", "Finding")])
    finding.ConceptCodeSequence = Sequence([code(scheme, value, meaning)])
    group = Dataset()
    group.RelationshipType, group.ValueType, group.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
    group.ConceptNameCodeSequence = Sequence([code("DCM", "125007", "Measurement Group")])
    group.ContentSequence = Sequence([finding])
    ds.ContentSequence = Sequence([group])
    ds.save_as(out, write_like_original=False)


def series(out, study_file, description):
    ds = base(study_file, "1.2.840.10008.5.1.4.1.1.7", "OT", description)
    ds.save_as(out, write_like_original=False)


if __name__ == "__main__":
    {"sr": sr, "series": series}[sys.argv[1]](*sys.argv[2:])
