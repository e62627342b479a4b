"""Unit tests of dicomscrub.reference, the pure-Python oracle of docs/plan.md.

Expected values are derived independently inside the tests: HMACs are recomputed with ``hmac``,
base32 is re-implemented by hand, dates are moved with ``datetime``; the few literal outputs are
derived by hand in a comment next to them.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import hmac
import io
import warnings

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.datadict import get_entry
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from dicomscrub import reference as R
from dicomscrub.errors import ProfileError

KEY = b"test project key"


# ---------------------------------------------------------------------------------------------
# Independent re-derivations
# ---------------------------------------------------------------------------------------------


def h(label: str, data: bytes, key: bytes = KEY) -> bytes:
    return hmac.new(key, label.encode() + b"\x00" + data, hashlib.sha256).digest()


def base32_by_hand(data: bytes) -> str:
    """RFC 4648 base32, upper case, no padding, written independently of ``base64``."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(alphabet[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def expected_uid(uid: str, key: bytes = KEY) -> str:
    return "2.25." + str(int.from_bytes(h("dicomscrub/uid", uid.encode(), key)[:16], "big"))


def expected_pseudonym(value: str) -> str:
    return base32_by_hand(h("dicomscrub/pseudonym", value.encode("utf-8")))[:16]


def expected_offset(source: str, max_days: int) -> int:
    return -(int.from_bytes(h("dicomscrub/date", source.encode("utf-8"))[:8], "big") % max_days + 1)


def moved(yyyymmdd: str, days: int) -> str:
    d = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    return (
        (d + datetime.timedelta(days=days)).isoformat().replace("-", "")
    )  # strftime does not pad years < 1000


def plan(**parts: object) -> dict:
    return {"version": 1, **parts}


def rule(action: str, **extra: object) -> dict:
    return {"action": action, **extra}


def item(**elements: object) -> Dataset:
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def make_ds() -> Dataset:
    """A small UTF-8 data set: names, IDs, dates, UIDs, nested sequences, a private block."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyDate = "20200315"
    ds.AcquisitionDateTime = "20200315101500.123+0100"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC777"
    ds.StudyDescription = "CT thorax Müller follow-up"
    ds.ReferringPhysicianName = "Smith^Anna"
    ds.PatientName = "Müller^Jürgen"
    ds.PatientID = "PID-12345"
    ds.PatientBirthDate = "19700101"
    ds.OtherPatientIDs = ["OLD-1", "OLD-2"]
    ds.Rows = 2
    ds.ReferencedStudySequence = [
        item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID="1.2.3.9"),
    ]
    ds.RequestAttributesSequence = [
        item(
            RequestedProcedureID="RP1",
            ScheduledProcedureStepID="SPS1",
            ReasonForTheRequestedProcedure="pain, Jürgen said",
            ReferencedStudySequence=[item(ReferencedSOPInstanceUID="1.2.3.10\\1.2.840.10008.1.2")],
        )
    ]
    block = ds.private_block(0x0009, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "secret Müller")
    block.add_new(0x02, "LO", "other")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def reread(ds: Dataset, **write_args: object) -> Dataset:
    """``ds`` as pydicom reads it back from a file."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(buffer, ds, **write_args)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)


def file_ds(ds: Dataset | None = None) -> Dataset:
    """A complete Part 10 data set, as read from a file."""
    return reread(ds if ds is not None else make_ds(), enforce_file_format=True)


# ---------------------------------------------------------------------------------------------
# Keyed derivations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("uid", ["1.2.3", "1.2.826.0.1.3680043.2.1125.1.42", "9", "2.25.1"])
def test_keyed_uid_is_hmac_under_2_25(uid: str) -> None:
    out = R.keyed_uid(KEY, uid)
    assert out == expected_uid(uid)
    assert len(out) <= 64 and out.replace(".", "").isdigit()


def test_keyed_uid_ignores_trailing_padding_only() -> None:
    assert R.keyed_uid(KEY, "1.2.3\x00") == expected_uid("1.2.3")
    assert R.keyed_uid(KEY, "1.2.3 ") == expected_uid("1.2.3")
    assert R.keyed_uid(KEY, " 1.2.3") == expected_uid(" 1.2.3")  # leading space is data


def test_keyed_uid_keeps_empty_and_registry_uids() -> None:
    assert R.keyed_uid(KEY, "") == ""
    assert R.keyed_uid(KEY, "\x00") == ""
    assert R.keyed_uid(KEY, CTImageStorage) == CTImageStorage
    assert R.keyed_uid(KEY, "1.2.840.10008.1.2.1\x00") == "1.2.840.10008.1.2.1"
    # "1.2.840.10008" itself does not start with "1.2.840.10008.": it is mapped.
    assert R.keyed_uid(KEY, "1.2.840.10008") == expected_uid("1.2.840.10008")


def test_keyed_uid_depends_on_the_key() -> None:
    assert R.keyed_uid(b"other", "1.2.3") == expected_uid("1.2.3", b"other")
    assert R.keyed_uid(b"other", "1.2.3") != R.keyed_uid(KEY, "1.2.3")


@pytest.mark.parametrize("value", ["PID-12345", "Müller^Jürgen", "山田^太郎", "x"])
def test_keyed_pseudonym_is_base32_of_hmac(value: str) -> None:
    out = R.keyed_pseudonym(KEY, value)
    assert out == expected_pseudonym(value)
    assert len(out) == 16 and set(out) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_base32_by_hand_matches_rfc4648_vectors() -> None:
    # RFC 4648 section 10 (without padding).
    assert base32_by_hand(b"foobar") == "MZXW6YTBOI"
    assert base32_by_hand(b"f") == "MY"


def test_keyed_pseudonym_strips_spaces_and_keeps_empty() -> None:
    assert R.keyed_pseudonym(KEY, "  PID-1 ") == expected_pseudonym("PID-1")
    assert R.keyed_pseudonym(KEY, "") == ""
    assert R.keyed_pseudonym(KEY, "   ") == ""


@pytest.mark.parametrize("source", ["", "PID-12345", "山田"])
@pytest.mark.parametrize("max_days", [1, 7, 3652])
def test_date_offset_is_hmac_modulo(source: str, max_days: int) -> None:
    offset = R.date_offset_days(KEY, source, max_days)
    assert offset == expected_offset(source, max_days)
    assert -max_days <= offset <= -1


@pytest.mark.parametrize("max_days", [0, -3, True, 2.5])
def test_date_offset_rejects_bad_max_days(max_days: object) -> None:
    with pytest.raises(ProfileError):
        R.date_offset_days(KEY, "x", max_days)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "vr", "offset", "expected"),
    [
        ("20240301", "DA", -1, "20240229"),  # leap year
        ("20230301", "DA", -1, "20230228"),
        ("20200101", "DA", -1, "20191231"),
        ("20200315", "DA", -3652, moved("20200315", -3652)),
        ("2020", "DA", -1, "2019"),  # 2020-01-01 minus one day is in 2019
        ("2020", "DA", -10, "2019"),
        ("2020", "DA", 10, "2020"),  # 2020-01-11: same year, written as YYYY
        ("202003", "DA", -1, "202002"),  # from 2020-03-01
        ("202003", "DA", -31, "202001"),  # 2020-03-01 - 31 days = 2020-01-30
        ("20240301-20240401", "DA", -1, "20240229-20240331"),
        ("-20240301", "DA", -1, "-20240229"),
        ("20240301-", "DA", -1, "20240229-"),
        ("2020-202003", "DA", -1, "2019-202002"),
        ("20240301\\20000101", "DA", -1, "20240229\\19991231"),
        ("20240301\\\\20000101", "DA", -1, "20240229\\\\19991231"),
        (" 20240301 ", "DA", -1, "20240229"),
        ("", "DA", -1, ""),
        ("20240301120000.5-0500", "DT", -1, "20240229120000.5-0500"),
        ("20240301120000.123456+0100", "DT", -1, "20240229120000.123456+0100"),
        ("20240301", "DT", -1, "20240229"),
        ("2024030112", "DT", -1, "2024022912"),
        ("2024+0100", "DT", -1, "2023+0100"),
        ("202403-0500", "DT", -1, "202402-0500"),
        ("2024", "DT", -1, "2023"),
        ("20240301-20240302", "DT", -1, "20240229-20240301"),
        ("20240301-0500-20240302+0100", "DT", -1, "20240229-0500-20240301+0100"),
        ("20240301120000-", "DT", -1, "20240229120000-"),
        ("2020-2021", "DT", -1, "2019-2021"),  # single reading: year 2020 at UTC offset -2021
    ],
)
def test_shift_date_value(value: str, vr: str, offset: int, expected: str) -> None:
    assert R.shift_date_value(value, vr, offset) == expected


@pytest.mark.parametrize(
    ("value", "vr", "expected"),
    [
        ("20201301", "DA", ""),  # month 13
        ("20230229", "DA", ""),  # not a leap year
        ("2020.03.01", "DA", ""),  # ACR-NEMA form
        ("abc", "DA", ""),
        ("2020031", "DA", ""),  # 7 digits
        ("-", "DA", ""),
        ("20200301-x", "DA", ""),
        ("00000101", "DA", ""),  # year 0
        ("00010101", "DA", ""),  # moves before year 1
        ("20200301\\junk\\20200302", "DA", "20200229\\\\20200301"),  # each value on its own
        ("20240301T12", "DT", ""),
        ("20240301120", "DT", ""),  # odd number of time digits
        ("20240301120000.1234567", "DT", ""),  # 7 fraction digits
        ("20241", "DT", ""),
    ],
)
def test_shift_date_value_empties_invalid_values(value: str, vr: str, expected: str) -> None:
    assert R.shift_date_value(value, vr, -1) == expected


def test_shift_date_value_rejects_other_vrs() -> None:
    with pytest.raises(ValueError):
        R.shift_date_value("101500", "TM", -1)


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=datetime.date(1000, 1, 1), max_value=datetime.date(9000, 12, 31)),
    st.integers(min_value=-3652, max_value=-1),
)
def test_shift_date_value_moves_full_dates_like_datetime(day: datetime.date, offset: int) -> None:
    value = day.isoformat().replace("-", "")
    assert R.shift_date_value(value, "DA", offset) == moved(value, offset)
    assert R.shift_date_value(value + "235959.5+1400", "DT", offset) == moved(value, offset) + (
        "235959.5+1400"
    )


# ---------------------------------------------------------------------------------------------
# Tokens and cleaning
# ---------------------------------------------------------------------------------------------


def test_tokens_split_on_ascii_punctuation_and_keep_two_characters() -> None:
    assert R.tokens("Doe^John^Q^^Dr.") == ["doe", "john", "dr"]
    assert R.tokens("O'Brien-Smith, 42 y") == ["brien", "smith", "42"]
    assert R.tokens("") == []


def test_tokens_unicode() -> None:
    # U+3000 separates; non-ASCII punctuation (U+3001) does not.
    assert R.tokens("山田　太郎") == ["山田", "太郎"]
    assert R.tokens("山田、太郎") == ["山田、太郎"]
    assert R.tokens("Müller=ミュラー") == ["müller", "ミュラー"]
    # Full lower-case mapping: U+0130 becomes "i" + U+0307 (two code points).
    assert R.tokens("İstanbul") == ["i\u0307stanbul"]
    # Final sigma (a Unicode context rule): ΣΟΦΙΑΣ -> σοφιας with a final ς.
    assert R.tokens("ΣΟΦΙΑΣ") == ["σοφια\u03c2"]
    # A single character is not a token, even a non-ASCII one.
    assert R.tokens("é^Zoë") == ["zoë"]


def test_clean_text_masks_whole_tokens_case_insensitively() -> None:
    ids = set(R.tokens("Doe^John"))
    assert R.clean_text("CT head of JOHN doe, by Dr. Johnson", ids) == (
        "CT head of XXXX XXX, by Dr. Johnson"
    )
    assert R.clean_text("nothing here", ids) == "nothing here"


def test_clean_text_counts_characters_not_bytes() -> None:
    ids = set(R.tokens("Müller^Jürgen")) | set(R.tokens("山田^太郎"))
    assert R.clean_text("Dr müller/JÜRGEN", ids) == "Dr XXXXXX/XXXXXX"
    assert R.clean_text("山田　太郎様", ids) == "XX　太郎様"  # "太郎様" is one token
    assert R.clean_text("山田\\太郎", ids) == "XX\\XX"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.sets(st.text(min_size=2, max_size=5), max_size=4))
def test_clean_text_only_replaces_token_characters(text: str, raw_ids: set[str]) -> None:
    ids = {t.lower() for t in raw_ids}
    out = R.clean_text(text, ids)
    assert len(out) == len(text)
    for before, after in zip(text, out, strict=True):
        assert after == before or after == "X"
    assert not (set(R.tokens(out)) & ids - {"xx", "xxx", "xxxx", "xxxxx"})


def test_identifying_tokens_from_pn_and_listed_tags_at_any_depth() -> None:
    ds = make_ds()
    found = R.identifying_tokens(ds, plan(identifying=["00100020", "00401001"]))
    # PN: PatientName, ReferringPhysicianName; listed: PatientID (top), RequestedProcedureID
    # (inside RequestAttributesSequence).
    assert found == {"müller", "jürgen", "smith", "anna", "pid", "12345", "rp1"}
    # Nothing listed: names only; AccessionNumber is not a PN.
    assert R.identifying_tokens(ds, plan()) == {"müller", "jürgen", "smith", "anna"}


def test_identifying_tokens_ignore_binary_and_sequences() -> None:
    ds = make_ds()
    found = R.identifying_tokens(ds, plan(identifying=["00280010", "00081110"]))
    assert found == {"müller", "jürgen", "smith", "anna"}


# ---------------------------------------------------------------------------------------------
# Which rule applies
# ---------------------------------------------------------------------------------------------


def action_of(ds: Dataset, tag: int, p: dict) -> str:
    return R.rule_for(ds, ds[tag], p)["action"]


def test_rule_precedence_exact_private_mask_vr_unknown_default() -> None:
    ds = make_ds()
    ds.add_new(0x60003000, "OB", b"\x00\x01")
    ds.add_new(0x00109999, "LO", "unknown public")
    assert not pydicom.datadict.dictionary_has_tag(0x00109999)
    p = plan(
        tags={"00100010": rule("empty"), "00091001": rule("replace", value="t")},
        private={
            "creators": {"ACME 1.0": {"0009": {"01": rule("keep"), "02": rule("clean")}}},
            "default": rule("remove"),
        },
        masks=[
            {"mask": "FF00FFFF", "value": "60003000", "rule": rule("empty")},
            {"mask": "FFFF0000", "value": "60000000", "rule": rule("replace", value="m")},
        ],
        vrs={"PN": rule("dummy"), "UI": rule("uid"), "OB": rule("remove")},
        unknown_public=rule("remove"),
        default=rule("clean"),
    )
    assert action_of(ds, 0x00100010, p) == "empty"  # exact beats VR
    assert action_of(ds, 0x00091001, p) == "replace"  # exact beats private
    assert action_of(ds, 0x00091002, p) == "clean"  # private creator rule
    assert action_of(ds, 0x60003000, p) == "empty"  # first mask beats the second and the VR
    assert action_of(ds, 0x00080090, p) == "dummy"  # VR
    assert action_of(ds, 0x00080018, p) == "uid"
    assert action_of(ds, 0x00109999, p) == "remove"  # unknown public
    assert action_of(ds, 0x00080020, p) == "clean"  # default
    assert action_of(ds, 0x00090010, p) == "remove"  # creator, no keep-if-rule: private default


def test_private_rules_look_the_creator_up_in_the_same_data_set() -> None:
    ds = Dataset()
    ds.private_block(0x0011, "ACME", create=True).add_new(0x05, "LO", "top")
    nested = Dataset()
    nested.private_block(0x0011, "OTHER", create=True).add_new(0x05, "LO", "nested")
    ds.add_new(0x00081110, "SQ", Sequence([nested]))
    p = plan(
        private={"creators": {"ACME": {"0011": {"05": rule("keep")}}}, "default": rule("remove")}
    )
    assert action_of(ds, 0x00111005, p) == "keep"
    assert R.rule_for(nested, nested[0x00111005], p)["action"] == "remove"


def test_private_creator_value_loses_trailing_padding_only() -> None:
    ds = Dataset()
    ds.add_new(0x00110010, "LO", "ACME \x00")
    ds.add_new(0x00111001, "LO", "a")
    ds.add_new(0x00130010, "LO", " ACME")
    ds.add_new(0x00131001, "LO", "b")
    p = plan(
        private={
            "creators": {"ACME": {"0011": {"01": rule("keep")}, "0013": {"01": rule("keep")}}},
            "default": rule("remove"),
        }
    )
    assert action_of(ds, 0x00111001, p) == "keep"
    assert action_of(ds, 0x00131001, p) == "remove"  # " ACME" is another creator


def test_private_data_element_without_creator_gets_private_default() -> None:
    ds = Dataset()
    ds.add_new(0x00111001, "LO", "orphan")
    ds.add_new(0x00110001, "UL", 1)  # (gggg,0001-000F): neither creator nor data element
    p = plan(
        private={"creators": {"ACME": {"0011": {"01": rule("keep")}}}, "default": rule("empty")}
    )
    assert action_of(ds, 0x00111001, p) == "empty"
    assert action_of(ds, 0x00110001, p) == "empty"


def test_creator_elements_keep_if_rule() -> None:
    ds = make_ds()
    ds.private_block(0x0019, "NO RULES", create=True).add_new(0x01, "LO", "x")
    creators = {"ACME 1.0": {"0009": {"01": rule("keep")}}, "NO RULES": {"0021": {}}}
    keep_if = plan(
        private={
            "creators": creators,
            "creator_elements": "keep-if-rule",
            "default": rule("remove"),
        }
    )
    assert action_of(ds, 0x00090010, keep_if) == "keep"
    assert action_of(ds, 0x00190010, keep_if) == "remove"  # rules for group 0021 only
    without = plan(private={"creators": creators, "default": rule("remove")})
    assert action_of(ds, 0x00090010, without) == "remove"


def test_private_without_default_falls_through_to_masks_vr_and_default() -> None:
    ds = make_ds()
    p = plan(
        private={"creators": {"ACME 1.0": {"0009": {"01": rule("empty")}}}},
        masks=[{"mask": "FFFFFFFF", "value": "00091002", "rule": rule("clean")}],
        vrs={"LO": rule("remove")},
        unknown_public=rule("dummy"),
    )
    assert action_of(ds, 0x00091001, p) == "empty"
    assert action_of(ds, 0x00091002, p) == "clean"
    assert action_of(ds, 0x00090010, p) == "remove"  # VR LO; never "unknown public"


def test_unknown_public_uses_the_dictionary_with_repeaters() -> None:
    ds = Dataset()
    ds.add_new(0x60023000, "OW", b"\x00\x00")  # Overlay Data, a repeater: known
    ds.add_new(0x50000010, "US", 1)  # Number of Points (curves), a retired repeater: known
    ds.add_new(0x00080000, "UL", 4)  # group length: not in pydicom's dictionary
    ds.add_new(0x00109999, "LO", "x")
    ds.add_new(0x00010010, "LO", "y")  # odd group 0001 is not private: public, unknown
    for tag in (0x60023000, 0x50000010):
        get_entry(tag)  # pydicom knows them
    p = plan(unknown_public=rule("remove"))
    assert [action_of(ds, t, p) for t in (0x60023000, 0x50000010)] == ["keep", "keep"]
    assert [action_of(ds, t, p) for t in (0x00080000, 0x00109999, 0x00010010)] == ["remove"] * 3


def test_default_is_keep() -> None:
    ds = make_ds()
    assert action_of(ds, 0x00100010, plan()) == "keep"


# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------


def test_remove_and_empty_including_sequences() -> None:
    ds = make_ds()
    p = plan(
        tags={
            "00100010": rule("remove"),
            "00100030": rule("empty"),
            "00280010": rule("empty"),
            "00081110": rule("empty"),
            "00400275": rule("remove"),
        }
    )
    out = R.apply_plan(ds, p, KEY)
    assert "PatientName" not in out and "RequestAttributesSequence" not in out
    assert out.PatientBirthDate == "" and out["Rows"].value is None
    assert out["ReferencedStudySequence"].VR == "SQ" and len(out.ReferencedStudySequence) == 0


def test_replace_cuts_each_value_and_empties_binary() -> None:
    ds = make_ds()
    p = plan(
        tags={
            "00080050": rule("replace", value="A" * 20 + "\\" + "B" * 3),  # SH 16
            "00101000": rule("replace", value="X\\Y\\Z"),
            "00100010": rule("replace", value="N" * 70 + "=" + "I" * 65),  # PN 64 per group
            "00081030": rule("replace", value="L" * 70),  # LO 64
            "00280010": rule("replace", value="7"),  # US: binary
            "00081110": rule("replace", value="x"),  # SQ: does not fit, kept
        }
    )
    out = R.apply_plan(ds, p, KEY)
    assert list(out.AccessionNumber) == ["A" * 16, "BBB"]
    assert list(out.OtherPatientIDs) == ["X", "Y", "Z"]
    assert str(out.PatientName) == "N" * 64 + "=" + "I" * 64
    assert out.StudyDescription == "L" * 64
    assert out["Rows"].value is None
    assert out.ReferencedStudySequence == ds.ReferencedStudySequence


def test_dummy_uses_the_vr_dummy_or_empties() -> None:
    ds = make_ds()
    p = plan(
        vrs={"PN": rule("dummy"), "DA": rule("dummy"), "SH": rule("dummy"), "US": rule("dummy")},
        tags={"00400275": rule("dummy")},
        dummies={"PN": "ANONYMIZED", "DA": "19000101", "US": "0"},
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.PatientName == "ANONYMIZED" and out.ReferringPhysicianName == "ANONYMIZED"
    assert out.StudyDate == "19000101" and out.PatientBirthDate == "19000101"
    assert out.AccessionNumber == ""  # no SH dummy
    assert out["Rows"].value is None  # binary, whatever the dummies say
    inner = out.RequestAttributesSequence[0]  # SQ dummy: kept, items visited by the rules
    assert inner.RequestedProcedureID == "" and inner.ScheduledProcedureStepID == ""


def test_uid_maps_every_value_at_every_depth() -> None:
    ds = make_ds()
    ds.add_new(0x00081150, "UI", "1.2.5\\\\1.2.840.10008.5.1.4.1.1.2")  # ReferencedSOPClassUID
    out = R.apply_plan(ds, plan(vrs={"UI": rule("uid")}, tags={"00080050": rule("uid")}), KEY)
    assert out.SOPInstanceUID == expected_uid("1.2.3.4.5")
    assert out.SOPClassUID == CTImageStorage
    assert list(out.ReferencedSOPClassUID) == [
        expected_uid("1.2.5"),
        "",
        "1.2.840.10008.5.1.4.1.1.2",
    ]
    assert out.ReferencedStudySequence[0].ReferencedSOPInstanceUID == expected_uid("1.2.3.9")
    deep = out.RequestAttributesSequence[0].ReferencedStudySequence[0]
    assert list(deep.ReferencedSOPInstanceUID) == [expected_uid("1.2.3.10"), "1.2.840.10008.1.2"]
    assert out.AccessionNumber == ""  # uid on SH: an identifier its VR cannot hold, emptied (R4)


def test_pseudonym_of_own_value_with_prefix_and_cut() -> None:
    ds = make_ds()
    p = plan(
        tags={
            "00100020": rule("pseudonym", prefix="ANON-"),
            "00080050": rule("pseudonym", prefix="ACC-"),  # SH: 4 + 16 characters cut to 16
            "00101000": rule("pseudonym"),
            "00280010": rule("pseudonym"),  # US: does not fit, emptied (R4)
            "00080020": rule("pseudonym"),  # DA: not a text VR, emptied (R4)
        }
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.PatientID == "ANON-" + expected_pseudonym("PID-12345")
    assert out.AccessionNumber == ("ACC-" + expected_pseudonym("ACC777"))[:16]
    # The whole multi-valued value is one source: "OLD-1\OLD-2".
    assert out.OtherPatientIDs == expected_pseudonym("OLD-1\\OLD-2")
    assert out.Rows is None and out.StudyDate == ""


def test_pseudonym_source_is_the_top_level_value_even_inside_items() -> None:
    ds = make_ds()
    p = plan(
        tags={
            "00401001": rule("pseudonym", prefix="RP", source="00100020"),
            "00100010": rule("pseudonym", source="00100020"),
            "00080050": rule("pseudonym", prefix="Z", source="00102160"),  # absent source
        }
    )
    out = R.apply_plan(ds, p, KEY)
    code = expected_pseudonym("PID-12345")
    assert out.RequestAttributesSequence[0].RequestedProcedureID == ("RP" + code)[:16]  # SH
    assert out.PatientName == code
    assert out.AccessionNumber == "Z"  # prefix + keyed_pseudonym("")


def test_pseudonym_source_is_read_before_edits() -> None:
    ds = make_ds()
    p = plan(
        tags={
            "00100020": rule("pseudonym", prefix="P"),
            "00101000": rule("pseudonym", source="00100020"),
        }
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.OtherPatientIDs == expected_pseudonym("PID-12345")


def test_shift_date_moves_every_date_by_the_patient_offset() -> None:
    ds = make_ds()
    ds.RequestAttributesSequence[0].add_new(0x00400244, "DA", "20200301")  # nested DA
    p = plan(
        vrs={"DA": rule("shift_date"), "DT": rule("shift_date"), "TM": rule("shift_date")},
        date_shift={"max_days": 3652},
    )
    out = R.apply_plan(ds, p, KEY)
    offset = expected_offset("PID-12345", 3652)
    assert out.StudyDate == moved("20200315", offset)
    assert out.PatientBirthDate == moved("19700101", offset)
    assert out.AcquisitionDateTime == moved("20200315", offset) + "101500.123+0100"
    assert out.RequestAttributesSequence[0][0x00400244].value == moved("20200301", offset)
    assert out.StudyTime == "101500"  # TM: kept


def test_shift_date_source_and_absent_source() -> None:
    ds = make_ds()
    p = plan(
        tags={"00080020": rule("shift_date")}, date_shift={"source": "00080050", "max_days": 30}
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.StudyDate == moved("20200315", expected_offset("ACC777", 30))
    del ds.PatientID
    p = plan(tags={"00080020": rule("shift_date")}, date_shift={"max_days": 30})
    assert R.apply_plan(ds, p, KEY).StudyDate == moved("20200315", expected_offset("", 30))


def test_clean_text_elements_and_sequences() -> None:
    ds = make_ds()
    ds.RequestAttributesSequence[0].RequestedProcedureDescription = "Jürgen Müller CT"
    ds.RequestAttributesSequence[0].ReferencedStudySequence[0].StudyComments = "for jürgen"
    p = plan(
        tags={
            "00081030": rule("clean"),  # LO at top level
            "00400275": rule("clean"),  # SQ
            "00401001": rule("remove"),  # not keep: not cleaned
            "00401002": rule("uid"),  # does not fit: kept, not cleaned
            "00280010": rule("clean"),  # US: does not fit
        },
        identifying=["00100020"],
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.StudyDescription == "CT thorax XXXXXX follow-up"
    inner = out.RequestAttributesSequence[0]
    assert inner.ScheduledProcedureStepID == "SPS1"  # SH with keep: cleaned, nothing to mask
    assert inner.RequestedProcedureDescription == "XXXXXX XXXXXX CT"
    assert inner.ReasonForTheRequestedProcedure == ""  # uid rule on LO: emptied (R4)
    assert "RequestedProcedureID" not in inner
    assert inner.ReferencedStudySequence[0].StudyComments == "for XXXXXX"  # nested SQ, still
    assert out.PatientName == "Müller^Jürgen"  # outside the sequence: keep is keep
    assert out.Rows == 2


def test_clean_of_a_pn_and_of_identifying_values() -> None:
    ds = make_ds()
    ds.PatientComments = "pid 12345 seen by anna"
    p = plan(tags={"00100010": rule("clean"), "00104000": rule("clean")}, identifying=["00100020"])
    out = R.apply_plan(ds, p, KEY)
    assert out.PatientName == "XXXXXX^XXXXXX"
    assert out.PatientComments == "XXX XXXXX seen by XXXX"


def test_text_that_cannot_be_encoded_is_emptied() -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Doe^John"
    ds.PatientComments = "Doe 山田"  # held in memory; ISO_IR 100 cannot encode it
    ds.StudyDescription = "kept 山田"  # unchanged values are never re-encoded
    p = plan(
        tags={
            "00104000": rule("clean"),
            "00081030": rule("clean"),
            "00080050": rule("replace", value="山田"),
            "00101000": rule("replace", value="Zoë"),
        }
    )
    ds.AccessionNumber = "A"
    ds.OtherPatientIDs = "B"
    out = R.apply_plan(ds, p, KEY)
    assert out.PatientComments == ""
    assert out.StudyDescription == "kept 山田"
    assert out.AccessionNumber == ""
    assert out.OtherPatientIDs == "Zoë"


def test_the_nearest_character_set_encodes_new_values() -> None:
    ds = make_ds()  # ISO_IR 192 at the top level
    latin = item(SpecificCharacterSet="ISO_IR 100", StudyComments="a")
    utf8 = item(StudyComments="b")
    ds.add_new(0x00081115, "SQ", Sequence([latin, utf8]))  # ReferencedSeriesSequence
    out = R.apply_plan(ds, plan(tags={"00324000": rule("replace", value="山田")}), KEY)
    assert out.ReferencedSeriesSequence[0].StudyComments == ""  # not in ISO 8859-1
    assert out.ReferencedSeriesSequence[1].StudyComments == "山田"  # UTF-8 inherited


def test_never_edited_elements() -> None:
    ds = file_ds()
    p = plan(tags={"00020010": rule("remove"), "00020000": rule("empty")}, vrs={"UI": rule("uid")})
    out = R.apply_plan(ds, p, KEY)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert out.file_meta.FileMetaInformationGroupLength > 0


def test_encapsulated_pixel_data_is_only_removed() -> None:
    ds = make_ds()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x02\x00\x00\x00\xff\xd9"
    ds["PixelData"].VR = "OB"
    for action in ("empty", "replace", "dummy"):
        extra = {"value": "x"} if action == "replace" else {}
        out = R.apply_plan(ds, plan(tags={"7FE00010": rule(action, **extra)}), KEY)
        assert out.PixelData == ds.PixelData
    assert "PixelData" not in R.apply_plan(ds, plan(tags={"7FE00010": rule("remove")}), KEY)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # native: an ordinary OB
    assert R.apply_plan(ds, plan(tags={"7FE00010": rule("empty")}), KEY).PixelData is None


# ---------------------------------------------------------------------------------------------
# Inserts
# ---------------------------------------------------------------------------------------------


def test_inserts_replace_and_add_elements_including_sequences() -> None:
    ds = make_ds()
    ds.PatientIdentityRemoved = "NO"
    p = plan(
        tags={"00120062": rule("remove")},
        insert=[
            {"tag": "00120062", "vr": "CS", "value": "YES"},
            {"tag": "00120063", "vr": "LO", "value": "dicomscrub " + "v" * 60},
            {
                "tag": "00120064",
                "vr": "SQ",
                "items": [
                    [
                        {"tag": "00080100", "vr": "SH", "value": "113100"},
                        {"tag": "00080102", "vr": "SH", "value": "DCM"},
                        {
                            "tag": "00080104",
                            "vr": "LO",
                            "value": "Basic Application Confidentiality Profile",
                        },
                    ],
                    [{"tag": "00080100", "vr": "SH", "value": "113105"}],
                    [
                        {
                            "tag": "0040A730",
                            "vr": "SQ",
                            "items": [[{"tag": "0040A160", "vr": "UT", "value": "a\\b"}]],
                        }
                    ],
                ],
            },
            {"tag": "00181000", "vr": "LO"},  # no value: empty
        ],
    )
    out = R.apply_plan(ds, p, KEY)
    assert out.PatientIdentityRemoved == "YES"  # replaces the element (here removed by a rule)
    assert out.DeidentificationMethod == ("dicomscrub " + "v" * 60)[:64]
    codes = out.DeidentificationMethodCodeSequence
    assert [c.CodeValue for c in codes[:2]] == ["113100", "113105"]
    assert codes[0].CodeMeaning == "Basic Application Confidentiality Profile"
    assert codes[2].ContentSequence[0].TextValue == "a\\b"  # UT: one value
    assert out.DeviceSerialNumber == ""


# ---------------------------------------------------------------------------------------------
# File Meta, preamble, plans that change nothing
# ---------------------------------------------------------------------------------------------


def test_file_meta_follows_the_new_sop_instance_uid() -> None:
    ds = file_ds()
    ds.file_meta.SourceApplicationEntityTitle = "SCANNER1"
    p = plan(vrs={"UI": rule("uid"), "AE": rule("replace", value="ANON")})
    out = R.apply_plan(ds, p, KEY)
    meta = out.file_meta
    assert meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID == expected_uid("1.2.3.4.5")
    assert meta.MediaStorageSOPClassUID == CTImageStorage
    assert meta.ImplementationClassUID == R.IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == R.IMPLEMENTATION_VERSION_NAME
    assert meta.SourceApplicationEntityTitle == "ANON"
    assert meta.FileMetaInformationVersion == ds.file_meta.FileMetaInformationVersion
    assert out.preamble == b"\x00" * 128
    # The group length counts the bytes of the other meta elements in explicit VR little endian:
    # a 12-byte header for OB, 8 bytes for UI/SH/AE, then the value padded to even length.
    length = 0
    for elem in meta:
        if elem.tag != 0x00020000:
            value = elem.value if isinstance(elem.value, bytes) else str(elem.value).encode()
            length += (12 if elem.VR == "OB" else 8) + len(value) + len(value) % 2
    assert meta.FileMetaInformationGroupLength == length


def test_file_meta_keeps_its_own_rule_when_sop_instance_uid_is_gone() -> None:
    ds = file_ds()
    out = R.apply_plan(ds, plan(tags={"00080018": rule("remove")}, vrs={"UI": rule("uid")}), KEY)
    assert "SOPInstanceUID" not in out
    assert out.file_meta.MediaStorageSOPInstanceUID == expected_uid("1.2.3.4.5")


def test_file_meta_is_built_for_a_file_without_one(tmp_path) -> None:
    ds = make_ds()
    del ds.file_meta
    path = tmp_path / "raw.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
        src = pydicom.dcmread(path, force=True)
    assert len(src.file_meta) == 0 and src.preamble is None
    out = R.apply_plan(src, plan(vrs={"UI": rule("uid")}), KEY)
    meta = out.file_meta
    assert meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert meta.MediaStorageSOPClassUID == CTImageStorage
    assert meta.MediaStorageSOPInstanceUID == expected_uid("1.2.3.4.5")
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.ImplementationClassUID == R.IMPLEMENTATION_CLASS_UID
    assert out.preamble == b"\x00" * 128
    in_memory = Dataset()
    in_memory.PatientName = "x"
    built = R.apply_plan(in_memory, plan(tags={"00100010": rule("empty")}), KEY).file_meta
    assert built.TransferSyntaxUID == ExplicitVRLittleEndian
    assert "MediaStorageSOPInstanceUID" not in built


@pytest.mark.parametrize(
    "p",
    [
        plan(),
        plan(tags={"00100010": rule("keep")}, vrs={"UI": rule("keep")}, default=rule("keep")),
        plan(private={"creators": {"ACME 1.0": {"0009": {"01": rule("keep")}}}}),
    ],
)
def test_a_plan_that_changes_nothing_returns_an_equal_copy(p: dict) -> None:
    ds = file_ds()
    ds.preamble = b"\x01" * 128
    assert not R.plan_changes_anything(p)
    out = R.apply_plan(ds, p, KEY)
    assert out is not ds and out == ds and out.file_meta == ds.file_meta
    assert out.preamble == b"\x01" * 128
    assert R.differences(ds, out) == []


def test_apply_plan_does_not_edit_its_input() -> None:
    ds = file_ds()
    before = copy.deepcopy(ds)
    R.apply_plan(
        ds,
        plan(
            vrs={"UI": rule("uid"), "PN": rule("empty"), "SQ": rule("remove")},
            default=rule("clean"),
        ),
        KEY,
    )
    assert ds == before and ds.file_meta == before.file_meta


def test_plan_changes_anything() -> None:
    assert not R.plan_changes_anything(plan())
    assert R.plan_changes_anything(
        plan(masks=[{"mask": "FFFFFFFF", "value": "00100010", "rule": rule("empty")}])
    )
    assert R.plan_changes_anything(plan(private={"default": rule("remove")}))
    assert R.plan_changes_anything(plan(insert=[{"tag": "00120062", "vr": "CS", "value": "YES"}]))


# ---------------------------------------------------------------------------------------------
# anonymize_file
# ---------------------------------------------------------------------------------------------

FULL_PLAN = plan(
    tags={
        "00100010": rule("dummy"),
        "00100020": rule("pseudonym", prefix="P"),
        "00081030": rule("clean"),
        "00400275": rule("clean"),
    },
    private={
        "creators": {"ACME 1.0": {"0009": {"01": rule("clean")}}},
        "creator_elements": "keep-if-rule",
        "default": rule("remove"),
    },
    vrs={"UI": rule("uid"), "DA": rule("shift_date"), "DT": rule("shift_date")},
    unknown_public=rule("remove"),
    dummies={"PN": "ANONYMIZED"},
    identifying=["00100020", "00101000"],
    date_shift={"max_days": 3652},
    insert=[{"tag": "00120062", "vr": "CS", "value": "YES"}],
)


@pytest.mark.parametrize(
    "syntax",
    [
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    ],
)
def test_anonymize_file_round_trips_in_the_same_transfer_syntax(tmp_path, syntax) -> None:
    ds = make_ds()
    ds.file_meta.TransferSyntaxUID = syntax
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(src, enforce_file_format=True)
    R.anonymize_file(src, dst, FULL_PLAN, KEY)
    found = pydicom.dcmread(dst)
    assert found.file_meta.TransferSyntaxUID == syntax
    expected = R.apply_plan(pydicom.dcmread(src), FULL_PLAN, KEY)
    assert R.differences(expected, found) == []
    assert found.preamble == b"\x00" * 128
    assert found.PatientName == "ANONYMIZED"
    assert found.file_meta.MediaStorageSOPInstanceUID == found.SOPInstanceUID
    assert found.PatientID == "P" + expected_pseudonym("PID-12345")
    if syntax != ImplicitVRLittleEndian:  # implicit: ACME 1.0 is unknown, (0009,1001) is UN
        assert found[0x00091001].value == "secret XXXXXX"
    if syntax == DeflatedExplicitVRLittleEndian:
        raw = dst.read_bytes()
        assert b"PID-12345" not in raw and b"ANONYMIZED" not in raw  # the body is deflated


def test_anonymize_file_copies_bytes_when_nothing_changes(tmp_path) -> None:
    src, dst = tmp_path / "in.dcm", tmp_path / "out.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_ds().save_as(src, enforce_file_format=True)
    R.anonymize_file(src, dst, plan(default=rule("keep")), KEY)
    assert dst.read_bytes() == src.read_bytes()


# ---------------------------------------------------------------------------------------------
# differences
# ---------------------------------------------------------------------------------------------


def test_differences_of_equal_data_sets_is_empty() -> None:
    ds = file_ds()
    assert R.differences(ds, copy.deepcopy(ds)) == []
    assert R.differences(ds, reread(ds)) == []


def test_differences_name_nested_private_and_meta_paths() -> None:
    expected = file_ds()
    found = copy.deepcopy(expected)
    found.RequestAttributesSequence[0].ReferencedStudySequence[0].ReferencedSOPInstanceUID = "9.9"
    found[0x00091001].value = "changed"
    del found.PatientID
    found.PatientComments = "new"
    found.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.6"
    found.preamble = b"\x01" * 128
    diffs = {d.path: d for d in R.differences(expected, found)}
    assert set(diffs) == {
        "RequestAttributesSequence[0].ReferencedStudySequence[0].ReferencedSOPInstanceUID",
        "(0009,1001)",
        "PatientID",
        "PatientComments",
        "file_meta.MediaStorageSOPInstanceUID",
        "preamble",
    }
    nested = diffs[
        "RequestAttributesSequence[0].ReferencedStudySequence[0].ReferencedSOPInstanceUID"
    ]
    assert (nested.kind, nested.found) == ("value", "'9.9'")
    assert nested.expected == "['1.2.3.10', '1.2.840.10008.1.2']"
    assert (diffs["PatientID"].kind, diffs["PatientID"].found) == ("missing", R.ABSENT)
    assert (diffs["PatientComments"].kind, diffs["PatientComments"].expected) == (
        "unexpected",
        R.ABSENT,
    )
    assert diffs["file_meta.MediaStorageSOPInstanceUID"].expected == "'1.2.3.4.5'"


def test_differences_report_vrs_and_item_counts() -> None:
    expected = make_ds()
    found = copy.deepcopy(expected)
    found["AccessionNumber"].VR = "LO"
    found.ReferencedStudySequence.append(item(ReferencedSOPInstanceUID="1.2"))
    kinds = {(d.path, d.kind, d.expected, d.found) for d in R.differences(expected, found)}
    assert kinds == {
        ("AccessionNumber", "vr", "SH", "LO"),
        ("ReferencedStudySequence", "items", "1", "2"),
    }


def test_differences_ignore_padding_and_empty_forms() -> None:
    expected, found = Dataset(), Dataset()
    expected.PatientID = "ID  "
    found.PatientID = "ID"
    expected.add_new(0x00091001, "OB", b"\x01\x02\x03")  # odd length: padded when written
    found.add_new(0x00091001, "OB", b"\x01\x02\x03\x00")
    expected.AccessionNumber = None
    found.AccessionNumber = ""
    expected.add_new(0x00280106, "US", 0xFFFF)  # "US or SS": read as SS on the other side
    found.add_new(0x00280106, "SS", -1)
    expected.SliceThickness = "1.50"
    found.SliceThickness = "1.5"
    assert R.differences(expected, found) == []
    found.add_new(0x00091001, "OB", b"\x01\x02\x04\x00")
    assert [d.path for d in R.differences(expected, found)] == ["(0009,1001)"]


def test_differences_read_un_as_the_known_vr() -> None:
    expected, found = Dataset(), Dataset()
    expected.add_new(0x00091001, "LO", "secret")
    found.add_new(0x00091001, "UN", b"secret")
    assert R.differences(expected, found) == []
    found[0x00091001].value = b"other "
    assert [d.kind for d in R.differences(expected, found)] == ["value"]


def test_differences_compare_pixel_bytes() -> None:
    expected = make_ds()
    expected.PixelData = bytes(range(200))
    found = copy.deepcopy(expected)
    assert R.differences(expected, found) == []
    found.PixelData = bytes(range(199)) + b"\x00"
    (d,) = R.differences(expected, found)
    assert d.path == "PixelData" and "200 bytes" in d.expected


# ---------------------------------------------------------------------------------------------
# Plan validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"version": 2},
        plan(tag={}),
        plan(tags={"0010001": rule("keep")}),
        plan(tags={"0010001a": rule("keep")}),  # lower-case
        plan(tags={"00100010": rule("erase")}),
        plan(tags={"00100010": rule("replace")}),  # no value
        plan(tags={"00100010": rule("keep", value="x")}),
        plan(tags={"00100020": rule("pseudonym", source="PatientID")}),
        plan(private={"creators": {"ACME": {"0010": {"01": rule("keep")}}}}),  # even group
        plan(private={"creators": {"ACME": {"0009": {"1": rule("keep")}}}}),
        plan(private={"creator_elements": "always"}),
        plan(masks=[{"mask": "FF00FFFF", "value": "60013000", "rule": rule("remove")}]),
        plan(vrs={"XX": rule("remove")}),
        plan(tags={"00080020": rule("shift_date")}),  # no date_shift
        plan(date_shift={"source": "00100020"}),  # no max_days
        plan(date_shift={"max_days": 0}),
        plan(identifying=["PatientID"]),
        plan(insert=[{"tag": "00280010", "vr": "US", "value": "1"}]),  # binary VR
        plan(insert=[{"tag": "00020013", "vr": "SH", "value": "x"}]),  # File Meta
        plan(insert=[{"tag": "00120064", "vr": "SQ", "value": "x"}]),
        plan(insert=[{"tag": "00120062", "vr": "CS", "items": []}]),
    ],
)
def test_invalid_plans_raise_profile_error(bad: dict) -> None:
    with pytest.raises(ProfileError):
        R.validate_plan(bad)
    with pytest.raises(ProfileError):
        R.apply_plan(make_ds(), bad, KEY)
