"""One exception hierarchy for the whole package.

The Rust core raises these classes (it imports this module when it converts an error), so a
caller catches the same types whether a failure came from the parser, the writer or a profile.
Every error that concerns a place in a file carries ``path``, ``offset`` and ``tag`` attributes
(``None`` when unknown).
"""

from __future__ import annotations


class DicomScrubError(Exception):
    """Base class of every error raised by dicomscrub."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        tag: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.offset = offset
        self.tag = tag
        self.kind = kind or type(self).__name__


class InvalidDicomError(DicomScrubError, ValueError):
    """The input is not DICOM or is damaged: truncated, lying lengths, limits exceeded."""


class UnsupportedTransferSyntaxError(DicomScrubError):
    """The transfer syntax cannot be rewritten safely."""


class ProfileError(DicomScrubError, ValueError):
    """A profile, option or plan is invalid."""


class OutputError(DicomScrubError, OSError):
    """An output could not be written (exists already, rename failed, disk full...)."""


class KeyFileError(DicomScrubError, ValueError):
    """The project key could not be read or created (the message never holds the key)."""


class RunLockedError(DicomScrubError):
    """Another run holds the destination's lock (DST/.dicomscrub/lock)."""


__all__ = [
    "DicomScrubError",
    "InvalidDicomError",
    "KeyFileError",
    "OutputError",
    "ProfileError",
    "RunLockedError",
    "UnsupportedTransferSyntaxError",
]
