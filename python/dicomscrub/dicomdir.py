"""DICOMDIR files: regenerated from the anonymized outputs, never passed through.

A DICOMDIR indexes its file-set: directory records repeat the patient's name and ID, study
dates, UIDs... and point at each other by byte offset ((0004,1200), (0004,1202), (0004,1400),
(0004,1420)). Anonymizing it like an ordinary file would change value lengths and leave every
offset wrong, so instead:

- the source DICOMDIR is read (with pydicom) only for the list of files it references;
- a new DICOMDIR is built with :class:`pydicom.fileset.FileSet` from the *anonymized outputs* of
  those files: every record value comes from an output file, so no source value reaches it;
- each record keeps the referenced file's relative File ID, which the mirror layout preserves,
  when it is a valid File ID (at most 8 components of 1-8 characters ``A-Z 0-9 _``);
- the File-set UID is a keyed UID of the source's, the File-set ID is dropped;
- the result is checked by loading it back with FileSet before it is moved into place.

When that is impossible (another layout, invalid File IDs, an unreadable source DICOMDIR) the
DICOMDIR is not copied and the report says why (``dicomdir-not-copied``).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")
MAX_DEPTH = 8

# Directory record keys copied from the instance when pydicom's own record creator refuses it
# (it refuses empty Type 1 values, which de-identification produces: Study ID, Study Date...).
_KEYS = {
    "PATIENT": ("PatientName", "PatientID"),
    "STUDY": (
        "StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "StudyID",
        "AccessionNumber",
    ),
    "SERIES": ("Modality", "SeriesInstanceUID", "SeriesNumber"),
    "LEAF": ("InstanceNumber",),
}  # fmt: skip

__all__ = [
    "DicomdirError",
    "Regenerated",
    "SourceDicomdir",
    "read_source",
    "referenced_file_ids",
    "regenerate",
    "safe_file_id",
    "valid_file_id",
]


class DicomdirError(Exception):
    """A DICOMDIR cannot be regenerated (the reason is the message)."""


@dataclass
class Regenerated:
    """What :func:`regenerate` wrote."""

    path: str
    records: int  # instances referenced by the new DICOMDIR
    omitted: list[str] = field(default_factory=list)  # File IDs left out, with why
    bytes_out: int = 0


def valid_file_id(components: Sequence[str]) -> bool:
    """A File ID a DICOMDIR may hold (PS3.10 8.2, PS3.11): 1-8 components of 1-8 characters
    from ``A-Z 0-9 _``."""
    return 0 < len(components) <= MAX_DEPTH and all(_COMPONENT.match(c) for c in components)


@dataclass
class SourceDicomdir:
    """What is taken from a source DICOMDIR: its File-set UID (to derive the new one from) and
    the File IDs its records reference. Nothing else of it reaches the output."""

    uid: str | None
    file_ids: list[tuple[str, ...]]
    identifying: set[str] = field(default_factory=set)  # upper-case values its records hold

    def leaking(self) -> list[str]:
        """The File IDs whose components hold one of the records' identifying values (the
        Patient ID as a folder name...): a new DICOMDIR would repeat them."""
        return [os.path.join(*c) for c in self.file_ids if leaks(c, self.identifying)]

    def unsafe(self) -> list[str]:
        """The File IDs that could lead outside the DICOMDIR's folder (see
        :func:`safe_file_id`), as DICOM writes them (``\\``-separated)."""
        return ["\\".join(c) for c in self.file_ids if not safe_file_id(c)]


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_file_id(components: Sequence[str]) -> bool:
    """A File ID that stays inside its DICOMDIR's folder once joined to it: no ``..``
    component, no absolute one (``/x``, ``C:``), no ``/`` or ``\\`` or NUL inside a component.
    (A safe File ID may still be invalid: see :func:`valid_file_id`.)"""
    return bool(components) and all(
        c != ".."
        and not os.path.isabs(c)
        and not _DRIVE.match(c)
        and not any(ch in c for ch in "/\\\x00")
        for c in components
    )


_ID_KEYWORDS = ("PatientID", "AccessionNumber", "StudyID", "IssuerOfPatientID")
_TOKEN = re.compile(r"[^A-Z0-9]+")


def identifying_values(record: Any) -> set[str]:
    """Upper-case identifying values of a directory record: IDs, and the name's parts."""
    out: set[str] = set()
    for kw in _ID_KEYWORDS:
        v = str(record.get(kw, "") or "").strip().upper()
        if v:
            out.add(v)
    name = str(record.get("PatientName", "") or "").upper()
    out |= {t for t in _TOKEN.split(name) if len(t) >= 2}
    return out


def leaks(components: Sequence[str], values: set[str]) -> bool:
    """Does a File ID component equal, or contain, an identifying value (of 4+ characters)?"""
    for c in components:
        cu = c.upper()
        for v in values:
            if cu == v or (len(v) >= 4 and v in cu) or (len(cu) >= 4 and cu in v):
                return True
    return False


def read_source(path: str) -> SourceDicomdir:
    """Read a source DICOMDIR's UID and referenced File IDs (record order, no duplicates)."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            records = ds.get("DirectoryRecordSequence")
            meta = getattr(ds, "file_meta", None)
            uid = str(meta.get("MediaStorageSOPInstanceUID", "") or "") if meta else ""
    except Exception as exc:  # pydicom raises many kinds on damaged input
        raise DicomdirError(f"the source DICOMDIR cannot be read: {exc}") from None
    if records is None:
        if "FileSetConsistencyFlag" not in ds:
            raise DicomdirError("the source is not a DICOMDIR (no Directory Record Sequence)")
        records = []
    out: list[tuple[str, ...]] = []
    seen: set[tuple[str, ...]] = set()
    identifying: set[str] = set()
    try:
        for rec in records:
            identifying |= identifying_values(rec)
            v = rec.get("ReferencedFileID")
            if not v:
                continue
            comps = (str(v),) if isinstance(v, str) else tuple(str(c) for c in v)
            comps = tuple(c.strip() for c in comps)
            if comps not in seen:
                seen.add(comps)
                out.append(comps)
    except Exception as exc:
        raise DicomdirError(f"the source DICOMDIR's records cannot be read: {exc}") from None
    return SourceDicomdir(uid.strip(" \x00") or None, out, identifying)


def referenced_file_ids(path: str) -> list[tuple[str, ...]]:
    """The Referenced File IDs of a DICOMDIR's records, in record order, without duplicates."""
    return read_source(path).file_ids


def _record(kind: str, ds: Any, record_type: str) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.fileset import DIRECTORY_RECORDERS

    creator = DIRECTORY_RECORDERS.get(record_type)
    rec = None
    if creator is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rec = creator(ds)
        except (ValueError, KeyError, AttributeError):
            rec = None
    if rec is None:
        rec = Dataset()
        for kw in _KEYS[kind]:
            if kw in ds:
                rec[kw] = ds[kw]
            elif kind != "LEAF" and kw not in ("StudyDescription", "StudyInstanceUID"):
                setattr(rec, kw, None)  # present, empty: as the anonymized file has it
    rec.DirectoryRecordType = record_type
    if kind == "LEAF":  # RecordNode needs the key of a leaf record at once
        rec.ReferencedSOPClassUIDInFile = ds.SOPClassUID
        rec.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
        rec.ReferencedTransferSyntaxUIDInFile = ds.file_meta.TransferSyntaxUID
    if "SpecificCharacterSet" in ds:
        rec.SpecificCharacterSet = ds.SpecificCharacterSet
    return rec


def _leaf_node(ds: Any) -> Any:
    """The record chain (PATIENT → STUDY → SERIES → leaf, or one single-level record)."""
    from pydicom import fileset
    from pydicom.fileset import RecordNode

    single = fileset._single_level_record_type(ds)
    if single != "PATIENT":
        return RecordNode(_record("LEAF", ds, single))
    leaf_type = fileset._four_level_record_type(ds)
    parent = None
    node = None
    for kind, rtype in (
        ("PATIENT", "PATIENT"), ("STUDY", "STUDY"), ("SERIES", "SERIES"), ("LEAF", leaf_type)
    ):  # fmt: skip
        node = RecordNode(_record(kind, ds, rtype))
        if parent is not None:
            node.parent = parent
        parent = node
    return node


def _stub(ds: Any) -> Any:
    """The little FileSet.add_custom needs of an instance (it saves a copy of what it gets in a
    staging folder: the records are built from the full data set, the copy need not be)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    stub = Dataset()
    stub.SOPClassUID = ds.SOPClassUID
    stub.SOPInstanceUID = ds.SOPInstanceUID
    stub.file_meta = FileMetaDataset()
    stub.file_meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    stub.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    stub.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return stub


def regenerate(
    dst: str,
    instances: Sequence[tuple[tuple[str, ...], str]],
    *,
    fileset_uid: str,
    replace: Callable[[str], bool] = lambda _p: False,
) -> Regenerated:
    """Write a DICOMDIR at ``dst`` referencing ``instances``: ``(file_id, output_path)`` pairs,
    File IDs relative to ``dst``'s folder. ``replace(dst)`` says whether an existing ``dst``
    may be replaced. Raises :class:`DicomdirError`."""
    from pydicom.fileset import FileSet

    root = os.path.dirname(os.path.abspath(dst))
    bad = [os.path.join(*c) for c, _ in instances if not valid_file_id(c)]
    if bad:
        raise DicomdirError(
            f"{len(bad)} referenced files have no valid DICOM File ID in this layout "
            f"(e.g. {bad[0]!r}): File IDs are up to 8 components of 1-8 characters A-Z 0-9 _"
        )
    fs = FileSet()
    try:
        return _build(fs, dst, root, instances, fileset_uid, replace)
    finally:
        _discard(fs)


def _build(
    fs: Any,
    dst: str,
    root: str,
    instances: Sequence[tuple[tuple[str, ...], str]],
    fileset_uid: str,
    replace: Callable[[str], bool],
) -> Regenerated:
    import pydicom
    from pydicom.filebase import DicomFileLike

    from dicomscrub.fsutil import temp_name

    fs.UID = fileset_uid
    fs.ID = None
    result = Regenerated(path=dst, records=0)
    chosen: list[tuple[Any, tuple[str, ...]]] = []
    for comps, out in instances:
        fid = os.path.join(*comps)
        if os.path.realpath(os.path.join(root, *comps)) != os.path.realpath(out):
            result.omitted.append(f"{fid}: its output is not at that File ID")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(out, stop_before_pixels=True, force=True)
                before = len(fs)
                instance = fs.add_custom(_stub(ds), _leaf_node(ds))
        except Exception as exc:
            result.omitted.append(f"{fid}: {type(exc).__name__}: {exc}")
            continue
        if len(fs) == before:
            result.omitted.append(f"{fid}: same SOP Instance UID as another file")
            continue
        chosen.append((instance, comps))
    for instance, comps in chosen:
        instance.node._record.ReferencedFileID = list(comps)
    tmp = temp_name(dst)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)  # a folder of no outputs
    try:
        with open(tmp, "wb") as fp:
            fs._write_dicomdir(DicomFileLike(fp))
        _check(tmp, len(chosen))
        if os.path.lexists(dst) and not replace(dst):
            raise DicomdirError(f"output exists already: {dst}")
        os.replace(tmp, dst)
    except DicomdirError:
        _unlink(tmp)
        raise
    except Exception as exc:
        _unlink(tmp)
        raise DicomdirError(f"writing the DICOMDIR failed: {type(exc).__name__}: {exc}") from None
    result.records = len(chosen)
    result.bytes_out = os.path.getsize(dst)
    return result


def _discard(fs: Any) -> None:
    """Remove the staging folder a FileSet keeps (instead of leaving it to a finalizer)."""
    stage = getattr(fs, "_stage", None)
    tmp = stage.get("t") if isinstance(stage, dict) else None
    if tmp is not None:
        tmp.cleanup()


def _check(path: str, expected: int) -> None:
    """Load the written DICOMDIR back: every record must point at an existing file."""
    from pydicom.fileset import FileSet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs = FileSet(path)
    try:
        if len(fs) != expected:
            raise DicomdirError(f"the new DICOMDIR has {len(fs)} instances, {expected} expected")
        for inst in fs:
            if not os.path.isfile(inst.path):
                raise DicomdirError(f"the new DICOMDIR points at a missing file: {inst.FileID}")
    finally:
        _discard(fs)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
