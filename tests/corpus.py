"""The real-file corpus: DICOM files that pip packages ship (pydicom's test files, pydicom-data,
deid-data). Found by globbing the installed packages, never by pydicom's download helpers (they
reach for the network)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pydicom.data

#: Files pydicom reads leniently that dicomscrub refuses by design, with the reason expected
#: in the error message: a de-identifier must not guess past a lie in the data.
REFUSED = {
    "MR_truncated.dcm": "truncated element (7FE0,0010)",
    "rtplan_truncated.dcm": "truncated element (300A,00B0)",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated element (7FE0,0010)",
    "DICOMDIR-nooffset": "truncated element (0004,1220)",
    # a stray byte before (0008,0005): pydicom reads it as one garbage element (0820,0500)
    "no_meta.dcm": "not a DICOM file",
}

#: files the packages ship beside their DICOM files (also used by benches/corpus.py)
NOT_DICOM_SUFFIXES = (
    ".py",
    ".pyc",
    ".json",
    ".txt",
    ".md",
    ".gz",
    ".zip",
    ".dump",
    ".icc",
    ".bz2",
    ".xz",
    ".j2k",
    ".jpg",
    ".png",
    ".csv",
    ".toml",
    ".cfg",
    ".yml",
)


def _package_dir(name: str) -> Path | None:
    try:
        mod = __import__(name)
    except ImportError:
        return None
    return Path(os.path.dirname(mod.__file__))


def looks_dicom(path: Path) -> bool:
    """A Part 10 file (``DICM`` at 128) or a bare data set starting with group 0002 or 0008."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and (
        (head[1] == 0 and head[0] in (0x02, 0x08)) or (head[0] == 0 and head[1] in (0x02, 0x08))
    )


def dicom_files(root: Path) -> list[Path]:
    """The DICOM-looking files under ``root``, in sorted walk order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.endswith(NOT_DICOM_SUFFIXES) or not p.is_file() or p.stat().st_size == 0:
                continue
            if looks_dicom(p):
                out.append(p)
    return out


@functools.cache
def corpus_files() -> tuple[Path, ...]:
    """Every DICOM-looking file of the three packages, sorted, each once."""
    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    for pkg, sub in (("data_store", "data"), ("deid_data", "")):
        d = _package_dir(pkg)
        if d is not None:
            roots.append(d / sub if sub else d)
    out = [p for root in roots for p in dicom_files(root)]
    if len(out) < 200:
        raise RuntimeError(
            f"only {len(out)} corpus files found: install the test extra (pydicom-data, deid-data)"
        )
    return tuple(out)


def readable_files() -> tuple[Path, ...]:
    """Corpus files dicomscrub is expected to process."""
    return tuple(p for p in corpus_files() if p.name not in REFUSED)


def corpus_id(p: Path) -> str:
    parts = p.parts
    return "/".join(parts[-2:])
