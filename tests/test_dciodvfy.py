"""dciodvfy (Debian's dicom3tools) on every corpus file, before and after de-identification: the
output has no error that the input did not have (issue "Profiles": "dciodvfy reports no new
error on the corpus compared with the input"), for the Basic Profile and for all options.

dciodvfy checks a file against the IOD of its SOP Class (Types 1/2/3 of every module, value
multiplicities, enumerated values, VR syntax). Its "Error - ..." lines are compared as *kinds*:
the error and the attribute it names, without the values that de-identification legitimately
changes (:func:`normalize`). A new kind in the output is a profile that broke the IOD (an
attribute emptied where it is Type 1, removed where it is Type 2...) or a writer that broke the
file.

dciodvfy is required: install it with ``apt-get install dicom3tools`` (.ci/run does).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dicomscrub import Profile, _core
from dicomscrub.profiles.options import EXCLUSIVE

from corpus import corpus_id, readable_files

TEST_KEY = b"dicomscrub test key: not a secret"
DCIODVFY = shutil.which("dciodvfy")
TIMEOUT = 60  # seconds per dciodvfy run (a file takes ~10 ms)

ALL_OPTIONS = [name for name, _meaning, _code in Profile.options()]
_DROP = {pair[0] for pair in EXCLUSIVE}  # all options but one of each exclusive pair
PROFILES: dict[str, list[str]] = {
    "basic": [],
    "all": [o for o in ALL_OPTIONS if o not in _DROP],
}

#: Corpus files that dciodvfy cannot read as they are: there is no list of input errors to
#: compare with (the output, with a proper File Meta, may be read further and show the input's
#: own defects). Each is checked to be still unreadable, so that the list stays true. Files that
#: dciodvfy reads in part ("Dicom dataset read failed" after most elements) are compared.
_ABORTS = "dciodvfy aborts (SIGABRT) on the input"
UNREADABLE = {
    "image_dfl.dcm": "Deflated Explicit VR Little Endian: dciodvfy reads the deflated bytes",
    "meta_missing_tsyntax.dcm": "File Meta without Transfer Syntax UID: tags out of order",
    "nested_priv_SQ.dcm": "no File Meta, read with the wrong transfer syntax: tags out of order",
    "badVR.dcm": _ABORTS,
    "rtdose.dcm": _ABORTS,
    "rtdose_1frame.dcm": _ABORTS,
    "rtdose_expb.dcm": _ABORTS,
    "rtdose_expb_1frame.dcm": _ABORTS,
    "SC_rgb_32bit.dcm": _ABORTS,
    "SC_rgb_32bit_2frame.dcm": _ABORTS,
    "SC_rgb_expb_32bit.dcm": _ABORTS,
    "SC_rgb_expb_32bit_2frame.dcm": _ABORTS,
}
#: what dciodvfy says when it could not read a file to its end
_READ_FAILED = (
    "Dicom dataset read failed",
    "Tags out of order - trailing garbage, wrong transfer syntax, or not valid DICOM",
    "Metaheader present but doesn't contain Transfer Syntax UID",
)


# ---------------------------------------------------------------------------------------------
# Running dciodvfy and reading its errors
# ---------------------------------------------------------------------------------------------


def _require_dciodvfy() -> str:
    if DCIODVFY is None:
        pytest.fail(
            "dciodvfy is not installed: install Debian's dicom3tools "
            "(apt-get install dicom3tools); this test does not skip without it"
        )
    return DCIODVFY


class Report:
    """dciodvfy's verdict on one file: its error lines, and whether it read the whole file."""

    def __init__(self, returncode: int, text: str) -> None:
        self.returncode = returncode
        self.lines = [line for line in text.splitlines() if "Error - " in line]
        self.crashed = returncode < 0  # killed by a signal (it aborts on a few files)
        self.read_failed = self.crashed or any(
            marker in line for line in self.lines for marker in _READ_FAILED
        )

    @functools.cached_property
    def kinds(self) -> set[str]:
        return {normalize(line) for line in self.lines}


def dciodvfy(path: Path) -> Report:
    run = subprocess.run(
        [_require_dciodvfy(), str(path)], capture_output=True, timeout=TIMEOUT, check=False
    )
    # dciodvfy writes its report on stderr, in the files' own 8-bit character sets
    text = (run.stderr + run.stdout).decode("latin-1")
    return Report(run.returncode, text)


_SPACES = re.compile(r"\s+")
#: a value in angle brackets (``= <1.2.3>``, ``value <YBR_FULL>``), unclosed when dciodvfy
#: prints a value holding a newline; not ``Element=<Laterality>`` nor ``attribute <Rows>``
_ANGLE_VALUE = re.compile(r"(?<!Element=)(?<!Module=)(?<!attribute )<[^<>]*(?:>|$)")
_QUOTED_VALUE = re.compile(r'"[^"]*"')
_UID = re.compile(r"\b\d+(?:\.\d+){2,}\b|(?<=UID )[0-9.]+")  # "... InstanceUID 0" too
_VALUE_INDEX = re.compile(r"\[\d+\]")
_VALUE_LENGTH = re.compile(r"VL is 0x[0-9a-fA-F]+ should be 0x[0-9a-fA-F]+")
_INVALID_CHARACTER = re.compile(r"Character invalid for this VR = '.*?' \(0x[0-9a-fA-F]+\)")
#: an explicit-VR transfer syntax over implicit-VR data: dciodvfy reports each element, with
#: one of two messages depending on the element's value length (which edits change)
_IMPLICIT_UNDER_EXPLICIT = re.compile(
    r"Tag read failed - Implicit VR encoding even though supposed to be explicit"
    r"|Illegal zero bytes where explicit Value Representation expected"
)
#: plan.md "File Meta": Media Storage SOP Instance UID follows SOP Instance UID, so an invalid
#: SOP Instance UID that is kept (Retain UIDs) is reported in the meta element too
_META_INSTANCE_UID = re.compile(
    r"\(0x0002,0x0003\) (?:UI )?Media Storage SOP Instance UID|"
    r"\(0x0008,0x0018\) (?:UI )?SOP Instance UID"
)


def normalize(line: str) -> str:
    """An error line as its kind: the error and the attribute, without values.

    >>> normalize("Error - Value invalid for this VR - (0x0008,0x0030) TM Study Time  TM [1] "
    ...           "= <11:20:00> - Character invalid for this VR = ':' (0x3a)")[36:]
    '(0x0008,0x0030) TM Study Time TM [N] = <V> - Character invalid for this VR'
    """
    if _IMPLICIT_UNDER_EXPLICIT.search(line):
        return "Error - implicit VR data set under an explicit VR transfer syntax"
    line = _SPACES.sub(" ", line).strip()
    line = _ANGLE_VALUE.sub("<V>", line)
    line = _QUOTED_VALUE.sub('"V"', line)
    line = _UID.sub("<UID>", line)
    line = _VALUE_INDEX.sub("[N]", line)
    line = _VALUE_LENGTH.sub("VL is N should be N", line)
    line = _INVALID_CHARACTER.sub("Character invalid for this VR", line)
    return _META_INSTANCE_UID.sub("(SOP Instance UID)", line)


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------

_plans: dict[str, _core.Plan] = {}


def _plan(name: str) -> _core.Plan:
    if name not in _plans:
        _plans[name] = _core.Plan(Profile.basic(PROFILES[name]).to_json(), TEST_KEY)
    return _plans[name]


@functools.cache
def _input_report(path: Path) -> Report:
    return dciodvfy(path)


FILES = readable_files()


def test_dciodvfy_is_installed() -> None:
    _require_dciodvfy()


@pytest.mark.parametrize("path", FILES, ids=corpus_id)
@pytest.mark.parametrize("profile", list(PROFILES))
def test_no_new_dciodvfy_error(path: Path, profile: str, tmp_path: Path) -> None:
    before = _input_report(path)
    if path.name in UNREADABLE:
        assert before.read_failed, f"{path.name} is readable now: remove it from UNREADABLE"
        return
    assert not before.crashed, (
        f"dciodvfy aborts on the input {path} (exit {before.returncode}): add it to UNREADABLE"
    )
    out = tmp_path / "out.dcm"
    out.write_bytes(_core.anonymize_bytes(path.read_bytes(), _plan(profile)))
    after = dciodvfy(out)
    assert not after.crashed, f"dciodvfy crashed on the output (exit {after.returncode})"
    new = sorted(after.kinds - before.kinds)
    assert not new, f"{len(new)} new dciodvfy error(s) with the {profile} profile:\n" + "\n".join(
        f"  {kind}" for kind in new
    )


def test_normalize_keeps_the_attribute_and_drops_values() -> None:
    a = normalize(
        "Error - Value invalid for this VR - (0x0008,0x0018) UI SOP Instance UID  UI [1] = "
        "<dccc95> - Character invalid for this VR = 'd' (0x64)"
    )
    b = normalize(
        "Error - Value invalid for this VR - (0x0002,0x0003) UI Media Storage SOP Instance UID"
        "  UI [1] = <dccc95> - Character invalid for this VR = 'c' (0x63)"
    )
    assert a == b
    assert normalize(
        "Error - Missing attribute Type 2 Required Element=<PatientSex> Module=<Patient>"
    ) == ("Error - Missing attribute Type 2 Required Element=<PatientSex> Module=<Patient>")
    assert "Laterality" in normalize(
        "Error - Missing attribute Type 2C Conditional Element=<Laterality> Module=<GeneralSeries>"
    )
    assert normalize(
        "Error - Referenced SOP Instance is not listed ... ReferencedSOPInstanceUID 1.2.3.4"
    ) == normalize(
        "Error - Referenced SOP Instance is not listed ... ReferencedSOPInstanceUID 2.25.9"
    )
    assert normalize(
        "Error - Unrecognized enumerated value <0x2> for value 1 of attribute <Number of Frames>"
    ).endswith("attribute <Number of Frames>")
    assert normalize("Error - Value invalid - LO Reason for Study LO [1] = <test") == normalize(
        "Error - Value invalid - LO Reason for Study LO [1] = <XXXX"
    )
