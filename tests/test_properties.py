"""Property tests: random data sets built with pydicom, written in each uncompressed transfer
syntax, anonymized by the Rust core, equal what the pure-Python reference makes of them.

The data sets hold random public elements of every VR (drawn from pydicom's dictionary, half of
them among the attributes the profile names), multi-valued strings, odd lengths, partial and
invalid dates, registry and other UIDs, private blocks with creators (the ones retain-safe-private
names, and others) and orphan private elements, sequences nested up to depth 3, and text in the
repertoire of a random Specific Character Set (none, ISO_IR 100, ISO_IR 192, ISO_IR 144,
ISO 2022 IR 87 with two G0 declarations, GB18030), sometimes another one in a sequence item, and
words shared by names, IDs and descriptions (so that cleaning masks something). The Patient's
Name and ID are always there (the pseudonym and date-shift sources). Some files have no File
Meta, some have optional meta elements; some elements carry a VR that is not their dictionary's,
or UN; some sequences and items have undefined lengths.

A failing example is written to ``tests/data/regressions/latest-failure.dcm`` (the input bytes of
the last, i.e. minimal, failing example; git ignores that name): rename it to keep it, every
``.dcm`` file of that folder is replayed by :func:`test_regression_file` under the basic and the
all-options profiles.
``DICOMSCRUB_HYPOTHESIS=dev`` runs 1000 examples per test instead of 40 (tests/conftest.py).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.datadict import DicomDictionary, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomscrub import Profile, _core, reference, validate
from dicomscrub.profiles.options import EXCLUSIVE

KEY = b"dicomscrub test key: not a secret"
# pydicom warns about the invalid values the strategies write on purpose (dates, lengths)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
logging.getLogger("pydicom").setLevel(logging.ERROR)  # ... and logs them too
REGRESSIONS = Path(__file__).parent / "data" / "regressions"
LATEST_FAILURE = REGRESSIONS / "latest-failure.dcm"

# ---------------------------------------------------------------------------------------------
# Profiles (as tests/test_differential.py builds them)
# ---------------------------------------------------------------------------------------------

_ALL_OPTIONS = [name for name, _meaning, _code in Profile.options()]
_DROP = {pair[0] for pair in EXCLUSIVE}
PROFILES = {"basic": [], "all": [o for o in _ALL_OPTIONS if o not in _DROP]}
_plans: dict[str, tuple[dict[str, Any], _core.Plan]] = {}


def plan_for(name: str) -> tuple[dict[str, Any], _core.Plan]:
    if name not in _plans:
        profile = Profile.basic(PROFILES[name])
        _plans[name] = (profile.to_plan(), _core.Plan(profile.to_json(), KEY))
    return _plans[name]


# ---------------------------------------------------------------------------------------------
# The differential check
# ---------------------------------------------------------------------------------------------


def _read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in ds.iterall():
            pass
    return ds


def differential(data: bytes, name: str) -> None:
    """The Rust output of ``data`` under profile ``name`` parses in pydicom and equals the
    reference's output at every depth; it is a valid Part 10 file; pixel data is unchanged."""
    plan_dict, plan = plan_for(name)
    out = _core.anonymize_bytes(data, plan)
    found = _read(out)
    source = _read(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference.apply_plan(source, plan_dict, KEY)
    diffs = reference.differences(expected, found)
    assert not diffs, f"profile {name}:\n" + "\n".join(
        f"  {d.kind} {d.path}: expected {d.expected}, found {d.found}" for d in diffs[:20]
    )
    problems = validate.meta_group_problems(out) + validate.meta_consistency_problems(found)
    assert not problems, problems
    if "PixelData" in source:
        assert found.PixelData == source.PixelData


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\")
LATIN1 = ASCII + "".join(chr(c) for c in range(0xA0, 0x100))
CYRILLIC = ASCII + bytes(range(0xA1, 0x100)).decode("iso8859_5")
JAPANESE = (
    ASCII + "あいうえおかきくけこさしすせそたちつてとやまだろう"
    "アイウエオカキクケコヤマダタロウ山田太郎花子東京都病院検査様医師\u3000"
)
UTF8 = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc", "Co", "Cn"), exclude_characters="\\"
)

#: (Specific Character Set, the characters its text is drawn from)
CHARSETS: list[tuple[Any, Any]] = [
    (None, LATIN1),  # pydicom's default repertoire is ISO 8859-1 (reference R10)
    ("ISO_IR 100", LATIN1),
    ("ISO_IR 192", UTF8),
    ("ISO_IR 144", CYRILLIC),
    (["", "ISO 2022 IR 87"], JAPANESE),
    (["ISO 2022 IR 6", "ISO 2022 IR 87"], JAPANESE),
    ("GB18030", ASCII + "王小明北京医院检查报告张伟李娜　"),
]
#: characters between words: the cleaner's token separators (ASCII punctuation, U+3000)
SEPARATORS = " ^-_.,/:()\u3000"
TEXT_LIMITS = {"SH": 16, "LO": 64, "ST": 200, "LT": 200, "UT": 200, "UC": 80}


@dataclass(frozen=True)
class Lang:
    """The text of one data set: its character set, the characters it uses, and a few words
    that its names, IDs and free text share (so that ``clean`` has something to mask)."""

    charset: Any
    alphabet: Any
    words: tuple[str, ...]

    def chars(self, exclude: str = "") -> st.SearchStrategy[str]:
        if isinstance(self.alphabet, str):
            return st.sampled_from(sorted(set(self.alphabet) - set(exclude)))
        return self.alphabet.filter(lambda c: c not in exclude)

    def text(self, max_size: int, exclude: str = "") -> st.SearchStrategy[str]:
        """Random characters, or words of the pool with separators (cut to ``max_size``)."""
        seps = "".join(c for c in SEPARATORS if c not in exclude and self.encodable(c))
        pieces = st.sampled_from(self.words) | st.sampled_from(list(seps))
        made = st.lists(pieces, max_size=6).map(lambda p: "".join(p)[:max_size])
        return st.text(self.chars(exclude), max_size=max_size) | made

    def encodable(self, c: str) -> bool:
        return c.isascii() or self.alphabet is UTF8 or c in self.alphabet


@st.composite
def langs(draw: st.DrawFn) -> Lang:
    charset, alphabet = draw(st.sampled_from(CHARSETS))
    plain = Lang(charset, alphabet, ("x",))
    word = st.text(plain.chars(exclude=SEPARATORS + "\\="), min_size=1, max_size=8)
    return Lang(charset, alphabet, tuple(draw(st.lists(word, min_size=1, max_size=4))))


def _multi(value: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """One value, or a list of 2-3 (written with backslashes)."""
    return value | st.lists(value, min_size=2, max_size=3)


_digits = st.integers


def _date() -> st.SearchStrategy[str]:
    return st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}")


def da_values() -> st.SearchStrategy[str]:
    full = _date()
    one = st.one_of(
        full,
        full.map(lambda s: s[:4]),
        full.map(lambda s: s[:6]),
        st.sampled_from(["20231301", "2023023", "abcdefgh", "00000101", "19000229", "2024"]),
    )
    ranged = st.tuples(one | st.just(""), one | st.just("")).map(lambda t: f"{t[0]}-{t[1]}")
    return one | ranged


def dt_values() -> st.SearchStrategy[str]:
    time = st.tuples(
        _digits(0, 23), _digits(0, 59), _digits(0, 59), st.sampled_from(["", ".1", ".123456"])
    ).flatmap(
        lambda t: st.sampled_from(
            [f"{t[0]:02d}", f"{t[0]:02d}{t[1]:02d}", f"{t[0]:02d}{t[1]:02d}{t[2]:02d}{t[3]}"]
        )
    )
    offset = st.sampled_from(["", "+0100", "-0500", "+1400"])
    full = st.tuples(_date(), time | st.just(""), offset).map("".join)
    partial = st.tuples(_date().map(lambda s: s[:4]) | _date().map(lambda s: s[:6]), offset)
    one = full | partial.map("".join) | st.sampled_from(["2020-2021", "20201340", "x"])
    ranged = st.tuples(one | st.just(""), one | st.just("")).map(lambda t: f"{t[0]}-{t[1]}")
    return one | ranged


def tm_values() -> st.SearchStrategy[str]:
    return st.tuples(
        _digits(0, 23), _digits(0, 59), _digits(0, 59), st.sampled_from(["", ".5", ".123456"])
    ).map(lambda t: f"{t[0]:02d}{t[1]:02d}{t[2]:02d}{t[3]}")


def ui_values(empty: bool = True) -> st.SearchStrategy[str]:
    arc = _digits(0, 10**9).map(str)
    built = st.lists(arc, min_size=1, max_size=5).map(lambda parts: "1.2." + ".".join(parts))
    registry = st.sampled_from(
        ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.1"]
    )
    return built | registry | st.just("") if empty else built


def pn_values(lang: Lang) -> st.SearchStrategy[str]:
    component = st.sampled_from(lang.words) | lang.text(8, exclude="^=\\")
    group = st.lists(component, min_size=1, max_size=5).map("^".join)
    return st.lists(group.map(lambda g: g[:64]), min_size=1, max_size=3).map("=".join)


_NUMBERS = {
    "US": _digits(0, 2**16 - 1),
    "SS": _digits(-(2**15), 2**15 - 1),
    "UL": _digits(0, 2**32 - 1),
    "SL": _digits(-(2**31), 2**31 - 1),
    "UV": _digits(0, 2**64 - 1),
    "SV": _digits(-(2**63), 2**63 - 1),
    "AT": _digits(0, 2**32 - 1),
    "FL": st.floats(width=32, allow_nan=False),
    "FD": st.floats(allow_nan=False),
}
_BYTES_UNIT = {"OB": 1, "UN": 1, "OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def values_for(vr: str, lang: Lang) -> st.SearchStrategy[Any]:
    """A value pydicom can write for ``vr``; text VRs use the data set's language."""
    if vr in _NUMBERS:
        numbers = _NUMBERS[vr]
        return numbers | st.lists(numbers, min_size=0, max_size=3)
    if vr in _BYTES_UNIT:
        unit = _BYTES_UNIT[vr]
        return st.binary(max_size=24).map(lambda b: b[: len(b) - len(b) % unit])
    if vr == "PN":
        return _multi(pn_values(lang))
    if vr in ("SH", "LO", "UC"):
        return _multi(lang.text(TEXT_LIMITS[vr]))
    if vr in ("ST", "LT", "UT"):  # one value: backslashes and CR LF TAB are characters
        return lang.text(TEXT_LIMITS[vr]) | st.text(
            st.sampled_from(list(ASCII + "\\\r\n\t")), max_size=40
        )
    simple = {
        "AE": st.text(st.sampled_from(ASCII), max_size=16),
        "AS": st.from_regex(r"\A[0-9]{3}[DWMY]\Z"),
        "CS": st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _"), max_size=16),
        "DA": da_values(),
        "DT": dt_values(),
        "TM": tm_values(),
        "DS": st.one_of(
            _digits(-99999, 99999).map(str),
            st.floats(-1e6, 1e6).map(lambda f: f"{f:.6g}"),
            st.sampled_from([" 1.50", "1e3", "-0"]),
        ),
        "IS": _digits(-(2**31), 2**31 - 1).map(str),
        "UI": ui_values(),
    }
    if vr in simple:
        return _multi(simple[vr])
    if vr == "UR":
        url = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789:/._-?=&%")
        return st.text(url, max_size=40)
    raise AssertionError(vr)


# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------

_SKIP_GROUPS = {0x0000, 0x0002, 0xFFFE, 0x7FE0}  # command, meta, items, pixel data
PUBLIC = sorted(
    (tag, entry[0])
    for tag, entry in DicomDictionary.items()
    if tag >> 16 not in _SKIP_GROUPS
    and tag & 0xFFFF != 0
    and tag != reference.SPECIFIC_CHARACTER_SET
    and entry[0] in reference.ALL_VRS
)
_PLAN_TAGS = set(Profile.basic().to_plan()["tags"])
NAMED = [(tag, vr) for tag, vr in PUBLIC if f"{tag:08X}" in _PLAN_TAGS]
NAMED_SQ = [(tag, vr) for tag, vr in NAMED if vr == "SQ"]
_ALL_TAGS = Profile.basic(PROFILES["all"]).to_plan()["tags"]
#: attributes the all-options profile cleans (descriptions, comments): identifying words of the
#: data set's names and IDs are masked in them
CLEANED = [(t, vr) for t, vr in PUBLIC if _ALL_TAGS.get(f"{t:08X}", {}).get("action") == "clean"]
#: elements the masks and the unknown-public rule see: group lengths, repeating groups (overlays,
#: curves), public tags absent from the dictionary
ODD_PUBLIC = [
    (0x00080000, "UL"), (0x00100000, "UL"), (0x60000010, "US"), (0x60023000, "OW"),
    (0x601E0022, "LO"), (0x50000005, "US"), (0x50023000, "OW"), (0x00090010, "LO"),
    (0x00111000, "LO"), (0x00087777, "SH"), (0x0010FF00, "DS"), (0x7FE10010, "OB"),
]  # fmt: skip
#: string VRs a public element may be written as UN instead (explicit syntaxes)
_AS_UN = frozenset({"AE", "CS", "DA", "DS", "DT", "IS", "LO", "SH", "TM", "UI"})

_SAFE_PRIVATE = Profile.basic(["retain-safe-private"]).to_plan()["private"]["creators"]
#: (creator, group, element byte) the retain-safe-private option names
SAFE_PRIVATE = [
    (creator, int(group, 16), int(ee, 16))
    for creator, groups in _SAFE_PRIVATE.items()
    for group, elements in groups.items()
    for ee in elements
]
PRIVATE_VRS = ["LO", "SH", "LT", "PN", "DS", "IS", "DA", "UI", "US", "UL", "FD", "OB", "UN", "SQ"]


def _as_un(tag: int, vr: str, value: Any) -> DataElement:
    """An element written as UN: the ASCII bytes of its value (a string VR)."""
    text = "\\".join(str(v) for v in (value if isinstance(value, list) else [value]))
    if not text.isascii():
        return DataElement(tag, vr, value)
    data = text.encode("ascii")
    elem = DataElement(tag, "OB", data + (b" " if len(data) % 2 else b""))
    elem.VR = "UN"  # set after: pydicom would turn a UN of a known tag into its VR
    return elem


def _sequence(tag: int, items: list[Dataset], undefined: bool) -> DataElement:
    elem = DataElement(tag, "SQ", items)
    elem.is_undefined_length = undefined
    for item in items:
        item.is_undefined_length_sequence_item = undefined
    return elem


@st.composite
def public_elements(draw: st.DrawFn, depth: int, lang: Lang) -> DataElement:
    choice = st.one_of(
        st.sampled_from(NAMED),
        st.sampled_from(PUBLIC),
        st.sampled_from(ODD_PUBLIC),
        st.sampled_from(CLEANED),
    )
    if depth < 3:
        choice = choice | st.sampled_from(NAMED_SQ)
    tag, vr = draw(choice)
    if vr == "SQ":
        items = [] if depth >= 3 else draw(st.lists(datasets(depth + 1, lang), max_size=2))
        return _sequence(tag, items, draw(st.booleans()))
    odd = draw(st.integers(0, 19))
    if odd == 0 and vr not in ("SQ", "PN"):  # written with a VR that is not its dictionary's
        vr = draw(st.sampled_from(["LO", "SH", "CS", "UT", "OB", "US"]))
    value = draw(values_for(vr, lang))
    if vr in _AS_UN and odd == 1:
        return _as_un(tag, vr, value)
    return DataElement(tag, vr, value)


@st.composite
def private_blocks(draw: st.DrawFn, depth: int, lang: Lang) -> list[DataElement]:
    """A creator (gggg,00xx) and data elements (gggg,xxee); sometimes no creator (orphans)."""
    if draw(st.booleans()) and SAFE_PRIVATE:
        creator, group, ee = draw(st.sampled_from(SAFE_PRIVATE))
        creator += draw(st.sampled_from(["", "", " "]))  # trailing padding is not significant
        ees = [ee]
    else:
        creator = draw(st.text(st.sampled_from(ASCII), min_size=1, max_size=24))
        group = draw(st.sampled_from([0x0009, 0x0011, 0x0019, 0x0029, 0x0043, 0x2001]))
        ees = draw(st.lists(_digits(0, 0xFF), min_size=1, max_size=3, unique=True))
    block = draw(_digits(0x10, 0xFF))
    out = []
    if draw(st.integers(0, 9)) > 0:
        out.append(DataElement(group << 16 | block, "LO", creator))
    for ee in ees:
        tag = group << 16 | block << 8 | ee
        try:
            vr = get_private_entry(tag, creator.rstrip())[0]
        except KeyError:
            vr = draw(st.sampled_from(PRIVATE_VRS if depth < 3 else PRIVATE_VRS[:-1]))
        if vr not in reference.ALL_VRS:
            vr = "UN"
        if vr == "SQ":
            items = draw(st.lists(datasets(depth + 1, lang), max_size=2))
            out.append(_sequence(tag, items, draw(st.booleans())))
        else:
            out.append(DataElement(tag, vr, draw(values_for(vr, lang))))
    return out


@st.composite
def datasets(draw: st.DrawFn, depth: int, lang: Lang) -> Dataset:
    """A sequence item (depth >= 1): public elements and private blocks, sometimes in a
    Specific Character Set of its own."""
    ds = Dataset()
    if draw(st.integers(0, 7)) == 0:
        lang = draw(langs())
        if lang.charset is not None:
            ds.SpecificCharacterSet = lang.charset
    size = 4 if depth == 1 else 2
    for elem in draw(st.lists(public_elements(depth, lang), max_size=size)):
        ds[elem.tag] = elem
    if draw(st.integers(0, 3)) == 0:
        for elem in draw(private_blocks(depth, lang)):
            ds[elem.tag] = elem
    return ds


@st.composite
def files(draw: st.DrawFn, syntax: str) -> bytes:
    """A Part 10 file written by pydicom in ``syntax``."""
    lang = draw(langs())
    ds = Dataset()
    for elem in draw(st.lists(public_elements(0, lang), max_size=10)):
        ds[elem.tag] = elem
    for block in draw(st.lists(private_blocks(0, lang), max_size=2)):
        for elem in block:
            ds[elem.tag] = elem
    if lang.charset is not None:
        ds.SpecificCharacterSet = lang.charset
    for keyword in ("PatientName", "PatientID", "SOPClassUID", "SOPInstanceUID"):
        if keyword in ds:  # drawn already, maybe as UN: set afresh below
            del ds[keyword]
    ds.PatientName = draw(pn_values(lang))
    ds.PatientID = draw(st.sampled_from(lang.words) | lang.text(64, exclude="\\"))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = draw(ui_values(empty=False))
    if draw(st.integers(0, 4)) == 0:
        ds.PixelData = draw(st.binary(min_size=2, max_size=64).map(lambda b: b[: len(b) // 2 * 2]))
        ds["PixelData"].VR = "OW"
    if syntax == "implicit-le":
        _dictionary_vrs_only(ds)
    buf = io.BytesIO()
    if syntax != "deflated" and draw(st.integers(0, 7)) == 0:  # a bare data set, no File Meta
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmwrite(
                buf,
                ds,
                implicit_vr=syntax == "implicit-le",
                little_endian=syntax != "explicit-be",
                enforce_file_format=False,
            )
        return buf.getvalue()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = SYNTAXES[syntax]
    for tag, vr, value in draw(st.lists(st.sampled_from(META_EXTRAS), max_size=3)):
        meta[tag] = DataElement(tag, vr, value)
    ds.file_meta = meta
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _dictionary_vrs_only(ds: Dataset) -> None:
    """Implicit VR: drop the public elements drawn with a VR that is not their dictionary's (a
    reader could not tell), but UN holding text (read as the dictionary's string VR)."""
    for elem in list(ds):
        tag = int(elem.tag)
        if elem.VR == "SQ":
            for item in elem.value:
                _dictionary_vrs_only(item)
        entry = DicomDictionary.get(tag)
        if (
            entry is not None
            and elem.VR != entry[0]
            and not (elem.VR == "UN" and entry[0] in _AS_UN)
        ):
            del ds[tag]


#: optional File Meta elements (the plan's rules apply to them too)
META_EXTRAS = [
    (0x00020016, "AE", "STATION_AE"),
    (0x00020017, "AE", "SEND_AE"),
    (0x00020018, "AE", "RECV_AE"),
    (0x00020100, "UI", "1.2.3.4.5"),
    (0x00020102, "OB", b"private info"),
    (0x00020013, "SH", "OTHER_1.0"),
]


SYNTAXES = {
    "implicit-le": ImplicitVRLittleEndian,
    "explicit-le": ExplicitVRLittleEndian,
    "explicit-be": ExplicitVRBigEndian,
    "deflated": DeflatedExplicitVRLittleEndian,
}


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


def _keep_failure(data: bytes) -> None:
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    LATEST_FAILURE.write_bytes(data)


@pytest.mark.parametrize("syntax", list(SYNTAXES))
@given(data=st.data())
def test_rust_equals_reference_on_random_data_sets(syntax: str, data: st.DataObject) -> None:
    raw = data.draw(files(syntax), label="file")
    name = data.draw(st.sampled_from(list(PROFILES)), label="profile")
    try:
        differential(raw, name)
    except Exception:
        _keep_failure(raw)  # Hypothesis replays the minimal example last: it is what stays
        raise


REGRESSION_FILES = sorted(REGRESSIONS.glob("*.dcm")) if REGRESSIONS.is_dir() else []


@pytest.mark.parametrize("name", list(PROFILES))
@pytest.mark.parametrize("path", REGRESSION_FILES, ids=lambda p: p.name)
def test_regression_file(path: Path, name: str) -> None:
    differential(path.read_bytes(), name)


def test_generated_files_cover_the_syntaxes_and_charsets() -> None:
    """The strategies write what they claim (a cheap guard against a silently narrow generator)."""
    seen_syntax, seen_charset = set(), set()

    @given(data=st.data())
    def probe(data: st.DataObject) -> None:
        syntax = data.draw(st.sampled_from(list(SYNTAXES)))
        ds = _read(data.draw(files(syntax)))
        seen_syntax.add(str(ds.file_meta.get("TransferSyntaxUID", "no File Meta")))
        charset = ds.get("SpecificCharacterSet")
        seen_charset.add(str(charset))
        assert "PatientName" in ds and "PatientID" in ds

    probe()
    assert len(seen_syntax) >= 2 and len(seen_charset) >= 2
