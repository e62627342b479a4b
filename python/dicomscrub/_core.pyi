"""Type stub of the Rust extension ``dicomscrub._core`` (rust/dicomscrub-py)."""

from collections.abc import Sequence
from typing import Any, Literal, TypedDict

__version__: str
DICOM_EDITION: str
IMPLEMENTATION_CLASS_UID: str
IMPLEMENTATION_VERSION_NAME: str

class FileRecord(TypedDict):
    src: str
    dst: str
    status: Literal["ok", "failed", "skipped"]
    error_kind: str | None  # e.g. "InvalidDicomError", "OutputError", "NotDicom"
    message: str | None
    offset: int | None
    tag: int | None
    bytes_in: int
    bytes_out: int
    actions: dict[str, int]  # action name -> number of elements it touched
    sop_instance_uid: str | None  # the output's (pseudonymized) SOP Instance UID
    ids: dict[str, str]  # output values of PatientID, StudyInstanceUID, SeriesInstanceUID

class Plan:
    """A validated, compiled edit plan (see docs/plan.md) bound to a project key."""

    def __init__(self, plan_json: str, key: bytes) -> None: ...
    @property
    def changes_anything(self) -> bool: ...

def anonymize_bytes(data: bytes | bytearray | memoryview, plan: Plan) -> bytes: ...
def anonymize_file(src: str, dst: str, plan: Plan, *, overwrite: bool = False) -> FileRecord:
    """Anonymize one file; raises on error; the output appears whole or not at all."""

def anonymize_batch(
    pairs: Sequence[tuple[str, str]],
    plan: Plan,
    *,
    jobs: int | None = None,
    overwrite: bool = False,
    sync: bool = True,
) -> list[FileRecord]:
    """Anonymize many files in parallel (GIL released); never raises per file.

    With ``sync`` the outputs are made durable once for the whole batch (syncfs) before
    returning: group commit, not one fsync per file.
    """

def dump(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The parsed file: ``transfer_syntax``, ``has_preamble``, ``meta`` and ``dataset``, each a
    list of elements: dicts with ``tag`` (int), ``vr``, ``offset``, ``length`` (None: undefined),
    ``value`` (raw bytes, None for sequences, encapsulated or values over 1 MiB), ``text``
    (decoded, string VRs), ``items`` (list of element lists, sequences), ``encapsulated`` and
    ``big_endian``."""

def keyed_uid(key: bytes, uid: str) -> str: ...
def keyed_pseudonym(key: bytes, value: str) -> str: ...
def date_offset_days(key: bytes, source: str, max_days: int) -> int: ...
def decode_text(data: bytes, specific_character_set: str, is_person_name: bool) -> str: ...
def keyword(tag: int) -> str:
    """The data dictionary keyword of a public tag ('' when unknown), repeating groups too."""
