"""Rules-only profiles: ``Profile.keep_all()`` and ``Profile.from_rules({...})``.

These change exactly what they name and nothing else (no standard table, no markers): the
``{selector: action}`` form of the issue's first API.

Selectors: a pydicom keyword (``"PatientName"``), a tag (``"(0010,0010)"`` or ``"00100010"``),
a private element in any creator block (``"(0009,xx10)"``: element byte 10 of every block
``xx`` = 10..FF of group 0009, never the creator elements) or a public repeating group
(``"(60xx,3000)"``). Actions: ``"keep"``, ``"remove"``, ``"empty"``, ``"uid"``, ``"dummy"``,
``"clean"``, ``"shift_date"`` or a tuple ``("replace", value)`` / ``("pseudonym", prefix)``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dicomscrub.errors import ProfileError
from dicomscrub.profiles.suggest import did_you_mean

_TAG = re.compile(r"^\(?([0-9A-Fa-fx]{4}),?([0-9A-Fa-fx]{4})\)?$")
_SIMPLE = ("keep", "remove", "empty", "uid", "dummy", "clean")


def _action(selector: str, action: Any) -> dict[str, Any]:
    if isinstance(action, str):
        if action in _SIMPLE:
            return {"action": action}
        raise ProfileError(
            f"rule {selector!r}: unknown action {action!r}{did_you_mean(action, _SIMPLE)}"
        )
    if isinstance(action, (tuple, list)) and len(action) == 2 and isinstance(action[1], str):
        kind, arg = action
        if kind == "replace":
            return {"action": "replace", "value": arg}
        if kind == "pseudonym":
            return {"action": "pseudonym", "prefix": arg}
    raise ProfileError(
        f"rule {selector!r}: action must be one of {', '.join(_SIMPLE)} or a tuple "
        f"('replace', value) / ('pseudonym', prefix), not {action!r}"
    )


def rules_plan(rules: Mapping[str, Any]) -> dict[str, Any]:
    """The plan (docs/plan.md) of a ``{selector: action}`` mapping."""
    tags: dict[str, Any] = {}
    masks: list[dict[str, Any]] = []
    for selector, action in rules.items():
        rule = _action(selector, action)
        m = _TAG.match(selector.strip())
        if m is None:
            from pydicom.datadict import keyword_dict, tag_for_keyword

            tag = tag_for_keyword(selector)
            if tag is None:
                raise ProfileError(
                    f"rule {selector!r}: not a keyword or a tag"
                    f"{did_you_mean(selector, list(keyword_dict))}"
                )
            tags[f"{tag:08X}"] = rule
            continue
        group, element = m.group(1).upper(), m.group(2).upper()
        if "X" not in group + element:
            tags[group + element] = rule
        elif int(group.replace("X", "0"), 16) % 2 == 1 and "X" not in group:
            if not (element.startswith("XX") and "X" not in element[2:]):
                raise ProfileError(f"rule {selector!r}: a private selector is (gggg,xxee)")
            for block in range(0x10, 0x100):  # every creator block, never the creators
                tags[f"{group}{block:02X}{element[2:]}"] = rule
        else:
            mask = "".join("0" if c == "X" else "F" for c in group + element)
            value = (group + element).replace("X", "0")
            masks.append({"mask": mask, "value": value, "rule": rule})
    plan: dict[str, Any] = {"version": 1, "tags": tags}
    if masks:
        plan["masks"] = masks
    return plan
