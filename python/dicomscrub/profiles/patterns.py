"""Clean patterns: regular expressions whose matches ``clean`` masks (docs/plan.md).

The plan's patterns run in two engines, Python's ``re`` (the reference) and Rust's ``regex``
(the core), so a profile may only use what both read the same way: literals, classes,
repetition, alternation, groups and anchors. :func:`check_pattern` compiles a pattern with
``re`` and walks its parse tree, refusing what Rust's engine does not have:

- look-around ``(?=...)``, ``(?!...)``, ``(?<=...)``, ``(?<!...)``;
- back-references ``\\1``, ``(?P=name)`` and conditionals ``(?(1)...)``;
- atomic groups ``(?>...)`` and possessive repetition ``a*+`` (Python 3.11);
- ``\\Z`` (Rust spells it ``\\z``: use ``$``) and the ASCII / locale flags ``(?a)``, ``(?L)``.

A pattern that matches the empty string is refused too: it would mask nothing.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the parser of ``re`` (public as ``sre_parse`` before 3.11, deprecated since)
    from re import _parser
except ImportError:  # pragma: no cover - a Python whose ``re`` is laid out differently
    _parser = None  # type: ignore[assignment]

_REFUSED = (
    (("ASSERT", "ASSERT_NOT"), "look-around ((?=, (?!, (?<=, (?<!)"),
    (("GROUPREF", "GROUPREF_EXISTS"), "back-references (\\1, (?P=name), (?(1)...))"),
    (("ATOMIC_GROUP",), "atomic groups (?>...)"),
    (("POSSESSIVE_REPEAT",), "possessive repetition (*+, ++, ?+)"),
)  # fmt: skip


_UNSUPPORTED = "not supported by the Rust core's regex engine (docs/plan.md, Clean patterns)"


class PatternError(ValueError):
    """A clean pattern is invalid or outside the common subset of ``re`` and Rust ``regex``."""


def _why(op_name: str) -> str | None:
    for names, why in _REFUSED:
        if op_name in names:
            return why
    return None


def _walk(items: Any) -> str | None:
    """The reason the first refused construct of a parsed (sub)pattern is refused, or None."""
    for op, av in items:
        name = str(op)
        why = _why(name)
        if why is not None:
            return why
        if name == "AT" and str(av) == "AT_END_STRING":
            return "\\Z (use $)"
        if name == "SUBPATTERN":
            _group, add, _del, sub = av
            if add & (re.ASCII | re.LOCALE):
                return "the flags (?a) and (?L)"
            found = _walk(sub)
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            found = _walk(av[2])
        elif name == "BRANCH":
            found = next((w for w in map(_walk, av[1]) if w), None)
        else:
            found = None
        if found:
            return found
    return None


def check_pattern(pattern: Any) -> str:
    """``pattern`` if it is a valid clean pattern; PatternError saying why not."""
    if not isinstance(pattern, str):
        raise PatternError(f"{pattern!r} is not a string")
    if not pattern:
        raise PatternError("an empty pattern would mask nothing")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise PatternError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    if _parser is not None:
        parsed = _parser.parse(pattern)
        if parsed.state.flags & (re.ASCII | re.LOCALE):
            raise PatternError(f"{pattern!r}: the flags (?a) and (?L): {_UNSUPPORTED}")
        why = _walk(parsed.data)
        if why:
            raise PatternError(f"{pattern!r}: {why}: {_UNSUPPORTED}")
    if compiled.search("") is not None:
        raise PatternError(f"{pattern!r} matches the empty string: it would mask nothing")
    return pattern
