"""dicomscrub: DICOM de-identification, a Rust core driven by PS3.15 profiles written in Python.

Importing the package does not load the compiled extension ``dicomscrub._core``: profiles and
errors work without it (the core is imported by the modules that run plans).
"""

from __future__ import annotations

from dicomscrub.errors import (
    DicomScrubError,
    InvalidDicomError,
    OutputError,
    ProfileError,
    UnsupportedTransferSyntaxError,
)
from dicomscrub.profiles import Profile

__all__ = [
    "DicomScrubError",
    "InvalidDicomError",
    "OutputError",
    "Profile",
    "ProfileError",
    "UnsupportedTransferSyntaxError",
]
