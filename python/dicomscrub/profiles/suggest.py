"""Nearest-name suggestions for error messages ("did you mean 'PatientName'?")."""

from __future__ import annotations

from collections.abc import Iterable


def nearest(word: str, choices: Iterable[str], *, always: bool = False) -> str | None:
    """The choice closest to ``word`` (case-insensitive); None when nothing is close.

    With ``always`` the closest choice is returned however far it is.
    """
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(choice.casefold(), choice)
    folded = word.casefold()
    if folded in by_folded:
        return by_folded[folded]
    import difflib  # only when a name is wrong

    found = difflib.get_close_matches(folded, by_folded, n=1, cutoff=0.0 if always else 0.6)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str], *, always: bool = False) -> str:
    """``": did you mean 'X'?"`` or ``""``: a suffix for an error message."""
    best = nearest(word, choices, always=always)
    return f": did you mean {best!r}?" if best is not None else ""
