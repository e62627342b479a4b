"""Custom profiles: a base, options, settings and ordered rules, from TOML or Python data.

docs/profiles.md describes the format; docs/examples/site.toml is a complete example. Every
value is validated when the profile is loaded; an error names the file, the line, the key and,
for a misspelt name, the nearest valid one::

    site.toml:14: rule #2, keyword: unknown keyword 'PatientNmae': did you mean 'PatientName'?
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn

from dicomscrub.errors import ProfileError
from dicomscrub.profiles.options import normalize
from dicomscrub.profiles.patterns import PatternError, check_pattern
from dicomscrub.profiles.plan import DUMMIES, Settings
from dicomscrub.profiles.rules import SELECTORS, CustomRule, RuleError, check_prefix, parse_rule
from dicomscrub.profiles.rules import public_tag as _public_tag
from dicomscrub.profiles.suggest import did_you_mean
from dicomscrub.profiles.vr import ALL, check_value

TOP_KEYS = (
    "name", "extends", "options", "pseudonym_prefix", "date_shift", "dummies", "identifying",
    "default", "unknown_public", "clean_patterns", "rules",
)  # fmt: skip
BASES = ("basic",)
MAX_DAYS_LIMIT = 36500  # a century: date_shift.max_days is 1..MAX_DAYS_LIMIT
FALLBACK_ACTIONS = ("keep", "remove")  # of `default` and `unknown_public`
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,31}$")


@dataclass(frozen=True)
class CustomProfile:
    """A validated custom profile, ready for :func:`dicomscrub.profiles.plan.build_plan`."""

    name: str
    options: tuple[str, ...]
    settings: Settings
    rules: tuple[CustomRule, ...]


# ---------------------------------------------------------------------------------------------
# Where a key is: TOML line numbers
# ---------------------------------------------------------------------------------------------

_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_-]+)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\]")
_SUB_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_-]+)\s*\.\s*([A-Za-z0-9_-]+)\s*\]")  # [rules.when]
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*=""")

KeyPath = tuple[str | int, ...]


class Locator:
    """Turns a key path such as ``("rules", 2, "keyword")`` into ``site.toml:14: rule #3, keyword``.

    Line numbers come from a light scan of the TOML text (table headers and ``key =`` lines);
    a key it cannot place is reported at its table's line.
    """

    def __init__(self, origin: str | None = None, text: str | None = None) -> None:
        self.origin = origin
        self._lines: dict[KeyPath, int] = _scan(text) if text is not None else {}

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path`` or of the nearest enclosing table that has one."""
        for k in range(len(path), 0, -1):
            if path[:k] in self._lines:
                return self._lines[path[:k]]
        return None

    def __call__(self, path: KeyPath) -> str:
        where = _describe(path)
        line = self.line(path)
        if self.origin is None:
            return where
        place = f"{self.origin}:{line}" if line is not None else self.origin
        return f"{place}: {where}" if where else place


def _describe(path: KeyPath) -> str:
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rest = ".".join(str(p) for p in path[2:])
        return f"rule #{path[1] + 1}" + (f", {rest}" if rest else "")
    return ".".join(str(p) for p in path)


def _scan(text: str) -> dict[KeyPath, int]:
    lines: dict[KeyPath, int] = {}
    counts: dict[str, int] = {}
    table: KeyPath = ()
    quote: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if quote is not None:  # inside a multi-line string
            if line.count(quote) % 2:
                quote = None
            continue
        if m := _ARRAY_TABLE.match(line):
            index = counts.get(m[1], 0)
            counts[m[1]] = index + 1
            table = (m[1], index)
            lines[table] = number
        elif m := _TABLE.match(line):
            table = (m[1],)
            lines[table] = number
        elif (m := _SUB_TABLE.match(line)) and m[1] in counts:  # of the last [[rules]]
            table = (m[1], counts[m[1]] - 1, m[2])
            lines[table] = number
        elif m := _KEY.match(line):
            lines.setdefault((*table, m[1] or m[2] or m[3]), number)
        for q in ('"""', "'''"):
            if line.count(q) % 2:
                quote = q
    return lines


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def parse(data: Any, *, name: str, locate: Locator | None = None) -> CustomProfile:
    """Validate a profile document (the TOML structure); ``name`` is used when it has none."""
    locate = locate or Locator()

    def fail(path: KeyPath, message: str) -> NoReturn:
        where = locate(path)
        raise ProfileError(f"{where}: {message}" if where else message, path=locate.origin)

    if not isinstance(data, Mapping):
        fail((), f"a profile is a table of keys ({', '.join(TOP_KEYS)})")
    for key in data:
        if key not in TOP_KEYS:
            fail((key,), f"unknown key {key!r}{did_you_mean(key, TOP_KEYS, always=True)}")
    extends = data.get("extends", "basic")
    if extends not in BASES:
        fail(("extends",), f"unknown base profile {extends!r}{did_you_mean(str(extends), BASES)}")
    name = data.get("name", name)
    if not isinstance(name, str) or not _NAME.match(name):
        fail(("name",), f"{name!r}: 1 to 32 ASCII letters, digits, space . _ + -")
    options = data.get("options", [])
    if not isinstance(options, list):
        fail(("options",), f"options is a list of option names, got {options!r}")
    try:
        chosen = normalize(options)
    except ProfileError as exc:
        fail(("options",), exc.message)

    settings: dict[str, Any] = {}
    if "pseudonym_prefix" in data:
        problem = check_prefix(data["pseudonym_prefix"], "LO")
        if problem:
            fail(("pseudonym_prefix",), problem)
        settings["pseudonym_prefix"] = data["pseudonym_prefix"]
    if "date_shift" in data:
        settings.update(_date_shift(data["date_shift"], fail))
    if "dummies" in data:
        settings["dummies"] = _dummies(data["dummies"], fail)
    if "identifying" in data:
        settings["identifying"] = _identifying(data["identifying"], fail)
    for key in ("default", "unknown_public"):
        if key in data:
            if data[key] not in FALLBACK_ACTIONS:
                fail((key,), f"{data[key]!r}: {key} is one of {', '.join(FALLBACK_ACTIONS)}")
            settings[key] = data[key]
    if "clean_patterns" in data:
        settings["clean_patterns"] = _clean_patterns(data["clean_patterns"], fail)

    rules = data.get("rules", [])
    if not isinstance(rules, list):
        fail(("rules",), "rules is an array of tables ([[rules]])")
    parsed: list[CustomRule] = []
    unconditional: dict[tuple[str | None, ...], int] = {}  # selector -> rule without `when`
    for i, table in enumerate(rules):
        try:
            rule = parse_rule(table)
        except RuleError as exc:
            key = exc.key if isinstance(exc.key, tuple) else (exc.key,) if exc.key else ()
            fail(("rules", i, *key), exc.message)
        earlier = unconditional.get(rule.selected)
        if earlier is not None:  # a rule after a conditional one with its selector may apply
            key = next(k for k in SELECTORS if k in table)
            line = locate.line(("rules", earlier))
            at = f" (line {line})" if line is not None and locate.origin else ""
            fail(
                ("rules", i, key),
                f"{rule.describe()} is already selected by rule #{earlier + 1}{at}: "
                "the first match wins, so this rule would never apply",
            )
        if not rule.conditional:
            unconditional[rule.selected] = i
        parsed.append(rule)
    return CustomProfile(name, chosen, Settings(**settings), tuple(parsed))


Fail = Callable[[KeyPath, str], NoReturn]  # the local `fail` of parse()


def _date_shift(value: Any, fail: Fail) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        fail(("date_shift",), "date_shift is a table with max_days and source")
    out: dict[str, Any] = {}
    for key in value:
        if key not in ("max_days", "source"):
            hint = did_you_mean(key, ("max_days", "source"), always=True)
            fail(("date_shift", key), f"unknown key {key!r}{hint}")
    if "max_days" in value:
        days = value["max_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS_LIMIT:
            fail(("date_shift", "max_days"), f"{days!r}: an integer from 1 to {MAX_DAYS_LIMIT}")
        out["max_days"] = days
    if "source" in value:
        try:
            out["date_shift_source"] = _public_tag(value["source"])
        except ValueError as exc:
            fail(("date_shift", "source"), str(exc))
    return out


def _dummies(value: Any, fail: Fail) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        fail(("dummies",), "dummies is a table VR = value")
    out = []
    for vr, dummy in value.items():
        if vr not in DUMMIES:
            why = "UIDs get keyed UIDs, never a dummy" if vr == "UI" else "no dummy for this VR"
            hint = did_you_mean(vr, DUMMIES) if vr not in ALL else ""
            fail(("dummies", vr), f"{vr!r}: {why}{hint} (VRs: {' '.join(DUMMIES)})")
        problem = check_value(vr, dummy) if isinstance(dummy, str) else f"{dummy!r} is no string"
        if problem or not dummy:
            fail(("dummies", vr), problem or "a dummy is not empty")
        out.append((vr, dummy))
    return tuple(out)


def _identifying(value: Any, fail: Fail) -> tuple[str, ...]:
    if not isinstance(value, list):
        fail(("identifying",), "identifying is a list of keywords or tags")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(_public_tag(item))
        except ValueError as exc:
            fail(("identifying",), f"item {i + 1}: {exc}")
    return tuple(out)


def _clean_patterns(value: Any, fail: Fail) -> tuple[str, ...]:
    if not isinstance(value, list):
        fail(("clean_patterns",), "clean_patterns is a list of regular expressions")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            pattern = check_pattern(item)
        except PatternError as exc:
            fail(("clean_patterns",), f"item {i + 1}: {exc}")
        if pattern not in out:
            out.append(pattern)
    return tuple(out)


def load(path: str | PathLike[str]) -> CustomProfile:
    """Read and validate a TOML profile."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(
            f"{path}: cannot read the profile: {exc.strerror}", path=str(path)
        ) from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"{path}: a profile is UTF-8 text ({exc.reason})", path=str(path)
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: invalid TOML: {exc}", path=str(path)) from None
    default_name = path.stem if _NAME.match(path.stem) else "custom"
    return parse(data, name=default_name, locate=Locator(str(path), text))
