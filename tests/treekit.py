"""Helpers of the bulk-engine tests: small source trees built from the real-file corpus
(:mod:`corpus`), tree listings and hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pydicom.data

from corpus import REFUSED, corpus_files, readable_files

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
DICOMDIR_SET = PYDICOM_FILES / "dicomdirtests"

#: A spread of the corpus: every transfer syntax family, sequences, private data, odd lengths.
SUBSET = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_expb.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "JPEG-lossy.dcm",
    "image_dfl.dcm", "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "nested_priv_SQ.dcm",
    "priv_SQ.dcm", "test-SR.dcm", "waveform_ecg.dcm", "ExplVR_BigEnd.dcm",
    "ExplVR_LitEndNoMeta.dcm", "SC_rgb_small_odd.dcm", "emri_small_jpeg_2k_lossless.dcm",
    "UN_sequence.dcm", "no_meta_group_length.dcm", "liver_1frame.dcm", "examples_overlay.dcm",
)  # fmt: skip
DAMAGED = "MR_truncated.dcm"  # a truncated pixel data element: refused with its offset


def subset_files(names: tuple[str, ...] = SUBSET) -> list[Path]:
    """The readable corpus files of ``names`` (first of each name), in ``names`` order."""
    by_name: dict[str, Path] = {}
    for p in readable_files():
        by_name.setdefault(p.name, p)
    return [by_name[n] for n in names if n in by_name]


def damaged_file() -> Path:
    for p in corpus_files():
        if p.name == DAMAGED:
            assert DAMAGED in REFUSED
            return p
    raise LookupError(DAMAGED)


def make_tree(root: Path, *, damaged: bool = True, non_dicom: bool = True) -> Path:
    """SRC with the subset spread over a few folders, a damaged file and a non-DICOM file."""
    files = subset_files()
    for i, p in enumerate(files):
        d = root / f"series{i % 3}" / ("deeper" if i % 5 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, d / p.name)
    if damaged:
        (root / "bad").mkdir(exist_ok=True)
        shutil.copyfile(damaged_file(), root / "bad" / DAMAGED)
    if non_dicom:
        (root / "notes.txt").write_text("not a DICOM file: reported and skipped\n")
    return root


def files_under(root: Path, *, include_state: bool = False) -> dict[str, bytes]:
    """relative path -> content of every file under ``root`` (``.dicomscrub`` left out)."""
    out: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if not include_state and ".dicomscrub" in dirnames:
            dirnames.remove(".dicomscrub")
        for f in filenames:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def digest_tree(root: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files_under(root).items()}


def temp_files(root: Path) -> list[str]:
    """Leftover temporary files (the core's and ours)."""
    return [
        os.path.join(d, f)
        for d, _, fs in os.walk(root)
        for f in fs
        if f.endswith(".dicomscrub-tmp")
    ]
