"""What the profiles promise, end to end on real files: the Rust core (``_core.anonymize_bytes``)
runs plans built from profiles, pydicom reads the outputs.

- longitudinal dates: two studies of one patient keep their interval, pseudonyms and offset;
- referential integrity over the whole corpus: every UID is a keyed UID of an input UID, and
  references to instances of the corpus resolve to output instances;
- Retain Safe Private: elements matched by private creator, wherever the block is;
- conditions (``when``) and clean patterns (docs/plan.md "Conditions", "Clean patterns").
"""

from __future__ import annotations

import copy
import datetime
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pydicom.datadict
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dicomscrub import Profile, _core, reference
from dicomscrub.profiles.resolution import TYPE_UIDS
from dicomscrub.profiles.table import SAFE_PRIVATE

from corpus import readable_files

TEST_KEY = b"dicomscrub test key: not a secret"
REGISTRY = "1.2.840.10008."


def read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in ds.iterall():  # decode everything now, under the filter
            pass
    return ds


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def run(ds: Dataset | bytes, profile: Profile, key: bytes = TEST_KEY) -> Dataset:
    data = ds if isinstance(ds, bytes) else to_bytes(ds)
    return read(_core.anonymize_bytes(data, _core.Plan(profile.to_json(), key)))


def real_file(name: str) -> Dataset:
    """A file that pydicom ships (part of the corpus)."""
    return pydicom.dcmread(get_testdata_file(name, download=False))


# ---------------------------------------------------------------------------------------------
# Longitudinal temporal information with modified dates
# ---------------------------------------------------------------------------------------------

DAYS_APART = 37
FIRST_STUDY = datetime.date(2020, 1, 10)


def _day(value: str) -> datetime.date:
    return datetime.datetime.strptime(value[:8], "%Y%m%d").date()


def _study(patient_id: str, study_date: datetime.date) -> Dataset:
    """CT_small as one study of ``patient_id`` on ``study_date``: dates in DA, TM and DT, and
    in a sequence item."""
    ds = real_file("CT_small.dcm")
    ds.remove_private_tags()
    day = study_date.strftime("%Y%m%d")
    ds.PatientID = patient_id
    ds.PatientName = "DOE^JANE"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = day
    ds.StudyTime = "093015.250"
    ds.AcquisitionDateTime = f"{day}093015.123456+0100"
    step = Dataset()
    step.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    step.ReferencedSOPInstanceUID = generate_uid()
    step.PerformedProcedureStepStartDate = day
    step.PerformedProcedureStepStartTime = "091500"
    ds.ReferencedPerformedProcedureStepSequence = Sequence([step])
    return ds


def _dates(ds: Dataset) -> dict[str, datetime.date]:
    """Every date of the study built by _study, by where it is."""
    item = ds.ReferencedPerformedProcedureStepSequence[0]
    return {
        "StudyDate": _day(ds.StudyDate),
        "SeriesDate": _day(ds.SeriesDate),
        "AcquisitionDate": _day(ds.AcquisitionDate),
        "ContentDate": _day(ds.ContentDate),
        "AcquisitionDateTime": _day(ds.AcquisitionDateTime),
        "sequence PerformedProcedureStepStartDate": _day(item.PerformedProcedureStepStartDate),
    }


def _offset(source: Dataset, out: Dataset) -> int:
    """The one offset (days) by which every date of ``source`` moved in ``out``."""
    before, after = _dates(source), _dates(out)
    offsets = {where: (after[where] - before[where]).days for where in before}
    assert len(set(offsets.values())) == 1, f"dates moved by different offsets: {offsets}"
    return next(iter(offsets.values()))


def test_two_studies_of_one_patient_keep_their_interval() -> None:
    profile = Profile.basic(["retain-long-modified-dates"])
    max_days = profile.to_plan()["date_shift"]["max_days"]
    first = _study("PAT-LONG-0001", FIRST_STUDY)
    second = _study("PAT-LONG-0001", FIRST_STUDY + datetime.timedelta(days=DAYS_APART))
    out1, out2 = run(first, profile), run(second, profile)

    assert (_day(out2.StudyDate) - _day(out1.StudyDate)).days == DAYS_APART
    offset = _offset(first, out1)
    assert _offset(second, out2) == offset
    assert -max_days <= offset <= -1
    assert offset == _core.date_offset_days(TEST_KEY, "PAT-LONG-0001", max_days)
    for source, out in ((first, out1), (second, out2)):
        # times, fractions and the UTC offset of a DT are kept; only the date part moves
        assert out.StudyTime == source.StudyTime
        assert out.AcquisitionDateTime[8:] == "093015.123456+0100"
        item = out.ReferencedPerformedProcedureStepSequence[0]
        assert item.PerformedProcedureStepStartTime == "091500"
        assert out.LongitudinalTemporalInformationModified == "MODIFIED"
        assert out.StudyInstanceUID != source.StudyInstanceUID
    # one patient, one pseudonym, in both studies
    pseudonym = "ANON-" + _core.keyed_pseudonym(TEST_KEY, "PAT-LONG-0001")
    assert out1.PatientID == out2.PatientID == pseudonym
    assert str(out1.PatientName) == str(out2.PatientName) == pseudonym
    assert out1.StudyInstanceUID != out2.StudyInstanceUID


def test_other_patients_get_other_offsets() -> None:
    profile = Profile.basic(["retain-long-modified-dates"])
    max_days = profile.to_plan()["date_shift"]["max_days"]
    offsets = {}
    for number in range(6):
        patient = f"PAT-OTHER-{number:04d}"
        source = _study(patient, FIRST_STUDY)
        offsets[patient] = _offset(source, run(source, profile))
        assert -max_days <= offsets[patient] <= -1
    # 6 offsets drawn from 3652 values: all equal with probability 3652**-5
    assert len(set(offsets.values())) > 1, offsets
    # another key, other offsets for the same patient
    source = _study("PAT-OTHER-0000", FIRST_STUDY)
    assert _offset(source, run(source, profile, b"another key")) == _core.date_offset_days(
        b"another key", "PAT-OTHER-0000", max_days
    )


# ---------------------------------------------------------------------------------------------
# Referential integrity over the corpus
# ---------------------------------------------------------------------------------------------


def _uid_elements(ds: Dataset) -> Iterator[tuple[str, str]]:
    """(keyword, value) of every UI value at any depth, File Meta included."""
    meta = getattr(ds, "file_meta", None)
    for source in (meta, ds):
        if source is None:
            continue
        for elem in source.iterall():
            if elem.VR != "UI" or elem.value in (None, ""):
                continue
            values = elem.value if isinstance(elem.value, list | tuple) else [elem.value]
            for value in values:
                text = str(value).rstrip("\0 ")
                if text:
                    yield elem.keyword or f"{int(elem.tag):08X}", text


#: references whose target is an instance (the SOP Instance UID of a file)
INSTANCE_REFERENCES = ("ReferencedSOPInstanceUID", "ReferencedSOPInstanceUIDInFile")
#: UIDs naming a kind of object (profiles/resolution.py TYPE_UIDS): kept, private ones too
TYPE_KEYWORDS = frozenset(pydicom.datadict.keyword_for_tag(int(t, 16)) for t in TYPE_UIDS)


@pytest.fixture(scope="module")
def corpus_uids() -> dict[str, Any]:
    """Every UID of the corpus, before and after the basic profile."""
    plan = _core.Plan(Profile.basic().to_json(), TEST_KEY)
    inputs: set[str] = set()
    instances_in: set[str] = set()
    outputs: list[tuple[Path, str, str]] = []  # (file, keyword, value)
    instances_out: set[str] = set()
    for path in readable_files():
        data = path.read_bytes()
        source, out = read(data), read(_core.anonymize_bytes(data, plan))
        inputs.update(v for k, v in _uid_elements(source) if k != "ImplementationClassUID")
        outputs += [(path, keyword, value) for keyword, value in _uid_elements(out)]
        if source.get("SOPInstanceUID"):
            instances_in.add(str(source.SOPInstanceUID).rstrip("\0 "))
        if out.get("SOPInstanceUID"):
            instances_out.add(str(out.SOPInstanceUID))
    return {
        "inputs": inputs,
        "outputs": outputs,
        "instances_in": instances_in,
        "instances_out": instances_out,
    }


def test_every_output_uid_is_a_keyed_input_uid(corpus_uids: dict[str, Any]) -> None:
    keyed = {_core.keyed_uid(TEST_KEY, uid): uid for uid in corpus_uids["inputs"]}
    assert len(keyed) == len(corpus_uids["inputs"])  # no collision
    assert len(corpus_uids["outputs"]) > 1000  # the corpus is full of UIDs
    # plan.md "File Meta": the Implementation Class UID is dicomscrub's own
    implementation = [v for _, k, v in corpus_uids["outputs"] if k == "ImplementationClassUID"]
    assert set(implementation) == {_core.IMPLEMENTATION_CLASS_UID}
    strays = [
        (path.name, keyword, value)
        for path, keyword, value in corpus_uids["outputs"]
        if not value.startswith(REGISTRY)
        and value not in keyed
        and keyword != "ImplementationClassUID"
        and keyword not in TYPE_KEYWORDS
    ]
    assert not strays, f"{len(strays)} output UIDs are no keyed input UID: {strays[:10]}"
    # and no input UID survives, but those of the registry
    survivors = {
        value
        for _path, keyword, value in corpus_uids["outputs"]
        if value in corpus_uids["inputs"]
        and not value.startswith(REGISTRY)
        and keyword != "ImplementationClassUID"
        and keyword not in TYPE_KEYWORDS
    }
    assert not survivors, sorted(survivors)[:10]


def test_type_uids_are_kept_instance_uids_keyed() -> None:
    """A vendor's private SOP class (and a reference to one, at depth) names a kind of object,
    a coding scheme UID a terminology: kept, so the output is still that object with readable
    codes; instance UIDs beside them are keyed. The reference agrees with the core."""
    private_class = "1.3.12.2.1107.5.9.1"  # Siemens CSA Non-Image Storage
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = private_class
    item = Dataset()
    item.ReferencedSOPClassUID = private_class
    item.ReferencedSOPInstanceUID = instance = generate_uid()
    ds.ReferencedImageSequence = Sequence([item])
    scheme = Dataset()
    scheme.CodingSchemeDesignator = "SCT"
    scheme.CodingSchemeUID = snomed = "2.16.840.1.113883.6.96"
    ds.CodingSchemeIdentificationSequence = Sequence([scheme])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    profile = Profile.basic()
    got = _core.anonymize_bytes(data, _core.Plan(profile.to_json(), TEST_KEY))
    out = read(got)
    assert out.SOPClassUID == out.file_meta.MediaStorageSOPClassUID == private_class
    ref = out.ReferencedImageSequence[0]
    assert ref.ReferencedSOPClassUID == private_class
    assert ref.ReferencedSOPInstanceUID == _core.keyed_uid(TEST_KEY, instance)
    assert out.CodingSchemeIdentificationSequence[0].CodingSchemeUID == snomed
    assert out.SOPInstanceUID == _core.keyed_uid(TEST_KEY, str(ds.SOPInstanceUID))
    expected = reference.apply_plan(read(data), profile.to_plan(), TEST_KEY)
    assert reference.differences(expected, out) == []


def test_references_resolve_to_output_instances(corpus_uids: dict[str, Any]) -> None:
    original = {_core.keyed_uid(TEST_KEY, uid): uid for uid in corpus_uids["inputs"]}
    resolved, dangling = 0, []
    for path, keyword, value in corpus_uids["outputs"]:
        if keyword not in INSTANCE_REFERENCES:
            continue
        if original.get(value) in corpus_uids["instances_in"]:  # its target was in the input
            if value in corpus_uids["instances_out"]:
                resolved += 1
            else:
                dangling.append((path.name, keyword, value))
    assert not dangling, dangling[:10]
    # the DICOMDIRs of the corpus reference its files, and a few files reference each other
    assert resolved >= 20, resolved


# ---------------------------------------------------------------------------------------------
# Retain Safe Private: by private creator, wherever its block is
# ---------------------------------------------------------------------------------------------

SAFE = next(e for e in SAFE_PRIVATE if e.creator == "SIEMENS MR HEADER" and e.vr == "IS")
SAFE_BYTES = {
    int(e.element, 16)
    for e in SAFE_PRIVATE
    if (e.creator, e.group)
    == (
        SAFE.creator,
        SAFE.group,
    )
}
UNSAFE = next(b for b in range(0x01, 0x100) if b not in SAFE_BYTES)


def _with_private_block(block: int) -> Dataset:
    """CT_small with SAFE's creator in ``block`` of its group: one safe and one unsafe element,
    at the top level and in a sequence item; and the safe byte under another creator."""
    ds = real_file("CT_small.dcm")
    ds.remove_private_tags()
    group = int(SAFE.group, 16)
    element = int(SAFE.element, 16)

    def fill(target: Dataset) -> None:
        target.add_new(group << 16 | block, "LO", SAFE.creator)
        target.add_new(group << 16 | block << 8 | element, "IS", "42")
        target.add_new(group << 16 | block << 8 | UNSAFE, "LO", "DOE^JANE 1970")
        other = block + 1
        target.add_new(group << 16 | other, "LO", "ACME 1.0")
        target.add_new(group << 16 | other << 8 | element, "IS", "7")

    fill(ds)
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = generate_uid()
    fill(item)
    ds.ReferencedImageSequence = Sequence([item])
    return ds


def _private(ds: Dataset) -> dict[tuple[str, int], Any]:
    """(creator, element byte) -> value of the private data elements of ``ds`` (one level)."""
    found = {}
    for elem in ds:
        tag = int(elem.tag)
        if elem.tag.is_private and (tag & 0xFFFF) >= 0x1000:
            creator = ds[tag >> 16 << 16 | (tag & 0xFF00) >> 8].value
            found[(creator, tag & 0xFF)] = str(elem.value)
    return found


@pytest.mark.parametrize("block", [0x10, 0x42])
def test_safe_private_follows_its_creator(block: int) -> None:
    source = _with_private_block(block)
    element = int(SAFE.element, 16)
    retained = run(source, Profile.basic(["retain-safe-private"]))
    for ds in (retained, retained.ReferencedImageSequence[0]):
        assert _private(ds) == {(SAFE.creator, element): "42"}
        creators = [e.value for e in ds if e.tag.is_private_creator]
        assert creators == [SAFE.creator]
        assert ds[int(SAFE.group, 16) << 16 | block].value == SAFE.creator  # the block stays
    removed = run(source, Profile.basic())
    for ds in (removed, removed.ReferencedImageSequence[0]):
        assert not [e for e in ds if e.tag.is_private]


# ---------------------------------------------------------------------------------------------
# Conditions and clean patterns
# ---------------------------------------------------------------------------------------------


def _ultrasound() -> Dataset:
    path = next(p for p in readable_files() if p.name == "US1_UNCR.dcm")
    ds = pydicom.dcmread(path)
    assert ds.Modality == "US"
    return ds


def test_condition_on_modality() -> None:
    profile = Profile.from_rules(
        [
            {
                "keyword": "ImageComments",
                "action": "keep",
                "when": {"keyword": "Modality", "in": ["US"]},
            },
            {"keyword": "ImageComments", "action": "replace", "value": "NOT US"},
            {
                "keyword": "Manufacturer",
                "action": "empty",
                "when": {"tag": "(0008,0060)", "equals": "CT"},
            },
        ]
    )
    us, ct = _ultrasound(), real_file("CT_small.dcm")
    for ds in (us, ct):
        ds.ImageComments = "probe 3: left lobe"
        ds.Manufacturer = "ACME"
    out_us, out_ct = run(us, profile), run(ct, profile)
    assert out_us.ImageComments == "probe 3: left lobe"  # the conditional rule
    assert out_ct.ImageComments == "NOT US"  # the next rule
    assert out_us.Manufacturer == "ACME"  # not CT: the base keeps it
    assert out_ct.Manufacturer == ""
    # without the condition's attribute, no condition holds
    del us.Modality
    assert run(us, profile).ImageComments == "NOT US"


def test_conditional_mask_falls_back_to_the_next_mask() -> None:
    """A mask rule whose condition fails is skipped for the next matching mask (docs/plan.md
    "Conditions"): Overlay Comments kept in US files, removed with its overlay group elsewhere."""
    profile = Profile.from_rules(
        [
            {
                "mask": "(60xx,4000)",
                "action": "keep",
                "when": {"keyword": "Modality", "in": ["US"]},
            }
        ]
    )
    plan = profile.to_plan()
    assert plan["masks"][0]["rule"]["when"] == {"tag": "00080060", "in": ["US"]}
    us, ct = _ultrasound(), real_file("CT_small.dcm")
    for ds in (us, ct):
        ds.add_new(0x60004000, "LT", "burned-in note")
        ds.add_new(0x60000010, "US", 16)
    out_us, out_ct = run(us, profile), run(ct, profile)
    assert out_us[0x60004000].value == "burned-in note"
    assert 0x60000010 not in out_us  # the rest of the overlay group: the base's mask
    assert 0x60004000 not in out_ct and 0x60000010 not in out_ct


def test_clean_patterns_mask_descriptors() -> None:
    profile = Profile.from_dict(
        {
            "options": ["clean-descriptors"],
            "clean_patterns": ["[0-9]{3}-[0-9]{2}-[0-9]{4}", "MRN ?[0-9]{6,10}"],
        }
    )
    ds = real_file("CT_small.dcm")
    ds.PatientID = "PID778899"
    ds.StudyDescription = "Knee f/u SSN 123-45-6789 MRN 00123456 PID778899"
    ds.SeriesDescription = "no number here"
    out = run(ds, profile)
    assert out.StudyDescription == "Knee f/u SSN XXXXXXXXXXX XXXXXXXXXXXX XXXXXXXXX"
    assert out.SeriesDescription == "no number here"
    # the pure-Python reference of the plan agrees
    expected = reference.apply_plan(copy.deepcopy(ds), profile.to_plan(), TEST_KEY)
    assert expected.StudyDescription == out.StudyDescription


def test_files_built_here_are_valid_inputs() -> None:
    """The builders above give files that the core and pydicom both read."""
    for ds in (_study("P", FIRST_STUDY), _with_private_block(0x10)):
        data = to_bytes(ds)
        assert read(data).SOPInstanceUID == ds.SOPInstanceUID
        assert _core.anonymize_bytes(data, _core.Plan('{"version": 1}', TEST_KEY)) == data
