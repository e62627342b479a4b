"""Pure-Python reference implementation of the edit plan (docs/plan.md).

This module is the oracle of the differential tests: it applies a plan to a ``pydicom.Dataset``
with pydicom, ``hmac`` and ``hashlib`` only, and never imports ``dicomscrub._core``. It is written
for clarity, not speed; every function follows one paragraph of docs/plan.md, and the readings this
module chose where that document is silent are listed under "Readings" below.

Public API::

    keyed_uid(key, uid)                        -> str
    keyed_pseudonym(key, value)                -> str
    date_offset_days(key, source, max_days)    -> int
    shift_date_value(value, vr, offset_days)   -> str
    tokens(text)                               -> list[str]
    identifying_tokens(ds, plan)               -> set[str]
    clean_text(text, tokens)                   -> str
    rule_for(ds, elem, plan)                   -> dict      (the rule of one element)
    plan_changes_anything(plan)                -> bool
    apply_plan(ds, plan, key)                  -> Dataset   (a new data set; ``ds`` is not edited)
    anonymize_file(src, dst, plan, key)        -> None
    differences(expected, found)               -> list[Difference]

Data model. The reference works on values as pydicom decodes them: the VR of an element is
``elem.VR`` as pydicom read it (explicit VR: the VR in the file, with pydicom's replacement of UN
by a known VR; implicit VR: pydicom's dictionary, including its private dictionary; an ambiguous
VR such as "US or SS" that pydicom left unresolved counts as its first form). Text is decoded by
pydicom with the Specific Character Set in force. A new value is encoded with pydicom's encoders
and decoded back with pydicom's converters, so the returned data set holds exactly what pydicom
reads from a file that contains it.

Readings (where docs/plan.md is silent or ambiguous; the simplest reading was chosen):

R1  "Public" means "not private" as step 2 defines private: the odd groups 0001/0003/0005/0007/FFFF
    are public, so their elements reach step 5 (they are never in the dictionary).
R2  "Absent from the data dictionary" = ``pydicom.datadict.get_entry`` raises ``KeyError``: a tag
    that matches one of pydicom's repeater masks (e.g. (60xx,3000) Overlay Data, (50xx,xxxx)
    curves) is in the dictionary; retired tags are in the dictionary; group lengths (gggg,0000)
    other than (0002,0000) are not in pydicom's dictionary, so they are unknown public tags.
R3  Private creator values are compared after stripping trailing spaces and NULs only (leading
    spaces are significant); creator keys of the plan match case-sensitively.
R4  A rule "does not fit" an element: ``uid`` unless VR is UI; ``pseudonym`` and ``clean`` unless
    the VR is one of the text VRs SH LO ST LT UT UC PN; ``shift_date`` unless DA or DT; ``replace``
    on SQ. Such an element is handled like ``keep`` (a sequence is kept and visited), except that
    a non-SQ element under ``uid`` or ``pseudonym`` is emptied: it is an identifier written with a
    VR that cannot hold it (a Patient's Name as OB), and keeping it would leak it.
R5  Inside a sequence whose rule is ``clean`` (at any depth below it), only elements whose rule's
    action is literally ``keep`` (including the implicit default keep) are cleaned; elements kept
    because their action does not fit (R4) are not cleaned.
R6  ``pseudonym`` hashes the whole element value (multiple values joined with ``\\``) into one
    value. The source (the element's own value or the named top-level tag) is read from the input
    data set. A source tag that is absent or not a string VR gives the empty source, and then the
    value is ``prefix`` alone (``keyed_pseudonym("") == ""``).
R7  The date offset source is the input's top-level value with pydicom's decoding (trailing padding
    removed, leading spaces kept); absent → "". ``date_shift`` needs ``max_days``; a plan that uses
    ``shift_date`` without ``date_shift`` is a ProfileError. ``source`` defaults to 00100020.
R8  Dates: each ``\\`` value is stripped of spaces, then read as one value if it parses, otherwise
    as a range ``A-B`` split at the leftmost ``-`` for which both sides are empty or valid and at
    least one is non-empty. Valid DA: YYYY, YYYYMM, YYYYMMDD. Valid DT: YYYY or YYYYMM optionally
    followed by a UTC offset ``&ZZXX``, or YYYYMMDD followed by HH, HHMM, HHMMSS or HHMMSS.F{1-6}
    and an optional ``&ZZXX``; only the date is checked (year 0001-9999, real month/day), the time
    and offset digits are kept verbatim. A value that does not parse, or whose shifted date leaves
    years 0001-9999, becomes empty (its position in a multi-valued element is kept). Single-value
    reading wins: DT "2020-2021" is year 2020 with UTC offset -2021, not a range.
R9  Maximum lengths are counted in characters (code points) of the decoded text, per value (each
    ``\\``-separated value); PN is cut per component group. VRs not in the table are never cut,
    nor are shifted dates (they keep their input's precision; a range is kept whole).
R10 "Cannot be encoded" applies to every new text value (replace, dummy, pseudonym, clean, insert):
    pydicom's encoder raises under ``writing_validation_mode = RAISE``. Without (0008,0005)
    pydicom's default repertoire is ISO 8859-1 (pydicom's "iso8859"); the VRs that do not use the
    Specific Character Set (AE AS CS DA DS DT IS TM UI UR) are encoded in ISO 8859-1 too.
R11 A value whose new text equals its current text is left untouched (not re-encoded), so it is
    never emptied by R10.
R12 "A plan that changes anything" is static: some rule anywhere in the plan has an action other
    than ``keep``, or ``insert`` is non-empty. Such a plan gives every file a fresh File Meta and a
    zeroed preamble, even a file in which no element was edited.
R13 File Meta: rules apply to the input's meta elements (not 0002,0000 / 0002,0010), then
    (0002,0003) takes the output's (0008,0018) value whenever the output has that element (added if
    the input meta lacked it), (0002,0012)/(0002,0013) are set, and (0002,0000) is recomputed. A
    data set without meta gets (0002,0000), (0002,0001) = 00 01, (0002,0002) = output SOP Class
    UID, (0002,0003) = output SOP Instance UID (each when present), (0002,0010) from the encoding
    it was read in (Explicit VR Little Endian for a data set built in memory), (0002,0012),
    (0002,0013); an input meta that lacks (0002,0001), (0002,0002) or (0002,0010) is completed
    the same way.
R14 Encapsulated Pixel Data = (7FE0,0010) at any depth when the input's Transfer Syntax is one that
    pydicom knows as encapsulated.
R15 The plan is validated strictly: unknown keys (top level, rules, masks, inserts), lower-case
    hex, an unknown action or VR, a mask value with bits outside its mask,
    ``private.creator_elements`` other than "keep-if-rule", an insert of a binary VR, of an item
    tag or into group 0002 are ProfileErrors. ``replace`` needs a string ``value``; an insert
    without ``value`` is empty.
R16 Cleaning and identifying tokens use only string-VR values; elements listed in ``identifying``
    whose VR is binary or SQ contribute nothing. Tokens are collected from the data set (every
    depth), not from the File Meta.
R17 ``private.creator_elements`` absent means off: creator elements then take ``private.default``
    like any private element. Inside a ``clean`` sequence a creator element whose rule is ``keep``
    is a kept LO and is therefore cleaned (R5).
R18 (0008,0005) is never edited, at any depth, whatever the plan says: it must keep describing
    the text that is copied as it was. New values are encoded in the input's character set.
R20 Inside a sequence whose rule is ``dummy`` (PS3.15 D on a sequence: Content Sequence in the
    basic profile), at any depth, elements whose rule is ``keep`` and whose VR is free text
    (ST LT UT UC PN) get ``dummy``: free text such as an SR TextValue, which no table row names,
    must not survive; codes (SH/LO: CodeValue, CodeMeaning...) are kept. A nested sequence whose
    own rule is ``clean`` or ``dummy`` switches to that mode for its subtree.
R19 ``differences`` compares values as pydicom reads them: text without trailing spaces/NULs, every
    form of "empty" equal, numbers by value (DS "1.50" == "1.5"), bytes as bytes except one NUL that
    pads an odd length; VRs equal, or both forms of the tag's ambiguous dictionary VR ("US or SS":
    then compared modulo 2**16); a UN element against a known VR is decoded as that VR first.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import hashlib
import hmac
import math
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings, default_encoding, encode_string
from pydicom.datadict import DicomDictionary, get_entry
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataelem import empty_value_for_VR as _empty_value_for_vr
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import PersonName

from dicomscrub.errors import ProfileError

# The one place that names dicomscrub's implementation (File Meta (0002,0012) and (0002,0013)).
IMPLEMENTATION_CLASS_UID = "2.25.302934705346553458436358419733826571385"
IMPLEMENTATION_VERSION_NAME = "DICOMSCRUB_010"

ACTIONS = frozenset(
    {"keep", "remove", "empty", "replace", "dummy", "uid", "pseudonym", "shift_date", "clean"}
)
KEEP: dict[str, Any] = {"action": "keep"}

#: Text VRs of the ``clean`` action (and, R4, of ``pseudonym``).
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
#: Free-text VRs that get a dummy inside a ``dummy`` sequence (R20); SH/LO (codes) are kept.
FREE_TEXT_VRS = frozenset({"ST", "LT", "UT", "UC", "PN"})
#: VRs on which ``replace``/``dummy`` empty the element.
BINARY_VRS = frozenset(
    {"US", "SS", "UL", "SL", "FL", "FD", "AT", "OB", "OW", "OF", "OD", "OL", "OV", "SV", "UV", "UN"}
)
#: VRs whose value is a string (everything that is neither binary nor SQ).
STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)
ALL_VRS = TEXT_VRS | BINARY_VRS | STRING_VRS | {"SQ"}
#: String VRs that hold one value (a backslash is a character, not a delimiter).
SINGLE_VALUED_VRS = frozenset({"LT", "ST", "UT", "UR"})
#: VRs whose text pydicom encodes with the Specific Character Set.
CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT", "PN"})
#: Maximum length of one value, in characters (PN: per component group).
MAX_LENGTH = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "PN": 64,
    "SH": 16, "TM": 14, "UI": 64,
}  # fmt: skip

REGISTRY_UID_ROOT = "1.2.840.10008."
NOT_PRIVATE_ODD_GROUPS = frozenset({0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF})
TRANSFER_SYNTAX_UID = 0x00020010
META_GROUP_LENGTH = 0x00020000
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PATIENT_ID = 0x00100020
PIXEL_DATA = 0x7FE00010
NEVER_EDITED = frozenset({TRANSFER_SYNTAX_UID, META_GROUP_LENGTH})
_MULTI = (list, tuple, MultiValue)  # pydicom's MultiValue is not a list

_HEX8 = re.compile(r"[0-9A-F]{8}")
_HEX4 = re.compile(r"[0-9A-F]{4}")
_HEX2 = re.compile(r"[0-9A-F]{2}")


# --------------------------------------------------------------------------------------------
# Keyed derivations (HMAC-SHA256 with the project key)
# --------------------------------------------------------------------------------------------


def _h(key: bytes, label: str, data: bytes) -> bytes:
    """``H(label, data) = HMAC-SHA256(key, label || 0x00 || data)``."""
    return hmac.new(key, label.encode("ascii") + b"\x00" + data, hashlib.sha256).digest()


def keyed_uid(key: bytes, uid: str) -> str:
    """Map one UID value to ``2.25.<decimal of the first 16 bytes of H("dicomscrub/uid", u)>``.

    ``u`` is the value without trailing NULs/spaces; an empty value and a value of the DICOM
    registry (starting with ``1.2.840.10008.``) are returned unchanged (without the padding).
    """
    u = uid.rstrip("\x00 ")
    if u == "" or u.startswith(REGISTRY_UID_ROOT):
        return u
    digest = _h(key, "dicomscrub/uid", u.encode("utf-8"))
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def keyed_pseudonym(key: bytes, value: str) -> str:
    """The first 16 characters of the RFC 4648 base32 of ``H("dicomscrub/pseudonym", v)``.

    ``v`` is ``value`` without leading and trailing spaces; an empty ``v`` gives "".
    """
    v = value.strip(" ")
    if v == "":
        return ""
    digest = _h(key, "dicomscrub/pseudonym", v.encode("utf-8"))
    return base64.b32encode(digest).decode("ascii")[:16]


def date_offset_days(key: bytes, source: str, max_days: int) -> int:
    """The date offset of a data set whose ``date_shift.source`` value is ``source``: in
    ``[-max_days, -1]``."""
    if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 1:
        raise ProfileError(f"date_shift.max_days must be an integer >= 1, not {max_days!r}")
    digest = _h(key, "dicomscrub/date", source.encode("utf-8"))
    return -(int.from_bytes(digest[:8], "big") % max_days + 1)


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

_DA = re.compile(r"(?P<date>\d{4}(?:\d{2}(?:\d{2})?)?)(?P<rest>)")
_DT = re.compile(
    r"(?P<date>\d{8})(?P<rest>(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?(?:[+-]\d{4})?)"
    r"|(?P<pdate>\d{4}(?:\d{2})?)(?P<prest>(?:[+-]\d{4})?)"
)


def _shift_single(value: str, vr: str, offset_days: int) -> str | None:
    """Shift one DA/DT value (no range); ``None`` when it is not a valid date (R8)."""
    m = (_DA if vr == "DA" else _DT).fullmatch(value)
    if m is None:
        return None
    date_part = m.group("date") or m.group("pdate")
    rest = m.group("rest") if m.group("date") else m.group("prest")
    year = int(date_part[0:4])
    month = int(date_part[4:6]) if len(date_part) >= 6 else 1
    day = int(date_part[6:8]) if len(date_part) == 8 else 1
    try:
        moved = datetime.date(year, month, day) + datetime.timedelta(days=offset_days)
    except (ValueError, OverflowError):  # not a real date, or moved out of years 1-9999
        return None
    written = f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"[: len(date_part)]
    return written + rest


def _shift_one(value: str, vr: str, offset_days: int) -> str:
    """Shift one ``\\``-separated value: a single date, or a range ``A-B``; "" when invalid."""
    value = value.strip(" ")
    if value == "":
        return ""
    single = _shift_single(value, vr, offset_days)
    if single is not None:
        return single
    for i, char in enumerate(value):
        if char != "-":
            continue
        left, right = value[:i], value[i + 1 :]
        if left == "" and right == "":
            continue
        new_left = "" if left == "" else _shift_single(left, vr, offset_days)
        new_right = "" if right == "" else _shift_single(right, vr, offset_days)
        if new_left is not None and new_right is not None:
            return f"{new_left}-{new_right}"
    return ""


def shift_date_value(value: str, vr: str, offset_days: int) -> str:
    """Move every date of a DA or DT element value (``\\``-separated values, ranges) by
    ``offset_days`` days, keeping each value's precision and, for DT, its time and UTC offset."""
    if vr not in ("DA", "DT"):
        raise ValueError(f"shift_date_value: VR must be DA or DT, not {vr!r}")
    return "\\".join(_shift_one(v, vr, offset_days) for v in value.split("\\"))


# --------------------------------------------------------------------------------------------
# Cleaning text
# --------------------------------------------------------------------------------------------

# A token is a maximal run of characters that are neither ASCII non-alphanumeric nor U+3000.
_TOKEN = re.compile(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f\u3000]+")


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` with at least 2 characters, lower-cased, in order (with repeats)."""
    return [run.lower() for run in _TOKEN.findall(text) if len(run) >= 2]


def clean_text(text: str, tokens: set[str] | frozenset[str], patterns: Iterable[str] = ()) -> str:
    """Replace every token of ``text`` whose lower-case form is in ``tokens``, then every match
    of ``patterns`` (docs/plan.md "Clean patterns"), by as many ``X``."""

    def mask(m: re.Match[str]) -> str:
        run = m.group(0)
        return "X" * len(run) if run.lower() in tokens else run

    text = _TOKEN.sub(mask, text)
    for pattern in patterns:
        text = re.sub(pattern, lambda m: "X" * len(m.group(0)), text)
    return text


def identifying_tokens(ds: Dataset, plan: Mapping[str, Any]) -> set[str]:
    """The identifying tokens of a file: the tokens of every PN value and of every value of a tag
    listed in ``plan["identifying"]``, at any depth of ``ds`` (not its File Meta)."""
    identifying = {int(tag, 16) for tag in plan.get("identifying", [])}
    found: set[str] = set()
    for elem in _walk(ds):
        if _vr_of(elem) == "PN" or elem.tag in identifying:
            text = _text_of(elem)
            if text is not None:
                found.update(tokens(text))
    return found


def _walk(ds: Dataset) -> Iterator[DataElement]:
    """Every element of ``ds`` and of the items of its sequences, depth first."""
    for elem in ds:
        yield elem
        if _vr_of(elem) == "SQ" and elem.value:
            for item in elem.value:
                yield from _walk(item)


# --------------------------------------------------------------------------------------------
# Element helpers
# --------------------------------------------------------------------------------------------


def _vr_of(elem: DataElement) -> str:
    """The element's VR as pydicom read it; an unresolved "X or Y" counts as X."""
    return str(elem.VR).split(" or ")[0].strip()


def _text_of(elem: DataElement | None) -> str | None:
    """The decoded text of a string-VR element, multiple values joined with ``\\`` (``None`` for an
    absent element or a binary / SQ element)."""
    if elem is None or _vr_of(elem) not in STRING_VRS:
        return None
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, _MULTI):
        return "\\".join(_one_text(v) for v in value)
    return _one_text(value)


def _one_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode(default_encoding)
    return str(value)  # str, UID, PersonName, IS and DS (their original string)


def _is_private(tag: int) -> bool:
    group = tag >> 16
    return group % 2 == 1 and group not in NOT_PRIVATE_ODD_GROUPS


def _in_dictionary(tag: int) -> bool:
    """R2: exact entries and repeater masks of pydicom's dictionary."""
    try:
        get_entry(tag)
    except KeyError:
        return False
    return True


def _creator_text(elem: DataElement | None) -> str | None:
    """A private creator's value with trailing spaces/NULs stripped (R3)."""
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, (bytes, bytearray)):  # a creator read as UN
        text = bytes(value).decode(default_encoding)
    elif isinstance(value, _MULTI):
        text = "\\".join(_one_text(v) for v in value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    return text.rstrip(" \x00")


def _charset_of(ds: Dataset, inherited: Any) -> Any:
    """The Specific Character Set in force in ``ds``: its own, else the enclosing one."""
    elem = ds.get(SPECIFIC_CHARACTER_SET)
    if elem is not None and elem.value:
        return elem.value
    return inherited


def _encodings(charset: Any) -> list[str]:
    if charset is None or charset == "":
        return [default_encoding]
    return convert_encodings(list(charset) if isinstance(charset, _MULTI) else charset)


@contextlib.contextmanager
def _strict_encoding() -> Iterator[None]:
    """pydicom raises instead of writing replacement characters (R10)."""
    settings = pydicom_config.settings
    previous = settings._writing_validation_mode  # None means "follow enforce_valid_values"
    settings.writing_validation_mode = pydicom_config.RAISE
    try:
        yield
    finally:
        settings._writing_validation_mode = previous


def _cut(text: str, vr: str) -> str:
    """Cut each value to the VR's maximum length (R9); PN per component group."""
    limit = MAX_LENGTH.get(vr)
    if limit is None:
        return text
    values = text.split("\\")
    if vr == "PN":
        return "\\".join("=".join(group[:limit] for group in v.split("=")) for v in values)
    return "\\".join(v[:limit] for v in values)


def _encode(text: str, vr: str, encodings: list[str]) -> bytes | None:
    """The bytes pydicom writes for ``text``; ``None`` when it cannot be encoded (R10)."""
    values = [text] if vr in SINGLE_VALUED_VRS else text.split("\\")
    try:
        with _strict_encoding():
            if vr == "PN":
                parts = [PersonName(v).encode(encodings) for v in values]
            elif vr in CHARSET_VRS:
                parts = [encode_string(v, encodings) for v in values]
            else:
                parts = [v.encode(default_encoding) for v in values]
    except UnicodeError:
        return None
    return b"\\".join(parts)


def _empty_element(tag: int, vr: str) -> DataElement:
    return DataElement(tag, vr, _empty_value_for_vr(vr))


def _text_element(tag: int, vr: str, text: str, charset: Any, cut: bool = True) -> DataElement:
    """An element holding ``text`` (cut unless told not to, encoded in ``charset``) exactly as
    pydicom would read it back from a file; emptied when the text cannot be encoded."""
    encodings = _encodings(charset)
    data = _encode(_cut(text, vr) if cut else text, vr, encodings)
    if data is None:
        return _empty_element(tag, vr)
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    raw = RawDataElement(Tag(tag), vr, len(data), data, 0, False, True)
    return convert_raw_data_element(raw, encoding=encodings)


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

_TOP_KEYS = {
    "version", "tags", "private", "masks", "vrs", "unknown_public", "default", "dummies",
    "identifying", "date_shift", "insert", "clean_patterns",
}  # fmt: skip
_RULE_KEYS = {
    "keep": set(), "remove": set(), "empty": set(), "replace": {"value"}, "dummy": set(),
    "uid": set(), "pseudonym": {"prefix", "source"}, "shift_date": set(), "clean": set(),
}  # fmt: skip


def _fail(message: str) -> ProfileError:
    return ProfileError(f"invalid plan: {message}")


def _check_hex(value: Any, pattern: re.Pattern[str], where: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(f"{where}: {value!r} is not upper-case hex of the right length")
    return value


def _check_rule(rule: Any, where: str) -> list[str]:
    """Validate one rule, or a list of rules (docs/plan.md "Conditions"); return the actions."""
    if isinstance(rule, list):
        return [a for i, r in enumerate(rule) for a in _check_rule_one(r, f"{where}[{i}]")]
    return _check_rule_one(rule, where)


def _check_rule_one(rule: Any, where: str) -> list[str]:
    if not isinstance(rule, dict) or rule.get("action") not in ACTIONS:
        raise _fail(f"{where}: a rule is an object with an action among {sorted(ACTIONS)}")
    action = rule["action"]
    if "when" in rule:
        when = rule["when"]
        if not isinstance(when, dict) or set(when) != {"tag", "in"}:
            raise _fail(f"{where}.when: an object with tag and in")
        _check_hex(when["tag"], _HEX8, f"{where}.when.tag")
        if not isinstance(when["in"], list) or not all(isinstance(v, str) for v in when["in"]):
            raise _fail(f"{where}.when.in: a list of strings")
    extra = set(rule) - {"action", "when"} - _RULE_KEYS[action]
    if extra:
        raise _fail(f"{where}: unknown keys {sorted(extra)} for action {action!r}")
    if action == "replace" and not isinstance(rule.get("value"), str):
        raise _fail(f"{where}: replace needs a string value")
    if action == "pseudonym":
        if not isinstance(rule.get("prefix", ""), str):
            raise _fail(f"{where}: pseudonym prefix must be a string")
        if "source" in rule:
            _check_hex(rule["source"], _HEX8, f"{where}.source")
    return [action]


def _check_insert(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise _fail(f"{where}: an inserted element is an object")
    extra = set(entry) - {"tag", "vr", "value", "items", "in"}
    if extra:
        raise _fail(f"{where}: unknown keys {sorted(extra)}")
    if "in" in entry:
        if "." in where:  # only top-level entries of `insert` say where they go
            raise _fail(f"{where}: 'in' is only for top-level inserts")
        _check_hex(entry["in"], _HEX8, f"{where}.in")
    tag = int(_check_hex(entry.get("tag"), _HEX8, f"{where}.tag"), 16)
    if tag >> 16 in (0x0002, 0xFFFE):
        raise _fail(f"{where}: cannot insert {tag:08X}")
    vr = entry.get("vr")
    if vr not in ALL_VRS:
        raise _fail(f"{where}: unknown VR {vr!r}")
    if vr in BINARY_VRS:
        raise _fail(f"{where}: inserting a binary VR ({vr}) is not supported")
    if vr == "SQ":
        items = entry.get("items")
        if "value" in entry or not isinstance(items, list):
            raise _fail(f"{where}: an SQ carries items (a list of lists of elements)")
        for i, item in enumerate(items):
            if not isinstance(item, list):
                raise _fail(f"{where}.items[{i}] is a list of elements")
            for j, sub in enumerate(item):
                _check_insert(sub, f"{where}.items[{i}][{j}]")
    elif "items" in entry or not isinstance(entry.get("value", ""), str):
        raise _fail(f"{where}: a non-SQ element carries a string value")


def validate_plan(plan: Any) -> None:
    """Raise ProfileError unless ``plan`` is a valid version-1 plan (R15)."""
    if not isinstance(plan, dict):
        raise _fail("a plan is a JSON object")
    if plan.get("version") != 1:
        raise _fail(f"unsupported version {plan.get('version')!r}")
    extra = set(plan) - _TOP_KEYS
    if extra:
        raise _fail(f"unknown keys {sorted(extra)}")
    actions: list[str] = []
    for tag, rule in _as_dict(plan, "tags").items():
        _check_hex(tag, _HEX8, "tags")
        actions += _check_rule(rule, f"tags.{tag}")
    private = _as_dict(plan, "private")
    if set(private) - {"creators", "creator_elements", "default"}:
        raise _fail("private has only creators, creator_elements and default")
    for creator, groups in _as_dict(private, "creators").items():
        if not isinstance(creator, str) or not isinstance(groups, dict):
            raise _fail("private.creators maps a creator string to groups")
        for group, elements in groups.items():
            _check_hex(group, _HEX4, f"private.creators[{creator!r}]")
            if int(group, 16) % 2 == 0 or int(group, 16) in NOT_PRIVATE_ODD_GROUPS:
                raise _fail(f"private.creators[{creator!r}]: {group} is not a private group")
            if not isinstance(elements, dict):
                raise _fail(f"private.creators[{creator!r}][{group}] maps elements to rules")
            for ee, rule in elements.items():
                _check_hex(ee, _HEX2, f"private.creators[{creator!r}][{group}]")
                actions += _check_rule(rule, f"private.creators[{creator!r}][{group}][{ee}]")
    if private.get("creator_elements", "keep-if-rule") != "keep-if-rule":
        raise _fail("private.creator_elements can only be 'keep-if-rule'")
    if "default" in private:
        actions += _check_rule(private["default"], "private.default")
    masks = plan.get("masks", [])
    if not isinstance(masks, list):
        raise _fail("masks is a list")
    for i, entry in enumerate(masks):
        if not isinstance(entry, dict) or set(entry) != {"mask", "value", "rule"}:
            raise _fail(f"masks[{i}] is an object with mask, value and rule")
        mask = int(_check_hex(entry["mask"], _HEX8, f"masks[{i}].mask"), 16)
        value = int(_check_hex(entry["value"], _HEX8, f"masks[{i}].value"), 16)
        if value & ~mask:
            raise _fail(f"masks[{i}]: value has bits outside the mask, it can never match")
        actions += _check_rule(entry["rule"], f"masks[{i}].rule")
    for vr, rule in _as_dict(plan, "vrs").items():
        if vr not in ALL_VRS:
            raise _fail(f"vrs: unknown VR {vr!r}")
        actions += _check_rule(rule, f"vrs.{vr}")
    for name in ("unknown_public", "default"):
        if name in plan:
            actions += _check_rule(plan[name], name)
    for vr, dummy in _as_dict(plan, "dummies").items():
        if vr not in ALL_VRS or not isinstance(dummy, str):
            raise _fail(f"dummies: {vr!r} must be a VR mapped to a string")
    identifying = plan.get("identifying", [])
    if not isinstance(identifying, list):
        raise _fail("identifying is a list of tags")
    for tag in identifying:
        _check_hex(tag, _HEX8, "identifying")
    if "date_shift" in plan:
        date_shift = _as_dict(plan, "date_shift")
        if set(date_shift) - {"source", "max_days"}:
            raise _fail("date_shift has only source and max_days")
        _check_hex(date_shift.get("source", "00100020"), _HEX8, "date_shift.source")
        max_days = date_shift.get("max_days")
        if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 1:
            raise _fail("date_shift.max_days must be an integer >= 1")
    elif "shift_date" in actions:
        raise _fail("a shift_date rule needs date_shift")
    patterns = plan.get("clean_patterns", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise _fail("clean_patterns is a list of regular expressions")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(f"clean pattern {pattern!r}: {exc}") from None
    inserts = plan.get("insert", [])
    if not isinstance(inserts, list):
        raise _fail("insert is a list")
    for i, entry in enumerate(inserts):
        _check_insert(entry, f"insert[{i}]")


def _as_dict(parent: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name, {})
    if not isinstance(value, dict):
        raise _fail(f"{name} is an object")
    return value


def _all_rules(plan: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every rule of the plan (lists of rules flattened)."""
    for rule in _all_rule_entries(plan):
        yield from rule if isinstance(rule, list) else [rule]


def _all_rule_entries(plan: Mapping[str, Any]) -> Iterator[Any]:
    yield from plan.get("tags", {}).values()
    private = plan.get("private", {})
    for groups in private.get("creators", {}).values():
        for elements in groups.values():
            yield from elements.values()
    if "default" in private:
        yield private["default"]
    for entry in plan.get("masks", []):
        yield entry["rule"]
    yield from plan.get("vrs", {}).values()
    for name in ("unknown_public", "default"):
        if name in plan:
            yield plan[name]


def _changes_anything(plan: Mapping[str, Any]) -> bool:
    return bool(plan.get("insert")) or any(r["action"] != "keep" for r in _all_rules(plan))


def plan_changes_anything(plan: Mapping[str, Any]) -> bool:
    """R12: some rule's action is not ``keep``, or something is inserted."""
    validate_plan(plan)
    return _changes_anything(plan)


# --------------------------------------------------------------------------------------------
# Which rule applies to an element
# --------------------------------------------------------------------------------------------


def _condition_holds(when: Mapping[str, Any], top: Dataset) -> bool:
    """docs/plan.md "Conditions": one value of the top-level element is in the list."""
    text = _text_of(top.get(int(when["tag"], 16)))
    if text is None:
        return False
    return any(v.strip(" ") in when["in"] for v in text.split("\\"))


def _pick(rules: Any, top: Dataset) -> Mapping[str, Any] | None:
    """The first rule (of a rule or a list of rules) whose condition holds; ``None`` if none."""
    if rules is None:
        return None
    for rule in rules if isinstance(rules, list) else [rules]:
        if "when" not in rule or _condition_holds(rule["when"], top):
            return rule
    return None


def _private_rule(
    ds: Dataset, tag: int, plan: Mapping[str, Any], top: Dataset
) -> Mapping[str, Any] | None:
    """Step 2 of docs/plan.md for a private tag; ``None`` when it gives no rule."""
    private = plan.get("private", {})
    creators = private.get("creators", {})
    group, element = tag >> 16, tag & 0xFFFF
    block = element >> 8
    if block >= 0x10:  # a data element (gggg,xxee): look its creator (gggg,00xx) up
        creator = _creator_text(ds.get(group << 16 | block))
        if creator is not None:
            rule = _pick(
                creators.get(creator, {}).get(f"{group:04X}", {}).get(f"{element & 0xFF:02X}"),
                top,
            )
            if rule is not None:
                return rule
    elif 0x10 <= element <= 0xFF:  # a private creator element (gggg,00xx)
        if private.get("creator_elements") == "keep-if-rule":
            creator = _creator_text(ds.get(tag))
            if f"{group:04X}" in creators.get(creator, {}):
                return KEEP
    return _pick(private.get("default"), top)


def rule_for(
    ds: Dataset, elem: DataElement, plan: Mapping[str, Any], top: Dataset | None = None
) -> Mapping[str, Any]:
    """The rule of ``elem``, an element of ``ds`` (the data set that holds it: top level, File
    Meta or a sequence item): the first of exact tag, private, masks, VR, unknown public,
    default. ``top`` is the file's top-level data set, which conditions look at (``ds`` when
    not given)."""
    top = ds if top is None else top
    tag = int(elem.tag)
    if tag == SPECIFIC_CHARACTER_SET:
        return KEEP  # R18: the character set must describe the text as written
    rule = _pick(plan.get("tags", {}).get(f"{tag:08X}"), top)
    if rule is not None:
        return rule
    if _is_private(tag):
        rule = _private_rule(ds, tag, plan, top)
        if rule is not None:
            return rule
    for entry in plan.get("masks", []):
        if tag & int(entry["mask"], 16) == int(entry["value"], 16):
            rule = _pick(entry["rule"], top)
            if rule is not None:
                return rule
    rule = _pick(plan.get("vrs", {}).get(_vr_of(elem)), top)
    if rule is not None:
        return rule
    if not _is_private(tag) and not _in_dictionary(tag):
        rule = _pick(plan.get("unknown_public"), top)
        if rule is not None:
            return rule
    return _pick(plan.get("default"), top) or KEEP


# --------------------------------------------------------------------------------------------
# Applying a plan
# --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one application of a plan to one file knows."""

    plan: Mapping[str, Any]
    key: bytes
    top: Dataset  # the input's top-level data set (pseudonym and date sources)
    identifying: set[str]
    encapsulated: bool
    _offset: int | None = None

    def date_offset(self) -> int:
        if self._offset is None:
            date_shift = self.plan["date_shift"]
            source = int(date_shift.get("source", f"{PATIENT_ID:08X}"), 16)
            text = _text_of(self.top.get(source)) or ""
            self._offset = date_offset_days(self.key, text, date_shift["max_days"])
        return self._offset


_REMOVE = object()  # sentinel: the element is not written


def _edited(elem: DataElement, vr: str, rule: Mapping[str, Any], run: _Run, charset: Any) -> Any:
    """The edit of one non-SQ element: ``None`` (unchanged), ``_REMOVE`` or a new element."""
    action = rule["action"]
    tag = int(elem.tag)
    if action == "keep":
        return None
    if action == "remove":
        return _REMOVE
    if action == "empty":
        return _empty_element(tag, vr)
    if action in ("replace", "dummy"):
        if vr in BINARY_VRS:
            return _empty_element(tag, vr)
        if action == "replace":
            new_text = rule["value"]
        else:
            dummies = run.plan.get("dummies", {})
            if vr not in dummies:
                return _empty_element(tag, vr)
            new_text = dummies[vr]
    else:
        text = _text_of(elem)
        if action == "uid" and vr == "UI":
            new_text = "\\".join(keyed_uid(run.key, v) for v in text.split("\\"))
        elif action == "pseudonym" and vr in TEXT_VRS:
            if "source" in rule:
                source = _text_of(run.top.get(int(rule["source"], 16))) or ""
            else:
                source = text
            new_text = rule.get("prefix", "") + keyed_pseudonym(run.key, source)
        elif action == "shift_date" and vr in ("DA", "DT"):
            new_text = shift_date_value(text, vr, run.date_offset())
        elif action == "clean" and vr in TEXT_VRS:
            new_text = clean_text(text, run.identifying, run.plan.get("clean_patterns", ()))
        elif action in ("uid", "pseudonym"):
            return _empty_element(tag, vr)  # an identifier under a VR that cannot hold it (R4)
        else:
            return None  # the action does not fit this element: keep (R4)
    if new_text == _text_of(elem):
        return None  # R11
    # R9: shifted dates keep the precision they had, so they are never cut (a range may be
    # longer than the VR's maximum and is kept whole, each side moved).
    return _text_element(tag, vr, new_text, charset, cut=action != "shift_date")


def _edit_dataset(src: Dataset, dst: Dataset, run: _Run, inherited: Any, mode: str) -> None:
    """Apply the plan to ``dst``, a copy of ``src``; rules are resolved on ``src`` (before any
    edit). ``mode``: "clean" inside a sequence whose rule is ``clean``, "dummy" inside one whose
    rule is ``dummy`` (R20), else "keep"."""
    charset = _charset_of(src, inherited)
    for elem in src:
        tag = int(elem.tag)
        vr = _vr_of(elem)
        rule = rule_for(src, elem, run.plan, run.top)
        if mode == "clean" and rule["action"] == "keep" and vr in TEXT_VRS:
            rule = {"action": "clean"}
        elif mode == "dummy" and rule["action"] == "keep" and vr in FREE_TEXT_VRS:
            rule = {"action": "dummy"}
        action = rule["action"]
        if tag in NEVER_EDITED or (tag == PIXEL_DATA and run.encapsulated and action != "remove"):
            continue
        if vr == "SQ":
            if action == "remove":
                del dst[tag]
            elif action == "empty":
                dst[tag] = DataElement(tag, "SQ", Sequence())
            else:  # keep, and every action that keeps a sequence and visits its items
                inner = action if action in ("clean", "dummy") else mode
                within = [e for e in run.plan.get("insert", []) if e.get("in") == f"{tag:08X}"]
                for src_item, dst_item in zip(elem.value or [], dst[tag].value or [], strict=True):
                    _edit_dataset(src_item, dst_item, run, charset, inner)
                    for entry in within:  # docs/plan.md "Inserted elements": into each item
                        new_elem = _inserted(entry, _charset_of(src_item, charset))
                        dst_item[new_elem.tag] = new_elem
            continue
        new = _edited(elem, vr, rule, run, charset)
        if new is _REMOVE:
            del dst[tag]
        elif new is not None:
            dst[tag] = new


def _inserted(entry: Mapping[str, Any], charset: Any) -> DataElement:
    tag, vr = int(entry["tag"], 16), entry["vr"]
    if vr == "SQ":
        items = []
        for item_entries in entry["items"]:
            item = Dataset()
            for sub in item_entries:
                elem = _inserted(sub, charset)
                item[elem.tag] = elem
            items.append(item)
        return DataElement(tag, "SQ", Sequence(items))
    return _text_element(tag, vr, entry.get("value", ""), charset)


def _is_encapsulated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    if meta is None or TRANSFER_SYNTAX_UID not in meta:
        return False
    syntax = UID(str(meta[TRANSFER_SYNTAX_UID].value))
    return syntax.is_transfer_syntax and syntax.is_encapsulated


def _transfer_syntax_read_in(ds: Dataset) -> UID:
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is True and little is True:
        return ImplicitVRLittleEndian
    if implicit is False and little is False:
        return ExplicitVRBigEndian
    return ExplicitVRLittleEndian


def _file_meta(src: Dataset, out: Dataset, run: _Run) -> FileMetaDataset:
    """The fresh File Meta of an edited file (R13)."""
    original = getattr(src, "file_meta", None)
    if original is not None and len(original) > 0:
        meta = copy.deepcopy(original)
        _edit_dataset(original, meta, run, None, "keep")
    else:
        meta = FileMetaDataset()
    # A File Meta that lacks a required element is completed, so the output is valid Part 10.
    if "FileMetaInformationVersion" not in meta:
        meta.FileMetaInformationVersion = b"\x00\x01"
    if MEDIA_STORAGE_SOP_CLASS_UID not in meta and SOP_CLASS_UID in out:
        meta[MEDIA_STORAGE_SOP_CLASS_UID] = DataElement(
            MEDIA_STORAGE_SOP_CLASS_UID, "UI", copy.deepcopy(out[SOP_CLASS_UID].value)
        )
    if TRANSFER_SYNTAX_UID not in meta:
        meta.TransferSyntaxUID = _transfer_syntax_read_in(src)
    if SOP_INSTANCE_UID in out:
        meta[MEDIA_STORAGE_SOP_INSTANCE_UID] = DataElement(
            MEDIA_STORAGE_SOP_INSTANCE_UID, "UI", copy.deepcopy(out[SOP_INSTANCE_UID].value)
        )
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.FileMetaInformationGroupLength = 0
    write_file_meta_info(DicomBytesIO(), meta, enforce_standard=False)  # sets the group length
    return meta


def apply_plan(ds: Dataset, plan: Mapping[str, Any], key: bytes) -> Dataset:
    """Apply ``plan`` with ``key`` to a copy of ``ds`` (including its File Meta and preamble) and
    return the copy. A plan that changes nothing returns an equal copy."""
    validate_plan(plan)
    out = copy.deepcopy(ds)
    for _ in _walk(out):  # decode every element of the copy (pydicom decodes lazily)
        pass
    if not _changes_anything(plan):
        return out
    run = _Run(
        plan=plan,
        key=key,
        top=ds,
        identifying=identifying_tokens(ds, plan),
        encapsulated=_is_encapsulated(ds),
    )
    _edit_dataset(ds, out, run, None, "keep")
    charset = _charset_of(ds, None)
    for entry in plan.get("insert", []):
        if "in" not in entry:
            elem = _inserted(entry, charset)
            out[elem.tag] = elem
    out.file_meta = _file_meta(ds, out, run)
    out.preamble = b"\x00" * 128
    return out


def anonymize_file(src: Any, dst: Any, plan: Mapping[str, Any], key: bytes) -> None:
    """Read ``src`` with pydicom, apply ``plan`` and write ``dst`` in the same transfer syntax (a
    deflated file stays deflated). A plan that changes nothing copies the bytes."""
    if not plan_changes_anything(plan):
        shutil.copyfile(src, dst)
        return
    ds = pydicom.dcmread(src, force=True)  # force: a file without preamble/File Meta is accepted
    apply_plan(ds, plan, key).save_as(dst, enforce_file_format=False)


# --------------------------------------------------------------------------------------------
# Differences
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One difference between an expected and a found data set.

    ``path`` names the element (``ReferencedStudySequence[0].ReferencedSOPInstanceUID``, a private
    or unknown tag as ``(0009,1001)``, File Meta elements under ``file_meta.``); ``kind`` is one of
    ``missing`` (expected, not found), ``unexpected`` (found, not expected), ``vr``, ``value``,
    ``items`` (number of sequence items) or ``preamble``.
    """

    path: str
    expected: str
    found: str
    kind: str = "value"


ABSENT = "<absent>"  # Difference.expected / found of an element that is not there
EMPTY = "<empty>"  # ... of an element with no value


def _name(tag: int) -> str:
    """Keyword of a tag of pydicom's dictionary (exact entries only: a repeater's keyword does not
    tell its group), else ``(gggg,eeee)``."""
    entry = DicomDictionary.get(tag)
    if entry is not None and entry[4] and not _is_private(tag):
        return entry[4]
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _render_one(value: Any) -> str:
    if isinstance(value, bytes) and len(value) > 32:
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:16]}>"
    return repr(value)


def _render(values: tuple[Any, ...]) -> str:
    """Normalized values for a report: one value as its repr, several as a list."""
    if not values:
        return EMPTY
    parts = [_render_one(v) for v in values]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"


def _normalized(elem: DataElement) -> tuple[Any, ...]:
    """An element's values for comparison: a tuple (empty for every kind of empty value), text
    without trailing padding, numbers as numbers, bytes as bytes."""
    value = elem.value
    if value is None or (isinstance(value, (str, bytes, bytearray, *_MULTI)) and not value):
        return ()
    values = list(value) if isinstance(value, _MULTI) else [value]
    out: list[Any] = []
    for v in values:
        if isinstance(v, (bytes, bytearray)):
            out.append(bytes(v))
        elif isinstance(v, (str, PersonName)):
            out.append(str(v).rstrip(" \x00"))
        else:
            out.append(v)  # int, float, IS, DS, Tag
    if all(v == "" for v in out):
        return ()
    return tuple(out)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bytes) and isinstance(b, bytes):
        # An odd-length value is padded to even length with one NUL when written.
        short, long_ = sorted((a, b), key=len)
        return a == b or (len(short) % 2 == 1 and long_ == short + b"\x00")
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _same_values(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))


def _compatible_vrs(tag: int, a: str, b: str) -> bool:
    """Equal VRs; or one is an ambiguous ``X or Y`` VR that pydicom left unresolved and that
    contains the other; or both are forms of the tag's ambiguous dictionary VR (pydicom resolves
    "US or SS" from Pixel Representation, so an implicit-VR file can read US on one side and SS on
    the other)."""
    if a == b or a in b.split(" or ") or b in a.split(" or "):
        return True
    try:
        forms = get_entry(tag)[0].split(" or ")
    except KeyError:
        return False
    return len(forms) > 1 and a in forms and b in forms


def _unsigned16(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """US and SS read of the same bytes agree modulo 2**16."""
    return tuple(v & 0xFFFF if isinstance(v, int) else v for v in values)


def _as_vr(elem: DataElement, vr: str, little_endian: bool) -> DataElement:
    """A UN element converted to ``vr`` the way pydicom converts a UN element whose VR it knows."""
    data = bytes(elem.value or b"")
    raw = RawDataElement(elem.tag, vr, len(data), data, 0, False, little_endian)
    return convert_raw_data_element(raw)


def _compare(expected: Dataset, found: Dataset, prefix: str, out: list[Difference]) -> None:
    little = getattr(found, "original_encoding", (None, None))[1] is not False
    for tag in sorted(set(expected.keys()) | set(found.keys())):
        path = prefix + _name(int(tag))
        if tag not in found:
            out.append(Difference(path, _render(_normalized(expected[tag])), ABSENT, "missing"))
            continue
        if tag not in expected:
            out.append(Difference(path, ABSENT, _render(_normalized(found[tag])), "unexpected"))
            continue
        e, f = expected[tag], found[tag]
        e_vr, f_vr = str(e.VR), str(f.VR)
        if not _compatible_vrs(int(tag), e_vr, f_vr):
            # UN versus a known VR: compare the UN bytes read as that VR (pydicom's reading).
            if e_vr == "UN" and f_vr not in ("SQ", "UN") and isinstance(e.value, bytes):
                e = _as_vr(e, f_vr, little)
            elif f_vr == "UN" and e_vr not in ("SQ", "UN") and isinstance(f.value, bytes):
                f = _as_vr(f, e_vr, little)
            else:
                out.append(Difference(path, e_vr, f_vr, "vr"))
                continue
        if e_vr == "SQ":
            e_items, f_items = list(e.value or []), list(f.value or [])
            if len(e_items) != len(f_items):
                out.append(Difference(path, str(len(e_items)), str(len(f_items)), "items"))
            for i, (e_item, f_item) in enumerate(zip(e_items, f_items, strict=False)):
                _compare(e_item, f_item, f"{path}[{i}].", out)
            continue
        e_values, f_values = _normalized(e), _normalized(f)
        if {_vr_of(e), _vr_of(f)} == {"US", "SS"}:
            e_values, f_values = _unsigned16(e_values), _unsigned16(f_values)
        if not _same_values(e_values, f_values):
            out.append(Difference(path, _render(e_values), _render(f_values), "value"))


def differences(expected: Dataset, found: Dataset) -> list[Difference]:
    """Every difference between ``expected`` and ``found``: File Meta, preamble (when both have
    one) and every element at every depth (tags, VRs, values)."""
    out: list[Difference] = []
    e_meta = getattr(expected, "file_meta", None) or Dataset()
    f_meta = getattr(found, "file_meta", None) or Dataset()
    _compare(e_meta, f_meta, "file_meta.", out)
    e_pre, f_pre = getattr(expected, "preamble", None), getattr(found, "preamble", None)
    if e_pre is not None and f_pre is not None and bytes(e_pre) != bytes(f_pre):
        e_text, f_text = _render_one(bytes(e_pre)), _render_one(bytes(f_pre))
        out.append(Difference("preamble", e_text, f_text, "preamble"))
    _compare(expected, found, "", out)
    return out


__all__ = [
    "ABSENT",
    "BINARY_VRS",
    "EMPTY",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "TEXT_VRS",
    "Difference",
    "anonymize_file",
    "apply_plan",
    "clean_text",
    "date_offset_days",
    "differences",
    "identifying_tokens",
    "keyed_pseudonym",
    "keyed_uid",
    "plan_changes_anything",
    "rule_for",
    "shift_date_value",
    "tokens",
    "validate_plan",
]
