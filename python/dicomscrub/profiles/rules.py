"""Custom rules: one selector, one action, checked against the data dictionary.

A rule is a table (TOML ``[[rules]]``) with exactly one selector::

    keyword = "PatientComments"          # a pydicom keyword (repeating groups: a wildcard)
    tag = "(0010,4000)"                  # a public tag
    mask = "(0040,xxxx)"                 # x: any hex digit
    private = '(0019,"GEMS_ACQU_01",10)' # group, private creator, element byte in its block
    vr = "PN"                            # every element of that VR

and an ``action``: keep, remove, empty, replace (``value``), dummy, uid, pseudonym (``prefix``,
``source``: the keyword or tag whose value is pseudonymized), shift-date, clean. Whatever the
dictionary knows is checked: ``uid`` needs a UI element, ``shift-date`` a date, a replacement
value must be valid for the VR...

An optional condition restricts the rule to the files whose top-level data set has an attribute
with one of the given values (docs/plan.md "Conditions")::

    when = { keyword = "Modality", in = ["US", "OT"] }
    when = { tag = "(0008,0060)", equals = "US" }

It compiles to the plan's ``"when": {"tag": "00080060", "in": ["US", "OT"]}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dicomscrub.profiles.suggest import did_you_mean
from dicomscrub.profiles.tags import (
    display,
    hex8,
    is_private_group,
    parse_pattern,
    pattern_mask,
)
from dicomscrub.profiles.vr import (
    ALL,
    MAX_LENGTH,
    PSEUDONYM,
    TEMPORAL,
    TEXT,
    all_keywords,
    check_value,
    dictionary_vr,
    is_binary,
    keyword_tag,
    repeater_keywords,
)

SELECTORS = ("keyword", "tag", "mask", "private", "vr")
#: keys of a ``when`` table: one attribute, one test
WHEN_ATTRIBUTE = ("keyword", "tag")
WHEN_TEST = ("in", "equals")
ACTIONS = ("keep", "remove", "empty", "replace", "dummy", "uid", "pseudonym", "shift-date", "clean")
PARAMS = {"replace": ("value",), "pseudonym": ("prefix", "source")}
ALL_PARAMS = ("value", "prefix", "source")
#: elements the core never edits (docs/plan.md)
NEVER_EDITED = frozenset({0x00020000, 0x00020010})
#: characters a pseudonym prefix may not hold: value (\) and PN component/group (^ =) delimiters
PREFIX_FORBIDDEN = frozenset("\\^=")
#: pseudonym characters that must remain after the prefix within the VR's maximum length
MIN_PSEUDONYM = 8

_PRIVATE = re.compile(
    r'^\(\s*([0-9A-Fa-f]{4})\s*,\s*"([^"\\]+)"\s*,\s*(?:[xX]{2})?([0-9A-Fa-f]{2})\s*\)$'
)


class RuleError(ValueError):
    """A rule is invalid; ``key`` is the rule's key at fault (for the error's location), or the
    path of keys inside the rule (``("when", "keyword")``)."""

    def __init__(self, key: str | tuple[str, ...] | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class CustomRule:
    """A validated custom rule; ``rule`` is the plan rule it contributes."""

    kind: Literal["tag", "mask", "private", "vr"]
    rule: dict[str, Any] = field(hash=False)
    tag: str | None = None  # kind tag: "00100010"; kind mask: "60xx4000"
    vr: str | None = None  # kind vr
    creator: str | None = None  # kind private
    group: str | None = None
    element: str | None = None

    @property
    def conditional(self) -> bool:
        """True when the rule applies only under a condition (``when``)."""
        return "when" in self.rule

    @property
    def selected(self) -> tuple[str | None, ...]:
        """What the rule selects: two rules with equal ``selected`` select the same elements."""
        return (self.kind, self.tag, self.vr, self.creator, self.group, self.element)

    def describe(self) -> str:
        """The selector as a person writes it."""
        if self.kind == "private":
            return f'({self.group},"{self.creator}",{self.element})'
        if self.kind == "vr":
            return f"VR {self.vr}"
        return display(self.tag or "")

    def covers(self, tag: int) -> bool:
        """True when this rule selects the public tag ``tag`` (a VR rule: by dictionary VR)."""
        if self.kind == "tag":
            return self.tag == hex8(tag)
        if self.kind == "mask" and self.tag:
            mask, value = pattern_mask(self.tag)
            return tag & mask == value and not is_private_group(tag >> 16)
        if self.kind == "vr":
            return not is_private_group(tag >> 16) and dictionary_vr(tag) == self.vr
        return False

    def mask_entry(self) -> dict[str, Any]:
        """The plan's ``masks`` entry of a mask rule."""
        assert self.kind == "mask" and self.tag
        mask, value = pattern_mask(self.tag)
        return {"mask": hex8(mask), "value": hex8(value), "rule": dict(self.rule)}


def public_tag(text: Any) -> str:
    """A keyword or ``(gggg,eeee)`` of a public attribute -> ``"GGGGEEEE"``; ValueError if not."""
    if not isinstance(text, str):
        raise ValueError(f"expected a keyword or a tag such as '(0010,0020)', got {text!r}")
    tag = keyword_tag(text)
    if tag is not None:
        return hex8(tag)
    pattern = parse_pattern(text)
    if pattern is None:
        if text in repeater_keywords():
            raise ValueError(f"{text!r} is a repeating-group attribute, not a single tag")
        hint = did_you_mean(text, all_keywords())
        raise ValueError(f"{text!r} is neither a keyword nor a tag '(gggg,eeee)'{hint}")
    if "x" in pattern:
        raise ValueError(f"{text!r} is a wildcard, not a single tag")
    if is_private_group(int(pattern[:4], 16)):
        raise ValueError(f"{display(pattern)} is a private tag")
    return pattern


def _selector(table: Mapping[str, Any]) -> tuple[str, Any]:
    found = [k for k in SELECTORS if k in table]
    if len(found) != 1:
        what = " and ".join(found) if found else "none"
        raise RuleError(
            found[1] if len(found) > 1 else None,
            f"a rule needs exactly one selector among {', '.join(SELECTORS)} (found {what})",
        )
    key = found[0]
    value = table[key]
    if not isinstance(value, str):
        raise RuleError(key, f"{key} must be a string, got {value!r}")
    return key, value


def _select(key: str, text: str) -> tuple[CustomRule, str | None]:
    """The selector part of the rule (``rule`` left empty) and the VR the dictionary gives it."""
    if key == "keyword":
        number = keyword_tag(text)
        if number is not None:
            tag = hex8(number)
            return CustomRule("tag", {}, tag=tag), dictionary_vr(int(tag, 16))
        if text in repeater_keywords():
            pattern = repeater_keywords()[text]
            return CustomRule("mask", {}, tag=pattern), dictionary_vr(pattern_mask(pattern)[1])
        raise RuleError(key, f"unknown keyword {text!r}{did_you_mean(text, all_keywords())}")
    if key == "vr":
        if text not in ALL:
            raise RuleError(key, f"unknown VR {text!r}{did_you_mean(text, sorted(ALL))}")
        return CustomRule("vr", {}, vr=text), text
    if key == "private":
        m = _PRIVATE.match(text)
        if m is None:
            raise RuleError(key, f"{text!r}: expected '(gggg,\"PRIVATE CREATOR\",ee)'")
        group, creator, element = m.group(1).upper(), m.group(2).rstrip(" \0"), m.group(3).upper()
        if not is_private_group(int(group, 16)):
            raise RuleError(key, f"group {group} is not a private group (odd, not 0001-0007/FFFF)")
        if len(creator) > 64 or not creator:
            raise RuleError(key, f"private creator {creator!r}: 1 to 64 characters (LO)")
        return CustomRule("private", {}, creator=creator, group=group, element=element), None
    pattern = parse_pattern(text)
    example = "'(0010,0010)'" if key == "tag" else "'(60xx,4000)'"
    if pattern is None:
        raise RuleError(key, f"{text!r} is not a {key}: expected {example}")
    if "x" not in pattern[:4] and is_private_group(int(pattern[:4], 16)):
        element = "ee" if "x" in pattern[6:] else pattern[6:]
        raise RuleError(
            key,
            f"{display(pattern)} is private: select private attributes by creator, e.g. "
            f"private = '({pattern[:4]},\"CREATOR\",{element})' (blocks move between files)",
        )
    if key == "tag":
        if "x" in pattern:
            raise RuleError(key, f"{text!r} has wildcards: write mask = {text!r}")
        if pattern.startswith("FFFE"):
            raise RuleError(key, f"{display(pattern)} is an item or delimiter tag")
        return CustomRule("tag", {}, tag=pattern), dictionary_vr(int(pattern, 16))
    if "x" not in pattern:
        raise RuleError(key, f"{text!r} has no wildcard 'x': write tag = {text!r}")
    known = pattern in repeater_keywords().values()  # a repeating group of the dictionary
    vr = dictionary_vr(pattern_mask(pattern)[1]) if known else None
    return CustomRule("mask", {}, tag=pattern), vr


def _check_action(action: str, table: Mapping[str, Any], vr: str | None, what: str) -> None:
    """Raise RuleError when ``action`` (with its parameters) cannot apply to ``vr``."""
    if vr is None:
        pass
    elif action == "uid" and vr != "UI":
        raise RuleError("action", f"uid needs a UI element; {what} is {vr}")
    elif action == "shift_date" and vr not in TEMPORAL:
        raise RuleError("action", f"shift-date needs a DA, DT or TM element; {what} is {vr}")
    elif action == "clean" and vr not in TEXT and vr != "SQ":
        raise RuleError("action", f"clean needs a text VR or a sequence; {what} is {vr}")
    elif action == "pseudonym" and vr not in PSEUDONYM:
        names = " ".join(sorted(PSEUDONYM))
        raise RuleError("action", f"pseudonym needs a text VR ({names}); {what} is {vr}")
    elif action == "dummy" and vr == "UI":
        raise RuleError("action", f"{what} is a UID: use uid (one dummy would merge instances)")
    elif action == "dummy" and is_binary(vr):
        raise RuleError("action", f"{what} is {vr}: no dummy can be written there, use empty")
    elif action == "replace" and (is_binary(vr) or vr == "SQ"):
        raise RuleError("action", f"{what} is {vr}: replace writes text, use empty or remove")
    elif action == "replace" and " or " not in vr:
        problem = check_value(vr, table["value"])
        if problem:
            raise RuleError("value", problem)
    if action == "pseudonym":
        prefix = table.get("prefix", "")
        problem = check_prefix(prefix, vr)
        if problem:
            raise RuleError("prefix", problem)


def check_prefix(prefix: Any, vr: str | None) -> str | None:
    """Why ``prefix`` cannot start a pseudonym of ``vr`` (None: it can)."""
    if not isinstance(prefix, str):
        return f"prefix must be a string, got {prefix!r}"
    bad = [c for c in prefix if c in PREFIX_FORBIDDEN or not " " <= c <= "~"]
    if bad:
        return f"prefix {prefix!r}: {bad[0]!r} is not allowed (printable ASCII without \\ ^ =)"
    limit = MAX_LENGTH.get(vr or "", 64)
    if len(prefix) > limit - MIN_PSEUDONYM:
        return (
            f"prefix {prefix!r} leaves fewer than {MIN_PSEUDONYM} pseudonym characters in the "
            f"{limit} a {vr or 'LO/PN'} value holds"
        )
    return None


def parse_rule(table: Any) -> CustomRule:
    """Validate one rule table; raise RuleError naming the key at fault."""
    if not isinstance(table, Mapping):
        raise RuleError(None, f"a rule is a table (keys: selector, action...), got {table!r}")
    allowed = {*SELECTORS, "action", *ALL_PARAMS, "when"}
    for key in table:
        if key not in allowed:
            raise RuleError(key, f"unknown key {key!r}{did_you_mean(key, allowed, always=True)}")
    key, text = _selector(table)
    selected, vr = _select(key, text)
    if "action" not in table:
        raise RuleError(None, "a rule needs an action")
    action = table["action"]
    if not isinstance(action, str) or action.replace("_", "-") not in ACTIONS:
        hint = did_you_mean(str(action), ACTIONS, always=True)
        raise RuleError("action", f"unknown action {action!r}{hint}")
    action = action.replace("-", "_")
    params = PARAMS.get(action, ())
    for param in ALL_PARAMS:
        if param in table and param not in params:
            raise RuleError(param, f"{param!r} does not apply to action {action!r}")
    rule: dict[str, Any] = {"action": action}
    if action == "replace":
        if not isinstance(table.get("value"), str):
            raise RuleError("value" if "value" in table else "action", "replace needs a value")
        rule["value"] = table["value"]
    if action == "pseudonym":
        rule["prefix"] = table.get("prefix", "")
        if "source" in table:
            try:
                rule["source"] = public_tag(table["source"])
            except ValueError as exc:
                raise RuleError("source", str(exc)) from None
    if "when" in table:
        rule["when"] = parse_condition(table["when"])
    what = f"{text} {display(selected.tag)}" if key == "keyword" and selected.tag else text
    if selected.kind == "tag" and selected.tag and int(selected.tag, 16) in NEVER_EDITED:
        if action != "keep":
            raise RuleError(key, f"{what} is never edited (docs/plan.md)")
    _check_action(action, table, vr, what)
    return CustomRule(
        selected.kind,
        rule,
        tag=selected.tag,
        vr=selected.vr,
        creator=selected.creator,
        group=selected.group,
        element=selected.element,
    )


def _condition_tag(key: str, text: Any) -> str:
    """The attribute of a condition, ``keyword`` or ``tag``, as 8 hex digits."""
    where = ("when", key)
    if not isinstance(text, str):
        raise RuleError(where, f"{key} must be a string, got {text!r}")
    if key == "keyword":
        number = keyword_tag(text)
        if number is not None:
            tag = hex8(number)
        elif text in repeater_keywords():
            raise RuleError(where, f"{text!r} is a repeating-group attribute, not one attribute")
        else:
            raise RuleError(where, f"unknown keyword {text!r}{did_you_mean(text, all_keywords())}")
    else:
        pattern = parse_pattern(text)
        if pattern is None or "x" in pattern:
            raise RuleError(where, f"{text!r} is not a tag: expected '(0008,0060)'")
        tag = pattern
    group = int(tag[:4], 16)
    if is_private_group(group):
        raise RuleError(
            where,
            f"{display(tag)} is private: a condition names a public attribute (private tags "
            "move between files)",
        )
    if group in (0x0002, 0xFFFE):
        raise RuleError(where, f"{display(tag)}: a condition reads the data set, not File Meta")
    return tag


def _condition_values(key: str, value: Any, vr: str | None, what: str) -> list[str]:
    """The values of a condition's ``in`` (a list) or ``equals`` (one string)."""
    where = ("when", key)
    if key == "equals":
        values = [value]
        if not isinstance(value, str):
            raise RuleError(where, f"equals is one string value, got {value!r}")
    else:
        values = value
        if not isinstance(value, list) or not value:
            raise RuleError(where, f"in is a non-empty list of string values, got {value!r}")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str):
            raise RuleError(where, f"{v!r} is not a string: values are compared as text")
        if not v.strip():
            raise RuleError(where, "an empty value never matches: name a non-empty value")
        if v != v.strip(" "):
            raise RuleError(
                where, f"{v!r}: values are compared without leading and trailing spaces"
            )
        if "\\" in v:
            raise RuleError(
                where,
                f"{v!r}: one value per string (a multi-valued attribute matches when any of "
                "its values is listed)",
            )
        if vr is not None and " or " not in vr:
            problem = check_value(vr, v)
            if problem:
                hint = f"; did you mean {v.upper()!r}?" if vr == "CS" and v != v.upper() else ""
                raise RuleError(where, f"{problem} ({what} is {vr}){hint}")
        if v not in out:
            out.append(v)
    return out


def parse_condition(table: Any) -> dict[str, Any]:
    """A rule's ``when`` table -> the plan's ``{"tag": "00080060", "in": ["US"]}``.

    The attribute is a public one of the top-level data set, named by ``keyword`` or ``tag``;
    the test is ``in`` (a list of values) or ``equals`` (one value). Values are checked against
    the attribute's VR in the dictionary: a condition on a binary attribute or a sequence is
    refused (conditions compare text), and so is a value that could never match (``"us"`` for
    the upper-case CS Modality).
    """
    if not isinstance(table, Mapping):
        raise RuleError(
            "when",
            f'when is a table such as {{ keyword = "Modality", in = ["US"] }}, got {table!r}',
        )
    allowed = (*WHEN_ATTRIBUTE, *WHEN_TEST)
    for key in table:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed, always=True)
            raise RuleError(("when", str(key)), f"unknown key {key!r}{hint}")
    for group, what in ((WHEN_ATTRIBUTE, "attribute"), (WHEN_TEST, "test")):
        found = [k for k in group if k in table]
        if len(found) != 1:
            names = " and ".join(found) if found else "none"
            raise RuleError(
                ("when", found[1]) if len(found) > 1 else "when",
                f"a condition needs exactly one {what} among {', '.join(group)} (found {names})",
            )
    attribute = next(k for k in WHEN_ATTRIBUTE if k in table)
    tag = _condition_tag(attribute, table[attribute])
    vr = dictionary_vr(int(tag, 16))
    what = f"{table[attribute]} {display(tag)}" if attribute == "keyword" else display(tag)
    if vr is not None and (is_binary(vr) or vr == "SQ"):
        raise RuleError(("when", attribute), f"{what} is {vr}: a condition compares text values")
    test = next(k for k in WHEN_TEST if k in table)
    return {"tag": tag, "in": _condition_values(test, table[test], vr, what)}
