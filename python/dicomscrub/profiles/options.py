"""The options of the Basic Application Level Confidentiality Profile (PS3.15 E.3).

Each option is one column of Table E.1-1 and one CID 7050 code. Names are the CLI's:
``retain-safe-private``, ``retain-uids``, ... in the standard's column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from dicomscrub.errors import ProfileError
from dicomscrub.profiles.suggest import did_you_mean
from dicomscrub.profiles.table import COLUMN_INDEX, COLUMNS


class Option(NamedTuple):
    """An option: its name, the Table E.1-1 column it selects, what it means."""

    name: str
    column: str
    meaning: str
    abbreviation: str  # used in De-identification Method (0012,0063), which holds 64 characters

    @property
    def code(self) -> str:
        """The CID 7050 code value of the option."""
        return COLUMNS[COLUMN_INDEX[self.column]].code


OPTIONS: tuple[Option, ...] = (
    Option(
        "retain-safe-private",
        "retain_safe_private",
        "keep the private attributes PS3.15 Table E.3.10-1 lists as safe; remove all others",
        "RSP",
    ),
    Option(
        "retain-uids",
        "retain_uids",
        "keep UIDs unchanged instead of replacing them with keyed UIDs",
        "RU",
    ),
    Option(
        "retain-device-identity",
        "retain_device_identity",
        "keep device identifiers: station names, serial numbers, AE titles, calibration data",
        "RDI",
    ),
    Option(
        "retain-institution-identity",
        "retain_institution_identity",
        "keep the institution's name, address and department, and clinical trial site names",
        "RII",
    ),
    Option(
        "retain-patient-characteristics",
        "retain_patient_characteristics",
        "keep sex, age, size, weight and the like; clean allergies, needs and pre-medication",
        "RPC",
    ),
    Option(
        "retain-long-full-dates",
        "retain_longitudinal_full_dates",
        "keep dates and times unchanged",
        "RLFD",
    ),
    Option(
        "retain-long-modified-dates",
        "retain_longitudinal_modified_dates",
        "shift every date by one keyed offset per patient, so intervals are preserved",
        "RLMD",
    ),
    Option(
        "clean-descriptors",
        "clean_descriptors",
        "keep descriptions and comments with identifying text masked instead of removing them",
        "CD",
    ),
    Option(
        "clean-structured-content",
        "clean_structured_content",
        "keep SR content and acquisition context with identifying text masked",
        "CSC",
    ),
    Option(
        "clean-graphics",
        "clean_graphics",
        "keep graphic annotations and curves with identifying text masked (overlays are removed)",
        "CG",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}

#: options that contradict each other: both may not be selected
EXCLUSIVE = (("retain-long-full-dates", "retain-long-modified-dates"),)


def normalize(options: Sequence[str]) -> tuple[str, ...]:
    """Validate option names; return them without duplicates, in the standard's order.

    Raises ProfileError for an unknown name (naming the nearest valid one) or for options that
    exclude each other.
    """
    if isinstance(options, str):
        raise ProfileError(f"options must be a sequence of names, not the string {options!r}")
    chosen = set()
    for name in options:
        if not isinstance(name, str) or name not in BY_NAME:
            hint = did_you_mean(str(name), BY_NAME, always=True)
            raise ProfileError(f"unknown option {name!r}{hint} (valid: {', '.join(BY_NAME)})")
        chosen.add(name)
    for a, b in EXCLUSIVE:
        if a in chosen and b in chosen:
            raise ProfileError(f"options {a!r} and {b!r} exclude each other: choose one")
    return tuple(o.name for o in OPTIONS if o.name in chosen)
