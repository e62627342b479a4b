"""Assemble the edit plan (docs/plan.md) of a profile.

The standard decides the rules (:mod:`.resolution`); this module adds what a plan needs besides:
custom rules in front of the standard's, the dummy values, the identifying attributes that feed
the text cleaner, the date shift and the de-identification markers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dicomscrub.profiles.options import BY_NAME
from dicomscrub.profiles.resolution import FULL_DATES, MODIFIED_DATES, Rule, standard_rules
from dicomscrub.profiles.table import CID_7050, COLUMNS, ROW_TAGS
from dicomscrub.profiles.tags import hex8

if TYPE_CHECKING:
    from dicomscrub.profiles.rules import CustomRule

PLAN_VERSION = 1
BASIC_CODE = COLUMNS[0].code  # 113100

#: a valid value of each string VR, written by ``dummy`` (UI never gets one: D on UI is ``uid``)
DUMMIES: dict[str, str] = {
    "AE": "ANONYMIZED",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000.00",
    "UC": "ANONYMIZED",
    "UR": "http://anonymized",
    "UT": "ANONYMIZED",
}

#: attributes whose values are identifying tokens for ``clean`` (PN values always are, at any
#: depth): the patient's identifiers, contact data and birth date, the visit's identifiers...
IDENTIFYING_PATIENT = (
    "PatientID", "OtherPatientIDs", "IssuerOfPatientID", "PatientBirthDate", "PatientAddress",
    "PatientTelephoneNumbers", "PatientTelecomInformation", "MedicalRecordLocator",
    "RegionOfResidence", "AccessionNumber", "AdmissionID", "ServiceEpisodeID", "StudyID",
    "RequestedProcedureID", "ScheduledProcedureStepID", "PerformedProcedureStepID",
    "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
    "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "PersonAddress", "PersonTelephoneNumbers",
)  # fmt: skip
#: ... and the institution and the device, unless the matching Retain option keeps them
IDENTIFYING_INSTITUTION = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName")
IDENTIFYING_DEVICE = ("StationName", "DeviceSerialNumber", "DetectorID", "GantryID")


@dataclass(frozen=True)
class Settings:
    """What a profile sets besides its options and rules (TOML top-level keys)."""

    pseudonym_prefix: str = "ANON-"
    date_shift_source: str = "00100020"
    max_days: int = 3652
    dummies: tuple[tuple[str, str], ...] = ()  # (VR, value) overriding DUMMIES
    identifying: tuple[str, ...] = ()  # tags (8 hex) added to the identifying list
    default: str = "keep"
    unknown_public: str = "remove"
    clean_patterns: tuple[str, ...] = ()  # regular expressions masked in cleaned text


def identifying_tags(options: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """The ``identifying`` list for ``options``, sorted."""
    options = set(options)
    keywords = list(IDENTIFYING_PATIENT)
    if "retain-institution-identity" not in options:
        keywords += IDENTIFYING_INSTITUTION
    if "retain-device-identity" not in options:
        keywords += IDENTIFYING_DEVICE
    tags = {_tag(k) for k in keywords} | set(extra)
    return sorted(tags)


def _tag(keyword: str) -> str:
    """The tag of ``keyword``: from Table E.1-1, whose keywords the generator checked against
    the data dictionary (so no dictionary is loaded), else from pydicom's dictionary."""
    tag = ROW_TAGS.get(keyword)
    if tag is None:  # with 2024c every keyword above is a row of E.1-1
        from dicomscrub.profiles.vr import keyword_tag

        number = keyword_tag(keyword)
        if number is None:  # the lists above are checked by the tests
            raise KeyError(keyword)
        tag = hex8(number)
    return tag


def method_text(name: str, options: Sequence[str]) -> str:
    """De-identification Method (0012,0063): profile name and options in at most 64 characters.

    ``dicomscrub basic+RU+CD``; a custom profile: ``dicomscrub site (basic+RU+CD)``. The
    abbreviations are listed by ``Profile.options()`` and docs/profiles.md.
    """
    spec = "+".join(["basic", *(BY_NAME[o].abbreviation for o in options)])
    if name == "basic":
        return f"dicomscrub {spec}"
    room = 64 - len(f"dicomscrub  ({spec})")
    return f"dicomscrub {name[:room]} ({spec})"


def markers(name: str, options: Sequence[str]) -> list[dict[str, Any]]:
    """The ``insert`` list: Patient Identity Removed, the method, its CID 7050 codes, and
    Longitudinal Temporal Information Modified when a dates option is selected."""
    codes = [BASIC_CODE, *(BY_NAME[o].code for o in options)]
    items = [
        [
            {"tag": "00080100", "vr": "SH", "value": code},
            {"tag": "00080102", "vr": "SH", "value": CID_7050[code][0]},
            {"tag": "00080104", "vr": "LO", "value": CID_7050[code][1]},
        ]
        for code in codes
    ]
    insert: list[dict[str, Any]] = [
        {"tag": "00120062", "vr": "CS", "value": "YES"},
        {"tag": "00120063", "vr": "LO", "value": method_text(name, options)},
        {"tag": "00120064", "vr": "SQ", "items": items},
    ]
    if MODIFIED_DATES in options:
        insert.append({"tag": "00280303", "vr": "CS", "value": "MODIFIED"})
    elif FULL_DATES in options:
        insert.append({"tag": "00280303", "vr": "CS", "value": "UNMODIFIED"})
    return insert


PlanRule = Rule | list[Rule]  # a rule, or rules tried in order (docs/plan.md "Conditions")


def _chain(selecting: Iterable[CustomRule], fallback: PlanRule | None) -> PlanRule | None:
    """The plan entry of the custom rules ``selecting`` an element, in front of ``fallback``.

    Rules are tried in order; the first without a condition ends the list. When every one is
    conditional, the entry the plan had (``fallback``, the base profile's rule) is appended, so
    that a file where no condition holds gets what it would get without the custom rules. A
    single rule is written as itself, a longer chain as the plan's list of rules.
    """
    chain: list[Rule] = []
    for custom in selecting:
        chain.append(copy.deepcopy(custom.rule))
        if not custom.conditional:
            break
    else:
        if fallback is not None:
            chain.extend(fallback if isinstance(fallback, list) else [fallback])
    if not chain:
        return fallback
    # a conditional rule that does what the unconditional last rule does anyway is dropped
    while len(chain) > 1 and "when" not in chain[-1] and _without_when(chain[-2]) == chain[-1]:
        del chain[-2]
    return chain[0] if len(chain) == 1 else chain


def _without_when(rule: Rule) -> Rule:
    return {k: v for k, v in rule.items() if k != "when"}


def _apply_custom(
    tags: dict[str, PlanRule],
    masks: list[dict[str, Any]],
    vrs: dict[str, PlanRule],
    creators: dict[str, dict[str, dict[str, PlanRule]]],
    rules: Sequence[CustomRule],
) -> None:
    """Put custom rules in front of the standard's, so that the first matching rule wins.

    The plan looks exact tags up before masks and VRs; so every exact tag that a custom mask or
    VR rule covers, and that the plan names (a standard row) or a later custom rule names, gets
    that custom rule as its exact rule. A conditional rule (``when``) is followed by the next
    rule that selects the same tag (custom, else the base's): ``tags[tag]`` is then a list.
    Where the list ends with conditional rules only (no rule of the base names the tag), the
    lookup goes on to the masks and VRs when no condition holds, where the same conditions
    fail again and the base decides, as it would have without the custom rules.
    """
    universe = set(tags) | {r.tag for r in rules if r.kind == "tag" and r.tag}
    vr_at = [i for i, r in enumerate(rules) if r.kind == "vr"]
    mask_at = [i for i, r in enumerate(rules) if r.kind == "mask"]
    if vr_at and mask_at and vr_at[0] < mask_at[-1]:
        # a VR rule before a mask rule: the plan would try the mask first on any tag it does
        # not name, so name every dictionary tag the custom rules cover
        from pydicom.datadict import DicomDictionary

        universe |= {hex8(t) for t in DicomDictionary if any(r.covers(t) for r in rules)}
    for tag in sorted(universe):
        entry = _chain((r for r in rules if r.covers(int(tag, 16))), tags.get(tag))
        if entry is not None:
            tags[tag] = entry
    masks[:0] = [r.mask_entry() for r in rules if r.kind == "mask"]
    for vr in dict.fromkeys(r.vr for r in rules if r.kind == "vr" and r.vr):
        entry = _chain((r for r in rules if r.kind == "vr" and r.vr == vr), vrs.get(vr))
        if entry is not None:
            vrs[vr] = entry
    privates = [r for r in rules if r.kind == "private" and r.creator and r.group and r.element]
    for key in dict.fromkeys((r.creator, r.group, r.element) for r in privates):
        creator, group, element = key
        assert creator and group and element
        elements = creators.setdefault(creator, {}).setdefault(group, {})
        selecting = (r for r in privates if (r.creator, r.group, r.element) == key)
        entry = _chain(selecting, elements.get(element))
        if entry is not None:
            elements[element] = entry


def build_plan(
    name: str, options: Sequence[str], settings: Settings, rules: Sequence[CustomRule] = ()
) -> dict[str, Any]:
    """The plan of a profile: ``options`` already normalized, ``rules`` already validated."""
    std = standard_rules(frozenset(options), settings.pseudonym_prefix)
    private = std.private
    creators: dict[str, dict[str, dict[str, PlanRule]]] = private.setdefault("creators", {})
    _apply_custom(std.tags, std.masks, std.vrs, creators, rules)
    if creators:
        private["creator_elements"] = "keep-if-rule"
    else:
        del private["creators"]
    dummies = dict(DUMMIES)
    dummies.update(settings.dummies)
    plan: dict[str, Any] = {
        "version": PLAN_VERSION,
        "tags": dict(sorted(std.tags.items())),
        "private": {
            k: private[k] for k in ("creators", "creator_elements", "default") if k in private
        },
        "masks": std.masks,
        "vrs": std.vrs,
        "unknown_public": {"action": settings.unknown_public},
        "default": {"action": settings.default},
        "dummies": dict(sorted(dummies.items())),
        "identifying": identifying_tags(options, settings.identifying),
        "date_shift": {"source": settings.date_shift_source, "max_days": settings.max_days},
        "insert": markers(name, options),
    }
    if settings.clean_patterns:
        plan["clean_patterns"] = list(settings.clean_patterns)
    return plan
