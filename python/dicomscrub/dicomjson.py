"""`dump`: a file's header as the DICOM JSON Model (PS3.18 Annex F), read by the Rust core.

Values come from the core's index (raw bytes and decoded text); this module only shapes them the
way the JSON Model (and pydicom's ``Dataset.to_json_dict``) writes them. Bulk data (pixel data,
encapsulated fragments, values over 1 MiB) is never loaded: those elements carry their VR only.
"""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

from dicomscrub import _core

_NUMERIC = {
    "US": "H",
    "SS": "h",
    "UL": "L",
    "SL": "l",
    "UV": "Q",
    "SV": "q",
    "FL": "f",
    "FD": "d",
}
_BINARY = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_SINGLE = {"LT", "ST", "UT", "UR"}  # free text: never split on backslash
_STRIP_BOTH = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"}


def dump(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, include_meta: bool = False
) -> dict[str, Any]:
    """The data set of a DICOM file (path or bytes) as a DICOM JSON Model dict.

    With ``include_meta`` the File Meta elements (group 0002) are included first.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        with open(source, "rb") as f:
            data = f.read()
    parsed = _core.dump(data)
    out: dict[str, Any] = {}
    if include_meta:
        out.update(_to_json(parsed["meta"]))
    out.update(_to_json(parsed["dataset"]))
    return out


def _to_json(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {f"{e['tag']:08X}": _element(e) for e in elements}


def _element(e: dict[str, Any]) -> dict[str, Any]:
    vr: str = e["vr"]
    out: dict[str, Any] = {"vr": vr}
    if e["items"] is not None:
        out["vr"] = "SQ"
        out["Value"] = [_to_json(item) for item in e["items"]]
        return out
    raw: bytes | None = e["value"]
    if raw is None or len(raw) == 0:
        return out  # bulk data (not loaded) or empty
    if vr in _BINARY:
        out["InlineBinary"] = base64.b64encode(raw).decode("ascii")
        return out
    if vr in _NUMERIC:
        code = _NUMERIC[vr]
        size = struct.calcsize("<" + code)
        count = len(raw) // size
        order = ">" if e["big_endian"] else "<"
        values = list(struct.unpack(f"{order}{count}{code}", raw[: count * size]))
        if values:
            out["Value"] = values
        return out
    if vr == "AT":
        order = ">" if e["big_endian"] else "<"
        count = len(raw) // 4
        pairs = struct.unpack(f"{order}{count * 2}H", raw[: count * 4])
        out["Value"] = [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs), 2)]
        return out
    text: str = e["text"] if e["text"] is not None else raw.decode("latin-1")
    text = _strip(text, vr)  # padding of the whole value; components keep their spaces
    values = [text] if vr in _SINGLE else text.split("\\")
    if all(v == "" for v in values):
        return out
    if vr == "PN":
        out["Value"] = [_person_name(v) for v in values]
    elif vr in ("IS", "DS"):
        out["Value"] = [_number(v, vr) for v in values]
    else:
        out["Value"] = values
    return out


def _number(value: str, vr: str) -> int | float | str | None:
    """IS/DS as numbers; a value that is not a number stays the text it is (never guessed)."""
    if value.strip() == "":
        return None
    try:
        return int(float(value)) if vr == "IS" else float(value)
    except ValueError:
        return value


def _strip(value: str, vr: str) -> str:
    if vr in _STRIP_BOTH:
        return value.strip(" \x00")
    return value.rstrip(" \x00")


def _person_name(value: str) -> dict[str, str] | None:
    if value == "":
        return None
    groups = value.split("=")
    out = {"Alphabetic": groups[0]}
    if len(groups) > 1:
        out["Ideographic"] = groups[1]
    if len(groups) > 2:
        out["Phonetic"] = groups[2]
    return out
