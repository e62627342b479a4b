"""Tags as profiles write them: ``(0010,0010)`` for people, ``00100010`` in plans.

Patterns use ``x`` for a wildcard hex digit, as the standard prints repeating groups:
``(60xx,4000)``; as 8 characters ``60xx4000``. A pattern matches a tag when
``tag & mask == value`` (see :func:`pattern_mask`).
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^\(?\s*([0-9A-Fa-fXx]{4})\s*,\s*([0-9A-Fa-fXx]{4})\s*\)?$|^([0-9A-Fa-fXx]{8})$")
#: groups whose odd number does not make them private (PS3.5 7.8.1)
NOT_PRIVATE = frozenset({0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF})


def hex8(tag: int) -> str:
    """``0x00100010`` -> ``"00100010"``: the plan's form."""
    return f"{tag:08X}"


def display(tag: int | str) -> str:
    """``0x00100010`` or ``"00100010"`` -> ``"(0010,0010)"``."""
    text = hex8(tag) if isinstance(tag, int) else tag
    return f"({text[:4]},{text[4:]})"


def parse_pattern(text: str) -> str | None:
    """``"(60xx,4000)"``, ``"60XX,4000"`` or ``"60xx4000"`` -> ``"60xx4000"``; None if malformed.

    Hex digits are upper-cased and wildcards lower-cased; a plain tag has no ``x``.
    """
    m = _TAG.match(text.strip())
    if m is None:
        return None
    digits = m.group(3) or (m.group(1) + m.group(2))
    return digits.upper().replace("X", "x")


def pattern_mask(pattern: str) -> tuple[int, int]:
    """``"60xx4000"`` -> ``(0xFF00FFFF, 0x60004000)``."""
    mask = int("".join("0" if c == "x" else "F" for c in pattern), 16)
    return mask, int(pattern.replace("x", "0"), 16)


def is_private_group(group: int) -> bool:
    """Odd groups are private, except 0001, 0003, 0005, 0007 and FFFF."""
    return group % 2 == 1 and group not in NOT_PRIVATE
