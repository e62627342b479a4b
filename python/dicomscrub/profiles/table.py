"""The PS3.15 Annex E tables (generated into ``_ps3_15.py``) as typed rows.

``python/tools/gen_profiles.py`` writes the data; this module only gives it names. The data
includes what the built-in profile needs from the data dictionary (each row's VR; its keyword,
checked against the dictionary), so that nothing here imports pydicom.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from dicomscrub.profiles import _ps3_15
from dicomscrub.profiles.tags import pattern_mask

EDITION: str = _ps3_15.EDITION

#: the private-attributes row ``(gggg,eeee)`` of Table E.1-1
PRIVATE_ROW_TAG = "ggggeeee"


class Column(NamedTuple):
    """A profile/option column of Table E.1-1."""

    key: str  # "basic_profile", "retain_uids", ... (the JSON key of ../shared/standard)
    title: str  # "Retain UIDs Option"
    code: str  # CID 7050 code value, "113110"


class Row(NamedTuple):
    """A row of Table E.1-1."""

    tag: str  # "00100010", "60xx4000" or "ggggeeee" (PRIVATE_ROW_TAG)
    keyword: str | None
    name: str
    retired: bool
    basic: str  # the Basic Profile code: "X", "Z/D", ...
    option_codes: tuple[tuple[int, str], ...]  # (index in COLUMNS, code), non-empty cells only
    #: the data dictionary's VR (``"OB or OW"`` kept as is); None for a whole group or private
    vr: str | None

    @property
    def kind(self) -> Literal["exact", "mask", "private"]:
        """``exact`` tag, wildcard ``mask`` or the ``private`` attributes row."""
        if self.tag == PRIVATE_ROW_TAG:
            return "private"
        return "mask" if "x" in self.tag else "exact"

    @property
    def display(self) -> str:
        """The tag as the standard prints it: ``(0010,0010)``, ``(60xx,4000)``, ``(gggg,eeee)``."""
        return f"({self.tag[:4]},{self.tag[4:]})"

    @property
    def mask(self) -> tuple[int, int]:
        """``(mask, value)``: the row covers the tags with ``tag & mask == value``."""
        if self.kind == "private":
            raise ValueError("the private-attributes row has no mask (any odd group)")
        return pattern_mask(self.tag)

    def code(self, column: str) -> str | None:
        """The code in ``column`` (a :class:`Column` key), None for an empty cell."""
        index = COLUMN_INDEX[column]
        if index == 0:
            return self.basic
        return dict(self.option_codes).get(index)


class SafePrivate(NamedTuple):
    """A row of Table E.3.10-1: a private attribute that is safe to retain."""

    creator: str
    group: str  # "0019": upper-case hex, odd
    element: str  # "10": the low byte of the element within the creator's block
    vr: str | None


COLUMNS: tuple[Column, ...] = tuple(Column(*c) for c in _ps3_15.COLUMNS)
COLUMN_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}
#: Table E.1-1, sorted by the tag text ("ggggeeee", the private-attributes row, is last)
ROWS: tuple[Row, ...] = tuple(Row(*r) for r in _ps3_15.E1_1)
#: Table E.3.10-1, sorted by (creator, group, element)
SAFE_PRIVATE: tuple[SafePrivate, ...] = tuple(SafePrivate(*r) for r in _ps3_15.SAFE_PRIVATE)
#: keyword -> tag (8 hex digits) of the exact rows of Table E.1-1: the generator checked that
#: each keyword names its tag in the data dictionary
ROW_TAGS: dict[str, str] = {r.keyword: r.tag for r in ROWS if r.keyword and r.kind == "exact"}
#: Table E.1-1a: action code -> meaning
ACTION_CODES: dict[str, str] = dict(_ps3_15.ACTION_CODES)
#: CID 7050: code value -> (coding scheme designator, code meaning)
CID_7050: dict[str, tuple[str, str]] = {v: (s, m) for v, s, m in _ps3_15.CID_7050}
