"""Hypothesis drives the Python entry points of the core with mutated corpus files: byte flips,
insertions, deletions, cuts, copied runs and lies in the length fields of real elements. Only
``dicomscrub.errors.DicomScrubError`` may come out: never a panic, a SystemError, another
exception or a hang; what is accepted is written to an output that parses again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomscrub import Profile, _core, errors

from corpus import corpus_files

KEY = b"dicomscrub test key: not a secret"
MALFORMED = Path(__file__).parent / "data" / "malformed"
#: examples per test: DICOMSCRUB_FUZZ_EXAMPLES, else 5 times the Hypothesis profile's count
EXAMPLES = int(os.environ.get("DICOMSCRUB_FUZZ_EXAMPLES", 0)) or 5 * settings.default.max_examples
#: one call may not take longer (a hang is a failure too)
MAX_SECONDS = 10.0


def _seeds() -> list[bytes]:
    small = sorted(
        (p for p in corpus_files() if p.stat().st_size <= 64 * 1024),
        key=lambda p: (p.stat().st_size, p.name),
    )
    seeds = [p.read_bytes() for p in small[::3]]  # a third of the small files, every syntax
    seeds += [
        p.read_bytes() for p in sorted(MALFORMED.glob("*.dcm")) if p.stat().st_size <= 8 * 1024
    ]
    return seeds


SEEDS = _seeds()
PLAN = _core.Plan(Profile.basic().to_json(), KEY)

LENGTHS = [0, 1, 2, 3, 7, 0xFF, 0xFFFE, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF]


def _length_fields(data: bytes) -> list[tuple[int, int, bool]]:
    """(position, width, big endian) of the length fields of the elements of ``data``."""
    try:
        d = _core.dump(data)
    except errors.DicomScrubError:
        return []
    if d["transfer_syntax"] == "1.2.840.10008.1.2.1.99":  # offsets in the inflated stream
        d["dataset"] = []
    big = d["transfer_syntax"] == "1.2.840.10008.1.2.2"
    out: list[tuple[int, int, bool]] = []

    def walk(elements: list[dict], be: bool) -> None:
        for e in elements:
            o = e["offset"]
            if data[o + 4 : o + 6] == e["vr"].encode():
                long = e["vr"] in (
                    "OB",
                    "OD",
                    "OF",
                    "OL",
                    "OV",
                    "OW",
                    "SQ",
                    "SV",
                    "UC",
                    "UN",
                    "UR",
                    "UT",
                    "UV",
                )
                out.append((o + 8, 4, be) if long else (o + 6, 2, be))
            else:
                out.append((o + 4, 4, be))
            for item in e["items"] or []:
                if item:
                    out.append((item[0]["offset"] - 4, 4, be))  # the item's length
                walk(item, be)

    walk(d["meta"], False)
    walk(d["dataset"], big)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    fields = _length_fields(bytes(data))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        kind = draw(
            st.sampled_from(["flip", "byte", "insert", "delete", "cut", "copy", "length", "length"])
        )
        pos = draw(st.integers(0, max(n - 1, 0)))
        if kind == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and n:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "cut":
            del data[pos:]
        elif kind == "copy" and n:
            start = draw(st.integers(0, n - 1))
            data[pos:pos] = data[start : start + draw(st.integers(1, 64))]
        elif kind == "length" and fields:
            at, width, be = draw(st.sampled_from(fields))
            value = draw(st.sampled_from(LENGTHS) | st.integers(0, 2**32 - 1))
            value &= (1 << (8 * width)) - 1
            if at + width <= len(data):
                data[at : at + width] = value.to_bytes(width, "big" if be else "little")
    return bytes(data)


def _only_dicomscrub_errors(fn, data: bytes):
    start = time.monotonic()
    try:
        result = fn(data)
    except errors.DicomScrubError as e:
        result = e
        assert "internal error" not in str(e) and "panicked" not in str(e), str(e)
    except BaseException as e:  # a PanicException is a BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        raise AssertionError(f"{type(e).__name__} escaped: {e}") from e
    took = time.monotonic() - start
    assert took < MAX_SECONDS, f"took {took:.1f} s"
    return result


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(mutated())
def test_anonymize_bytes_mutated(data: bytes) -> None:
    out = _only_dicomscrub_errors(lambda d: _core.anonymize_bytes(d, PLAN), data)
    if isinstance(out, bytes):
        _core.dump(out)  # what is written parses again
        assert _core.anonymize_bytes(out, PLAN)


@FUZZ
@given(mutated())
def test_dump_mutated(data: bytes) -> None:
    _only_dicomscrub_errors(_core.dump, data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    for fn in (_core.dump, lambda d: _core.anonymize_bytes(d, PLAN)):
        _only_dicomscrub_errors(fn, data)
        _only_dicomscrub_errors(fn, b"\0" * 128 + b"DICM" + data)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_buffer_types(kind: type) -> None:
    """bytearray and memoryview inputs behave as bytes do."""
    for data in SEEDS[:10]:
        a = _only_dicomscrub_errors(lambda d: _core.anonymize_bytes(d, PLAN), data)
        b = _only_dicomscrub_errors(lambda d: _core.anonymize_bytes(kind(d), PLAN), data)
        assert type(a) is type(b)
        if isinstance(a, bytes):
            assert a == b
