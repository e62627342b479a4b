"""The linkage file of a run: each output's original identifiers beside its pseudonymized ones.

Written only when asked (``dicomscrub run --linkage FILE``, ``anonymize_tree(linkage=...)``): it
is the one file of a run that holds original identifiers. It is therefore

- created with mode 0600 from the start (``os.open(..., 0o600)`` on a new temporary file beside
  it, renamed into place when the run ends: never a ``chmod`` after the fact, never an existing
  file's mode reused);
- refused inside the destination (it would travel with the de-identified data) unless forced.

Format by extension: ``.csv`` is CSV (``src, dst, original_<ID>..., pseudonymized_<ID>...``),
anything else JSON Lines (``{"src", "dst", "original": {...}, "pseudonymized": {...}}``), one row
per anonymized file (files resumed from an earlier run included). The IDs are Patient ID, Study,
Series and SOP Instance UIDs: the originals read from the source's header (pydicom, stopping
before the pixel data; the core's parser for files pydicom cannot read), the pseudonymized ones
as the output holds them (the core's record of the file, else the output's header).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Mapping
from typing import Any, TextIO

from dicomscrub.fsutil import temp_name

FIELDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_TAGS = {0x00100020: "PatientID", 0x0020000D: "StudyInstanceUID",
         0x0020000E: "SeriesInstanceUID", 0x00080018: "SOPInstanceUID"}  # fmt: skip
CORE_FALLBACK_MAX_BYTES = 64 << 20  # the core's parser reads whole files: not huge ones

__all__ = ["FIELDS", "LinkageWriter", "header_ids"]


def header_ids(path: str) -> dict[str, str]:
    """Patient ID, Study, Series and SOP Instance UIDs of a file's header (absent ones left
    out; empty when the file cannot be read)."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=FIELDS)
            out = {}
            for kw in FIELDS:
                v = ds.get(kw)
                if v is not None and str(v).strip(" \x00"):
                    out[kw] = str(v).strip(" \x00")
        if out:
            return out
    except Exception:  # pydicom raises many kinds on what the core reads: try the core
        pass
    return _core_ids(path)


def _core_ids(path: str) -> dict[str, str]:
    from dicomscrub import _core
    from dicomscrub.errors import DicomScrubError

    try:
        if os.path.getsize(path) > CORE_FALLBACK_MAX_BYTES:
            return {}
        with open(path, "rb") as f:
            parsed = _core.dump(f.read())
    except (OSError, DicomScrubError):
        return {}
    out: dict[str, str] = {}
    for e in parsed["dataset"]:
        name = _TAGS.get(e["tag"])
        if name and e.get("text") is not None and e["text"].strip(" \x00"):
            out[name] = e["text"].strip(" \x00")
    return out


def _text(p: str | None) -> str | None:
    return None if p is None else os.fsencode(p).decode("utf-8", "backslashreplace")


class LinkageWriter:
    """Writes a linkage file as a run goes; :meth:`commit` puts it in place at the end."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.rows = 0
        self._csv = self.path.lower().endswith(".csv")
        parent = os.path.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        self._tmp = temp_name(self.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self._tmp, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
        self._f: TextIO | None = os.fdopen(fd, "w", encoding="utf-8", newline="")
        self._w: Any = None
        if self._csv:
            self._w = csv.writer(self._f)
            self._w.writerow(
                ["src", "dst", *(f"original_{k}" for k in FIELDS),
                 *(f"pseudonymized_{k}" for k in FIELDS)]
            )  # fmt: skip

    def add(self, src: str, dst: str | None, pseudonymized: Mapping[str, str]) -> None:
        """One output: the originals are read from ``src``'s header now."""
        assert self._f is not None
        original = header_ids(src)
        pseudo = {k: pseudonymized[k] for k in FIELDS if pseudonymized.get(k)}
        if self._w is not None:
            self._w.writerow(
                [_text(src), _text(dst), *(original.get(k, "") for k in FIELDS),
                 *(pseudo.get(k, "") for k in FIELDS)]
            )  # fmt: skip
        else:
            row = {"src": _text(src), "dst": _text(dst), "original": original,
                   "pseudonymized": pseudo}  # fmt: skip
            self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += 1

    def commit(self) -> None:
        """Flush, sync and rename into place (replacing an older linkage file)."""
        assert self._f is not None
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Drop the unfinished file (the run stopped with an exception)."""
        if self._f is not None:
            self._f.close()
            self._f = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
