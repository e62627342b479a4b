"""Profiles: PS3.15 Annex E compiled to edit plans (docs/profiles.md, docs/plan.md).

The expectations are derived here from the standard's own tables in ../shared/standard (not from
the generated module), with the resolution rule of docs/profiles.md written out again as a table.
Which rule a plan gives an element is asked of ``dicomscrub.reference.rule_for``, the oracle of
docs/plan.md, so that shadowing between exact tags, masks and VRs counts.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydicom import config, dcmread
from pydicom.data import get_testdata_file
from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import validate_value

from dicomscrub import Profile, ProfileError
from dicomscrub.profiles import list_options
from dicomscrub.reference import apply_plan, rule_for, validate_plan

ROOT = Path(__file__).resolve().parents[1]
STANDARD = ROOT.parent / "shared" / "standard"
GENERATED = ROOT / "python" / "dicomscrub" / "profiles" / "_ps3_15.py"
SITE_TOML = ROOT / "docs" / "examples" / "site.toml"


def _load_json(name: str) -> dict[str, Any]:
    path = STANDARD / name
    assert path.exists(), f"{path} is missing: the PS3.15 tables live in ../shared/standard"
    return json.loads(path.read_text(encoding="utf-8"))


E1_1 = _load_json("ps3.15-table-E.1-1.json")
SAFE = _load_json("ps3.15-table-E.3.10-1-safe-private.json")
CID = {r["code_value"]: r for r in _load_json("cid-7050.json")["rows"]}

#: option name -> Table E.1-1 column key (the names are the CLI's, the keys the JSON's)
COLUMN = {
    "retain-safe-private": "retain_safe_private",
    "retain-uids": "retain_uids",
    "retain-device-identity": "retain_device_identity",
    "retain-institution-identity": "retain_institution_identity",
    "retain-patient-characteristics": "retain_patient_characteristics",
    "retain-long-full-dates": "retain_longitudinal_full_dates",
    "retain-long-modified-dates": "retain_longitudinal_modified_dates",
    "clean-descriptors": "clean_descriptors",
    "clean-structured-content": "clean_structured_content",
    "clean-graphics": "clean_graphics",
}
ALL_MODIFIED = tuple(o for o in COLUMN if o != "retain-long-full-dates")
ALL_FULL = tuple(o for o in COLUMN if o != "retain-long-modified-dates")
CONFIGS = [(), *((o,) for o in COLUMN), ALL_MODIFIED, ALL_FULL]

BINARY = set("US SS UL SL FL FD AT OB OW OF OD OL OV SV UV UN".split())
DATES = {"DA", "DT", "TM"}
D_FAMILY = {"D", "Z/D", "X/D", "X/Z/D"}


_PLANS: dict[tuple[str, ...], dict[str, Any]] = {}


def _plan(options: tuple[str, ...]) -> dict[str, Any]:
    """The basic profile's plan with ``options``, built once per test session."""
    if options not in _PLANS:
        _PLANS[options] = Profile.basic(options).to_plan()
    return _PLANS[options]


def _vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _element(tag: int, vr: str | None = None) -> DataElement:
    vr = (vr or _vr(tag) or "UN").split(" or ")[0]
    return DataElement(tag, vr, [] if vr == "SQ" else None)


def rule_of(plan: dict[str, Any], tag: int, vr: str | None = None) -> dict[str, Any]:
    """The rule the plan gives a public element of ``tag`` (top level, no private creators)."""
    return dict(rule_for(Dataset(), _element(tag, vr), plan))


def rule_of_private(
    plan: dict[str, Any], creator: str, group: int, block: int, element: int, vr: str = "UN"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rule of the creator element, rule of the data element) in a data set holding both."""
    ds = Dataset()
    ds.add_new((group << 16) | block, "LO", creator)
    elem = DataElement((group << 16) | (block << 8) | element, vr, None)
    ds.add(elem)
    return dict(rule_for(ds, ds[(group << 16) | block], plan)), dict(rule_for(ds, elem, plan))


# ---------------------------------------------------------------------------------------------
# The resolution rule of docs/profiles.md, written out again
# ---------------------------------------------------------------------------------------------


def _row_vr(row: dict[str, Any]) -> str | None:
    if row["match"]["kind"] == "private" or row["keyword"] is None:
        return None
    return _vr(int(row["match"]["value"], 16))


def _is_binary(vr: str | None) -> bool:
    return vr is not None and all(v in BINARY for v in vr.split(" or "))


def _resolve(row: dict[str, Any], options: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """(rule, the code that decided it)."""
    vr = _row_vr(row)
    option_codes = [row["actions"][COLUMN[o]] for o in options if row["actions"][COLUMN[o]]]
    codes = [c for c in option_codes if c == "C"] + [c for c in option_codes if c == "K"]
    for code in [*codes, row["actions"]["basic_profile"]]:
        if code == "C":
            if vr in DATES:
                if "retain-long-modified-dates" in options:
                    return {"action": "shift_date"}, code
                continue
            if _is_binary(vr):
                continue
            return {"action": "clean"}, code
        if code == "K":
            return {"action": "keep"}, code
        if code == "X":
            return {"action": "remove"}, code
        if code in ("Z", "X/Z"):
            return {"action": "empty"}, code
        if vr == "SQ":  # D family: dummy (free text below gets dummies); U, X/Z/U*: kept
            return {"action": "dummy" if code in D_FAMILY else "keep"}, code
        if vr == "UI" or code == "U":
            return {"action": "uid"}, code
        assert code in D_FAMILY or code == "X/Z/U*", code
        return {"action": "dummy" if code in D_FAMILY else "empty"}, code
    raise AssertionError(row)


def expected_rule(row: dict[str, Any], options: tuple[str, ...]) -> dict[str, Any]:
    return _resolve(row, options)[0]


def deciding_code(row: dict[str, Any], options: tuple[str, ...]) -> str:
    """The code that decides the row: an option's, or the Basic Profile's."""
    _rule, code = _resolve(row, options)
    option_decides = any(row["actions"][COLUMN[o]] == code for o in options)
    return code if not option_decides else f"option {code}"


#: docs/profiles.md "Stricter Types": (code, action) when the Basic Profile code decides
STRICTER_TYPE = {
    "(0008,0020)": ("Z", "dummy"),
    "(0008,0030)": ("Z", "dummy"),
    "(0020,0010)": ("Z", "dummy"),
    "(0008,1030)": ("X", "empty"),
    "(0010,2297)": ("X", "empty"),
    "(0010,2299)": ("X", "empty"),
    "(0008,1110)": ("X/Z", "keep"),
}


def expected_for_tag(row: dict[str, Any], options: tuple[str, ...]) -> dict[str, Any]:
    """expected_rule plus the rows that are more than their code (docs/profiles.md)."""
    rule = expected_rule(row, options)
    if row["tag"] in STRICTER_TYPE:
        code, action = STRICTER_TYPE[row["tag"]]
        assert row["actions"]["basic_profile"] == code, row["tag"]
        if deciding_code(row, options) == code:
            return {"action": action}
    if row["tag"] == "(0010,0020)" and rule["action"] in ("dummy", "empty"):
        return {"action": "pseudonym", "prefix": "ANON-"}
    if row["tag"] == "(0010,0010)" and rule["action"] in ("dummy", "empty"):
        return {"action": "pseudonym", "prefix": "ANON-", "source": "00100020"}
    if row["tag"].startswith("(60xx,"):
        overlay_data = next(r for r in E1_1["rows"] if r["tag"] == "(60xx,3000)")
        if expected_rule(overlay_data, options) == {"action": "remove"}:
            return {"action": "remove"}  # the whole overlay group goes
    return rule


def _example_tags(row: dict[str, Any]) -> list[int]:
    mask, value = int(row["match"]["mask"], 16), int(row["match"]["value"], 16)
    if mask == 0xFFFFFFFF:
        return [value]
    # the first and last repeating group, and (curves) a few elements of it
    groups = [value, value | 0x001E0000]
    elements = [0x0005, 0x0010, 0x2500, 0x3000] if mask == 0xFF000000 else [0]
    return [g | e for g in groups for e in elements]


PUBLIC_ROWS = [r for r in E1_1["rows"] if r["match"]["kind"] != "private"]


@pytest.mark.parametrize("row", PUBLIC_ROWS, ids=lambda r: f"{r['tag']}-{r['keyword']}")
def test_every_row_resolves_as_documented(row: dict[str, Any]) -> None:
    vr = _row_vr(row)
    for options in CONFIGS:
        expected = expected_for_tag(row, options)
        for tag in _example_tags(row):
            found = rule_of(_plan(options), tag, vr)
            assert found == expected, f"{row['tag']} {row['name']} with {options or 'basic'}"


def test_table_has_every_row_and_code_kind() -> None:
    assert E1_1["row_count"] == len(E1_1["rows"]) == 623
    tags = _plan(())["tags"]
    exact = [r for r in E1_1["rows"] if r["match"]["kind"] == "exact"]
    assert len(exact) == 619
    assert all(r["match"]["value"][2:].upper() in tags for r in exact)
    basic_codes = {r["actions"]["basic_profile"] for r in E1_1["rows"]}
    assert basic_codes == {"X", "D", "U", "Z", "X/D", "X/Z", "X/Z/D", "Z/D", "X/Z/U*"}


# ---------------------------------------------------------------------------------------------
# Wildcard rows, group lengths, UIDs, unknown attributes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: "+".join(o) or "basic")
def test_group_lengths_removed_except_file_meta(options: tuple[str, ...]) -> None:
    plan = _plan(options)
    for group in (0x0008, 0x0010, 0x0020, 0x5000, 0x6000, 0x7FE0):
        assert rule_of(plan, group << 16, "UL") == {"action": "remove"}
    assert rule_of(plan, 0x00020000, "UL") == {"action": "keep"}


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: "+".join(o) or "basic")
def test_overlay_groups_are_removed_whole(options: tuple[str, ...]) -> None:
    # Overlay Data is X (basic) or C (Clean Graphics, binary: not applicable): always removed,
    # and with it every element of its group, so that no partial Overlay Plane module remains.
    plan = _plan(options)
    for group in (0x6000, 0x6002, 0x601E):
        for element, vr in ((0x0010, "US"), (0x0022, "LO"), (0x1500, "LO"), (0x3000, "OW")):
            assert rule_of(plan, group << 16 | element, vr) == {"action": "remove"}


def test_curves_removed_or_cleaned() -> None:
    for options, action in (((), "remove"), (("clean-graphics",), "clean")):
        plan = _plan(options)
        for tag, vr in ((0x50000005, "US"), (0x50102500, "LO"), (0x501E3000, "OB")):
            assert rule_of(plan, tag, vr) == {"action": action}


def test_uids_at_any_depth_unless_retained() -> None:
    # instance UIDs, at any depth, are remapped by the VR rule unless Retain UIDs (registry
    # UIDs are left alone by the core)
    for tag in (0x00081155, 0x00020012, 0x0020000D):
        assert rule_of(_plan(()), tag) == {"action": "uid"}
        assert rule_of(_plan(("retain-uids",)), tag) == {"action": "keep"}
    assert "UI" not in _plan(("retain-uids",))["vrs"]


def test_class_uids_are_kept() -> None:
    # SOP Class UID (0008,0016) and the other UIDs naming a kind of object are in no row of
    # Table E.1-1: kept, so a vendor's private SOP class stays that class
    for options in CONFIGS:
        for tag in (0x00080016, 0x00081150, 0x00020002, 0x00041510, 0x00080062):
            assert rule_of(_plan(options), tag) == {"action": "keep"}, (options, hex(tag))


def test_unknown_public_attributes_removed_other_attributes_kept() -> None:
    plan = _plan(())
    assert 0x00081234 not in DicomDictionary  # public, unknown to the dictionary (2024c)
    assert rule_of(plan, 0x00081234, "LO") == {"action": "remove"}
    assert rule_of(plan, 0x00180015) == {"action": "keep"}  # Body Part Examined: not in E.1-1
    assert rule_of(plan, 0x00280010) == {"action": "keep"}  # Rows


# ---------------------------------------------------------------------------------------------
# Private attributes
# ---------------------------------------------------------------------------------------------


def test_private_attributes_removed_by_default() -> None:
    for options in [o for o in CONFIGS if "retain-safe-private" not in o]:
        plan = _plan(options)
        assert "creators" not in plan["private"]
        creator, data = rule_of_private(plan, "GEMS_PARM_01", 0x0043, 0x10, 0x39, "IS")
        assert creator == data == {"action": "remove"}


@pytest.mark.parametrize("extra", [(), ("retain-uids",), ("retain-long-modified-dates",)])
def test_safe_private_attributes_kept_wherever_their_block_is(extra: tuple[str, ...]) -> None:
    options = ("retain-safe-private", *extra)
    plan = _plan(options)
    assert plan["private"]["creator_elements"] == "keep-if-rule"
    assert plan["private"]["default"] == {"action": "remove"}
    safe_keys = {(r["private_creator"], r["group"], r["element_offset"]) for r in SAFE["rows"]}
    assert len(safe_keys) == 479
    for row in SAFE["rows"]:
        vr = row["vr"] or "UN"
        if vr == "UI" and "retain-uids" not in options:
            expected = {"action": "uid"}
        else:
            expected = {"action": "keep"}  # 2024c lists no private date
        for block in (0x10, 0x4F):  # creators move between blocks: matched by creator, not tag
            group, element = int(row["group"], 16), int(row["element_offset"], 16)
            creator, data = rule_of_private(
                plan, row["private_creator"], group, block, element, vr.split("/")[0]
            )
            assert creator == {"action": "keep"}, row
            assert data == expected, row
    # an element of a safe creator that the table does not list, and an unknown creator
    unlisted = next(e for e in range(256) if ("GEMS_PARM_01", "0043", f"{e:02X}") not in safe_keys)
    assert rule_of_private(plan, "GEMS_PARM_01", 0x0043, 0x10, unlisted)[1] == {"action": "remove"}
    assert rule_of_private(plan, "ACME 1.0", 0x0043, 0x10, 0x39) == (
        {"action": "remove"},
        {"action": "remove"},
    )


# ---------------------------------------------------------------------------------------------
# Plan shape, values, markers
# ---------------------------------------------------------------------------------------------


def _plan_md() -> str:
    return (ROOT / "docs" / "plan.md").read_text(encoding="utf-8")


def _all_rules(plan: dict[str, Any]) -> list[dict[str, Any]]:
    rules = [*plan["tags"].values(), *(m["rule"] for m in plan["masks"]), *plan["vrs"].values()]
    rules += [plan["default"], plan["unknown_public"], plan["private"]["default"]]
    for groups in plan["private"].get("creators", {}).values():
        for elements in groups.values():
            rules += elements.values()
    return rules


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: "+".join(o) or "basic")
def test_plan_has_the_shape_of_plan_md(options: tuple[str, ...]) -> None:
    plan = _plan(options)
    validate_plan(plan)
    example = json.loads(re.search(r"```json\n(.*?)```", _plan_md(), re.S).group(1))
    assert set(plan) <= set(example)
    documented = set(re.findall(r"^\| `(\w+)` \|", _plan_md(), re.M))
    assert {r["action"] for r in _all_rules(plan)} <= documented
    hex8 = re.compile(r"[0-9A-F]{8}")
    assert all(hex8.fullmatch(t) for t in [*plan["tags"], *plan["identifying"]])
    assert json.loads(json.dumps(plan)) == plan
    assert Profile.basic(options).to_json() == Profile.basic(options).to_json()


def test_dummies_are_valid_values_of_their_vr() -> None:
    plan = _plan(())
    dummies = plan["dummies"]
    assert "UI" not in dummies
    for vr, value in dummies.items():
        validate_value(vr, value, config.RAISE)
    for tag, rule in plan["tags"].items():  # every dummy rule can be written (or is binary)
        if rule["action"] == "dummy":
            vr = _vr(int(tag, 16))
            assert vr in dummies or _is_binary(vr) or vr == "SQ", tag  # SQ: visited


def test_identifying_tags_follow_the_retain_options() -> None:
    base = set(_plan(())["identifying"])
    for tag in base:
        assert int(tag, 16) in DicomDictionary, tag
    institution = {f"{tag_for_keyword(k):08X}" for k in ("InstitutionName", "InstitutionAddress")}
    device = {f"{tag_for_keyword(k):08X}" for k in ("StationName", "DeviceSerialNumber")}
    assert {"00100020", "00101000", "00080050"} | institution | device <= base
    assert not institution & set(_plan(("retain-institution-identity",))["identifying"])
    assert not device & set(_plan(("retain-device-identity",))["identifying"])


@pytest.mark.parametrize("options", CONFIGS, ids=lambda o: "+".join(o) or "basic")
def test_markers(options: tuple[str, ...]) -> None:
    insert = _plan(options)["insert"]
    assert [e["tag"] for e in insert] == sorted(e["tag"] for e in insert)
    by_tag = {e["tag"]: e for e in insert}
    assert by_tag["00120062"] == {"tag": "00120062", "vr": "CS", "value": "YES"}
    method = by_tag["00120063"]["value"]
    assert by_tag["00120063"]["vr"] == "LO" and len(method) <= 64 and "basic" in method
    validate_value("LO", method, config.RAISE)
    columns = {c["key"]: c["cid7050_code"]["code_value"] for c in E1_1["columns"]}
    codes = [columns["basic_profile"]] + [columns[COLUMN[o]] for o in options]
    items = by_tag["00120064"]["items"]
    assert [item[0]["value"] for item in items] == codes
    for item in items:
        code = CID[item[0]["value"]]
        assert item == [
            {"tag": "00080100", "vr": "SH", "value": code["code_value"]},
            {"tag": "00080102", "vr": "SH", "value": "DCM"},
            {"tag": "00080104", "vr": "LO", "value": code["code_meaning"]},
        ]
    modified = {"retain-long-modified-dates": "MODIFIED", "retain-long-full-dates": "UNMODIFIED"}
    marker = [v for o, v in modified.items() if o in options]
    assert [e["value"] for e in insert if e["tag"] == "00280303"] == marker


def test_options_list() -> None:
    listed = Profile.options()
    assert [name for name, _, _ in listed] == list(COLUMN)
    columns = {c["key"]: c["cid7050_code"]["code_value"] for c in E1_1["columns"]}
    for name, meaning, code in listed:
        assert code == columns[COLUMN[name]] and code in CID
        assert meaning and "\n" not in meaning
    assert listed == list_options()
    profile = Profile.basic(["clean-graphics", "retain-uids", "retain-uids"])
    assert profile.options == ("retain-uids", "clean-graphics")  # standard order, no repeats
    assert profile.name == "basic"
    assert _plan(())["date_shift"] == {"source": "00100020", "max_days": 3652}


def test_generated_tables_are_up_to_date_and_small() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_profiles", ROOT / "python/tools/gen_profiles.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.build(STANDARD)
    assert text == GENERATED.read_text(encoding="utf-8"), "run python/tools/gen_profiles.py"
    assert text.startswith("# generated by python/tools/gen_profiles.py from PS3.15 edition 2024c")
    assert len(text.encode()) < 200_000


# ---------------------------------------------------------------------------------------------
# Custom profiles
# ---------------------------------------------------------------------------------------------


def test_site_example() -> None:
    profile = Profile.load(SITE_TOML)
    plan = profile.to_plan()
    validate_plan(plan)
    assert profile.name == "site"
    assert profile.options == (
        "retain-patient-characteristics",
        "retain-long-modified-dates",
        "clean-descriptors",
    )
    assert rule_of(plan, 0x00080050) == {"action": "pseudonym", "prefix": "ACC-"}
    assert rule_of(plan, 0x00080080) == {"action": "replace", "value": "RESEARCH SITE"}
    assert rule_of(plan, 0x00321060) == {"action": "remove"}  # the mask rule
    assert rule_of(plan, 0x00100010) == {
        "action": "pseudonym",
        "prefix": "SITE-",
        "source": "00100020",
    }
    assert rule_of(plan, 0x00100020) == {"action": "pseudonym", "prefix": "SITE-"}
    assert rule_of(plan, 0x00080090) == {"action": "empty"}  # Referring Physician: the PN rule
    assert rule_of(plan, 0x00400006) == {"action": "empty"}  # a PN the base keeps: PN rule
    assert rule_of(plan, 0x00080020) == {"action": "shift_date"}  # the options still apply
    creator, data = rule_of_private(plan, "GEMS_PARM_01", 0x0043, 0x22, 0x39, "IS")
    assert creator == data == {"action": "keep"}
    assert plan["date_shift"] == {"source": "00100020", "max_days": 730}
    assert plan["dummies"]["PN"] == "ANONYMOUS"
    occupation = f"{tag_for_keyword('Occupation'):08X}"
    assert {occupation, f"{tag_for_keyword('PatientComments'):08X}"} <= set(plan["identifying"])
    method = next(e for e in plan["insert"] if e["tag"] == "00120063")["value"]
    assert method == "dicomscrub site (basic+RPC+RLMD+CD)"


def test_custom_without_rules_equals_basic() -> None:
    options = ("retain-uids", "clean-descriptors")
    custom = Profile.from_rules([], options=options, name="basic").to_plan()
    assert custom == Profile.basic(options).to_plan()


def test_first_match_wins() -> None:
    pn_first = Profile.from_rules(
        [{"vr": "PN", "action": "empty"}, {"keyword": "PatientName", "action": "keep"}]
    ).to_plan()
    assert rule_of(pn_first, 0x00100010) == {"action": "empty"}
    name_first = Profile.from_rules(
        [{"keyword": "PatientName", "action": "keep"}, {"vr": "PN", "action": "empty"}]
    ).to_plan()
    assert rule_of(name_first, 0x00100010) == {"action": "keep"}
    assert rule_of(name_first, 0x00080090) == {"action": "empty"}
    mask_first = Profile.from_rules(
        [{"mask": "(0010,xxxx)", "action": "remove"}, {"tag": "(0010,1010)", "action": "keep"}]
    )
    assert rule_of(mask_first.to_plan(), 0x00101010) == {"action": "remove"}
    # a VR rule before a mask rule, on an attribute that Table E.1-1 does not list
    lo_in_0018 = next(
        t
        for t, entry in sorted(DicomDictionary.items())
        if t >> 16 == 0x0018
        and entry[0] == "LO"
        and not any(r["match"]["value"] == f"0x{t:08X}" for r in E1_1["rows"])
    )
    plan = Profile.from_rules(
        [{"vr": "LO", "action": "keep"}, {"mask": "(0018,xxxx)", "action": "remove"}]
    ).to_plan()
    assert rule_of(plan, lo_in_0018) == {"action": "keep"}
    assert rule_of(plan, 0x00180015) == {"action": "remove"}  # CS: the mask


def test_repeater_keyword_selects_every_group() -> None:
    plan = Profile.from_rules([{"keyword": "OverlayComments", "action": "clean"}]).to_plan()
    assert rule_of(plan, 0x60024000) == {"action": "clean"}
    assert plan["masks"][0] == {
        "mask": "FF00FFFF",
        "value": "60004000",
        "rule": {"action": "clean"},
    }


# ---------------------------------------------------------------------------------------------
# Conditions ("when") and clean patterns
# ---------------------------------------------------------------------------------------------

US = {"tag": "00080060", "in": ["US"]}


def _top(modality: str | None) -> Dataset:
    ds = Dataset()
    if modality is not None:
        ds.Modality = modality
    return ds


def rule_in(plan: dict[str, Any], tag: int, modality: str | None, vr: str | None = None) -> Any:
    """The rule of a public element of ``tag`` in a file whose Modality is ``modality``."""
    return dict(rule_for(_top(modality), _element(tag, vr), plan))


def test_condition_compiles_to_the_plan_form() -> None:
    by_keyword = Profile.from_rules(
        [
            {
                "keyword": "ImageComments",
                "action": "keep",
                "when": {"keyword": "Modality", "in": ["US", "IVUS", "US"]},
            }
        ]
    ).to_plan()
    by_tag = Profile.from_rules(
        [
            {
                "keyword": "ImageComments",
                "action": "keep",
                "when": {"tag": "(0008,0060)", "equals": "US"},
            }
        ]
    ).to_plan()
    validate_plan(by_keyword)
    # the conditional rule, then the base profile's rule for the same tag
    assert by_keyword["tags"]["00204000"] == [
        {"action": "keep", "when": {"tag": "00080060", "in": ["US", "IVUS"]}},
        {"action": "remove"},
    ]
    assert by_tag["tags"]["00204000"] == [{"action": "keep", "when": US}, {"action": "remove"}]
    for modality, action in (("US", "keep"), ("IVUS", "keep"), ("CT", "remove"), (None, "remove")):
        assert rule_in(by_keyword, 0x00204000, modality)["action"] == action, modality
    # other tags are untouched
    basic = _plan(())
    assert {t: r for t, r in by_tag["tags"].items() if t != "00204000"} == {
        t: r for t, r in basic["tags"].items() if t != "00204000"
    }


def test_conditional_rules_fall_back_in_order() -> None:
    ct = {"tag": "00080060", "in": ["CT"]}
    plan = Profile.from_rules(
        [
            {
                "keyword": "SeriesDescription",
                "action": "keep",
                "when": {"keyword": "Modality", "equals": "US"},
            },
            {
                "keyword": "SeriesDescription",
                "action": "clean",
                "when": {"keyword": "Modality", "equals": "CT"},
            },
            {
                "keyword": "ImageComments",
                "action": "keep",
                "when": {"keyword": "Modality", "equals": "US"},
            },
            {"keyword": "ImageComments", "action": "empty"},  # the fallback: a custom rule
        ]
    ).to_plan()
    assert plan["tags"]["0008103E"] == [
        {"action": "keep", "when": US},
        {"action": "clean", "when": ct},
        {"action": "remove"},
    ]
    assert plan["tags"]["00204000"] == [{"action": "keep", "when": US}, {"action": "empty"}]
    assert [rule_in(plan, 0x0008103E, m)["action"] for m in ("US", "CT", "MR")] == [
        "keep",
        "clean",
        "remove",
    ]
    assert [rule_in(plan, 0x00204000, m)["action"] for m in ("US", "CT", None)] == [
        "keep",
        "empty",
        "empty",
    ]


def test_conditional_rule_without_a_base_rule_falls_through() -> None:
    # Body Part Examined: not in Table E.1-1, kept by the base's default
    assert "00180015" not in _plan(())["tags"]
    plan = Profile.from_rules(
        [
            {
                "keyword": "BodyPartExamined",
                "action": "remove",
                "when": {"keyword": "Modality", "equals": "US"},
            }
        ]
    ).to_plan()
    assert plan["tags"]["00180015"] == {"action": "remove", "when": US}
    assert rule_in(plan, 0x00180015, "US") == {"action": "remove", "when": US}
    assert rule_in(plan, 0x00180015, "CT") == {"action": "keep"}


def test_conditional_vr_mask_and_private_rules() -> None:
    plan = Profile.from_rules(
        [
            {"vr": "PN", "action": "keep", "when": {"keyword": "Modality", "equals": "US"}},
            {
                "mask": "(0040,xxxx)",
                "action": "remove",
                "when": {"keyword": "Modality", "equals": "US"},
            },
            {
                "private": '(0043,"GEMS_PARM_01",39)',
                "action": "remove",
                "when": {"keyword": "Modality", "equals": "US"},
            },
            {
                "private": '(0043,"ACME 1.0",10)',
                "action": "keep",
                "when": {"keyword": "Modality", "equals": "US"},
            },
        ],
        options=["retain-safe-private"],
    ).to_plan()
    validate_plan(plan)
    assert plan["vrs"]["PN"] == {"action": "keep", "when": US}  # the base has no PN rule
    assert plan["tags"]["00080090"] == [{"action": "keep", "when": US}, {"action": "empty"}]
    assert plan["masks"][0] == {
        "mask": "FFFF0000",
        "value": "00400000",
        "rule": {"action": "remove", "when": US},
    }
    creators = plan["private"]["creators"]
    assert creators["GEMS_PARM_01"]["0043"]["39"] == [
        {"action": "remove", "when": US},
        {"action": "keep"},  # the safe-private rule of the base
    ]
    assert creators["ACME 1.0"]["0043"]["10"] == {"action": "keep", "when": US}
    # Referring Physician's Name: kept in US files, emptied (the base) elsewhere
    assert rule_in(plan, 0x00080090, "US")["action"] == "keep"
    assert rule_in(plan, 0x00080090, "CT")["action"] == "empty"
    # a (0040,xxxx) tag the base does not name: the mask in US files, the base elsewhere (the
    # VR rule precedes the mask, so every dictionary tag they cover is named, conditionally)
    base = _plan(("retain-safe-private",))
    unnamed = next(
        t for t in sorted(DicomDictionary) if t >> 16 == 0x0040 and f"{t:08X}" not in base["tags"]
    )
    assert plan["tags"][f"{unnamed:08X}"] == {"action": "remove", "when": US}
    assert rule_in(plan, unnamed, "US")["action"] == "remove"
    assert rule_in(plan, unnamed, "CT") == rule_of(base, unnamed) == {"action": "keep"}
    for modality, action in (("US", "remove"), ("CT", "keep")):
        ds = _top(modality)
        ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
        elem = DataElement(0x00431039, "IS", "1")
        ds.add(elem)
        assert rule_for(ds, elem, plan)["action"] == action


def _action(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule without its condition: what it does."""
    return {k: v for k, v in rule.items() if k != "when"}


def test_conditions_keep_first_match_wins() -> None:
    """For every dictionary tag and a few files, the compiled plan gives the first custom rule
    that selects the element and whose condition holds, else the base profile's rule."""
    rules = [
        {"keyword": "PatientName", "action": "keep", "when": {"keyword": "Modality", "in": ["US"]}},
        {"vr": "PN", "action": "empty", "when": {"keyword": "Modality", "in": ["US", "CT"]}},
        {"mask": "(0008,xxxx)", "action": "remove", "when": {"keyword": "Modality", "in": ["MR"]}},
        {"vr": "LO", "action": "keep", "when": {"keyword": "Modality", "in": ["CT"]}},
        {"mask": "(0018,xxxx)", "action": "remove", "when": {"keyword": "Modality", "in": ["CT"]}},
        {"keyword": "StudyDescription", "action": "keep"},
        {"vr": "DA", "action": "keep", "when": {"keyword": "Modality", "in": ["US"]}},
    ]
    options = ("clean-descriptors",)
    plan = Profile.from_rules(rules, options=options).to_plan()
    base = _plan(options)
    customs = Profile.from_rules(rules, options=options)._rules
    validate_plan(plan)
    groups = (0x0008, 0x0010, 0x0018, 0x0020)
    # (0008,0005) is never edited (plan.md); the others follow the rules
    tags = [t for t in sorted(DicomDictionary) if t >> 16 in groups and t != 0x00080005]
    for modality in ("US", "CT", "MR", None):
        top = _top(modality)
        for tag in tags:
            vr = _vr(tag)
            expected = next(
                (
                    dict(c.rule)
                    for c in customs
                    if c.covers(tag) and ("when" not in c.rule or modality in c.rule["when"]["in"])
                ),
                None,
            ) or dict(rule_for(top, _element(tag, vr), base))
            found = rule_in(plan, tag, modality, vr)
            assert _action(found) == _action(expected), (f"{tag:08X}", modality)


def test_clean_patterns_compile() -> None:
    plan = Profile.from_dict(
        {
            "options": ["clean-descriptors"],
            "clean_patterns": ["[0-9]{3}-[0-9]{2}-[0-9]{4}", r"MRN\d+", r"MRN\d+"],
        }
    ).to_plan()
    validate_plan(plan)
    assert plan["clean_patterns"] == ["[0-9]{3}-[0-9]{2}-[0-9]{4}", r"MRN\d+"]
    assert "clean_patterns" not in _plan(())
    assert "clean_patterns" not in Profile.from_dict({"clean_patterns": []}).to_plan()


def test_site_example_condition_and_patterns() -> None:
    plan = Profile.load(SITE_TOML).to_plan()
    assert plan["tags"]["00081030"] == [{"action": "remove", "when": US}, {"action": "clean"}]
    assert plan["clean_patterns"] == ["[0-9]{3}-[0-9]{2}-[0-9]{4}", "MRN ?[0-9]{6,10}"]
    assert rule_in(plan, 0x00081030, "US")["action"] == "remove"
    assert rule_in(plan, 0x00081030, "CT") == {"action": "clean"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


ERRORS = [
    # (TOML text, substrings of the message, line)
    (
        '[[rules]]\nkeyword = "PatientNmae"\naction = "keep"\n',
        ["unknown keyword 'PatientNmae'", "did you mean 'PatientName'", "rule #1, keyword"],
        2,
    ),
    ('[[rules]]\ntag = "(0010,001G)"\naction = "keep"\n', ["not a tag", "(0010,0010)"], 2),
    (
        '[[rules]]\ntag = "(0019,1010)"\naction = "keep"\n',
        ["private", "private = '(0019,\"CREATOR\",10)'"],
        2,
    ),
    (
        '[[rules]]\nkeyword = "PatientID"\naction = "pseudonymise"\n',
        ["unknown action 'pseudonymise'", "did you mean 'pseudonym'"],
        3,
    ),
    ('[[rules]]\nkeyword = "PatientID"\naction = "replace"\n', ["replace needs a value"], 3),
    (
        '\n[[rules]]\nkeyword = "StudyDate"\naction = "replace"\nvalue = "2024-1-1"\n',
        ["rule #1, value", "not a valid DA"],
        5,
    ),
    ('[[rules]]\nkeyword = "AccessionNumber"\naction = "uid"\n', ["uid needs a UI", "SH"], 3),
    (
        '[[rules]]\nkeyword = "StudyDate"\nvr = "DA"\naction = "keep"\n',
        ["exactly one selector", "keyword and vr"],
        3,
    ),
    (
        '[[rules]]\nkeyword = "StudyDate"\nacton = "keep"\n',
        ["unknown key 'acton'", "did you mean 'action'"],
        3,
    ),
    ('extends = "basik"\n', ["unknown base profile 'basik'", "did you mean 'basic'"], 1),
    ('options = ["retain-uids"\nname = "x"\n', ["invalid TOML", "line 2"], None),
    (
        '[[rules]]\nkeyword = "AccessionNumber"\naction = "pseudonym"\nprefix = "TOO-LONG-"\n',
        ["fewer than 8 pseudonym characters", "16"],
        4,
    ),
    (
        '[[rules]]\ntag = "(0010,0010)"\naction = "keep"\n\n'
        '[[rules]]\nkeyword = "PatientName"\naction = "empty"\n',
        ["rule #2, keyword", "already selected by rule #1 (line 1)"],
        6,
    ),
    ("[date_shift]\nmax_days = 0\n", ["date_shift.max_days", "1 to 36500"], 2),
    ("date_shift = {max_days = true}\n", ["date_shift.max_days"], 1),
    (
        '[[rules]]\nkeyword = "PatientName"\naction = "keep"\nwhen = "Modality == US"\n',
        ["rule #1, when: when is a table", 'in = ["US"]'],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Modalty", in = ["US"] }\n',
        ["rule #1, when.keyword", "unknown keyword 'Modalty'", "did you mean 'Modality'"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Modality", in = ["US", "us"] }\n',
        ["rule #1, when.in", "'us' is not a valid CS value", "did you mean 'US'"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { tag = "(0008,0060)", inn = ["US"] }\n',
        ["rule #1, when.inn", "unknown key 'inn'", "did you mean 'in'"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Modality", tag = "(0008,0060)", in = ["US"] }\n',
        ["rule #1, when.tag", "exactly one attribute among keyword, tag"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\nwhen = { keyword = "Modality" }\n',
        ["rule #1, when", "exactly one test among in, equals (found none)"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { tag = "(0019,1010)", equals = "US" }\n',
        ["rule #1, when.tag", "(0019,1010) is private"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Rows", equals = "512" }\n',
        ["rule #1, when.keyword", "Rows (0028,0010) is US", "compares text"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Modality", in = [] }\n',
        ["rule #1, when.in", "non-empty list"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n'
        'when = { keyword = "Modality", equals = "US\\\\CT" }\n',
        ["rule #1, when.equals", "one value per string"],
        4,
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n\n'
        '[rules.when]\nkeyword = "Modality"\nin = ["US"]\nequals = "CT"\n',
        ["rule #1, when.equals", "exactly one test"],
        8,  # the key's own line in the [rules.when] sub-table
    ),
    (
        '[[rules]]\nkeyword = "ImageComments"\naction = "keep"\n\n'
        '[[rules]]\nkeyword = "ImageComments"\naction = "remove"\n'
        'when = { keyword = "Modality", in = ["US"] }\n',
        ["rule #2, keyword", "already selected by rule #1"],
        6,
    ),
    ('clean_patterns = "[0-9]+"\n', ["clean_patterns is a list"], 1),
    (
        'name = "x"\nclean_patterns = ["[0-9]{3}", "(?<=SSN )[0-9]+"]\n',
        ["clean_patterns: item 2", "look-around", "not supported by the Rust core"],
        2,
    ),
    ('clean_patterns = ["(a)\\\\1"]\n', ["item 1", "back-references"], 1),
    ('clean_patterns = ["[0-9"]\n', ["item 1", "not a valid regular expression"], 1),
    ('clean_patterns = ["[0-9]*"]\n', ["item 1", "matches the empty string"], 1),
    ('clean_patterns = ["a++"]\n', ["item 1", "possessive"], 1),
    ('clean_patterns = ["(?>ab)"]\n', ["item 1", "atomic"], 1),
    ('clean_patterns = ["ab\\\\Z"]\n', ["item 1", "use $"], 1),
    ("clean_patterns = [3]\n", ["item 1", "not a string"], 1),
    ('[dummies]\nUI = "1.2.3"\n', ["UIDs get keyed UIDs"], 2),
    ('[dummies]\nDA = "20240101x"\n', ["DA"], 2),
    ('option = ["retain-uids"]\n', ["unknown key 'option'", "did you mean 'options'"], 1),
    ('options = ["retain-uid"]\n', ["unknown option 'retain-uid'", "'retain-uids'"], 1),
    ('[[rules]]\ntag = "(0002,0010)"\naction = "uid"\n', ["never edited"], 2),
    ('identifying = ["PatientIDs"]\n', ["item 1", "did you mean 'PatientID'"], 1),
    ('[[rules]]\nkeyword = "PatientAge"\naction = "shift-date"\n', ["shift-date needs"], 3),
    ('[[rules]]\nmask = "(0010,0010)"\naction = "keep"\n', ["no wildcard", "tag ="], 2),
    (
        '[[rules]]\nprivate = "(0018,\\"ACME\\",10)"\naction = "keep"\n',
        ["0018 is not a private group"],
        2,
    ),
    ('[[rules]]\nvr = "XY"\naction = "keep"\n', ["unknown VR 'XY'"], 2),
    ('unknown_public = "empty"\n', ["unknown_public is one of keep, remove"], 1),
]


def _error_id(case: tuple[str, list[str], int | None]) -> str:
    return re.sub(r"\W+", "-", case[1][0]).strip("-")[:40]


@pytest.mark.parametrize(("text", "parts", "line"), ERRORS, ids=[_error_id(c) for c in ERRORS])
def test_toml_errors_name_the_place(
    tmp_path: Path, text: str, parts: list[str], line: int | None
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        Profile.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:" + (f"{line}:" if line else ""))
    for part in parts:
        assert part in message
    assert info.value.path == str(path)


def test_python_errors() -> None:
    with pytest.raises(ProfileError, match=r"'retain-uid': did you mean 'retain-uids'"):
        Profile.basic(["retain-uid"])
    with pytest.raises(ProfileError, match="exclude each other"):
        Profile.basic(["retain-long-full-dates", "retain-long-modified-dates"])
    with pytest.raises(ProfileError, match="not the string"):
        Profile.basic("retain-uids")
    with pytest.raises(ProfileError, match=r"^rule #1: a rule needs an action"):
        Profile.from_rules([{"keyword": "PatientName"}])
    with pytest.raises(ProfileError, match="use uid"):
        Profile.from_rules([{"keyword": "StudyInstanceUID", "action": "dummy"}])
    with pytest.raises(ProfileError, match="cannot read the profile"):
        Profile.load(ROOT / "docs" / "examples" / "missing.toml")


# ---------------------------------------------------------------------------------------------
# End to end, with the pure-Python reference of docs/plan.md
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm"])
@pytest.mark.parametrize("options", [(), ALL_MODIFIED], ids=["basic", "all-modified-dates"])
def test_plans_apply_with_the_reference(name: str, options: tuple[str, ...]) -> None:
    source = dcmread(get_testdata_file(name, download=False))
    out = apply_plan(source, Profile.basic(options).to_plan(), b"test key")
    assert out.PatientIdentityRemoved == "YES"
    assert out.PatientID.startswith("ANON-") and str(out.PatientName) == out.PatientID
    safe = {(r["private_creator"], r["group"], r["element_offset"]) for r in SAFE["rows"]}
    for elem in (e for e in out if e.tag.is_private):  # CT_small has GEMS creators
        assert "retain-safe-private" in options
        if elem.tag.element >= 0x1000:
            creator = out[elem.tag.group << 16 | elem.tag.element >> 8].value
            assert (creator, f"{elem.tag.group:04X}", f"{elem.tag.element & 0xFF:02X}") in safe
    assert not out.get("PatientBirthDate")  # Z
    uids = [e.value for e in out.iterall() if e.VR == "UI" and e.value]
    if "retain-uids" in options:
        assert out.StudyInstanceUID == source.StudyInstanceUID
        assert out.InstitutionName == source.InstitutionName  # retain-institution-identity
    else:
        assert uids and all(u.startswith(("2.25.", "1.2.840.10008.")) for u in uids)
        assert out.InstitutionName == "ANONYMIZED"  # X/Z/D: the dummy
