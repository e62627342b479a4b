"""De-identification profiles: DICOM PS3.15 Annex E as data, compiled to an edit plan.

>>> from dicomscrub import Profile
>>> profile = Profile.basic(["retain-uids", "clean-descriptors"])
>>> profile.name, profile.options
('basic', ('retain-uids', 'clean-descriptors'))
>>> plan = profile.to_plan()          # the JSON-able plan of docs/plan.md
>>> plan["tags"]["00100010"]
{'action': 'pseudonym', 'prefix': 'ANON-', 'source': '00100020'}

Modules, one per concept: ``table`` (the generated PS3.15 tables), ``options``, ``resolution``
(the rule that turns a table row into a plan rule), ``rules`` (custom rules), ``custom`` (TOML
profiles), ``plan`` (assembling the plan), ``tags`` / ``vr`` (dictionary helpers).

The built-in profile reads its data dictionary facts from the generated tables: building it
imports neither pydicom nor the TOML parser; custom profiles import them when they are parsed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any, overload

from dicomscrub.profiles.options import OPTIONS, normalize
from dicomscrub.profiles.plan import Settings, build_plan
from dicomscrub.profiles.table import EDITION

if TYPE_CHECKING:
    from dicomscrub.profiles import custom
    from dicomscrub.profiles.rules import CustomRule

__all__ = ["EDITION", "Profile", "list_options"]


def list_options() -> list[tuple[str, str, str]]:
    """Every option: (name, one-line meaning, CID 7050 code value), in the standard's order."""
    return [(o.name, o.meaning, o.code) for o in OPTIONS]


class _Options:
    """``Profile.options()`` lists the available options; ``profile.options`` is the tuple of
    the options that profile uses."""

    @overload
    def __get__(self, obj: None, owner: type) -> Callable[[], list[tuple[str, str, str]]]: ...
    @overload
    def __get__(self, obj: Profile, owner: type) -> tuple[str, ...]: ...
    def __get__(self, obj: Profile | None, owner: type) -> Any:
        if obj is None:
            return list_options
        return obj._options


class Profile:
    """A de-identification profile: the PS3.15 Basic Profile, options, and custom rules.

    Build one with :meth:`basic`, :meth:`load` (TOML), :meth:`from_dict` or :meth:`from_rules`;
    everything is validated then, and :meth:`to_plan` gives the plan the core runs.
    """

    options = _Options()

    def __init__(
        self,
        name: str,
        options: Sequence[str] = (),
        *,
        settings: Settings | None = None,
        rules: Sequence[CustomRule] = (),
    ) -> None:
        self.name = name
        self._options = normalize(options)
        self._settings = settings or Settings()
        self._rules = tuple(rules)
        self._plan = build_plan(name, self._options, self._settings, self._rules)

    @classmethod
    def basic(cls, options: Sequence[str] = ()) -> Profile:
        """The Basic Application Level Confidentiality Profile with ``options``.

        Raises ProfileError for an unknown option (naming the nearest one) or for options that
        exclude each other (retain-long-full-dates and retain-long-modified-dates).
        """
        return cls("basic", options)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> Profile:
        """A custom profile from a TOML file (docs/profiles.md, docs/examples/site.toml)."""
        from dicomscrub.profiles import custom

        return cls._from_custom(custom.load(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str = "custom") -> Profile:
        """A custom profile from the structure a TOML profile has (``rules``, ``options``...)."""
        from dicomscrub.profiles import custom

        return cls._from_custom(custom.parse(data, name=name))

    @classmethod
    def from_rules(
        cls,
        rules: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        options: Sequence[str] = (),
        name: str = "custom",
    ) -> Profile:
        """Two forms.

        A mapping ``{selector: action}`` (``{"PatientName": "remove", "PatientID": ("replace",
        "SUBJ01"), "(0009,xx10)": "remove"}``) changes exactly those elements, at every depth,
        and nothing else (see :mod:`.simple`). A sequence of rule tables (as in TOML) extends the
        basic profile with ``options``.
        """
        if isinstance(rules, Mapping):
            from dicomscrub.profiles import simple

            return cls._rules_only(name, simple.rules_plan(rules))
        return cls.from_dict({"options": list(options), "rules": list(rules)}, name=name)

    @classmethod
    def keep_all(cls) -> Profile:
        """A profile that changes nothing: outputs are byte-identical to their inputs."""
        return cls._rules_only("keep-all", {"version": 1})

    @classmethod
    def _rules_only(cls, name: str, plan: dict[str, Any]) -> Profile:
        profile = cls.__new__(cls)
        profile.name = name
        profile._options = ()
        profile._settings = Settings()
        profile._rules = ()
        profile._plan = plan
        return profile

    @classmethod
    def _from_custom(cls, spec: custom.CustomProfile) -> Profile:
        return cls(spec.name, spec.options, settings=spec.settings, rules=spec.rules)

    def to_plan(self) -> dict[str, Any]:
        """The edit plan (docs/plan.md): a new JSON-able dict at each call."""
        return copy.deepcopy(self._plan)

    def to_json(self) -> str:
        """The plan as compact JSON text, for ``dicomscrub._core.Plan``."""
        return json.dumps(self._plan, separators=(",", ":"), ensure_ascii=False)

    def __repr__(self) -> str:
        return f"Profile(name={self.name!r}, options={self._options!r})"
