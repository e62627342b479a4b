"""Showing a file as the core parses it: a dcmdump-like tree, and the element-by-element
difference between an input and its output (dry runs). The DICOM JSON Model is
:mod:`dicomscrub.dump`'s.

Everything here reads the output of ``dicomscrub._core.dump``: the same parser that the
anonymizer uses, so what ``dicomscrub dump`` shows is exactly what the plan sees.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dicomscrub import _core
from dicomscrub.report import ElementChange

Element = Mapping[str, Any]

TEXT_VRS = frozenset(
    "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split()
)  # fmt: skip
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
MAX_SHOWN = 64  # characters of a value in the tree view

__all__ = ["diff", "format_tree", "keyword", "value_text"]


def keyword(tag: int) -> str:
    """The data dictionary keyword of a tag ('' for private or unknown tags): the core's
    dictionary (generated from pydicom's), so that ``dump`` and dry runs need no pydicom."""
    if tag >> 16 & 1:
        return "PrivateCreator" if 0x0010 <= (tag & 0xFFFF) <= 0x00FF else ""
    return _core.keyword(tag)


def tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _numbers(e: Element) -> list[Any] | None:
    fmt = _NUMBERS.get(e["vr"])
    value = e.get("value")
    if value is None:
        return None
    order = ">" if e.get("big_endian") else "<"
    if e["vr"] == "AT":
        n = len(value) // 4
        pairs = struct.unpack(f"{order}{2 * n}H", value[: 4 * n])
        return [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs), 2)]
    if fmt is None:
        return None
    size = struct.calcsize(fmt)
    n = len(value) // size
    return list(struct.unpack(f"{order}{n}{fmt}", value[: n * size]))


def _text(e: Element) -> str | None:
    t = e.get("text")
    if t is None and e.get("value") is not None and e["vr"] in TEXT_VRS:
        t = bytes(e["value"]).decode("latin-1")
    return None if t is None else t.rstrip(" \x00")


def value_text(e: Element, limit: int | None = MAX_SHOWN) -> str:
    """A short display of an element's value."""
    vr = e["vr"]
    if vr == "SQ" or e.get("items") is not None:
        n = len(e.get("items") or [])
        return f"({n} item{'s' if n != 1 else ''})"
    if e.get("encapsulated"):
        return "(encapsulated pixel data)"
    t = _text(e)
    if t is not None:
        s = f"[{t}]"
    else:
        nums = _numbers(e)
        if nums is not None:
            s = "\\".join(str(x) for x in nums[:16]) + ("\\..." if len(nums) > 16 else "")
        elif e.get("value") is None:
            s = "(not loaded)" if e.get("length") else "(no value)"
        else:
            v = bytes(e["value"])
            s = " ".join(f"{b:02x}" for b in v[:16]) + (" ..." if len(v) > 16 else "")
    if limit is not None and len(s) > limit:
        s = s[: limit - 3] + "..."
    return s


def format_tree(d: Mapping[str, Any], *, keywords: bool = True) -> Iterator[str]:
    """dcmdump-like lines: ``(GGGG,EEEE) VR value  # length, Keyword``, items indented."""
    preamble = "yes" if d["has_preamble"] else "no"
    yield f"# transfer syntax {d['transfer_syntax']}, preamble {preamble}"
    if d.get("meta"):
        yield "# File Meta Information"
        yield from _lines(d["meta"], 0, keywords)
    yield "# Data Set"
    yield from _lines(d["dataset"], 0, keywords)


def _lines(elements: Sequence[Element], depth: int, keywords: bool) -> Iterator[str]:
    pad = "  " * depth
    for e in elements:
        length = "undefined" if e.get("length") is None else str(e["length"])
        kw = f", {keyword(e['tag'])}" if keywords and keyword(e["tag"]) else ""
        yield f"{pad}{tag_text(e['tag'])} {e['vr']} {value_text(e)}  # {length}{kw}"
        for i, item in enumerate(e.get("items") or []):
            yield f"{pad}  > item {i + 1}"
            yield from _lines(item, depth + 2, keywords)


# ---------------------------------------------------------------------------------------------
# Differences (dry run)
# ---------------------------------------------------------------------------------------------


def _flatten(elements: Sequence[Element], prefix: str, out: dict[str, Element]) -> None:
    for e in elements:
        path = f"{prefix}{tag_text(e['tag'])}"
        out[path] = e
        for i, item in enumerate(e.get("items") or []):
            _flatten(item, f"{path}[{i}]/", out)


def diff(before: Mapping[str, Any], after: Mapping[str, Any], file: str) -> list[ElementChange]:
    """The elements that differ between two dumps, File Meta first, in path order."""
    changes: list[ElementChange] = []
    for part in ("meta", "dataset"):
        a: dict[str, Element] = {}
        b: dict[str, Element] = {}
        _flatten(before.get(part) or [], f"{part}:" if part == "meta" else "", a)
        _flatten(after.get(part) or [], f"{part}:" if part == "meta" else "", b)
        for path in sorted(set(a) | set(b)):
            ea, eb = a.get(path), b.get(path)
            tag = (ea or eb)["tag"]  # type: ignore[index]
            kw = keyword(tag)
            if eb is None:
                changes.append(ElementChange(file, path, kw, "removed", value_text(ea), None))  # type: ignore[arg-type]
            elif ea is None:
                changes.append(ElementChange(file, path, kw, "added", None, value_text(eb)))
            elif ea.get("items") is not None or eb.get("items") is not None:
                na, nb = len(ea.get("items") or []), len(eb.get("items") or [])
                if na != nb:
                    kind = "emptied" if nb == 0 else "changed"
                    changes.append(
                        ElementChange(file, path, kw, kind, value_text(ea), value_text(eb))
                    )
            elif ea.get("value") != eb.get("value") or ea.get("length") != eb.get("length"):
                kind = "emptied" if not eb.get("length") else "changed"
                changes.append(ElementChange(file, path, kw, kind, value_text(ea), value_text(eb)))
    return changes
