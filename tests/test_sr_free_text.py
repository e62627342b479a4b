"""Free text no table row names (an SR TextValue inside Content Sequence) must not survive the
basic profile: Content Sequence is D, so kept free text below it gets a dummy value, while the
coded vocabulary (CodeValue, CodeMeaning) stays."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomscrub import Profile, _core


def sr_file() -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Smithers^Waylon"
    ds.PatientID = "MRN-4242"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "121071", "DCM"
    concept.CodeMeaning = "Finding"
    item = Dataset()
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([concept])
    item.TextValue = "Mr Smithers (MRN-4242) called from 555-0199 about his scan"
    ds.ContentSequence = Sequence([item])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_basic_profile_replaces_sr_free_text() -> None:
    out = _core.anonymize_bytes(sr_file(), _core.Plan(Profile.basic().to_json(), b"k"))
    for secret in (b"Smithers", b"MRN-4242", b"555-0199"):
        assert secret not in out
    ds = pydicom.dcmread(io.BytesIO(out))
    item = ds.ContentSequence[0]
    assert item.TextValue == "ANONYMIZED"
    assert item.ConceptNameCodeSequence[0].CodeMeaning == "Finding"


def test_clean_structured_content_keeps_text_without_identifiers() -> None:
    plan = _core.Plan(Profile.basic(["clean-structured-content"]).to_json(), b"k")
    ds = pydicom.dcmread(io.BytesIO(_core.anonymize_bytes(sr_file(), plan)))
    text = ds.ContentSequence[0].TextValue
    assert "Smithers" not in text and "MRN-4242" not in text.upper()
    assert text.startswith("Mr XXXXXXXX") and "about his scan" in text
