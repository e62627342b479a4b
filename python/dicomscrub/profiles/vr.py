"""Value representations as the profiles need them: classes of VRs, dictionary look-ups, checks.

The classes follow docs/plan.md: ``TEXT`` are the VRs that ``clean`` rewrites, ``BINARY`` the VRs
on which a text replacement cannot be encoded (``replace`` / ``dummy`` empty them).

The dictionary look-ups and value checks use pydicom, imported when one of them is first called:
custom rules need them, the built-in profile does not (its VRs are generated into the tables).
"""

from __future__ import annotations

from functools import cache

#: every VR of PS3.5 Table 6.2-1
ALL = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    "UR US UT UV".split()
)
#: text VRs that ``clean`` rewrites (plan.md "Actions")
TEXT = frozenset("SH LO ST LT UT UC PN".split())
#: VRs on which a text value cannot be encoded (plan.md "Actions")
BINARY = frozenset("US SS UL SL FL FD AT OB OW OF OD OL OV SV UV UN".split())
#: VRs whose values ``shift_date`` moves (TM is accepted: a whole-day offset leaves it unchanged)
TEMPORAL = frozenset("DA DT TM".split())
#: VRs a keyed pseudonym (prefix + 16 base32 characters) can be written to
PSEUDONYM = frozenset("SH LO ST LT UT UC PN".split())
#: VRs whose single value may contain a backslash (VM is always 1)
SINGLE_VALUED = frozenset("ST LT UT UR".split())
#: maximum value length in characters (plan.md "Encoding values"); others are unbounded here
MAX_LENGTH = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 8,
    "DS": 16,
    "DT": 26,
    "IS": 12,
    "LO": 64,
    "PN": 64,
    "SH": 16,
    "TM": 14,
    "UI": 64,
    "ST": 1024,
    "LT": 10240,
    "UC": 0xFFFFFFFE,
    "UT": 0xFFFFFFFE,
}


def is_binary(vr: str | None) -> bool:
    """True for a binary VR, including compound dictionary VRs such as ``"OB or OW"``."""
    return vr is not None and all(v.strip() in BINARY for v in vr.split(" or "))


def dictionary_vr(tag: int) -> str | None:
    """The data dictionary's VR of a public tag (repeating groups included), else None."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


@cache
def repeater_keywords() -> dict[str, str]:
    """Keyword -> 8-character pattern (``"60xx3000"``) of the repeating-group dictionary."""
    from pydicom.datadict import RepeatersDictionary

    return {
        entry[4]: pattern.upper().replace("X", "x")
        for pattern, entry in RepeatersDictionary.items()
        if entry[4]
    }


def keyword_tag(keyword: str) -> int | None:
    """The tag of a keyword of the data dictionary (repeating groups excluded), else None."""
    from pydicom.datadict import keyword_dict

    return keyword_dict.get(keyword)


@cache
def all_keywords() -> tuple[str, ...]:
    """Every keyword of the data dictionary, repeating groups included, sorted."""
    from pydicom.datadict import keyword_dict

    return tuple(sorted({k for k in keyword_dict if k} | set(repeater_keywords())))


def check_value(vr: str, value: str) -> str | None:
    """Why ``value`` is not a valid value for ``vr`` (backslash-separated values), or None.

    Uses pydicom's validators, which follow PS3.5 Table 6.2-1.
    """
    if vr in BINARY or vr == "SQ":
        return f"a text value cannot be written to a {vr} element"
    from pydicom import config
    from pydicom.valuerep import validate_value

    values = [value] if vr in SINGLE_VALUED else value.split("\\")
    for v in values:
        limit = MAX_LENGTH.get(vr)
        if limit is not None and len(v) > limit:
            return f"{v!r} is longer than the {limit} characters allowed for {vr}"
        try:
            validate_value(vr, v, config.RAISE)
        except ValueError as exc:
            detail = str(exc).split(". Please see")[0]
            why = "" if detail.startswith("Invalid value for VR") else f" ({detail})"
            return f"{v!r} is not a valid {vr} value{why}"
    return None
