"""Checking an anonymized output against its source: :func:`verify` and :func:`scan`.

``verify(src, dst, profile, key)`` re-derives, for each (source, output) pair, the output the
plan must give with the pure-Python reference (:mod:`dicomscrub.reference`, pydicom only) and
reports every difference (element path inside sequences, expected, found); it checks that the
output is a valid file (pydicom reads it, File Meta consistent, the meta group length equals the
real byte length of the group, pixel data bytes identical to the source's) and runs the
residual-PHI scan. ``scan(src, dst)`` is that scan alone.

Pairs. ``src`` and ``dst`` are two files, or two folders that mirror each other by relative path
(the default ``mirror`` layout of an anonymization run). For other layouts, give the pairs to
:func:`verify_pairs` / :func:`scan_pairs`. A source that is not DICOM (neither ``DICM`` at offset
128 nor a group 0002/0008 element first, or pydicom cannot read it) is skipped; a DICOM source
without an output is a failure (``missing``). A DICOMDIR is not compared element by element (a
run regenerates it from the outputs) but is scanned. A plan that changes nothing (``keep-all``)
must have copied the input byte for byte.

Sampling. ``sample=N`` checks N pairs chosen deterministically: the pairs whose
``sha256(seed || relative path)`` are the smallest. The same tree and seed give the same sample,
a larger sample holds a smaller one, and adding files changes it only where the new files rank.

Residual-PHI scan. The identifying values of a source file are the values of the elements listed
in :data:`IDENTIFYING` (one place), every PN, the original UIDs the plan maps and the original
dates it shifts, at any depth, that the profile changes: an element is collected only when its
rule removes, empties, replaces, pseudonymizes, maps (UIDs), shifts (dates) or cleans it, or
when a sequence that holds it is removed or emptied; a value the profile keeps is not searched
for. Person names are searched as a whole and component by component (each ``^`` component of
each ``=`` group). Each value is then searched in the output:

* as decoded text, in every element with a text value at any depth (File Meta included), and as
  bytes in every element with a binary value (private elements read as UN, OB, ...), pixel data
  excepted;
* as raw bytes across the whole output file (a deflated data set inflated first), pixel data
  values excepted, encoded in UTF-8, ISO 8859-1 and the source's Specific Character Set. A raw
  hit is reported only for a value the element search did not find (it is in a place pydicom
  does not show: the preamble, a damaged region...);
* with ``paths=True``, in the output's path relative to the output folder (folders named after
  the patient survive a mirror layout).

Matching is case-insensitive; a value that starts (ends) with an ASCII letter or digit matches
only where it is not preceded (followed) by an ASCII letter or digit, so ``1234`` is not found
inside ``2.25.5512345``. A value is trivial, and never searched for, when (after stripping
spaces) it has fewer than 3 characters (2 when it holds CJK, kana or hangul, U+2E80 and above,
where a 2-character name is common), has no letter or digit, is made of digits only and has
fewer than 4 of them, is a value the plan writes itself (its dummies, replacement and inserted
values, pseudonym prefixes), or when every word of it (run of letters and digits) of 2 or more
characters is one of the :data:`GENERIC_WORDS` (placeholders such as ``ANONYMIZED``,
``UNKNOWN``, ``Enter text``, titles, vendor names) or a word the plan writes. A value that is
vocabulary of the file is not searched either (:data:`VOCABULARY_KEYWORDS`: a Patient's Name
``PERFUSION`` beside an Image Type ``PERFUSION``, an Institution Name that is a word of the
Manufacturer).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
import json
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import pydicom
from pydicom.charset import convert_encodings, default_encoding, encode_string
from pydicom.datadict import DicomDictionary, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from dicomscrub import reference
from dicomscrub.keys import Key
from dicomscrub.profiles import Profile

__all__ = [
    "GENERIC_WORDS",
    "IDENTIFYING",
    "FileCheck",
    "Finding",
    "Problem",
    "ScanReport",
    "VerifyReport",
    "identifying_values",
    "pair_files",
    "register",
    "scan",
    "scan_pairs",
    "verify",
    "verify_pairs",
]

StrPath = str | PathLike[str]
Status = Literal["ok", "failed", "skipped"]

# --------------------------------------------------------------------------------------------
# What counts as identifying: the one list
# --------------------------------------------------------------------------------------------

#: Value category -> the attributes (keywords) whose values are identifying, at any depth.
#: Besides these, every PN element is ``person-name``, every UI element the plan maps with
#: ``uid`` is ``uid`` (an original UID), and every DA/DT element the plan shifts is ``date``.
IDENTIFYING: dict[str, tuple[str, ...]] = {
    "patient-id": (
        "PatientID", "OtherPatientIDs", "MedicalRecordLocator", "AdmissionID",
        "ServiceEpisodeID", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
    ),
    "accession-number": (
        "AccessionNumber", "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
    ),
    "birth-date": ("PatientBirthDate",),
    "address": (
        "PatientAddress", "InstitutionAddress", "ReferringPhysicianAddress", "PersonAddress",
        "RegionOfResidence",
    ),
    "phone": (
        "PatientTelephoneNumbers", "PatientTelecomInformation",
        "ReferringPhysicianTelephoneNumbers", "PersonTelephoneNumbers",
    ),
    "institution": ("InstitutionName", "InstitutionalDepartmentName"),
}  # fmt: skip
PERSON_NAME, UID_CATEGORY, DATE_CATEGORY = "person-name", "uid", "date"

#: Vocabulary of a file: the values of the public CS elements (but file IDs: folder names),
#: and the values and their words of the attributes below, that the profile keeps unchanged.
#: An identifying value equal to one of them (a Patient's Name "PERFUSION" beside an Image
#: Type "PERFUSION", a Performing Physician's Name "RIS" beside a Coding Scheme Designator
#: "SIEMENS_RIS", an Institution Name that is a word of the Manufacturer) is not searched for:
#: it is the vendor's or the coding scheme's word, kept there on purpose. Free text
#: (descriptions, comments, SR text values) and private elements are never vocabulary.
VOCABULARY_VRS = frozenset({"CS"})
NOT_VOCABULARY_KEYWORDS = ("ReferencedFileID", "FileSetID")
VOCABULARY_KEYWORDS = (
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "CodeValue",
    "CodingSchemeDesignator", "CodingSchemeName", "CodingSchemeVersion", "CodeMeaning",
    "ContextIdentifier", "MappingResource",
)  # fmt: skip

#: Values never searched for (compared case-insensitively): placeholders that test data and
#: de-identifiers put in identifying attributes, titles, and vendor / modality vocabulary that
#: legitimately appears in kept attributes (Manufacturer, descriptions...).
GENERIC_WORDS = frozenset(
    """
    anonymized anonymised anonymous anon deidentified de identified removed unknown none null
    nil na not applicable empty blank test tests testing demo sample example patient
    enter text name here default
    patients phantom subject volunteer case study series image doctor physician radiologist
    technologist operator nurse dr mr mrs ms miss prof jr sr md phd rn
    ge siemens philips toshiba canon hitachi fuji fujifilm agfa kodak carestream hologic
    varian elekta gdcm dcmtk pydicom medical healthcare systems system
    hospital clinic center centre university department radiology imaging
    """.split()
)

_TAG_CATEGORY: dict[int, str] = {}
for _category, _keywords in IDENTIFYING.items():
    for _keyword in _keywords:
        _tag = tag_for_keyword(_keyword)
        if _tag is None:  # pragma: no cover - checked by the tests
            raise KeyError(_keyword)
        _TAG_CATEGORY[int(_tag)] = _category
_VOCABULARY_TAGS = frozenset(int(tag_for_keyword(k)) for k in VOCABULARY_KEYWORDS)
_NOT_VOCABULARY_TAGS = frozenset(int(tag_for_keyword(k)) for k in NOT_VOCABULARY_KEYWORDS)

PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double, pixel data
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_MULTI = (list, tuple, MultiValue)
_CHANGING = frozenset({"remove", "empty", "replace", "dummy"})
_LONG_LENGTH_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One identifying value of a source found in its output.

    ``where`` is the element path in the output (``ReferencedStudySequence[0].(0009,1001)``,
    ``file_meta.X``) or ``bytes@0x…`` for a hit outside the elements pydicom shows; ``source``
    is the path of the source element the value comes from.
    """

    category: str
    value: str
    where: str
    source: str


@dataclass(frozen=True)
class Problem:
    """Something wrong with an output file besides element differences: ``kind`` is one of
    ``missing``, ``unreadable``, ``meta`` (File Meta inconsistent), ``pixel-data``, ``bytes``
    (a plan that changes nothing must copy the input) or ``error`` (the check itself failed)."""

    kind: str
    message: str


@dataclass
class FileCheck:
    """The result of one (source, output) pair."""

    src: str
    dst: str
    status: Status = "ok"
    differences: list[reference.Difference] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    note: str | None = None  # why a pair was skipped, or that it was only scanned

    def settle(self) -> FileCheck:
        if self.status != "skipped":
            failed = self.differences or self.problems or self.findings
            self.status = "failed" if failed else "ok"
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["src"], d["dst"] = _text(self.src), _text(self.dst)
        return d

    def lines(self) -> list[str]:
        """Human-readable lines (empty for a pair that passed)."""
        if self.status == "ok":
            return []
        if self.status == "skipped":
            return [f"SKIP {_text(self.src)}: {self.note}"]
        out = [f"FAIL {_text(self.dst)} (source {_text(self.src)})"]
        out += [f"  {p.kind}: {p.message}" for p in self.problems]
        out += [
            f"  {d.kind} {d.path}: expected {d.expected}, found {d.found}" for d in self.differences
        ]
        out += [
            f"  PHI {f.category} {f.value!r} (from {f.source}) found in {f.where}"
            for f in self.findings
        ]
        return out


@dataclass
class _Report:
    """What :class:`VerifyReport` and :class:`ScanReport` share."""

    src: str
    dst: str
    profile: str
    files: list[FileCheck] = field(default_factory=list)
    total: int = 0  # pairs found, before sampling
    sample: int | None = None

    @property
    def checked(self) -> int:
        return sum(1 for f in self.files if f.status != "skipped")

    @property
    def failed(self) -> int:
        return sum(1 for f in self.files if f.status == "failed")

    @property
    def skipped(self) -> int:
        return sum(1 for f in self.files if f.status == "skipped")

    @property
    def findings(self) -> int:
        return sum(len(f.findings) for f in self.files)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def _counts(self) -> dict[str, Any]:
        return {
            "src": _text(self.src),
            "dst": _text(self.dst),
            "profile": self.profile,
            "total": self.total,
            "sample": self.sample,
            "checked": self.checked,
            "failed": self.failed,
            "skipped": self.skipped,
            "findings": self.findings,
            "ok": self.ok,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class VerifyReport(_Report):
    """The result of :func:`verify`; ``ok`` when no pair failed."""

    key_fingerprint: str | None = None

    @property
    def differences(self) -> int:
        return sum(len(f.differences) for f in self.files)

    @property
    def problems(self) -> int:
        return sum(len(f.problems) for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._counts(),
            "differences": self.differences,
            "problems": self.problems,
            "key_fingerprint": self.key_fingerprint,
            "files": [f.to_dict() for f in self.files if f.status != "ok"],
        }

    def summary(self) -> str:
        sampled = f" (a sample of {self.total})" if self.sample is not None else ""
        return (
            f"verified {self.checked} file(s){sampled}: {self.checked - self.failed} ok, "
            f"{self.failed} failed, {self.skipped} skipped; {self.differences} difference(s), "
            f"{self.problems} problem(s), {self.findings} PHI hit(s)"
        )


@dataclass
class ScanReport(_Report):
    """The result of :func:`scan`; ``ok`` when nothing identifying was found."""

    def to_dict(self) -> dict[str, Any]:
        return {**self._counts(), "files": [f.to_dict() for f in self.files if f.status != "ok"]}

    def summary(self) -> str:
        sampled = f" (a sample of {self.total})" if self.sample is not None else ""
        return (
            f"scanned {self.checked} file(s){sampled}: {self.findings} PHI hit(s) in "
            f"{self.failed} file(s), {self.skipped} skipped"
        )


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


def _files_under(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".dicomscrub")  # a run's own state
        for name in sorted(filenames):
            yield Path(dirpath, name)


def pair_files(src: StrPath, dst: StrPath) -> list[tuple[Path, Path]]:
    """The (source, output) pairs of two files or of two folders mirrored by relative path,
    sorted by relative path."""
    s, d = Path(src), Path(dst)
    if s.is_dir():
        if d.exists() and not d.is_dir():
            raise NotADirectoryError(f"{d}: the source is a folder, the output must be one too")
        return [(p, d / p.relative_to(s)) for p in _files_under(s)]
    if not s.exists():
        raise FileNotFoundError(f"{s}: no such file or folder")
    if d.is_dir():
        return [(s, d / s.name)]
    return [(s, d)]


def sample_pairs(
    pairs: Sequence[tuple[Path, Path]], n: int, root: StrPath | None = None, seed: int = 0
) -> list[tuple[Path, Path]]:
    """``n`` of ``pairs``, chosen deterministically (smallest ``sha256(seed || relative path)``),
    returned in their original order."""
    if n < 0:
        raise ValueError("sample must be >= 0")
    if n >= len(pairs):
        return list(pairs)

    def rank(pair: tuple[Path, Path]) -> bytes:
        rel = os.fsencode(pair[0].relative_to(root) if root is not None else pair[0])
        return hashlib.sha256(str(seed).encode() + b"\x00" + rel).digest()

    chosen = set(heapq.nsmallest(n, range(len(pairs)), key=lambda i: rank(pairs[i])))
    return [p for i, p in enumerate(pairs) if i in chosen]


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _walk_items(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ" and elem.value:
            for item in elem.value:
                _walk_items(item)


def _read(data: bytes, *, force: bool) -> Dataset:
    """pydicom's reading of ``data``, every element decoded (under the warning filter)."""
    with _quiet():
        ds = pydicom.dcmread(io.BytesIO(data), force=force)
        _walk_items(ds)
    return ds


def _is_dicomdir(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    sop_class = meta.get(0x00020002) if meta is not None else None
    return str(getattr(sop_class, "value", "")) == MEDIA_STORAGE_DIRECTORY or (
        "DirectoryRecordSequence" in ds
    )


def _looks_dicom(data: bytes) -> bool:
    """A Part 10 file, or a bare data set that starts with a group 0002 or 0008 element (in
    either byte order): the files a run treats as DICOM."""
    if data[128:132] == b"DICM":
        return True
    return len(data) >= 8 and (
        (data[1] == 0 and data[0] in (0x02, 0x08)) or (data[0] == 0 and data[1] in (0x02, 0x08))
    )


def _read_source(path: Path) -> tuple[bytes, Dataset | None, str | None]:
    """The source's bytes and data set; ``None`` and a reason when it is not DICOM."""
    data = path.read_bytes()
    if not _looks_dicom(data):
        return data, None, "not DICOM (no 'DICM' prefix, no group 0002/0008 element first)"
    try:
        ds = _read(data, force=True)
    except Exception as exc:
        return data, None, f"not DICOM (pydicom: {exc})"
    if len(ds) == 0 and not getattr(ds, "file_meta", None):
        return data, None, "not DICOM (no element)"
    return data, ds, None


# --------------------------------------------------------------------------------------------
# Profiles and keys
# --------------------------------------------------------------------------------------------


def _plan_of(profile: Profile | Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    if profile is None:
        profile = Profile.basic()
    if isinstance(profile, Profile):
        opts = "+".join(profile.options)
        return profile.to_plan(), profile.name + (f" ({opts})" if opts else "")
    plan = dict(profile)
    reference.validate_plan(plan)
    return plan, "plan"


def _key_bytes(key: bytes | bytearray | memoryview | Key) -> tuple[bytes, str]:
    k = key if isinstance(key, Key) else Key(bytes(key))
    return k.secret, k.fingerprint


# --------------------------------------------------------------------------------------------
# File validity
# --------------------------------------------------------------------------------------------


def meta_group_problems(data: bytes) -> list[Problem]:
    """Read the File Meta group of a Part 10 file from its bytes: the preamble and ``DICM``, a
    (0002,0000) group length equal to the real byte length of the rest of the group, and a
    Transfer Syntax UID."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return [Problem("meta", "no 128-byte preamble followed by 'DICM'")]
    pos, end = 132, len(data)
    declared: int | None = None
    after_length = None
    tags: list[int] = []
    while pos + 8 <= end:
        group, element = struct.unpack_from("<HH", data, pos)
        if group != 0x0002:
            break
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_LENGTH_VRS:
            if pos + 12 > end:
                return [Problem("meta", f"truncated File Meta element at offset {pos}")]
            length = struct.unpack_from("<I", data, pos + 8)[0]
            header = 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            header = 8
        if length == 0xFFFFFFFF or pos + header + length > end:
            return [Problem("meta", f"File Meta element (0002,{element:04X}) has a bad length")]
        if element == 0x0000:
            if vr != b"UL" or length != 4:
                return [Problem("meta", "(0002,0000) is not a UL of length 4")]
            declared = struct.unpack_from("<I", data, pos + header)[0]
            after_length = pos + header + length
        tags.append(element)
        pos += header + length
    problems = []
    if declared is None or after_length is None:
        problems.append(Problem("meta", "no File Meta Information Group Length (0002,0000)"))
    elif declared != pos - after_length:
        problems.append(
            Problem(
                "meta",
                f"File Meta group length is {declared} but the group holds "
                f"{pos - after_length} bytes after it",
            )
        )
    if 0x0010 not in tags:
        problems.append(Problem("meta", "no Transfer Syntax UID (0002,0010)"))
    if tags != sorted(tags):
        problems.append(Problem("meta", "File Meta elements are not in tag order"))
    return problems


def _uid_text(elem: DataElement | None) -> str | None:
    if elem is None:
        return None
    return str(elem.value or "").rstrip("\x00 ")


def meta_consistency_problems(ds: Dataset) -> list[Problem]:
    """File Meta against the data set: Media Storage SOP Instance / Class UID equal SOP Instance
    / Class UID."""
    meta = getattr(ds, "file_meta", None) or Dataset()
    problems = []
    if "TransferSyntaxUID" not in meta:
        problems.append(Problem("meta", "no Transfer Syntax UID"))
    for meta_tag, tag, name in (
        (0x00020003, 0x00080018, "SOP Instance UID"),
        (0x00020002, 0x00080016, "SOP Class UID"),
    ):
        if tag in ds:  # without it, the meta keeps its own (mapped) value (docs/plan.md)
            m, v = _uid_text(meta.get(meta_tag)), _uid_text(ds.get(tag))
            if m != v:
                problems.append(
                    Problem("meta", f"Media Storage {name} {m!r} differs from {name} {v!r}")
                )
    return problems


def _pixel_problems(source: Dataset, expected: Dataset, found: Dataset) -> list[Problem]:
    problems = []
    for tag in sorted(PIXEL_TAGS):
        if tag not in expected or tag not in source:
            continue
        s = source[tag].value
        f = found[tag].value if tag in found else None
        if f is None or bytes(f) != bytes(s):
            name = reference._name(tag)
            got = "absent" if f is None else f"{len(f)} bytes"
            problems.append(
                Problem(
                    "pixel-data",
                    f"{name} differs from the source's ({len(s)} bytes in the source, {got} "
                    f"in the output)",
                )
            )
    return problems


# --------------------------------------------------------------------------------------------
# Identifying values of a source
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Needle:
    category: str
    value: str
    source: str


def _vr(elem: DataElement) -> str:
    return str(elem.VR).split(" or ")[0].strip()


def _values(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, (bytes, bytearray)):
        return []
    items = list(value) if isinstance(value, _MULTI) else [value]
    return [str(v).strip(" \x00") for v in items if str(v).strip(" \x00")]


def _name_parts(name: str) -> list[str]:
    """A person name, its component groups and their components."""
    parts = [name]
    for group in name.split("="):
        parts.append(group)
        parts.extend(group.split("^"))
    return [p.strip(" ") for p in parts]


def _changed(action: str, vr: str) -> bool:
    """Whether a rule with ``action`` changes an element of VR ``vr`` (reference R4)."""
    if action in _CHANGING:
        return True
    if action in ("uid", "pseudonym"):
        return True  # mapped, or emptied when the VR cannot hold it (reference R4)
    if action == "clean":
        return vr in reference.TEXT_VRS
    if action == "shift_date":
        return vr in ("DA", "DT")
    return False


def _category(tag: int, vr: str, action: str) -> str | None:
    if vr == "PN":
        return PERSON_NAME
    if tag in _TAG_CATEGORY:
        return _TAG_CATEGORY[tag]
    if vr == "UI" and action == "uid":
        return UID_CATEGORY
    if vr in ("DA", "DT") and action == "shift_date":
        return DATE_CATEGORY
    return None


@dataclass
class _Collecting:
    plan: Mapping[str, Any]
    top: Dataset  # the source's top-level data set (rule conditions look at it)
    out: list[_Needle]
    vocabulary: set[str]


def _collect(ds: Dataset, run: _Collecting, prefix: str, gone: bool, mode: str) -> None:
    """Collect the identifying values of ``ds`` that the plan changes into ``run.out``, and the
    values of the public, non-identifying elements it keeps into ``run.vocabulary``. ``mode``
    is the reference's: "clean" or "dummy" inside a sequence with that rule (R5, R20)."""
    vocabulary = run.vocabulary
    for elem in ds:
        tag, vr = int(elem.tag), _vr(elem)
        action = reference.rule_for(ds, elem, run.plan, run.top)["action"]
        if mode == "clean" and action == "keep" and vr in reference.TEXT_VRS:
            action = "clean"
        elif mode == "dummy" and action == "keep" and vr in reference.FREE_TEXT_VRS:
            action = "dummy"
        path = prefix + reference._name(tag)
        if vr == "SQ":
            removed = gone or action in ("remove", "empty")
            inner = action if action in ("clean", "dummy") else mode
            for i, item in enumerate(elem.value or []):
                _collect(item, run, f"{path}[{i}].", removed, inner)
            continue
        changed = gone or _changed(action, vr)
        category = _category(tag, vr, action)
        if not changed and category is None and not reference._is_private(tag):
            if tag in _VOCABULARY_TAGS:
                for v in _values(elem):
                    vocabulary.add(v.casefold())
                    vocabulary.update(_words(v))
            elif vr in VOCABULARY_VRS and tag not in _NOT_VOCABULARY_TAGS:
                vocabulary.update(v.casefold() for v in _values(elem))
        if not changed or category is None:
            continue
        for value in _values(elem):
            if category == UID_CATEGORY and value.startswith(reference.REGISTRY_UID_ROOT):
                continue
            parts = _name_parts(value) if category == PERSON_NAME else [value]
            run.out.extend(_Needle(category, p, path) for p in parts)


def _words(text: str) -> list[str]:
    """The words of ``text``, case-folded: runs of letters and digits."""
    return [w.casefold() for w in re.findall(r"[^\W_]+", text)]


def _written_by(plan: Mapping[str, Any]) -> frozenset[str]:
    """The values a plan writes itself, and each of their words, case-folded."""
    texts: list[str] = list(plan.get("dummies", {}).values())

    def rules(node: Any) -> Iterator[Mapping[str, Any]]:
        if isinstance(node, Mapping):
            if "action" in node:
                yield node
            for v in node.values():
                yield from rules(v)
        elif isinstance(node, list):
            for v in node:
                yield from rules(v)

    for rule in rules({k: v for k, v in plan.items() if k != "insert"}):
        texts += [rule.get("value", ""), rule.get("prefix", "")]

    def inserted(entries: Iterable[Mapping[str, Any]]) -> None:
        for e in entries:
            texts.append(e.get("value", ""))
            for item in e.get("items", []):
                inserted(item)

    inserted(plan.get("insert", []))
    texts += [reference.IMPLEMENTATION_VERSION_NAME, "dicomscrub"]
    out = set()
    for t in texts:
        out.add(t.strip().casefold())
        out.update(_words(t))
    return frozenset(out)


def is_trivial(value: str, written: frozenset[str] = frozenset()) -> bool:
    """The triviality rule of the scan (module docstring)."""
    v = value.strip(" \x00")
    shortest = 2 if any(ord(c) >= 0x2E80 for c in v) else 3  # CJK, kana, hangul: 2
    if len(v) < shortest or not any(c.isalnum() for c in v):
        return True
    if v.isascii() and v.isdigit() and len(v) < 4:
        return True
    if v.casefold() in written:
        return True
    return all(w in GENERIC_WORDS or w in written for w in _words(v) if len(w) >= 2)


def identifying_values(
    ds: Dataset, profile: Profile | Mapping[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    """The identifying values of a source data set that ``profile`` (default: basic) changes:
    ``(category, value, source element path)``, trivial values left out, each value once."""
    plan, _name = _plan_of(profile)
    return [(n.category, n.value, n.source) for n in _needles(ds, plan, _written_by(plan))]


def _needles(ds: Dataset, plan: Mapping[str, Any], written: frozenset[str]) -> list[_Needle]:
    raw: list[_Needle] = []
    vocabulary: set[str] = set()
    _collect(ds, _Collecting(plan, ds, raw, vocabulary), "", False, "keep")
    seen: set[str] = set()
    out = []
    for n in raw:
        key = n.value.casefold()
        if key in seen or key in vocabulary or is_trivial(n.value, written):
            continue
        seen.add(key)
        out.append(n)
    return out


# --------------------------------------------------------------------------------------------
# Searching an output
# --------------------------------------------------------------------------------------------

_ALNUM = "0-9A-Za-z"


def _bounded(escaped: str, first: str, last: str, alnum: Callable[[str], bool]) -> str:
    head = f"(?<![{_ALNUM}])" if alnum(first) else ""
    tail = f"(?![{_ALNUM}])" if alnum(last) else ""
    return head + escaped + tail


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _text_pattern(needles: Sequence[_Needle]) -> re.Pattern[str] | None:
    if not needles:
        return None
    values = sorted({n.value for n in needles}, key=len, reverse=True)
    alts = [_bounded(re.escape(v), v[0], v[-1], _ascii_alnum) for v in values]
    return re.compile("|".join(alts), re.IGNORECASE)


def _encodings_of(ds: Dataset) -> list[str]:
    charset = ds.get(reference.SPECIFIC_CHARACTER_SET)
    value = getattr(charset, "value", None)
    if not value:
        return [default_encoding]
    with _quiet():
        return convert_encodings(list(value) if isinstance(value, _MULTI) else value)


def _encoded(value: str, encodings: list[str]) -> set[bytes]:
    out = {value.encode("utf-8")}
    with contextlib.suppress(UnicodeError):
        out.add(value.encode("latin-1"))
    with contextlib.suppress(Exception), _quiet():
        out.add(encode_string(value, encodings))
    return out


def _bytes_pattern(
    needles: Sequence[_Needle], encodings: list[str]
) -> tuple[re.Pattern[bytes] | None, dict[bytes, _Needle]]:
    lookup: dict[bytes, _Needle] = {}
    for n in needles:
        for b in _encoded(n.value, encodings):
            lookup.setdefault(b.lower(), n)
    if not lookup:
        return None, lookup
    alts = []
    for b in sorted(lookup, key=len, reverse=True):
        first, last = chr(b[0]), chr(b[-1])
        alts.append(_bounded(re.escape(b.decode("latin-1")), first, last, _ascii_alnum))
    return re.compile("|".join(alts).encode("latin-1")), lookup


def _needle_for(match: str, needles: Sequence[_Needle]) -> _Needle:
    folded = match.casefold()
    for n in needles:
        if n.value.casefold() == folded:
            return n
    for n in needles:  # case folding that changes lengths: the best effort
        if n.value.casefold() in folded or folded in n.value.casefold():
            return n
    return needles[0]


def _element_text(elem: DataElement) -> str | None:
    value = elem.value
    if value is None or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, _MULTI):
        return "\\".join(str(v) for v in value)
    if isinstance(value, (int, float)):
        return None
    return str(value)


def _search_elements(
    ds: Dataset,
    prefix: str,
    text_re: re.Pattern[str] | None,
    bytes_re: re.Pattern[bytes] | None,
    lookup: dict[bytes, _Needle],
    needles: Sequence[_Needle],
    out: list[Finding],
) -> None:
    for elem in ds:
        tag = int(elem.tag)
        path = prefix + reference._name(tag)
        if _vr(elem) == "SQ":
            for i, item in enumerate(elem.value or []):
                _search_elements(item, f"{path}[{i}].", text_re, bytes_re, lookup, needles, out)
            continue
        if tag in PIXEL_TAGS:
            continue
        value = elem.value
        if isinstance(value, (bytes, bytearray)):
            if bytes_re is not None:
                for m in bytes_re.finditer(bytes(value).lower()):
                    n = lookup[m.group(0)]
                    out.append(Finding(n.category, n.value, path, n.source))
            continue
        text = _element_text(elem)
        if text and text_re is not None:
            for m in text_re.finditer(text):
                n = _needle_for(m.group(0), needles)
                out.append(Finding(n.category, n.value, path, n.source))


def _pixel_ranges(data: bytes, ds: Dataset) -> list[tuple[int, int]]:
    """Where the pixel data values of ``ds`` (any depth) are in ``data``."""
    ranges = []

    def visit(d: Dataset) -> None:
        for elem in d:
            if int(elem.tag) in PIXEL_TAGS and isinstance(elem.value, (bytes, bytearray)):
                value = bytes(elem.value)
                if len(value) >= 16:
                    at = data.rfind(value)
                    if at >= 0:
                        ranges.append((at, at + len(value)))
            elif _vr(elem) == "SQ":
                for item in elem.value or []:
                    visit(item)

    visit(ds)
    return ranges


def _raw_bytes(data: bytes, ds: Dataset) -> bytes:
    """The file's bytes, with a deflated data set inflated."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get(0x00020010) if meta is not None else None
    if syntax is None or UID(str(syntax.value)) != DeflatedExplicitVRLittleEndian:
        return data
    if data[128:132] != b"DICM" or len(data) < 144:
        return data
    length = struct.unpack_from("<I", data, 140)[0]
    start = 144 + length
    try:
        return data[:start] + zlib.decompress(data[start:], -zlib.MAX_WBITS)
    except zlib.error:
        return data


def _scan_output(
    needles: Sequence[_Needle], data: bytes, ds: Dataset, encodings: list[str]
) -> list[Finding]:
    if not needles:
        return []
    text_re = _text_pattern(needles)
    bytes_re, lookup = _bytes_pattern(needles, encodings)
    found: list[Finding] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _search_elements(meta, "file_meta.", text_re, bytes_re, lookup, needles, found)
    _search_elements(ds, "", text_re, bytes_re, lookup, needles, found)
    seen_values = {f.value for f in found}
    if bytes_re is not None:
        raw = _raw_bytes(data, ds)
        skip = _pixel_ranges(raw, ds)
        for m in bytes_re.finditer(raw.lower()):
            n = lookup[m.group(0)]
            if n.value in seen_values or any(a <= m.start() < b for a, b in skip):
                continue
            seen_values.add(n.value)
            found.append(Finding(n.category, n.value, f"bytes@0x{m.start():X}", n.source))
    unique: dict[tuple[str, str, str], Finding] = {}
    for f in found:
        unique.setdefault((f.category, f.value, f.where), f)
    return list(unique.values())


def _scan_name(needles: Sequence[_Needle], name: str) -> list[Finding]:
    """Identifying values in the output's path (a folder named after the patient...)."""
    text_re = _text_pattern(needles)
    if text_re is None:
        return []
    found = {}
    for m in text_re.finditer(name):
        n = _needle_for(m.group(0), needles)
        found.setdefault(n.value, Finding(n.category, n.value, f"path {name!r}", n.source))
    return list(found.values())


# --------------------------------------------------------------------------------------------
# verify / scan
# --------------------------------------------------------------------------------------------


def _check_pair(
    src: Path,
    dst: Path,
    name: str | None,
    plan: Mapping[str, Any],
    key: bytes | None,
    written: frozenset[str],
    changes: bool,
) -> FileCheck:
    """One pair: compared with the reference (when ``key`` is given), validated, scanned.
    ``name``: the output's path as the scan searches it (relative to the output folder), or
    ``None`` not to search it."""
    with _quiet():
        return _check_pair_quietly(src, dst, name, plan, key, written, changes)


def _check_pair_quietly(
    src: Path,
    dst: Path,
    name: str | None,
    plan: Mapping[str, Any],
    key: bytes | None,
    written: frozenset[str],
    changes: bool,
) -> FileCheck:
    check = FileCheck(str(src), str(dst))
    try:
        src_data, source, reason = _read_source(src)
    except OSError as exc:
        check.problems.append(Problem("error", f"cannot read the source: {exc}"))
        return check.settle()
    if source is None:
        check.status, check.note = "skipped", reason
        return check
    if not dst.is_file():
        check.problems.append(Problem("missing", "no output file"))
        return check.settle()
    try:
        data = dst.read_bytes()
    except OSError as exc:
        check.problems.append(Problem("error", f"cannot read the output: {exc}"))
        return check.settle()
    try:
        found = _read(data, force=not changes)
    except Exception as exc:
        check.problems.append(Problem("unreadable", f"pydicom cannot read the output: {exc}"))
        return check.settle()
    try:
        if key is not None:
            _compare(check, src_data, source, data, found, plan, key, changes)
        needles = _needles(source, plan, written)
        check.findings.extend(_scan_output(needles, data, found, _encodings_of(source)))
        if name is not None:
            check.findings.extend(_scan_name(needles, name))
    except Exception as exc:  # a check that crashes is a failure, never a pass
        check.problems.append(Problem("error", f"{type(exc).__name__}: {exc}"))
    return check.settle()


def _compare(
    check: FileCheck,
    src_data: bytes,
    source: Dataset,
    data: bytes,
    found: Dataset,
    plan: Mapping[str, Any],
    key: bytes,
    changes: bool,
) -> None:
    if not changes:
        if data != src_data:
            check.problems.append(
                Problem("bytes", "a plan that changes nothing must copy the input")
            )
        return
    if _is_dicomdir(source):
        check.note = "DICOMDIR: scanned, not compared (a run regenerates it)"
        return
    expected = reference.apply_plan(source, plan, key)
    check.differences.extend(reference.differences(expected, found))
    check.problems.extend(meta_group_problems(data))
    check.problems.extend(meta_consistency_problems(found))
    check.problems.extend(_pixel_problems(source, expected, found))


def _run(
    pairs: Sequence[tuple[Path, Path]],
    plan: Mapping[str, Any],
    key: bytes | None,
    progress: Callable[[FileCheck], None] | None,
    paths: bool = False,
    dst_root: Path | None = None,
) -> list[FileCheck]:
    written = _written_by(plan)
    changes = reference.plan_changes_anything(plan)
    out = []
    for s, d in pairs:
        name = None
        if paths:
            name = d.relative_to(dst_root).as_posix() if dst_root is not None else d.name
        result = _check_pair(s, d, name, plan, key, written, changes)
        if progress is not None:
            progress(result)
        out.append(result)
    return out


def verify_pairs(
    pairs: Iterable[tuple[StrPath, StrPath]],
    profile: Profile | Mapping[str, Any] | None,
    key: bytes | bytearray | memoryview | Key,
    *,
    progress: Callable[[FileCheck], None] | None = None,
    paths: bool = False,
    dst_root: StrPath | None = None,
) -> VerifyReport:
    """:func:`verify` on explicit (source, output) pairs (any layout). With ``paths``, the scan
    also searches each output's path relative to ``dst_root`` (default: its file name)."""
    plan, name = _plan_of(profile)
    secret, fingerprint = _key_bytes(key)
    todo = [(Path(s), Path(d)) for s, d in pairs]
    report = VerifyReport("", "", name, total=len(todo), key_fingerprint=fingerprint)
    root = Path(dst_root) if dst_root is not None else None
    report.files = _run(todo, plan, secret, progress, paths, root)
    return report


def verify(
    src: StrPath,
    dst: StrPath,
    profile: Profile | Mapping[str, Any] | None,
    key: bytes | bytearray | memoryview | Key,
    *,
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[FileCheck], None] | None = None,
    paths: bool = False,
) -> VerifyReport:
    """Check that ``dst`` is what ``profile`` with ``key`` makes of ``src`` (two files or two
    mirrored folders): every element at every depth equals the reference's, the output is a
    valid file with pixel data identical to the source's, and no identifying value of the
    source is left in it. ``sample=N`` checks a deterministic sample of N pairs; ``paths``
    also searches the outputs' paths (relative to ``dst``) for identifying values.
    ``profile`` is a :class:`~dicomscrub.Profile`, a plan (dict) or ``None`` (basic)."""
    all_pairs = pair_files(src, dst)
    todo = all_pairs if sample is None else sample_pairs(all_pairs, sample, _root(src, src), seed)
    report = verify_pairs(
        todo, profile, key, progress=progress, paths=paths, dst_root=_root(dst, src)
    )
    report.src, report.dst, report.total = str(src), str(dst), len(all_pairs)
    report.sample = sample
    return report


def scan_pairs(
    pairs: Iterable[tuple[StrPath, StrPath]],
    profile: Profile | Mapping[str, Any] | None = None,
    *,
    progress: Callable[[FileCheck], None] | None = None,
    paths: bool = False,
    dst_root: StrPath | None = None,
) -> ScanReport:
    """:func:`scan` on explicit (source, output) pairs (any layout); ``paths`` and ``dst_root``
    as in :func:`verify_pairs`."""
    plan, name = _plan_of(profile)
    todo = [(Path(s), Path(d)) for s, d in pairs]
    report = ScanReport("", "", name, total=len(todo))
    root = Path(dst_root) if dst_root is not None else None
    report.files = _run(todo, plan, None, progress, paths, root)
    return report


def scan(
    src: StrPath,
    dst: StrPath,
    profile: Profile | Mapping[str, Any] | None = None,
    *,
    sample: int | None = None,
    seed: int = 0,
    progress: Callable[[FileCheck], None] | None = None,
    paths: bool = False,
) -> ScanReport:
    """Search each output for the identifying values of its source that ``profile`` (default:
    basic) removes or replaces (module docstring); ``ok`` when nothing was found."""
    all_pairs = pair_files(src, dst)
    todo = all_pairs if sample is None else sample_pairs(all_pairs, sample, _root(src, src), seed)
    report = scan_pairs(todo, profile, progress=progress, paths=paths, dst_root=_root(dst, src))
    report.src, report.dst, report.total = str(src), str(dst), len(all_pairs)
    report.sample = sample
    return report


def _root(path: StrPath, src: StrPath) -> Path | None:
    """``path`` when the pairs mirror two folders (``src`` is a folder), else ``None``."""
    return Path(path) if Path(src).is_dir() else None


def _text(p: str | None) -> str | None:
    if p is None:
        return None
    return os.fsencode(p).decode("utf-8", "backslashreplace")


# Dictionary sanity: every keyword of IDENTIFYING names a single public tag.
assert all(tag in DicomDictionary for tag in _TAG_CATEGORY)


def register(cli: Any) -> None:
    """Add the ``verify`` and ``scan`` commands to the ``dicomscrub`` click group (called by
    :mod:`dicomscrub.cli`, whose ``EXTENSIONS`` names this module)."""
    from dicomscrub.validate_cli import scan as scan_command
    from dicomscrub.validate_cli import verify as verify_command

    cli.add_command(verify_command)
    cli.add_command(scan_command)
