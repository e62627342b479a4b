"""Where outputs go: ``mirror`` (the source's relative paths) or ``patient/study/series``.

``patient/study/series`` names every output from the values the *output* holds (Patient ID,
Study, Series and SOP Instance UIDs as the core reports them after the plan ran), so no original
identifier can reach a path when the plan transforms those attributes. When the plan keeps one of
them (a profile with ``retain-uids``, a custom ``keep`` rule), the path component is a keyed
pseudonym of the value instead of the value itself: still stable per patient/study/series, still
never the original.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from dicomscrub import _core

Layout = Literal["mirror", "patient/study/series"]
LAYOUTS: tuple[str, ...] = ("mirror", "patient/study/series")

# Actions whose output cannot be the original value.
_TRANSFORMING_TEXT = frozenset({"pseudonym", "replace", "dummy", "empty", "remove"})
_TRANSFORMING_UID = frozenset({"uid", "replace", "dummy", "empty", "remove"})

# (ids key, tag, VR, placeholder when the output has no value)
_COMPONENTS = (
    ("PatientID", "00100020", "LO", "NO-PATIENT-ID"),
    ("StudyInstanceUID", "0020000D", "UI", "NO-STUDY-UID"),
    ("SeriesInstanceUID", "0020000E", "UI", "NO-SERIES-UID"),
)
SOP_INSTANCE_UID = ("SOPInstanceUID", "00080018", "UI")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_COMPONENT = 100

__all__ = ["LAYOUTS", "Layout", "LayoutNamer", "effective_action", "mirror_path"]


def mirror_path(dst_root: str, rel: str) -> str:
    """The output of the source file at ``rel`` in the mirror layout."""
    return os.path.join(dst_root, rel)


def effective_action(plan: Mapping[str, Any], tag: str, vr: str) -> str:
    """The action docs/plan.md gives a public top-level element ``tag`` of VR ``vr``."""
    rule = plan.get("tags", {}).get(tag)
    if rule is None:
        t = int(tag, 16)
        for m in plan.get("masks", ()):
            if t & int(m["mask"], 16) == int(m["value"], 16):
                rule = m["rule"]
                break
    if rule is None:
        rule = plan.get("vrs", {}).get(vr)
    if rule is None:
        rule = plan.get("default") or {"action": "keep"}
    return str(rule.get("action", "keep"))


def _component(value: str, placeholder: str) -> str:
    v = _UNSAFE.sub("_", value.strip()).lstrip(".")[:MAX_COMPONENT]
    return v or placeholder


class LayoutNamer:
    """Names outputs in the ``patient/study/series`` layout."""

    def __init__(self, plan: Mapping[str, Any], key: bytes) -> None:
        self._key = key
        self._derived: dict[str, bool] = {}
        for name, tag, vr, *_ in (*_COMPONENTS, SOP_INSTANCE_UID):
            safe = _TRANSFORMING_UID if vr == "UI" else _TRANSFORMING_TEXT
            self._derived[name] = effective_action(plan, tag, vr) in safe

    @property
    def keeps_any(self) -> bool:
        """Does the plan keep one of the IDs (keep-all, retain-uids, a ``keep`` rule...)?"""
        return not all(self._derived.values())

    def pseudonymized(self, name: str, value: str | None) -> str | None:
        """``value`` of the ID ``name`` as paths and reports may show it: the output's value when
        the plan transforms that attribute, else its keyed pseudonym ``K-...``."""
        return self._value(name, value)

    def _value(self, name: str, value: str | None) -> str | None:
        if not value:
            return None
        if self._derived[name]:
            return value
        # The plan keeps this attribute: never put the value itself in a path.
        return "K-" + _core.keyed_pseudonym(self._key, f"{name}\x00{value}")

    def relpath(self, ids: Mapping[str, str], sop_instance_uid: str | None, src_rel: str) -> str:
        """``PATIENT/STUDY/SERIES/SOP.dcm`` for a file whose output holds ``ids``."""
        parts = [_component(self._value(n, ids.get(n)) or "", ph) for n, _, _, ph in _COMPONENTS]
        sop = self._value("SOPInstanceUID", sop_instance_uid or ids.get("SOPInstanceUID"))
        if sop:
            name = _component(sop, "NO-SOP-UID")
        else:  # no SOP Instance UID: a keyed name of the source path (not an identifier)
            name = "F-" + _core.keyed_pseudonym(self._key, "path\x00" + src_rel)
        return os.path.join(*parts, name + ".dcm")

    @staticmethod
    def with_suffix(relpath: str, n: int) -> str:
        """``.../SOP.dcm`` → ``.../SOP_n.dcm`` (another file has the name already)."""
        stem, ext = os.path.splitext(relpath)
        return f"{stem}_{n}{ext}"
