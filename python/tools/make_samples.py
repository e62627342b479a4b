"""Generate ``samples/``: a tiny synthetic DICOM file-set full of *fake* PHI.

    python python/tools/make_samples.py [OUT_DIR]          # default: samples/

Two invented patients, three studies, five modalities, every transfer syntax family the core
handles, and the kinds of PHI a de-identifier must find: names (one with non-ASCII characters),
IDs, other IDs, birth dates, addresses, phone numbers, physicians, institutions, accession
numbers, free-text comments, a private block (with a private sequence whose item has its own
private creator), and identifiers nested two sequences deep. Every name, number and address here
is made up. Output is deterministic: same bytes at every run (fixed UIDs, dates, pixels).

Files (DICOM File IDs: upper case, at most 8 characters per component, so the DICOMDIR is valid):

    PAT1/CT/CT000001   CT, Explicit VR Little Endian, private block, nested sequences
    PAT1/CT/CT000002   CT, Implicit VR Little Endian
    PAT1/MR/MR000001   MR, Explicit VR Big Endian (retired syntax, still met in archives)
    PAT1/MR/MR000002   MR, Deflated Explicit VR Little Endian
    PAT2/CR/CR000001   CR, RLE Lossless (encapsulated pixel data)
    PAT2/US/US000001   US, RGB, Explicit VR Little Endian, written without the 128-byte preamble
    PAT2/SR/SR000001   Basic Text SR: names and IDs inside nested content items
    DICOMDIR           the file-set's directory (records repeat the PHI)
    README.TXT         not DICOM: a run reports it and skips it

The pixel data is small (64x64 or 128x128) and the whole set stays well under 100 KB.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
import sys
from collections.abc import Callable

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "samples"))

CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
US_IMAGE = UID("1.2.840.10008.5.1.4.1.1.6.1")
BASIC_TEXT_SR = UID("1.2.840.10008.5.1.4.1.1.88.11")
IMPLEMENTATION_UID = UID("2.25.94875012736492750124856372910473829111")
PRIVATE_CREATOR = "ACME IMAGING 1.0"


def uid(name: str) -> UID:
    """A fixed UID per name (2.25 form, derived from the name): reruns give the same files."""
    digest = hashlib.sha256(f"dicomscrub-samples/{name}".encode()).digest()
    return UID("2.25." + str(int.from_bytes(digest[:16], "big")))


# -- the invented people -----------------------------------------------------------------------

PATIENTS = {
    "PAT1": {
        "PatientName": "Doe^Jane^Marie^^",
        "PatientID": "MRN-0042731",
        "IssuerOfPatientID": "ST-ELSEWHERE",
        "PatientBirthDate": "19620314",
        "PatientSex": "F",
        "PatientAge": "061Y",
        "PatientAddress": "12 Harbour Road^^Springfield^IL^62704^USA",
        "PatientTelephoneNumbers": "+1-217-555-0142",
        "PatientMotherBirthName": "Smith^Anne",
        "EthnicGroup": "Caucasian",
        "Occupation": "Schoolteacher",
        "other_id": "SSN-078-05-1120",
        "charset": None,
    },
    "PAT2": {
        "PatientName": "Müller^Hans-Jürgen",
        "PatientID": "PID-77-31902",
        "IssuerOfPatientID": "KLINIKUM-NORD",
        "PatientBirthDate": "19480902",
        "PatientSex": "M",
        "PatientAge": "075Y",
        "PatientAddress": "Lindenstraße 5, 20095 Hamburg",
        "PatientTelephoneNumbers": "+49-40-5550199",
        "PatientMotherBirthName": "Schäfer^Greta",
        "EthnicGroup": "",
        "Occupation": "Harbour pilot",
        "other_id": "KV-A123456789",
        "charset": "ISO_IR 100",
    },
}

STUDIES = {
    "S1": (
        "PAT1",
        "20230117",
        "081512",
        "ACC20230117001",
        "CT CHEST W/O CONTRAST",
        "House^Gregory",
    ),
    "S2": ("PAT1", "20230302", "142201", "ACC20230302017", "MR BRAIN", "Quinn^Michaela"),
    "S3": ("PAT2", "20231110", "093045", "KN-2023-118877", "FOLLOW-UP VISIT", "Wagner^Eva^Dr."),
}


# -- pixels ------------------------------------------------------------------------------------


def gray16(rows: int, cols: int, seed: int, big_endian: bool = False) -> bytes:
    """A smooth 12-bit phantom: a disc on a gradient (stored in 16 bits)."""
    out = bytearray()
    fmt = ">H" if big_endian else "<H"
    cy, cx, r = rows / 2, cols / 2, min(rows, cols) / 3
    for y in range(rows):
        for x in range(cols):
            v = 200 + 6 * x + 3 * y + seed * 17
            if (y - cy) ** 2 + (x - cx) ** 2 < r * r:
                v += 1500 + int(300 * math.sin((x + seed) / 5.0))
            out += struct.pack(fmt, max(0, min(4095, v)))
    return bytes(out)


def gray8(rows: int, cols: int) -> bytes:
    """An 8-bit radiograph-like pattern with flat runs (so RLE has something to compress)."""
    out = bytearray()
    for y in range(rows):
        for x in range(cols):
            band = (x // 16 + y // 32) % 4
            out.append(40 + 50 * band if (x - 64) ** 2 + (y - 64) ** 2 > 900 else 230)
    return bytes(out)


def rgb8(rows: int, cols: int) -> bytes:
    out = bytearray()
    for y in range(rows):
        for x in range(cols):
            fan = abs(x - cols // 2) < y // 2 + 2
            v = (x * 7 + y * 3) % 256 if fan else 0
            out += bytes((v, v, min(255, v + 20) if fan else 0))
    return bytes(out)


# -- data sets ---------------------------------------------------------------------------------


def code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def base(patient: str, study: str, modality: str, sop_class: UID, name: str) -> Dataset:
    """Patient, study, series, equipment and SOP modules with their (fake) PHI."""
    p = PATIENTS[patient]
    _, date, time, accession, description, referring = STUDIES[study]
    ds = Dataset()
    if p["charset"]:
        ds.SpecificCharacterSet = p["charset"]
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(f"{name}/sop")
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.AcquisitionDate = date
    ds.ContentDate = date
    ds.StudyTime = time
    ds.SeriesTime = time
    ds.ContentTime = time
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = "ACME Imaging"
    ds.InstitutionName = (
        "St. Elsewhere General Hospital" if patient == "PAT1" else "Klinikum Nord Hamburg"
    )
    ds.InstitutionAddress = (
        "1 Hospital Plaza, Springfield IL 62701"
        if patient == "PAT1"
        else "Tangstedter Landstr. 400"
    )
    ds.ReferringPhysicianName = referring
    ds.ReferringPhysicianTelephoneNumbers = "+1-217-555-0100"
    ds.StationName = f"{modality}-ROOM-2"
    ds.StudyDescription = description
    ds.SeriesDescription = f"{description} - series of {p['PatientName'].split('^')[0]}"
    ds.PerformingPhysicianName = "Carter^John"
    ds.OperatorsName = "Nguyen^Linh"
    ds.ManufacturerModelName = "Phantasm 3000"
    ds.PatientName = p["PatientName"]
    ds.PatientID = p["PatientID"]
    ds.IssuerOfPatientID = p["IssuerOfPatientID"]
    ds.PatientBirthDate = p["PatientBirthDate"]
    ds.PatientSex = p["PatientSex"]
    ds.PatientAge = p["PatientAge"]
    ds.PatientAddress = p["PatientAddress"]
    ds.PatientTelephoneNumbers = p["PatientTelephoneNumbers"]
    ds.PatientMotherBirthName = p["PatientMotherBirthName"]
    if p["EthnicGroup"]:
        ds.EthnicGroup = p["EthnicGroup"]
    ds.Occupation = p["Occupation"]
    other = Dataset()
    other.PatientID = p["other_id"]
    other.IssuerOfPatientID = "NATIONAL REGISTRY"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientComments = f"Patient {p['PatientName'].replace('^', ' ')} prefers morning slots."
    ds.DeviceSerialNumber = "SN-4711-0815"
    ds.SoftwareVersions = "1.4.2"
    ds.StudyInstanceUID = uid(f"{study}/study")
    ds.SeriesInstanceUID = uid(f"{study}/{modality}/series")
    ds.StudyID = {"S1": "4711", "S2": "4802", "S3": "1177"}[study]
    ds.SeriesNumber = 1
    ds.FrameOfReferenceUID = uid(f"{study}/for")
    return ds


def with_request(ds: Dataset, study: str) -> None:
    """Request Attributes Sequence → Scheduled Protocol Code Sequence: IDs two levels deep."""
    _, date, _, accession, description, referring = STUDIES[study]
    protocol = code_item("P-CT-CHEST", "99ACME", "Chest routine")
    req = Dataset()
    req.RequestedProcedureID = f"RP{accession[-9:]}"
    req.ScheduledProcedureStepID = f"SPS{accession[-9:]}"
    req.RequestedProcedureDescription = description
    req.ScheduledProtocolCodeSequence = Sequence([protocol])
    req.AccessionNumber = accession
    req.StudyInstanceUID = ds.StudyInstanceUID
    ds.RequestAttributesSequence = Sequence([req])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = uid(f"{study}/ref-study")
    ds.ReferencedStudySequence = Sequence([ref])
    ds.ReasonForTheRequestedProcedure = f"Cough since {date[:4]}, referred by {referring}"


def with_private(ds: Dataset, patient: str) -> None:
    """A vendor block (0009,00xx) repeating PHI, with a private sequence whose item has its own
    private creator: what Basic Profile removes unless told otherwise."""
    p = PATIENTS[patient]
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p["PatientName"].replace("^", " "))
    block.add_new(0x02, "SH", p["PatientID"])
    block.add_new(0x03, "DA", p["PatientBirthDate"])
    block.add_new(0x04, "US", 3)
    inner = Dataset()
    inner_block = inner.private_block(0x0011, PRIVATE_CREATOR, create=True)
    inner_block.add_new(0x01, "LO", "Operator badge 0042")
    inner.PatientID = p["PatientID"]  # a public element inside a private item
    block.add_new(0x10, "SQ", Sequence([inner]))


def image(ds: Dataset, rows: int, cols: int, bits: int, samples: int, photometric: str) -> None:
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]


def meta(ds: Dataset, syntax: UID) -> None:
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = ds.SOPClassUID
    fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    fm.TransferSyntaxUID = syntax
    fm.ImplementationClassUID = IMPLEMENTATION_UID
    fm.ImplementationVersionName = "SAMPLES_1"
    fm.SourceApplicationEntityTitle = "ACME_MODALITY"
    ds.file_meta = fm


# -- the files ---------------------------------------------------------------------------------


def ct(n: int, syntax: UID) -> Dataset:
    ds = base("PAT1", "S1", "CT", CT_IMAGE, f"ct{n}")
    with_request(ds, "S1")
    with_private(ds, "PAT1")
    image(ds, 64, 64, 16, 1, "MONOCHROME2")
    ds.InstanceNumber = n
    ds.SliceLocation = -120.0 + 5 * n
    ds.ImagePositionPatient = [-160.0, -160.0, ds.SliceLocation]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [5.0, 5.0]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.KVP = 120
    ds.PixelData = gray16(64, 64, n)
    meta(ds, syntax)
    return ds


def mr(n: int, syntax: UID) -> Dataset:
    ds = base("PAT1", "S2", "MR", MR_IMAGE, f"mr{n}")
    with_request(ds, "S2")
    image(ds, 64, 64, 16, 1, "MONOCHROME2")
    ds.InstanceNumber = n
    ds.MagneticFieldStrength = 1.5
    ds.EchoTime = 12.0
    ds.RepetitionTime = 500.0
    ds.PixelData = gray16(64, 64, 10 + n, big_endian=syntax == ExplicitVRBigEndian)
    meta(ds, syntax)
    return ds


def cr() -> Dataset:
    from pydicom.pixels.encoders import RLELosslessEncoder

    ds = base("PAT2", "S3", "CR", CR_IMAGE, "cr1")
    image(ds, 128, 128, 8, 1, "MONOCHROME2")
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    frame = RLELosslessEncoder.encode(
        gray8(128, 128),
        rows=128,
        columns=128,
        samples_per_pixel=1,
        bits_allocated=8,
        bits_stored=8,
        pixel_representation=0,
        photometric_interpretation="MONOCHROME2",
        number_of_frames=1,
    )
    ds.PixelData = pydicom.encaps.encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    meta(ds, RLELossless)
    return ds


def us() -> Dataset:
    ds = base("PAT2", "S3", "US", US_IMAGE, "us1")
    image(ds, 64, 64, 8, 3, "RGB")
    ds.PixelData = rgb8(64, 64)
    meta(ds, ExplicitVRLittleEndian)
    return ds


def sr() -> Dataset:
    ds = base("PAT2", "S3", "SR", BASIC_TEXT_SR, "sr1")
    ds.SeriesInstanceUID = uid("S3/SR/series")
    ds.InstanceNumber = 1
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code_item("11528-7", "LN", "Radiology Report")])
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    observer = Dataset()
    observer.VerifyingObserverName = "Wagner^Eva^Dr."
    observer.VerifyingOrganization = "Klinikum Nord Hamburg"
    observer.VerificationDateTime = "20231110101500"
    observer.VerifyingObserverIdentificationCodeSequence = Sequence(
        [code_item("EW-1234", "99KN", "Wagner Eva")]
    )
    ds.VerifyingObserverSequence = Sequence([observer])

    def text(meaning: str, value: str) -> Dataset:
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "TEXT"
        item.ConceptNameCodeSequence = Sequence([code_item("121071", "DCM", meaning)])
        item.TextValue = value
        return item

    finding = text(
        "Finding",
        "Hans-Jürgen Müller (PID-77-31902), seen by Dr. Wagner: no change since 2023-03.",
    )
    person = Dataset()
    person.RelationshipType = "HAS OBS CONTEXT"
    person.ValueType = "PNAME"
    person.ConceptNameCodeSequence = Sequence([code_item("121008", "DCM", "Person Observer")])
    person.PersonName = "Wagner^Eva^Dr."
    finding.ContentSequence = Sequence([person])  # nested two levels: PHI deep inside
    ds.ContentSequence = Sequence([finding, text("Impression", "Stable. Call 040-5550199.")])
    meta(ds, ExplicitVRLittleEndian)
    return ds


def write(ds: Dataset, path: str, *, preamble: bool = True) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    syntax = ds.file_meta.TransferSyntaxUID
    buf = io.BytesIO()
    if preamble:
        ds.preamble = b"\x00" * 128
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    else:
        ds.preamble = None
        pydicom.dcmwrite(
            buf,
            ds,
            enforce_file_format=False,
            implicit_vr=syntax == ImplicitVRLittleEndian,
            little_endian=syntax != ExplicitVRBigEndian,
        )
    with open(path, "wb") as f:
        f.write(buf.getvalue())


README = """\
dicomscrub samples: synthetic DICOM files with FAKE patient data (every name, ID and address is
invented). Made by python/tools/make_samples.py; try:

    dicomscrub run samples out/samples --key-file KEYFILE

This file is not DICOM: the run reports it as skipped.
"""


def main(out: str = DEFAULT_OUT) -> list[str]:
    """Write the sample set into ``out``; returns the files written (relative paths)."""
    files: list[tuple[str, Callable[[], Dataset], bool]] = [
        ("PAT1/CT/CT000001", lambda: ct(1, ExplicitVRLittleEndian), True),
        ("PAT1/CT/CT000002", lambda: ct(2, ImplicitVRLittleEndian), True),
        ("PAT1/MR/MR000001", lambda: mr(1, ExplicitVRBigEndian), True),
        ("PAT1/MR/MR000002", lambda: mr(2, DeflatedExplicitVRLittleEndian), True),
        ("PAT2/CR/CR000001", cr, True),
        ("PAT2/US/US000001", us, False),
        ("PAT2/SR/SR000001", sr, True),
    ]
    written = []
    for rel, make, preamble in files:
        write(make(), os.path.join(out, *rel.split("/")), preamble=preamble)
        written.append(rel)
    # The DICOMDIR, built with pydicom's FileSet over the files as written.
    sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..")))
    from dicomscrub.dicomdir import regenerate

    instances = [(tuple(rel.split("/")), os.path.join(out, *rel.split("/"))) for rel in written]
    regenerate(
        os.path.join(out, "DICOMDIR"), instances, fileset_uid=uid("fileset"), replace=lambda p: True
    )
    with open(os.path.join(out, "README.TXT"), "w", encoding="utf-8") as f:
        f.write(README)
    return [*written, "DICOMDIR", "README.TXT"]


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    for rel in main(target):
        print(os.path.join(target, rel), os.path.getsize(os.path.join(target, rel)))
