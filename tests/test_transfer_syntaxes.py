"""One case per transfer syntax of the real corpus: the basic profile rewrites the header, keeps
the syntax, and leaves the pixel data (native or encapsulated fragments) byte-identical."""

from __future__ import annotations

import io
import warnings
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest

from dicomscrub import Profile, _core

from corpus import readable_files

KEY = b"k"
PLAN = _core.Plan(Profile.basic().to_json(), KEY)

REQUIRED = {
    "1.2.840.10008.1.2": "implicit VR little endian",
    "1.2.840.10008.1.2.1": "explicit VR little endian",
    "1.2.840.10008.1.2.2": "explicit VR big endian",
    "1.2.840.10008.1.2.1.99": "deflated explicit VR little endian",
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.70": "JPEG lossless",
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.5": "RLE lossless",
}


def by_syntax() -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = defaultdict(list)
    for p in readable_files():
        d = _core.dump(p.read_bytes())
        out[d["transfer_syntax"]].append(p)
    return out


SYNTAXES = by_syntax()


def test_corpus_covers_every_required_syntax() -> None:
    missing = {uid: name for uid, name in REQUIRED.items() if uid not in SYNTAXES}
    assert not missing


@pytest.mark.parametrize("uid", sorted(REQUIRED), ids=lambda u: REQUIRED[u])
def test_syntax_rewritten_with_pixels_intact(uid: str) -> None:
    for path in SYNTAXES[uid][:4]:
        data = path.read_bytes()
        out = _core.anonymize_bytes(data, PLAN)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = pydicom.dcmread(io.BytesIO(data), force=True)
            ds = pydicom.dcmread(io.BytesIO(out))
        assert ds.file_meta.TransferSyntaxUID == uid
        assert ds.file_meta.ImplementationClassUID == _core.IMPLEMENTATION_CLASS_UID
        if "PatientID" in src and src.PatientID:
            assert ds.PatientID != src.PatientID
        if "SOPInstanceUID" in src:
            assert ds.SOPInstanceUID == _core.keyed_uid(KEY, src.SOPInstanceUID)
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        if "PixelData" in src:
            assert ds.PixelData == src.PixelData
        assert ds.PatientIdentityRemoved == "YES"
