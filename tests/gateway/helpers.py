"""Comparing what a PACS stored with what the core made, and picking corpus files to send."""

from __future__ import annotations

from collections import defaultdict
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom

from dicomscrub import _core
from dicomscrub.gateway.dimse import read_meta_file, storage_sop_classes

#: Files a PACS cannot take as they are, whatever the gateway does.
PACS_HANGS = {
    # a JPEG Baseline transfer syntax over a data set encoded in implicit VR: Orthanc (DCMTK)
    # reads it as explicit VR, waits for bytes that never come, and times out
    "SC_rgb_jpeg.dcm",
}
_TEXT_VRS = frozenset("AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split())
ENCAPSULATED_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5")


def pick_corpus(files: tuple[Path, ...], n: int, max_size: int = 2_000_000) -> dict[str, Any]:
    """``n`` small files covering as many transfer syntaxes as possible (round-robin over the
    syntaxes, in name order), each SOP Instance UID once; and the files that cannot be sent as
    they are (no File Meta, not a storage SOP class)."""
    classes = set(storage_sop_classes())
    by_ts: dict[str, list[Path]] = defaultdict(list)
    unsendable: list[tuple[Path, str]] = []
    sendable = 0
    for p in files:
        try:
            m = read_meta_file(p)
        except ValueError as exc:
            unsendable.append((p, str(exc)))
            continue
        if m.sop_class not in classes:
            unsendable.append((p, f"SOP class {m.sop_class!r}"))
            continue
        sendable += 1
        if p.name in PACS_HANGS or p.stat().st_size > max_size:
            continue
        by_ts[m.transfer_syntax].append(p)
    picked: list[Path] = []
    seen: set[str] = set()
    queues = [sorted(v, key=lambda p: (p.stat().st_size, p.name)) for _, v in sorted(by_ts.items())]
    while len(picked) < n and any(queues):
        for q in queues:
            while q and len(picked) < n:
                p = q.pop(0)
                uid = read_meta_file(p).sop_instance
                if uid not in seen:
                    seen.add(uid)
                    picked.append(p)
                    break
    return {"files": picked, "unsendable": unsendable, "sendable": sendable}


def _elements(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {e["tag"]: e for e in items}


def dataset_differences(expected: bytes, got: bytes) -> list[str]:
    """The differences between the data sets of two Part 10 files, element by element through
    sequences (the File Meta is the receiver's own). Lengths of sequences and items may differ
    (a PACS may rewrite undefined lengths as defined ones), encapsulated Pixel Data may be
    OB where the source said OW, text values may differ in trailing padding (not significant);
    every other value must be the same bytes. Values the core's dump
    leaves out (encapsulated Pixel Data, over 1 MiB) are compared through pydicom's raw
    bytes."""
    a, b = _core.dump(expected)["dataset"], _core.dump(got)["dataset"]
    diffs: list[str] = []
    big: list[int] = []
    _compare(a, b, "", diffs, big)
    if big:
        da = pydicom.dcmread(BytesIO(expected), force=True)
        db = pydicom.dcmread(BytesIO(got), force=True)
        for tag in big:
            va, vb = da[tag].value, db[tag].value
            if va != vb:
                diffs.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}): large values differ")
    return diffs


def _compare(
    a: list[dict[str, Any]], b: list[dict[str, Any]], path: str, diffs: list[str], big: list[int]
) -> None:
    ea, eb = _elements(a), _elements(b)
    for tag in sorted(set(ea) | set(eb)):
        where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        x, y = ea.get(tag), eb.get(tag)
        if x is None or y is None:
            diffs.append(f"{where}: {'missing' if y is None else 'added'}")
            continue
        vrs = {x["vr"], y["vr"]}
        if x["vr"] != y["vr"] and not (vrs == {"OB", "OW"} and x["encapsulated"]):
            diffs.append(f"{where}: VR {x['vr']} != {y['vr']}")
            continue
        if x["items"] is not None or y["items"] is not None:
            ia, ib = x["items"] or [], y["items"] or []
            if len(ia) != len(ib):
                diffs.append(f"{where}: {len(ia)} items != {len(ib)}")
                continue
            for k, (sa, sb) in enumerate(zip(ia, ib, strict=True)):
                _compare(sa, sb, f"{where}[{k}]/", diffs, big)
            continue
        if x["value"] is None or y["value"] is None:
            if path:
                if x["value"] != y["value"]:
                    diffs.append(f"{where}: a nested large value (not compared)")
            else:
                big.append(tag)
            continue
        va, vb = x["value"], y["value"]
        if x["vr"] in _TEXT_VRS:  # trailing padding is not significant (a PACS may re-pad)
            va, vb = va.rstrip(b" \x00"), vb.rstrip(b" \x00")
        if va != vb:
            diffs.append(f"{where}: {x['value'][:40]!r} != {y['value'][:40]!r}")


def identities(path: Path) -> list[str]:
    """The source's Patient Name and Patient ID (texts of 4 characters or more)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    out = []
    for kw in ("PatientName", "PatientID"):
        v = str(ds.get(kw, "") or "").strip()
        if len(v) >= 4:
            out.append(v)
    return out
