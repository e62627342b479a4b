"""Generate python/dicomscrub/profiles/_ps3_15.py from the PS3.15 tables as JSON.

Usage::

    python python/tools/gen_profiles.py [STANDARD_DIR] [--check]

``STANDARD_DIR`` defaults to ``../shared/standard`` relative to the repository root (see its
README.md for the JSON format and provenance). The output is compact Python data (tuples), sorted,
so that the same input always gives byte-identical output; it is committed. ``--check`` writes
nothing and exits with status 1 when the committed file differs from what would be generated.

Besides the standard's tables, each Table E.1-1 row carries the VR that pydicom's data dictionary
gives its tag, and the row's keyword is checked to name that tag in the dictionary: that is all
the built-in profile needs from a dictionary, so ``Profile.basic()`` (and ``dicomscrub run``)
never import pydicom (issue 6). Custom rules still ask pydicom's dictionary when they are parsed.
pydicom is the only dependency outside the standard library, so a new edition is one re-run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = ROOT.parent / "shared" / "standard"
OUT = ROOT / "python" / "dicomscrub" / "profiles" / "_ps3_15.py"

E1_1 = "ps3.15-table-E.1-1.json"
SAFE_PRIVATE = "ps3.15-table-E.3.10-1-safe-private.json"
CID_7050 = "cid-7050.json"

KNOWN_CODES = {"D", "Z", "X", "K", "C", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
TAG_RE = re.compile(r"^\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)$")
#: a generated E.1-1 row: (tag, keyword, name, retired, basic code, options, VR)
RowData = tuple[str, str | None, str, bool, str, tuple[tuple[int, str], ...], str | None]


class TableError(Exception):
    """The source tables are not what this generator understands."""


def _dictionary_vr(key: str, keyword: str | None) -> str | None:
    """The data dictionary's VR of a row (``"OB or OW"`` kept as is), checking its keyword.

    None for the private-attributes row, for a whole group (a wildcard row without keyword,
    ``50xxxxxx``) and for a tag the dictionary does not know. This is what the built-in plan
    used to ask pydicom for at run time (``table.Row.vr``).
    """
    from pydicom.datadict import dictionary_VR, keyword_for_tag

    if key == "ggggeeee" or ("x" in key and keyword is None):
        return None
    tag = int(key.replace("x", "0"), 16)
    if keyword is not None and keyword_for_tag(tag) != keyword:
        found = keyword_for_tag(tag) or "nothing"
        raise TableError(f"{key}: keyword {keyword!r}, the data dictionary says {found!r}")
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _load(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TableError(f"{path}: not found (pass the standard directory as argument)") from None
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a JSON object")
    return data


def _tag_key(row: dict[str, Any]) -> str:
    """The row's tag as 8 characters: upper-case hex, ``x`` for a wildcard digit.

    The private-attributes row ``(gggg,eeee)`` becomes ``ggggeeee``.
    """
    match = row["match"]
    if match["kind"] == "private":
        if row["tag"] != "(gggg,eeee)":
            raise TableError(f"unexpected private row tag {row['tag']!r}")
        return "ggggeeee"
    m = TAG_RE.match(row["tag"])
    if m is None:
        raise TableError(f"cannot parse tag {row['tag']!r}")
    key = (m.group(1) + m.group(2)).upper().replace("X", "x")
    mask = int("".join("0" if c == "x" else "F" for c in key), 16)
    value = int(key.replace("x", "0"), 16)
    if (mask, value) != (int(match["mask"], 16), int(match["value"], 16)):
        raise TableError(f"{row['tag']}: derived mask/value disagree with the table's match")
    if (match["kind"] == "exact") != ("x" not in key):
        raise TableError(f"{row['tag']}: match kind {match['kind']!r} does not fit the tag")
    return key


def build(directory: Path) -> str:
    """Return the text of the generated module."""
    table = _load(directory, E1_1)
    safe = _load(directory, SAFE_PRIVATE)
    cid = _load(directory, CID_7050)
    edition = table["edition"]
    if safe["edition"] != edition or cid["edition"] != edition:
        raise TableError(
            f"editions differ: E.1-1 {edition}, E.3.10-1 {safe['edition']}, "
            f"CID 7050 {cid['edition']}"
        )

    columns = table["columns"]
    if columns[0]["key"] != "basic_profile":
        raise TableError("the first column must be the Basic Profile")
    keys = [c["key"] for c in columns]
    for code in table["action_codes"]:
        if code not in KNOWN_CODES:
            raise TableError(f"unknown action code {code!r} in the legend")

    rows: list[RowData] = []
    for row in table["rows"]:
        codes = [row["actions"][k] for k in keys]
        for code in codes:
            if code is not None and code not in KNOWN_CODES:
                raise TableError(f"{row['tag']}: unknown action code {code!r}")
        if not codes[0]:
            raise TableError(f"{row['tag']}: no Basic Profile code")
        options = tuple((i, code) for i, code in enumerate(codes) if i and code)
        key = _tag_key(row)
        vr = _dictionary_vr(key, row["keyword"])
        rows.append((key, row["keyword"], row["name"], bool(row["retired"]), codes[0], options, vr))
    rows.sort(key=lambda r: r[0])
    if len(rows) != table["row_count"] or len({r[0] for r in rows}) != len(rows):
        raise TableError("E.1-1: row count mismatch or duplicate tags")

    safe_rows: list[tuple[str, str, str, str | None]] = []
    for row in safe["rows"]:
        group, offset = row["group"].upper(), row["element_offset"].upper()
        if not re.fullmatch(r"[0-9A-F]{4}", group) or int(group, 16) % 2 == 0:
            raise TableError(f"E.3.10-1: group {group!r} is not an odd hex group")
        if not re.fullmatch(r"[0-9A-F]{2}", offset):
            raise TableError(f"E.3.10-1: element offset {offset!r} is not one hex byte")
        safe_rows.append((row["private_creator"], group, offset, row["vr"]))
    safe_rows.sort(key=lambda r: (r[0], r[1], r[2]))
    if len(safe_rows) != safe["row_count"] or len({r[:3] for r in safe_rows}) != len(safe_rows):
        raise TableError("E.3.10-1: row count mismatch or duplicate (creator, group, element)")

    codes_7050 = [
        (r["code_value"], r["coding_scheme_designator"], r["code_meaning"]) for r in cid["rows"]
    ]
    known_7050 = {c[0] for c in codes_7050}
    for c in columns:
        if c["cid7050_code"]["code_value"] not in known_7050:
            raise TableError(f"column {c['key']}: code not in CID 7050")

    src = table["source"]
    out = [
        f"# generated by python/tools/gen_profiles.py from PS3.15 edition {edition}",
        f"# ({src['repository']} {src['path']} @ {src['commit'][:12]}); do not edit by hand.",
        '"""PS3.15 Annex E tables as data; python/dicomscrub/profiles/table.py reads them."""',
        "",
        f"EDITION = {edition!r}",
        "",
        "# Table E.1-1a: action code -> meaning",
        "ACTION_CODES = (",
        *(f"    ({k!r}, {v!r})," for k, v in table["action_codes"].items()),
        ")",
        "",
        "# Table E.1-1 columns, in the standard's order: (key, title, CID 7050 code value)",
        "COLUMNS = (",
        *(
            f"    ({c['key']!r}, {c['option']!r}, {c['cid7050_code']['code_value']!r}),"
            for c in columns
        ),
        ")",
        "",
        "# Table E.1-1 rows, sorted by tag: (tag, keyword, name, retired, basic code, options,",
        '# VR). tag: 8 characters, upper-case hex with "x" for a wildcard digit ("60xx4000"), or',
        '# "ggggeeee" for the private-attributes row. options: (index in COLUMNS, code) for',
        "# each non-empty option cell. VR: pydicom's data dictionary's (\"OB or OW\" as is), None",
        "# for the private row, a whole group or an unknown tag; the keyword names the tag there.",
        "E1_1 = (",
        *(f"    {r!r}," for r in rows),
        ")",
        "",
        "# Table E.3.10-1 safe private attributes: (creator, group, element byte, VR or None)",
        "SAFE_PRIVATE = (",
        *(f"    {r!r}," for r in safe_rows),
        ")",
        "",
        f"# PS3.16 CID {cid['cid']} {cid['name']}: (code value, coding scheme designator, meaning)",
        "CID_7050 = (",
        *(f"    {r!r}," for r in codes_7050),
        ")",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("standard", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on difference")
    args = parser.parse_args(argv)
    try:
        text = build(args.standard)
    except TableError as exc:
        print(f"gen_profiles: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
