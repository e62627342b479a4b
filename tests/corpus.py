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

_NOT_DICOM_SUFFIXES = (
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


def _looks_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(132)
    if head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and (
        (head[1] == 0 and head[0] in (0x02, 0x08)) or (head[0] == 0 and head[1] in (0x02, 0x08))
    )


@functools.cache
def corpus_files() -> tuple[Path, ...]:
    """Every DICOM-looking file of the three packages, sorted, each once."""
    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    for pkg, sub in (("data_store", "data"), ("deid_data", "")):
        d = _package_dir(pkg)
        if d is not None:
            roots.append(d / sub if sub else d)
    out: list[Path] = []
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.name.endswith(_NOT_DICOM_SUFFIXES) and p.stat().st_size > 0:
                if _looks_dicom(p):
                    out.append(p)
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
