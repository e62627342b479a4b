"""The project key never leaves the core: not in an output file, a record, an exception's text or
attributes, a repr. The key is a distinctive canary, looked for raw and in the encodings a slip
would produce (hex, base64, latin-1/utf-8 text)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dicomscrub import Profile, _core, errors
from dicomscrub.profiles.options import EXCLUSIVE

from corpus import corpus_files

KEY = b"\x8fCANARY-k3y-\x00\xfe-dicomscrub-secret-5f1e\x7f\x01"
MALFORMED = Path(__file__).parent / "data" / "malformed"


def _forms(key: bytes) -> list[bytes]:
    forms = [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        base64.b64encode(key),
        base64.b32encode(key),
        key.decode("latin-1").encode("utf-8"),
    ]
    forms += [run for run in key.split(b"\x00") if len(run) >= 8]  # a C string cut at a NUL
    forms.append(b"CANARY-k3y")
    return forms


FORMS = _forms(KEY)
TEXT_FORMS = [f.decode("latin-1") for f in FORMS] + [KEY.decode("latin-1"), repr(KEY)[2:-1]]


def assert_clean(blob: bytes | str, where: str) -> None:
    if isinstance(blob, str):
        for f in TEXT_FORMS:
            assert f not in blob, f"the key ({f!r}) appears in {where}"
        blob = blob.encode("utf-8", "surrogateescape")
    for f in FORMS:
        assert f not in blob, f"the key ({f!r}) appears in {where}"


def assert_exception_clean(e: BaseException, where: str) -> None:
    assert_clean(str(e), where)
    assert_clean(repr(e), where)
    for a in e.args:
        assert_clean(repr(a), where)
    for name, value in vars(e).items():
        assert_clean(repr(value), f"{where}.{name}")


def _files() -> list[Path]:
    small = sorted(corpus_files(), key=lambda p: (p.stat().st_size, p.name))
    return small[:: max(1, len(small) // 40)][:40]


PROFILES = {
    "basic": Profile.basic(),
    "all": Profile.basic(
        [n for n, _m, _c in Profile.options() if n not in {pair[0] for pair in EXCLUSIVE}]
    ),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_outputs_and_records_never_hold_the_key(profile: str, tmp_path: Path) -> None:
    plan = _core.Plan(PROFILES[profile].to_json(), KEY)
    assert_clean(repr(plan), "Plan repr")
    files = _files()
    for p in files:
        try:
            out = _core.anonymize_bytes(p.read_bytes(), plan)
        except errors.DicomScrubError as e:
            assert_exception_clean(e, f"the error of {p.name}")
            continue
        assert_clean(out, f"the output of {p.name}")
        assert_clean(json.dumps(_core.dump(out), default=repr), f"the dump of {p.name}'s output")
    pairs = [(str(p), str(tmp_path / f"{i}.dcm")) for i, p in enumerate(files)]
    pairs += [(str(p), str(tmp_path / p.name)) for p in sorted(MALFORMED.glob("*.dcm"))]
    for rec in _core.anonymize_batch(pairs, plan, jobs=2, sync=False):
        assert_clean(repr(rec), f"the record of {rec['src']}")
    for out in tmp_path.iterdir():
        assert_clean(out.read_bytes(), f"the output file {out.name}")
    for _src, dst in pairs[:3]:
        with pytest.raises(errors.OutputError) as info:  # exists already
            _core.anonymize_file(_src, dst, plan)
        assert_exception_clean(info.value, "OutputError")


def test_errors_never_hold_the_key(tmp_path: Path) -> None:
    plan = _core.Plan(Profile.basic().to_json(), KEY)
    for p in sorted(MALFORMED.glob("*.dcm")):
        data = p.read_bytes()
        for fn in (lambda d: _core.anonymize_bytes(d, plan), _core.dump):
            try:
                fn(data)
            except errors.DicomScrubError as e:
                assert_exception_clean(e, p.name)
        try:
            _core.anonymize_file(str(p), str(tmp_path / p.name), plan)
        except errors.DicomScrubError as e:
            assert_exception_clean(e, p.name)
    # a plan the core refuses: the key was given alongside
    for bad in (
        "{",
        '{"version": 1, "tags": {"zz": {"action": "keep"}}}',
        '{"version": 9}',
        json.dumps(
            {
                "version": 1,
                "tags": {"00100010": {"action": "replace", "value": KEY.decode("latin-1")}},
            }
        )[:-3],
    ):
        with pytest.raises(errors.DicomScrubError) as info:
            _core.Plan(bad, KEY)
        assert_exception_clean(info.value, "ProfileError")


def test_keyed_values_do_not_carry_the_key() -> None:
    for v in ("1.2.3.4", "Doe^Jane", ""):
        assert_clean(_core.keyed_uid(KEY, v), "keyed_uid")
        assert_clean(_core.keyed_pseudonym(KEY, v), "keyed_pseudonym")
    assert_clean(str(_core.date_offset_days(KEY, "x", 100)), "date offset")


def test_python_wrappers_never_show_the_key() -> None:
    from dicomscrub.anonymizer import Anonymizer
    from dicomscrub.keys import Key

    k = Key(KEY)
    assert_clean(repr(k), "Key repr")
    assert_clean(str(k), "Key str")
    a = Anonymizer(key=KEY)
    assert_clean(repr(a), "Anonymizer repr")
    assert_clean(a.plan_id, "plan id")


def test_the_check_finds_the_key() -> None:
    """The checks above are not vacuous: each form of the key is caught."""
    for leak in (
        b"x" + KEY + b"y",
        KEY.hex(),
        KEY.hex().upper(),
        repr(KEY),
        str(KEY),
        base64.b64encode(KEY),
        KEY.decode("latin-1"),
    ):
        with pytest.raises(AssertionError):
            assert_clean(leak, "a planted leak")
