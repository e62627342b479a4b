"""The resolution rule: how a row of PS3.15 Table E.1-1 becomes a rule of the edit plan.

The standard's codes Z/D, X/Z, X/D, X/Z/D and X/Z/U* depend on the attribute's Type (1, 2 or 3)
in the IOD of the file, which the engine does not know (it has no IOD tables, and one attribute
has different Types in different IODs and inside different sequences). Each code therefore
resolves to the one action that is valid whatever the Type: a non-empty dummy is valid where the
attribute is Type 1, 2 or 3; an empty value where it is Type 2 or 3. This is the conservative
rule; docs/profiles.md has the same table.

1. **Which code.** The codes of the selected options' columns replace the Basic Profile code.
   When several selected options have a code for the row, ``C`` is tried first, then ``K``, then
   the Basic Profile code (``C`` can be "not applicable", rule 3, and then the next code is
   used). In edition 2024c the only such row conflict is Retain Device Identity ``K`` against
   Retain Longitudinal Temporal Information with Modified Dates ``C`` on device calibration
   dates: the date is shifted, like every other date of the file. Retain Longitudinal Temporal
   Information with Full Dates and with Modified Dates exclude each other (options.EXCLUSIVE).

2. **Codes → actions**, by the VR of the attribute in the data dictionary:

   =======================  ===========  ========================  ======================
   code                     action       on a sequence (SQ)        on a UID (UI)
   =======================  ===========  ========================  ======================
   K                        keep         keep                      keep
   X                        remove       remove                    remove
   Z, X/Z                   empty        empty (no items)          empty
   D, Z/D, X/D, X/Z/D       dummy        dummy (items visited,     uid
                                         free text below dummied)
   U                        uid          keep                      uid
   X/Z/U*                   empty        keep (items visited)      uid
   =======================  ===========  ========================  ======================

   A sequence that is kept is visited with the same rules, so what it contains is handled by
   the other rows (every UID inside is replaced by the ``vrs.UI`` rule: that is the ``U*`` of
   X/Z/U*). A dummy UID is a keyed UID: a constant dummy would merge distinct instances. On a
   binary VR (OB, UN...) ``dummy`` is left to the core, which empties the element (docs/plan.md).

3. **C (clean)**, by the VR:

   - DA, DT, TM with Retain Longitudinal Temporal Information with Modified Dates: ``shift_date``
     (TM is unchanged by a whole-day offset; the rule says what the option does).
   - DA, DT, TM otherwise: not applicable (only the dates option can clean a date).
   - a binary VR (OB, OW, UN, US...): not applicable. Cleaning replaces identifying *text*; the
     engine cannot see text burned into an overlay bitmap (60xx,3000), nor shift a binary
     timestamp (Certified Timestamp, Frame Origin Timestamp), so the Basic Profile code stays
     (for Overlay Data: remove).
   - the private-attributes row (Retain Safe Private): the Table E.3.10-1 entries are kept by
     private creator + element byte (``private.creators``, see :func:`safe_private_rule`).
   - anything else (text, sequences, AE, CS, the whole curve group (50xx,xxxx)): ``clean``.

4. **Rows that are more than their code.**

   - Patient ID (0010,0020), Z/D: a keyed ``pseudonym`` (``prefix`` + 16 base32 characters)
     instead of a constant dummy, and Patient Name (0010,0010), Z: the pseudonym *of the Patient
     ID* (``source: 00100020``). A consistent pseudonym is a valid dummy (the standard allows D),
     and it keeps one patient's files linkable across studies without keeping who it is.
   - Overlay Data (60xx,3000) is Type 1 in the Overlay Plane module: when it is removed, the
     whole overlay group (60xx,xxxx) is removed (one mask rule instead of the two rows), so no
     partial overlay module is left behind. Overlay Comments (60xx,4000) goes with it.
   - Attributes whose Type somewhere is stricter than rule 2 assumes for their code (found by
     dciodvfy on the corpus, checked against PS3.3; :data:`STRICTER_TYPE`). When the Basic
     Profile code decides the row (no option code applies), the action becomes the one that is
     valid there too:

     =============================  ======  ========  =========================================
     attribute                      code    action    why
     =============================  ======  ========  =========================================
     Study Date (0008,0020)         Z       dummy     Type 1 in the DICOMDIR Study record
     Study Time (0008,0030)         Z       dummy     (PS3.3 F.5): an empty value is invalid
     Study ID (0020,0010)           Z       dummy     there; Z allows a dummy
     Study Description (0008,1030)  X       empty     Type 2 in the DICOMDIR Study record
     Responsible Person             X       empty     Type 2C in the Patient module (the
     (0010,2297)                                      patient is an animal): removing it
     Responsible Organization       X       empty     breaks the IOD; an empty value says
     (0010,2299)                                      as little
     Referenced Study Sequence      X/Z     keep      Type 3 in General Study, where the
     (0008,1110)                                      sequence needs one or more items (an
                                                      empty sequence is invalid), Type 2 in
                                                      SR's Referenced Request Sequence (so
                                                      it cannot go): kept, its items hold
                                                      only SOP Class / Instance UIDs, which
                                                      are remapped (Z with a dummy value, the
                                                      U* of Referenced Image Sequence)
     =============================  ======  ========  =========================================

Outside Table E.1-1 the profile adds: group lengths (gggg,0000) removed ((0002,0000) is kept,
the core recomputes it); every UI element at any depth remapped (``vrs.UI``) unless Retain UIDs;
private attributes removed (``private.default``); public attributes unknown to the data
dictionary (newer than edition 2024c) removed (``unknown_public``); everything else kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicomscrub.profiles.options import BY_NAME
from dicomscrub.profiles.table import COLUMN_INDEX, ROWS, SAFE_PRIVATE, Row, SafePrivate
from dicomscrub.profiles.tags import hex8, pattern_mask
from dicomscrub.profiles.vr import TEMPORAL, is_binary

Rule = dict[str, Any]

PATIENT_ID = "00100020"
PATIENT_NAME = "00100010"
OVERLAY_DATA = "60xx3000"
OVERLAY_GROUP = "60xxxxxx"
GROUP_LENGTH = "xxxx0000"
META_GROUP_LENGTH = "00020000"
#: UIDs naming a kind of thing, never an instance, a place or a person: SOP classes, transfer
#: syntaxes, coding schemes, context groups, mapping resources, templates. No row of Table
#: E.1-1 lists them; they are kept as they are. Registry UIDs (1.2.840.10008.*) stay unchanged
#: anyway, but a vendor's private SOP class or SNOMED's coding scheme UID keyed like an instance
#: UID would turn the file into an object nobody can read, or codes nobody can interpret.
TYPE_UIDS = (
    "00000002",  # Affected SOP Class UID
    "00000003",  # Requested SOP Class UID
    "00020002",  # Media Storage SOP Class UID
    "00020010",  # Transfer Syntax UID
    "00020032",  # RTV Communication SOP Class UID
    "00041510",  # Referenced SOP Class UID in File (DICOMDIR)
    "00041512",  # Referenced Transfer Syntax UID in File (DICOMDIR)
    "0004151A",  # Referenced Related General SOP Class UID in File (DICOMDIR)
    "00080016",  # SOP Class UID
    "0008001A",  # Related General SOP Class UID
    "0008001B",  # Original Specialized SOP Class UID
    "00080062",  # SOP Classes in Study
    "0008010C",  # Coding Scheme UID
    "00080117",  # Context UID (of a context group)
    "00080118",  # Mapping Resource UID
    "0008040E",  # Stored Instance Transfer Syntax UID
    "00081150",  # Referenced SOP Class UID
    "0008115A",  # SOP Classes Supported
    "00083002",  # Available Transfer Syntax UID
    "00340003",  # Flow Transfer Syntax UID
    "04000010",  # MAC Calculation Transfer Syntax UID
    "04000510",  # Encrypted Content Transfer Syntax UID
    "3010001F",  # Segmentation Template UID
    "30100052",  # Pertinent SOP Classes in Study
    "30100053",  # Pertinent SOP Classes in Series
)
MODIFIED_DATES = "retain-long-modified-dates"
FULL_DATES = "retain-long-full-dates"

#: code -> action before the VR is considered (rule 2, first column)
CODE_ACTIONS = {
    "K": "keep",
    "X": "remove",
    "Z": "empty",
    "X/Z": "empty",
    "D": "dummy",
    "Z/D": "dummy",
    "X/D": "dummy",
    "X/Z/D": "dummy",
    "U": "uid",
    "X/Z/U*": "empty",
}
#: codes that need a non-empty value where they cannot be dropped (rule 2: keep SQ, uid on UI)
NON_EMPTY = frozenset({"D", "Z/D", "X/D", "X/Z/D", "U", "X/Z/U*"})
D_CODES = frozenset({"D", "Z/D", "X/D", "X/Z/D"})
#: rule 4: rows whose Basic Profile code, resolved by rule 2, gives an action that is invalid
#: where the attribute has a stricter Type (tag -> action; the docstring above says why)
STRICTER_TYPE = {
    "00080020": "dummy",  # Study Date: Type 1 in the DICOMDIR Study record
    "00080030": "dummy",  # Study Time: idem
    "00200010": "dummy",  # Study ID: idem
    "00081030": "empty",  # Study Description: Type 2 in the DICOMDIR Study record
    "00102297": "empty",  # Responsible Person: Type 2C in the Patient module
    "00102299": "empty",  # Responsible Organization: idem
    "00081110": "keep",  # Referenced Study Sequence: 1-n items (General Study), Type 2 in SR
}


def _rule(action: str, **params: Any) -> Rule:
    return {"action": action, **params}


def candidate_codes(row: Row, options: frozenset[str]) -> list[str]:
    """The codes to try for ``row`` in order (rule 1): option C codes, option K codes, basic."""
    selected = {COLUMN_INDEX[BY_NAME[name].column] for name in options}
    codes = [code for index, code in row.option_codes if index in selected]
    unknown = set(codes) - {"C", "K"}
    if unknown:  # 2024c option columns hold only C and K; a new edition must be looked at
        raise NotImplementedError(f"{row.display}: option code(s) {sorted(unknown)}")
    return [*sorted(set(codes), key="CK".index), row.basic]


def code_rule(code: str, vr: str | None, options: frozenset[str]) -> Rule | None:
    """The rule for one code on an attribute of ``vr``; None when C is not applicable."""
    if code == "C":
        if vr in TEMPORAL:
            return _rule("shift_date") if MODIFIED_DATES in options else None
        if is_binary(vr):
            return None
        return _rule("clean")
    if code in NON_EMPTY and vr == "SQ":
        # D on a sequence: the core keeps it and gives its kept free text a dummy value (an SR
        # TextValue no row names must not survive); U / X/Z/U*: kept, UIDs inside remapped.
        return _rule("dummy" if code in D_CODES else "keep")
    if code in NON_EMPTY and vr == "UI":
        return _rule("uid")
    return _rule(CODE_ACTIONS[code])


def row_rule(row: Row, options: frozenset[str], pseudonym_prefix: str) -> Rule:
    """The plan rule of an exact or wildcard row (rules 1 to 3, and Patient ID / Name)."""
    for code in candidate_codes(row, options):
        rule = code_rule(code, row.vr, options)
        if rule is not None:
            break
    else:  # pragma: no cover - the basic code always resolves
        raise AssertionError(row)
    if row.tag in STRICTER_TYPE and code == row.basic:
        rule = _rule(STRICTER_TYPE[row.tag])
    if row.tag in (PATIENT_ID, PATIENT_NAME) and rule["action"] in ("dummy", "empty"):
        rule = _rule("pseudonym", prefix=pseudonym_prefix)
        if row.tag == PATIENT_NAME:
            rule["source"] = PATIENT_ID
    return rule


def safe_private_rule(entry: SafePrivate, options: frozenset[str]) -> Rule:
    """The rule for one Table E.3.10-1 entry under Retain Safe Private.

    The entry is safe, so it is kept, except what the other options say about its VR: a UID is
    remapped like every other UID (unless Retain UIDs), so that references stay consistent; a
    date is shifted under Modified Dates, kept under Full Dates and removed otherwise (2024c
    lists no private date, the rule is there for later editions).
    """
    if entry.vr == "UI":
        return _rule("keep" if "retain-uids" in options else "uid")
    if entry.vr in TEMPORAL:
        if MODIFIED_DATES in options:
            return _rule("shift_date")
        return _rule("keep" if FULL_DATES in options else "remove")
    return _rule("keep")


@dataclass
class StandardRules:
    """The part of a plan that Table E.1-1, E.3.10-1 and the options decide."""

    tags: dict[str, Rule] = field(default_factory=dict)
    masks: list[dict[str, Any]] = field(default_factory=list)
    private: dict[str, Any] = field(default_factory=dict)
    vrs: dict[str, Rule] = field(default_factory=dict)


def _mask_entry(pattern: str, rule: Rule) -> dict[str, Any]:
    mask, value = pattern_mask(pattern)
    return {"mask": hex8(mask), "value": hex8(value), "rule": rule}


def standard_rules(options: frozenset[str], pseudonym_prefix: str) -> StandardRules:
    """Resolve every row of Table E.1-1 (and E.3.10-1) for ``options``."""
    out = StandardRules()
    out.tags[META_GROUP_LENGTH] = _rule("keep")  # never edited; stated so no mask claims it
    masks: dict[str, Rule] = {GROUP_LENGTH: _rule("remove")}
    for row in ROWS:
        if row.kind == "exact":
            out.tags[row.tag] = row_rule(row, options, pseudonym_prefix)
        elif row.kind == "mask":
            masks[row.tag] = row_rule(row, options, pseudonym_prefix)
        else:
            code = candidate_codes(row, options)[0]
            out.private["default"] = _rule("remove")
            if code == "C":
                out.private["creators"] = _safe_private_creators(options)
                out.private["creator_elements"] = "keep-if-rule"
            elif code != "X":  # pragma: no cover - 2024c: X, or C with Retain Safe Private
                raise NotImplementedError(f"private attributes: code {code}")
    if masks.get(OVERLAY_DATA) == _rule("remove"):
        masks = {k: v for k, v in masks.items() if not k.startswith("60xx")}
        masks[OVERLAY_GROUP] = _rule("remove")
    out.masks = [_mask_entry(pattern, rule) for pattern, rule in masks.items()]
    for tag in TYPE_UIDS:
        out.tags.setdefault(tag, _rule("keep"))
    if "retain-uids" not in options:
        out.vrs["UI"] = _rule("uid")
    return out


def _safe_private_creators(options: frozenset[str]) -> dict[str, dict[str, dict[str, Rule]]]:
    creators: dict[str, dict[str, dict[str, Rule]]] = {}
    for entry in SAFE_PRIVATE:
        group = creators.setdefault(entry.creator, {}).setdefault(entry.group, {})
        group[entry.element] = safe_private_rule(entry, options)
    return creators
