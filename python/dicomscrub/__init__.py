"""dicomscrub: DICOM de-identification, a Rust core driven by PS3.15 profiles written in Python.

Importing the package does not load the compiled extension ``dicomscrub._core``: profiles and
errors work without it. :class:`Anonymizer`, :class:`FileResult`, :class:`Report` and the
``anonymize_*`` shortcuts are imported on first use (they run plans, so they load the core), and
so are :func:`verify` and :func:`scan` (:mod:`dicomscrub.validate`, pure Python).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicomscrub.errors import (
    DicomScrubError,
    InvalidDicomError,
    KeyFileError,
    OutputError,
    ProfileError,
    RunLockedError,
    UnsupportedTransferSyntaxError,
)
from dicomscrub.profiles import Profile

if TYPE_CHECKING:
    from dicomscrub.anonymizer import (
        Anonymizer,
        anonymize_bytes,
        anonymize_file,
        anonymize_tree,
    )
    from dicomscrub.dicomjson import dump
    from dicomscrub.report import FileResult, Report
    from dicomscrub.validate import scan, verify

_LAZY = {
    "Anonymizer": "dicomscrub.anonymizer",
    "anonymize_bytes": "dicomscrub.anonymizer",
    "anonymize_file": "dicomscrub.anonymizer",
    "anonymize_tree": "dicomscrub.anonymizer",
    "FileResult": "dicomscrub.report",
    "Report": "dicomscrub.report",
    "dump": "dicomscrub.dicomjson",
    "scan": "dicomscrub.validate",
    "verify": "dicomscrub.validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dicomscrub' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Anonymizer",
    "DicomScrubError",
    "FileResult",
    "InvalidDicomError",
    "KeyFileError",
    "OutputError",
    "Profile",
    "ProfileError",
    "Report",
    "RunLockedError",
    "UnsupportedTransferSyntaxError",
    "anonymize_bytes",
    "anonymize_file",
    "anonymize_tree",
    "dump",
    "scan",
    "verify",
]
