"""Hostile and damaged input through every entry point of the core.

The malformed corpus (tests/data/malformed/, made by python/tools/make_malformed.py) says for
each file what must happen: a dicomscrub exception of a given class whose message names the
offset (and the tag, where one applies), or a pydicom-compatible read. Beyond it, every corpus
file is cut at random offsets and at the element boundaries of a few files: each cut gives a
dicomscrub exception or an output pydicom reads, never a crash, a SystemError or a panic.
"""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pydicom
import pytest

from dicomscrub import Profile, _core, errors

from corpus import corpus_files, corpus_id

DATA = Path(__file__).parent / "data"
MALFORMED = DATA / "malformed"
EXPECTED: dict[str, dict] = json.loads((MALFORMED / "expected.json").read_text())
KEY = b"dicomscrub test key: not a secret"

sys.path.insert(0, str(Path(__file__).parents[1] / "python" / "tools"))
import make_malformed as mm  # noqa: E402


@pytest.fixture(scope="module")
def plan() -> _core.Plan:
    return _core.Plan(Profile.basic().to_json(), KEY)


def read_all(data: bytes) -> None:
    """pydicom reads ``data`` and every value in it (raises if it cannot)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        for _ in ds.iterall():
            pass


def pydicom_reads(data: bytes) -> bool:
    try:
        read_all(data)
    except Exception:
        return False
    return True


def check_output(out: bytes, data: bytes) -> None:
    """pydicom reads the output (every value) whenever it reads the input."""
    if not pydicom_reads(out):
        assert not pydicom_reads(data), "pydicom reads the input but not the output"
    _core.dump(out)


def check_error(e: BaseException, exp: dict, *, path: Path | None = None) -> None:
    cls = getattr(errors, exp["outcome"])
    assert isinstance(e, cls), f"{type(e).__name__}: {e}"
    msg = str(e)
    assert exp["message"] in msg, msg
    assert e.offset is not None, msg
    assert f"offset {e.offset:#x}" in msg, msg  # the message names the offset
    if exp["offset"] is not None:
        assert e.offset == exp["offset"], msg
    if exp["tag"] is not None:
        assert e.tag == int(exp["tag"], 16), msg
    if path is not None:
        assert e.path == str(path)
        assert str(path) in msg  # file APIs name the file


NAMES = sorted(EXPECTED)


def test_manifest_matches_the_script() -> None:
    files, manifest = mm.build()
    assert manifest == EXPECTED, "run python/tools/make_malformed.py"
    for name, data in files.items():
        assert (MALFORMED / name).read_bytes() == data, name
    on_disk = {p.name for p in MALFORMED.iterdir()} - {"expected.json"}
    assert on_disk == set(files)
    assert sum(len(d) for d in files.values()) < 200_000


@pytest.mark.parametrize("name", NAMES)
def test_anonymize_bytes(name: str, plan: _core.Plan) -> None:
    exp = EXPECTED[name]
    data = (MALFORMED / name).read_bytes()
    if exp["outcome"] == "ok":
        check_output(_core.anonymize_bytes(data, plan), data)
        return
    with pytest.raises(errors.DicomScrubError) as info:
        _core.anonymize_bytes(data, plan)
    check_error(info.value, exp)


@pytest.mark.parametrize("name", NAMES)
def test_dump(name: str) -> None:
    exp = EXPECTED[name]
    data = (MALFORMED / name).read_bytes()
    if exp["outcome"] == "ok":
        d = _core.dump(data)
        assert isinstance(d["dataset"], list)
        return
    with pytest.raises(errors.DicomScrubError) as info:
        _core.dump(data)
    check_error(info.value, exp)


@pytest.mark.parametrize("name", NAMES)
def test_anonymize_file(name: str, plan: _core.Plan, tmp_path: Path) -> None:
    exp = EXPECTED[name]
    src = MALFORMED / name
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / name
    if exp["outcome"] == "ok":
        rec = _core.anonymize_file(str(src), str(dst), plan)
        assert rec["status"] == "ok"
        check_output(dst.read_bytes(), src.read_bytes())
        assert sorted(p.name for p in out_dir.iterdir()) == [name]
        return
    with pytest.raises(errors.DicomScrubError) as info:
        _core.anonymize_file(str(src), str(dst), plan)
    check_error(info.value, exp, path=src)
    assert list(out_dir.iterdir()) == [], "output or temp file left after a failure"


def test_anonymize_batch(plan: _core.Plan, tmp_path: Path) -> None:
    """The bad files are reported (failed, or skipped when not DICOM) with kind, message and
    offset; the good files of the same batch are written; nothing else is left behind."""
    good = [p for p in corpus_files() if p.name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")]
    assert len(good) == 3
    out_dir = tmp_path / "out"
    pairs = [(str(MALFORMED / n), str(out_dir / n)) for n in NAMES]
    pairs += [(str(p), str(out_dir / ("good-" + p.name))) for p in good]
    records = _core.anonymize_batch(pairs, plan, jobs=2, sync=False)
    assert len(records) == len(pairs)
    written = set()
    for rec, (src, dst) in zip(records, pairs, strict=True):
        assert rec["src"] == src
        exp = EXPECTED[Path(src).name] if Path(src).parent == MALFORMED else {"outcome": "ok"}
        if exp["outcome"] == "ok":
            assert rec["status"] == "ok", rec
            written.add(Path(dst).name)
            continue
        not_dicom = "not a DICOM file" in exp["message"]
        assert rec["status"] == ("skipped" if not_dicom else "failed"), rec
        assert rec["error_kind"] == ("NotDicom" if not_dicom else exp["outcome"]), rec
        assert exp["message"] in rec["message"], rec
        assert rec["offset"] is not None, rec
        if exp["offset"] is not None:
            assert rec["offset"] == exp["offset"], rec
        if exp["tag"] is not None:
            assert rec["tag"] == int(exp["tag"], 16), rec
    assert {p.name for p in out_dir.iterdir()} == written  # no temp file, no partial output
    for (src, dst), rec in zip(pairs, records, strict=True):
        if rec["status"] == "ok":
            check_output(Path(dst).read_bytes(), Path(src).read_bytes())


# ---- cuts of the real corpus ------------------------------------------------------------------

CUTS = 200


def _cut_check(data: bytes, cut: int, plan: _core.Plan, whole_reads: bool) -> str:
    """``data[:cut]`` through anonymize_bytes and dump: a dicomscrub error, or an output pydicom
    reads (when it reads the whole file). Anything else fails the test."""
    part = data[:cut]
    try:
        out = _core.anonymize_bytes(part, plan)
    except errors.DicomScrubError as e:
        assert "internal error" not in str(e), f"cut at {cut}: {e}"
        assert e.offset is not None or "not a DICOM" in str(e), f"cut at {cut}: {e}"
        with pytest.raises(errors.DicomScrubError):
            _core.dump(part)
        return "refused"
    except BaseException as e:  # a panic (PanicException), SystemError...: never
        if isinstance(e, KeyboardInterrupt):
            raise
        pytest.fail(f"cut at {cut}: {type(e).__name__}: {e}")
    _core.dump(part)
    _core.dump(out)
    if whole_reads:
        try:
            read_all(out)
        except Exception as e:
            pytest.fail(f"cut at {cut}: pydicom cannot read the output: {e}")
    return "ok"


@pytest.mark.parametrize("path", corpus_files(), ids=corpus_id)
def test_random_cuts(path: Path, plan: _core.Plan) -> None:
    data = path.read_bytes()
    rng = random.Random(f"dicomscrub cuts {path.name} {len(data)}")
    cuts = sorted({rng.randrange(len(data)) for _ in range(CUTS)})
    whole_reads = pydicom_reads(data)
    for cut in cuts:
        _cut_check(data, cut, plan, whole_reads)


BOUNDARY_FILES = (
    "SC_rgb_small_odd_jpeg.dcm",  # defined-length sequences, encapsulated pixel data
    "nested_priv_SQ.dcm",  # undefined-length UN sequences, implicit VR
    "reportsi.dcm",  # SR: sequences 4 deep, undefined lengths
    "rtplan.dcm",  # implicit VR, defined-length nested sequences
    "image_dfl.dcm",  # deflated
    "ExplVR_BigEndNoMeta.dcm",  # big endian without File Meta
)


def _boundaries(elements: list[dict], out: set[int]) -> None:
    for e in elements:
        o = e["offset"]
        out.update((o, o + 2, o + 4, o + 6, o + 8, o + 10, o + 12))
        if e["length"] is not None:
            end = o + (12 if e["vr"] in mm.LONG_VRS else 8) + e["length"]
            out.update((end - 1, end, end + 1))
        for item in e["items"] or []:
            if item:
                out.add(item[0]["offset"] - 8)  # the item header
                out.add(item[0]["offset"] - 4)
            _boundaries(item, out)


@pytest.mark.parametrize("name", BOUNDARY_FILES)
def test_cuts_at_every_element_boundary(name: str, plan: _core.Plan) -> None:
    path = next(p for p in corpus_files() if p.name == name)
    data = path.read_bytes()
    d = _core.dump(data)
    cuts: set[int] = {0, 1, 64, 127, 128, 131, 132, 136, 140}
    _boundaries(d["meta"], cuts)
    if d["transfer_syntax"] != "1.2.840.10008.1.2.1.99":  # offsets in the inflated stream
        _boundaries(d["dataset"], cuts)
    else:  # cut the deflate stream instead
        cuts.update(range(len(data) - 64, len(data)))
    whole_reads = pydicom_reads(data)
    outcomes = [_cut_check(data, c, plan, whole_reads) for c in sorted(cuts) if 0 <= c < len(data)]
    assert "refused" in outcomes


# ---- limits -----------------------------------------------------------------------------------


def test_limit_nesting_depth(plan: _core.Plan) -> None:
    def nested(depth: int) -> bytes:
        deep = b""
        for _ in range(depth):
            deep = mm.explicit(0x00081115, "SQ", mm.item(deep))
        return mm.part10(mm.small_dataset() + deep, mm.EXPLICIT_LE)

    ok = nested(mm.MAX_DEPTH)
    assert _core.dump(ok)
    read_all(_core.anonymize_bytes(ok, plan))
    with pytest.raises(errors.InvalidDicomError, match="nested deeper than 64 levels") as info:
        _core.anonymize_bytes(nested(mm.MAX_DEPTH + 1), plan)
    assert info.value.tag == 0x00081115


def test_limit_element_count() -> None:
    data = (MALFORMED / "element_count_bomb.dcm").read_bytes()
    with pytest.raises(errors.InvalidDicomError, match="more than 2000000 elements") as info:
        _core.dump(data)
    assert "of the inflated data set" in str(info.value)


def test_limit_inflate_ratio() -> None:
    """66 KiB that inflate to 65 MiB: refused at the 64 MiB floor (ratio far over 200)."""
    with pytest.raises(errors.InvalidDicomError, match="refused as a deflate bomb") as info:
        _core.dump((MALFORMED / "deflate_bomb.dcm").read_bytes())
    assert f"limit ({64 << 20} bytes)" in str(info.value)


_MEASURE = """
import resource, sys
from dicomscrub import _core, errors
data = open(sys.argv[1], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    _core.dump(data)
    print("accepted")
except errors.InvalidDicomError as e:
    print(e)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def test_limit_inflate_size_1gib_bomb(tmp_path: Path) -> None:
    """About 1 MiB that inflates to more than 1 GiB: refused once the output passes 200 times
    the input (the ratio cap), so memory stays far below the bomb's size."""
    bomb = mm.deflate_bomb((1 << 30) + (1 << 20))
    assert len(bomb) < 1_200_000
    path = tmp_path / "bomb.dcm"
    path.write_bytes(bomb)
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1] / "python",
    )
    assert run.returncode == 0, run.stderr
    message, grown_kib = run.stdout.strip().splitlines()
    assert "refused as a deflate bomb" in message
    assert f"limit ({(len(bomb) - len(mm.part10(b'', mm.DEFLATED))) * 200} bytes)" in message
    assert int(grown_kib) < 600 * 1024, f"grew by {grown_kib} KiB"


def test_limit_header_size() -> None:
    """A File Meta of 2 MiB (a giant (0002,0102) Private Information) is refused: File Meta
    values are read into memory."""
    big = mm.explicit(0x00020102, "OB", bytes(2 << 20))
    data = mm.part10(mm.small_dataset(), mm.EXPLICIT_LE, meta_extra=big)
    with pytest.raises(errors.InvalidDicomError) as info:
        _core.dump(data)
    assert "header larger than 1048576 bytes at element (0002,0102)" in str(info.value)
    assert info.value.tag == 0x00020102


def test_limit_length_past_the_input() -> None:
    data = (MALFORMED / "length_past_eof_32bit.dcm").read_bytes()
    with pytest.raises(errors.InvalidDicomError, match="declared 2147483632 bytes, 16 available"):
        _core.dump(data)


def test_deflate_stream_cut_anywhere(plan: _core.Plan) -> None:
    """Every prefix of a deflated data set is refused (a cut stream has no final block)."""
    body = mm.deflate(mm.small_dataset() + mm.explicit(0x00204000, "LT", b"comment " * 64))
    whole = mm.part10(body, mm.DEFLATED)
    read_all(_core.anonymize_bytes(whole, plan))
    head = len(mm.part10(b"", mm.DEFLATED))
    for cut in range(head + 1, len(whole)):
        with pytest.raises(errors.InvalidDicomError):
            _core.anonymize_bytes(whole[:cut], plan)


def test_odd_lengths_are_kept_verbatim_or_rewritten_even(plan: _core.Plan) -> None:
    """An odd-length value a plan does not touch is copied as it is; one it edits is written
    with an even length."""
    data = (MALFORMED / "odd_length.dcm").read_bytes()
    keep = _core.Plan(json.dumps({"version": 1, "tags": {"00100010": {"action": "empty"}}}), KEY)
    out = _core.anonymize_bytes(data, keep)
    assert b"LO\x09\x00Head CT 1" in out
    edit = _core.Plan(
        json.dumps({"version": 1, "tags": {"00081030": {"action": "replace", "value": "X"}}}),
        KEY,
    )
    out = _core.anonymize_bytes(data, edit)
    assert b"LO\x02\x00X " in out
    read_all(out)


def test_implicit_element_never_written_first() -> None:
    """Regression (rewrite fuzz target): an explicit VR data set whose first element is removed
    while the next one was read as implicit VR is refused, not written garbled."""
    ds = mm.explicit(0x00080050, "SH", b"ACC1") + mm.implicit(0x00100010, b"Doe^Jane")
    data = mm.part10(ds + mm.explicit(0x00100020, "LO", b"PID1"), mm.EXPLICIT_LE)
    remove = _core.Plan(json.dumps({"version": 1, "tags": {"00080050": {"action": "remove"}}}), KEY)
    with pytest.raises(errors.InvalidDicomError, match="would be written first") as info:
        _core.anonymize_bytes(data, remove)
    assert info.value.tag == 0x00100010
    assert info.value.offset == len(mm.part10(b"", mm.EXPLICIT_LE)) + 12


def test_meta_length_lie_is_harmless(plan: _core.Plan) -> None:
    """A File Meta group length that lies: the group is read element by element, as pydicom."""
    data = bytearray((MALFORMED / "ts_unknown_uid.dcm").read_bytes())
    struct.pack_into("<I", data, 140, 0xFFFFFF00)
    out = _core.anonymize_bytes(bytes(data), plan)
    read_all(out)


def test_no_panic_text_escapes(plan: _core.Plan) -> None:
    """Errors are dicomscrub exceptions with a message, never a PanicException's text."""
    for name in NAMES:
        data = (MALFORMED / name).read_bytes()
        for fn in (lambda d: _core.anonymize_bytes(d, plan), _core.dump):
            try:
                fn(data)
            except errors.DicomScrubError as e:
                assert "panicked" not in str(e) and "internal error" not in str(e), name


def test_zlib_reference_for_the_bomb() -> None:
    """The committed bomb is what its name says (Python's zlib agrees on the sizes)."""
    data = (MALFORMED / "deflate_bomb.dcm").read_bytes()
    head = len(mm.part10(b"", mm.DEFLATED))
    d = zlib.decompressobj(-15)
    n, chunk = 0, data[head:]
    while out := d.decompress(chunk, 1 << 24):
        n += len(out)
        chunk = d.unconsumed_tail
    assert d.eof
    assert n > 64 << 20 and len(data) < 70_000


@pytest.mark.parametrize("vr", ["OB", "UN"])
def test_identifier_with_a_lying_vr_is_not_kept(vr: str, plan: _core.Plan) -> None:
    """A Patient's Name written with VR OB (or UN of 64 KiB and more, which pydicom keeps as UN)
    is emptied: a pseudonym rule on a VR that cannot hold text never keeps the value."""
    name = b"Secretname^Jane " * (5000 if vr == "UN" else 1)
    ds = (
        mm.explicit(0x00080016, "UI", mm.pad(mm.SOP_CLASS, b"\0"))
        + mm.explicit(0x00100010, vr, name)
        + mm.explicit(0x00100020, "LO", b"PID1")
    )
    out = _core.anonymize_bytes(mm.part10(ds, mm.EXPLICIT_LE), plan)
    assert b"Secretname" not in out
