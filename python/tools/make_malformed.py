"""Make the malformed-input corpus ``tests/data/malformed/`` and its manifest ``expected.json``.

Each case is a small file that a PACS or a careless tool could hand an anonymizer: cut at a
structural boundary of a real small file, lying lengths, missing delimiters, a transfer syntax
that does not match the data, a deflate bomb, ... The manifest says what dicomscrub must do
with it: ``"outcome": "ok"`` where it reads the file as pydicom does, else the exception class
of :mod:`dicomscrub.errors`, a substring of the message (naming the offset and, where one
applies, the tag) and the offset the exception carries.

Run ``python python/tools/make_malformed.py`` to rewrite the folder (the output is deterministic);
``--check`` compares instead of writing (exit 1 on a difference); ``--explore`` prints what
dicomscrub and pydicom make of each case.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "malformed"

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}

# The limits of the core (rust/dicomscrub-core/src/parse.rs, Limits::default()).
MAX_DEPTH = 64
MAX_ELEMENTS = 2_000_000
INFLATE_RATIO_FLOOR = 64 << 20  # the inflate ratio is checked past this many bytes
MAX_INFLATE_RATIO = 200


# ---- encoders ---------------------------------------------------------------------------------


def tag_bytes(tag: int, little: bool = True) -> bytes:
    return struct.pack("<HH" if little else ">HH", tag >> 16, tag & 0xFFFF)


def explicit(
    tag: int, vr: str, value: bytes, *, length: int | None = None, little: bool = True
) -> bytes:
    """An explicit VR element; ``length`` overrides the length field (a lie)."""
    n = len(value) if length is None else length
    e = "<" if little else ">"
    if vr in LONG_VRS:
        return tag_bytes(tag, little) + vr.encode() + b"\0\0" + struct.pack(e + "I", n) + value
    return tag_bytes(tag, little) + vr.encode() + struct.pack(e + "H", n) + value


def implicit(tag: int, value: bytes, *, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return tag_bytes(tag) + struct.pack("<I", n) + value


UNDEFINED = 0xFFFFFFFF


def item(content: bytes, *, length: int | None = None) -> bytes:
    return implicit(0xFFFEE000, content, length=length)


ITEM_DELIM = implicit(0xFFFEE00D, b"")
SEQ_DELIM = implicit(0xFFFEE0DD, b"")


def undefined_seq(tag: int, items: list[bytes], *, vr: str = "SQ", close: bool = True) -> bytes:
    """An undefined-length sequence of undefined-length items (delimiters unless ``close`` is
    false)."""
    body = b"".join(item(i, length=UNDEFINED) + (ITEM_DELIM if close else b"") for i in items)
    return explicit(tag, vr, body, length=UNDEFINED) + (SEQ_DELIM if close else b"")


def pad(v: bytes, byte: bytes = b" ") -> bytes:
    return v + byte if len(v) % 2 else v


SOP_CLASS = b"1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
SOP_INSTANCE = b"1.2.826.0.1.3680043.8.498.1"


def part10(dataset: bytes, ts: str | bytes, *, meta_extra: bytes = b"") -> bytes:
    """Preamble, ``DICM`` and a File Meta naming ``ts``, then ``dataset`` as given."""
    tsb = ts.encode() if isinstance(ts, str) else ts
    meta = (
        explicit(0x00020001, "OB", b"\0\1")
        + explicit(0x00020002, "UI", pad(SOP_CLASS, b"\0"))
        + explicit(0x00020003, "UI", pad(SOP_INSTANCE, b"\0"))
        + explicit(0x00020010, "UI", pad(tsb, b"\0"))
        + meta_extra
    )
    head = b"\0" * 128 + b"DICM" + explicit(0x00020000, "UL", struct.pack("<I", len(meta)))
    return head + meta + dataset


def small_dataset(little: bool = True) -> bytes:
    """A few identifying elements, explicit VR."""
    return b"".join(
        explicit(t, vr, pad(v), little=little)
        for t, vr, v in [
            (0x00080016, "UI", SOP_CLASS + b"\0"),
            (0x00080018, "UI", SOP_INSTANCE + b"\0"),
            (0x00080020, "DA", b"20240131"),
            (0x00100010, "PN", b"Doe^Jane"),
            (0x00100020, "LO", b"PID-0042"),
        ]
    )


def small_dataset_implicit() -> bytes:
    return b"".join(
        implicit(t, pad(v))
        for t, v in [
            (0x00080016, SOP_CLASS + b"\0"),
            (0x00080018, SOP_INSTANCE + b"\0"),
            (0x00080020, b"20240131"),
            (0x00100010, b"Doe^Jane"),
            (0x00100020, b"PID-0042"),
        ]
    )


def deflate(data: bytes, level: int = 9) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def deflate_bomb(inflated_size: int) -> bytes:
    """A deflated explicit VR little endian file whose data set inflates to ``inflated_size``
    bytes: one private OB element of zeros (deflate's best ratio is about 1032:1)."""
    value_len = inflated_size - 12 - len(small_dataset())
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [c.compress(small_dataset() + explicit(0x00091010, "OB", b"", length=value_len))]
    chunk = bytes(1 << 20)
    left = value_len
    while left > 0:
        n = min(left, len(chunk))
        parts.append(c.compress(chunk[:n]))
        left -= n
    parts.append(c.flush())
    body = b"".join(parts)
    return part10(pad(body, b"\0"), DEFLATED)


# ---- the real small file the truncations cut ----------------------------------------------------


def pydicom_file(name: str) -> bytes:
    import pydicom.data

    return (Path(pydicom.data.__file__).parent / "test_files" / name).read_bytes()


# ---- cases ----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    data: bytes
    outcome: str  # "ok" or an exception class name of dicomscrub.errors
    message: str = ""  # a substring of the message
    offset: int | None = None  # the exception's offset
    tag: int | None = None  # the exception's tag
    why: str = ""
    extra: dict = field(default_factory=dict)

    def manifest(self) -> dict:
        d: dict = {"outcome": self.outcome}
        if self.outcome != "ok":
            d["message"] = self.message
            d["offset"] = self.offset
            d["tag"] = None if self.tag is None else f"{self.tag:08X}"
        d["why"] = self.why
        d.update(self.extra)
        return d


def err(
    name: str,
    data: bytes,
    message: str,
    offset: int,
    *,
    tag: int | None = None,
    cls: str = "InvalidDicomError",
    why: str = "",
) -> Case:
    return Case(name, data, cls, message, offset, tag, why)


def ok(name: str, data: bytes, why: str) -> Case:
    return Case(name, data, "ok", why=why)


def tagname(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def truncated(
    name: str, data: bytes, cut: int, tag: int | None, offset: int, declared: int, why: str
) -> Case:
    """``data[:cut]``: the reader stops at ``offset`` wanting ``declared`` bytes, with
    ``cut - offset`` left (for a header, ``offset`` is where the missing field starts)."""
    what = f"element {tagname(tag)}" if tag is not None else "data"
    msg = (
        f"truncated {what} at offset {offset:#x}: declared {declared} bytes, "
        f"{cut - offset} available"
    )
    return err(name, data[:cut], msg, offset, tag=tag, why=why)


def cases() -> list[Case]:
    out: list[Case] = []

    # -- not DICOM at all
    out += [
        err(
            "empty.dcm", b"", "not a DICOM file: empty file (at offset 0x0)", 0, why="an empty file"
        ),
        err(
            "text.dcm",
            b"Patient: Jane Doe\nDOB 1970-01-01\nThis is a plain text report.\n" * 4,
            "not a DICOM file: no DICM prefix",
            0,
            why="a text file named .dcm",
        ),
        err(
            "pdf.dcm",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
            + b"\0" * 200
            + b"%%EOF\n",
            "not a DICOM file: no DICM prefix",
            0,
            why="PDF bytes named .dcm",
        ),
        err(
            "zeros.dcm",
            bytes(4096),
            "not a DICOM file: no DICM prefix and the data begins with zeros",
            0,
            why="all zeros (no DICM at 128, no element at 0)",
        ),
        err(
            "dicm_only_no_preamble.dcm",
            b"DICM",
            "not a DICOM file",
            0,
            why="the four bytes DICM alone",
        ),
        ok(
            "dicm_nothing_after.dcm",
            b"\0" * 128 + b"DICM",
            why="preamble and DICM, nothing after: an empty data set, as pydicom reads it",
        ),
    ]

    # -- truncations of a real small file: JPEG baseline, explicit VR LE, defined-length
    #    sequences, encapsulated pixel data (offsets: see `--explore` or the dump of the file)
    jpeg = pydicom_file("SC_rgb_small_odd_jpeg.dcm")
    assert len(jpeg) == 2044, "pydicom's SC_rgb_small_odd_jpeg.dcm changed"
    px = 0x7FE00010
    out += [
        err(
            "trunc_in_preamble.dcm",
            jpeg[:64],
            "not a DICOM file",
            0,
            why="cut inside the 128-byte preamble",
        ),
        err("trunc_in_dicm.dcm", jpeg[:130], "not a DICOM file", 0, why="cut inside DICM"),
        truncated(
            "trunc_in_meta_header.dcm",
            jpeg,
            154,
            0x00020001,
            152,
            4,
            why="cut inside the 12-byte header of (0002,0001) (at 144): its 4-byte "
            "length field is incomplete",
        ),
        err(
            "trunc_in_meta_value.dcm",
            jpeg[:170],
            "truncated element (0002,0002) at offset 0x9e: declared 26 bytes, 4 available",
            158,
            tag=0x00020002,
            why="cut inside the value of (0002,0002)",
        ),
        ok(
            "trunc_after_meta.dcm",
            jpeg[:344],
            why="the File Meta complete, no data set: pydicom reads an empty data set, and so "
            "does dicomscrub (nothing in it is damaged; the output holds no data set)",
        ),
        truncated(
            "trunc_in_element_header.dcm",
            jpeg,
            716,
            0x00082112,
            714,
            4,
            why="cut inside the 12-byte header of a sequence (at 706)",
        ),
        err(
            "trunc_in_value.dcm",
            jpeg[:1300],
            "truncated element (0020,4000) at offset 0x4ce: declared 268 bytes, 62 available",
            1230,
            tag=0x00204000,
            why="cut inside the value of (0020,4000) LT",
        ),
        err(
            "trunc_in_sequence.dcm",
            jpeg[:760],
            "truncated element (0008,2112) at offset 0x2c2: declared 182 bytes, 42 available",
            706,
            tag=0x00082112,
            why="cut inside a defined-length sequence",
        ),
        err(
            "trunc_in_nested_item.dcm",
            jpeg[:850],
            "truncated element (0008,2112) at offset 0x2c2: declared 182 bytes, 132 available",
            706,
            tag=0x00082112,
            why="cut inside an item of a nested sequence (the outer length tells first)",
        ),
        truncated(
            "trunc_in_pixel_header.dcm",
            jpeg,
            1696,
            px,
            1694,
            4,
            why="cut inside the 12-byte header of encapsulated (7FE0,0010) (at 1686)",
        ),
        truncated(
            "trunc_in_offset_table.dcm",
            jpeg,
            1704,
            px,
            1698,
            8,
            why="cut inside the item header of the basic offset table",
        ),
        err(
            "trunc_in_fragment.dcm",
            jpeg[:1800],
            "truncated element (7FE0,0010) at offset 0x6ae: declared 318 bytes, 82 available",
            1710,
            tag=px,
            why="cut inside a pixel data fragment",
        ),
        truncated(
            "trunc_before_seq_delimiter.dcm",
            jpeg,
            2036,
            px,
            2036,
            8,
            why="fragments complete, the sequence delimiter missing",
        ),
        truncated(
            "trunc_in_seq_delimiter.dcm",
            jpeg,
            2040,
            px,
            2036,
            8,
            why="cut inside the sequence delimiter of the fragments",
        ),
        ok(
            "trunc_at_element_boundary.dcm",
            jpeg[:1506],
            why="cut exactly between two top-level elements: a shorter data set that pydicom "
            "reads the same way (nothing in it is damaged)",
        ),
        ok(
            "trunc_short_tail.dcm",
            jpeg[:1510],
            why="4 bytes after the last whole element: fewer than a header, dropped as pydicom "
            "does",
        ),
    ]
    # the cut at 1510 leaves 4 bytes of a header: pydicom stops reading there too
    # -- truncations inside undefined-length sequences and items (implicit VR)
    nested = pydicom_file("nested_priv_SQ.dcm")
    assert len(nested) == 343, "pydicom's nested_priv_SQ.dcm changed"
    out += [
        err(
            "trunc_in_undefined_item.dcm",
            nested[:270],
            "truncated element (0001,0001) at offset 0x104: declared 16 bytes, 2 available",
            260,
            tag=0x00010001,
            why="cut inside a value of an undefined-length item",
        ),
        err(
            "trunc_in_undefined_sequence.dcm",
            nested[: 244 + 8 + 8],
            "truncated data at offset 0x104: declared 8 bytes, 0 available",
            260,
            why="cut after the item header of a nested undefined-length sequence",
        ),
    ]

    # -- lying lengths
    ds = small_dataset()
    base = part10(ds, EXPLICIT_LE)
    at = len(base)
    out += [
        err(
            "length_past_eof.dcm",
            base + explicit(0x00081030, "LO", b"Head CT", length=0x200),
            f"truncated element (0008,1030) at offset {at:#x}: declared 512 bytes, 7 available",
            at,
            tag=0x00081030,
            why="a 16-bit length longer than the file",
        ),
        err(
            "length_past_eof_32bit.dcm",
            base + explicit(0x7FE00010, "OB", b"\0" * 16, length=0x7FFFFFF0),
            f"truncated element (7FE0,0010) at offset {at:#x}: declared 2147483632 bytes",
            at,
            tag=px,
            why="a 32-bit length of 2 GiB in a small file",
        ),
    ]
    seq_at = at
    inner = explicit(0x00081150, "UI", pad(SOP_CLASS, b"\0"))
    out += [
        err(
            "item_longer_than_sequence.dcm",
            base
            + explicit(0x00081115, "SQ", item(inner, length=len(inner) + 40), length=8 + len(inner))
            + explicit(0x00200010, "SH", b"1 "),
            f"element (0008,1115) at offset {seq_at + 12:#x} overruns its item or sequence: "
            f"declared {len(inner) + 40} bytes, {len(inner)} left",
            seq_at + 12,
            tag=0x00081115,
            why="an item longer than its defined-length sequence",
        ),
        err(
            "element_longer_than_item.dcm",
            base
            + explicit(
                0x00081115, "SQ", item(explicit(0x00081150, "UI", pad(SOP_CLASS, b"\0"), length=60))
            )
            + explicit(0x00200010, "SH", b"1 "),
            f"element (0008,1150) at offset {seq_at + 20:#x} overruns its item or sequence: "
            "declared 60 bytes, 26 left",
            seq_at + 20,
            tag=0x00081150,
            why="an element longer than its defined-length item",
        ),
        err(
            "undefined_item_no_delimiter.dcm",
            base + undefined_seq(0x00081115, [inner], close=False),
            f"truncated data at offset {seq_at + 12 + 8 + len(inner):#x}: declared 8 bytes, 0 "
            "available",
            seq_at + 12 + 8 + len(inner),
            why="undefined-length sequence and item, the file ends without either delimiter",
        ),
        err(
            "undefined_sequence_no_delimiter.dcm",
            base + explicit(0x00081115, "SQ", item(inner), length=UNDEFINED),
            f"truncated element (0008,1115) at offset {seq_at + 12 + 8 + len(inner):#x}: "
            "declared 8 bytes, 0 available",
            seq_at + 12 + 8 + len(inner),
            tag=0x00081115,
            why="undefined-length sequence of a whole item, no sequence delimiter",
        ),
        err(
            "dataset_ends_inside_sequence.dcm",
            base + explicit(0x00081115, "SQ", item(inner), length=200),
            f"truncated element (0008,1115) at offset {seq_at:#x}: declared 200 bytes",
            seq_at,
            tag=0x00081115,
            why="a defined-length sequence longer than the rest of the file",
        ),
    ]

    # -- delimiters where none belongs
    tail = explicit(0x00200010, "SH", b"1 ") + explicit(0x7FE00010, "OB", b"\0" * 16)
    out += [
        err(
            "stray_item_delimiter.dcm",
            base + ITEM_DELIM + tail,
            f"unexpected delimiter element (FFFE,E00D) at offset {at:#x}",
            at,
            tag=0xFFFEE00D,
            why="an item delimiter at the top level with elements after it: "
            "pydicom stops reading there and drops the rest (the pixel "
            "data); dicomscrub refuses rather than lose it",
        ),
        err(
            "stray_sequence_delimiter.dcm",
            base + SEQ_DELIM + tail,
            f"unexpected delimiter element (FFFE,E0DD) at offset {at:#x}",
            at,
            tag=0xFFFEE0DD,
            why="a sequence delimiter at the top level",
        ),
        err(
            "stray_item.dcm",
            base + item(b"") + tail,
            f"unexpected delimiter element (FFFE,E000) at offset {at:#x}",
            at,
            tag=0xFFFEE000,
            why="an item tag at the top level",
        ),
        err(
            "delimiter_in_defined_item.dcm",
            base + explicit(0x00081115, "SQ", item(inner + ITEM_DELIM)),
            f"unexpected delimiter element (FFFE,E00D) at offset {seq_at + 20 + len(inner):#x}",
            seq_at + 20 + len(inner),
            tag=0xFFFEE00D,
            why="an item delimiter inside a defined-length item",
        ),
        err(
            "not_an_item_in_sequence.dcm",
            base + explicit(0x00081115, "SQ", inner),
            f"expected an item tag (FFFE,E000) in sequence, found (0008,1150) at offset "
            f"{seq_at + 12:#x}",
            seq_at + 12,
            tag=0x00081115,
            why="a sequence whose content is an element, not an item",
        ),
    ]

    # -- the File Meta names the wrong transfer syntax
    out += [
        ok(
            "ts_explicit_data_implicit.dcm",
            part10(small_dataset_implicit(), EXPLICIT_LE),
            why="meta says explicit VR, the data set is implicit: pydicom sees that the first "
            "element has no VR and reads implicit; so does dicomscrub",
        ),
        ok(
            "ts_implicit_data_explicit.dcm",
            part10(small_dataset(), IMPLICIT_LE),
            why="meta says implicit VR, the data set is explicit: read as explicit, as pydicom",
        ),
        err(
            "ts_big_endian_data_little.dcm",
            part10(small_dataset(), EXPLICIT_BE),
            f"truncated element (0800,1600) at offset {len(part10(b'', EXPLICIT_BE)):#x}: "
            "declared 6656 bytes",
            len(part10(b"", EXPLICIT_BE)),
            tag=0x08001600,
            why="meta says big endian, the data set is little endian: the first length read "
            "big endian runs past the file (pydicom fails the same way)",
        ),
        err(
            "ts_little_endian_data_big.dcm",
            part10(small_dataset(little=False), EXPLICIT_LE),
            f"truncated element (0800,1600) at offset {len(part10(b'', EXPLICIT_LE)):#x}: "
            "declared 6656 bytes",
            len(part10(b"", EXPLICIT_LE)),
            tag=0x08001600,
            why="meta says little endian, the data set is big endian",
        ),
        err(
            "ts_deflated_data_plain.dcm",
            part10(small_dataset(), DEFLATED),
            "deflated data set is damaged",
            None,  # type: ignore[arg-type]  # where the decoder gives up
            why="meta says deflated, the data set is not deflated",
        ),
        ok(
            "ts_unknown_uid.dcm",
            part10(small_dataset(), "1.2.3.4.5.6"),
            why="an unknown transfer syntax UID: read as explicit VR little endian "
            "(PS3.5 A.4, and what pydicom does), pixel data expected encapsulated",
        ),
    ]

    # -- deflate: a bomb and a cut stream
    bomb_size = INFLATE_RATIO_FLOOR + (1 << 20)
    bomb = deflate_bomb(bomb_size)
    meta_len = len(part10(b"", DEFLATED))
    out += [
        err(
            "deflate_bomb.dcm",
            bomb,
            "refused as a deflate bomb",
            None,  # type: ignore[arg-type]
            why=f"a deflated data set of {len(bomb) - meta_len} bytes that inflates to "
            f"{bomb_size} bytes (past the {INFLATE_RATIO_FLOOR >> 20} MiB floor, ratio "
            f"over {MAX_INFLATE_RATIO}): refused, not inflated into memory",
        ),
        err(
            "deflate_truncated.dcm",
            part10(
                deflate(small_dataset() + explicit(0x00204000, "LT", b"Some comment text " * 40))[
                    :120
                ],
                DEFLATED,
            ),
            "deflated data set is damaged at offset 0x17a: incomplete deflate stream",
            0x17A,  # the end of the file, where the stream stops short
            why="a deflate stream cut in the middle",
        ),
    ]

    # -- limits
    deep = b""
    for _ in range(100):
        deep = explicit(0x00081115, "SQ", item(deep))
    deep_ds = base + deep
    out += [
        err(
            "nesting_100.dcm",
            deep_ds,
            f"sequences nested deeper than {MAX_DEPTH} levels at element (0008,1115)",
            at + (MAX_DEPTH) * 20 + 12,
            tag=0x00081115,
            why="sequences nested 100 deep (the limit is 64)",
        ),
    ]
    # Two million and one zero-length elements, deflated (16 MiB inflate to a few KiB).
    one = explicit(0x00091010, "LO", b"")
    count_bomb = deflate(
        small_dataset() + explicit(0x00090010, "LO", b"BOMB") + one * (MAX_ELEMENTS + 1)
    )
    out += [
        err(
            "element_count_bomb.dcm",
            part10(pad(count_bomb, b"\0"), DEFLATED),
            f"more than {MAX_ELEMENTS} elements at element (0009,1010)",
            None,  # type: ignore
            tag=0x00091010,
            why="two million and one elements (deflated, a few KiB on disk): refused past the "
            "element limit",
        ),
    ]

    # -- odd lengths, VR/length mismatches, unknown VRs: read and kept as pydicom does
    out += [
        ok(
            "odd_length.dcm",
            part10(ds + explicit(0x00081030, "LO", b"Head"), EXPLICIT_LE)[:-6]
            + b"\x09\x00Head CT 1",
            why="a LO of odd "
            "length 9: pydicom reads it; kept as it is (only the elements a plan edits are "
            "rewritten, padded to even length)",
        ),
        ok(
            "us_3_bytes.dcm",
            part10(ds + explicit(0x00280010, "US", b"\x00\x02\x00"), EXPLICIT_LE),
            why="a US of 3 bytes (not a whole number of values): pydicom reads the raw bytes; "
            "kept verbatim (a plan that edits a binary VR empties it)",
        ),
        ok(
            "unknown_vr.dcm",
            part10(
                ds + explicit(0x00091010, "ZZ", b"ABCD") + explicit(0x00200010, "SH", b"1 "),
                EXPLICIT_LE,
            ),
            why="an explicit VR 'ZZ' that no standard defines: read with a 2-byte length as "
            "pydicom does, value kept as UN",
        ),
        ok(
            "vr_mismatch_ul_as_cs.dcm",
            part10(ds + explicit(0x00280010, "CS", b"512 "), EXPLICIT_LE),
            why="Rows written as CS: the VR as written is used (pydicom does the same)",
        ),
    ]

    # -- encapsulated pixel data without its delimiter
    jb = len(part10(ds, JPEG_BASELINE))  # where the pixel data element starts
    out += [
        err(
            "encapsulated_no_delimiter.dcm",
            part10(ds, JPEG_BASELINE)
            + explicit(px, "OB", b"", length=UNDEFINED)
            + item(b"")
            + item(b"\xff\xd8\xff\xd9" * 4),
            f"truncated element (7FE0,0010) at offset {jb + 12 + 8 + 8 + 16:#x}: "
            "declared 8 bytes, 0 available",
            jb + 12 + 8 + 8 + 16,
            tag=px,
            why="fragments, then the end of the file instead of a sequence delimiter",
        ),
        err(
            "encapsulated_lying_fragment.dcm",
            part10(ds, JPEG_BASELINE)
            + explicit(px, "OB", b"", length=UNDEFINED)
            + item(b"")
            + item(b"\xff\xd8\xff\xd9", length=4096)
            + SEQ_DELIM,
            f"truncated element (7FE0,0010) at offset {jb + 12 + 8:#x}: declared 4096 bytes",
            jb + 12 + 8,
            tag=px,
            why="a fragment whose length runs past the end of the file",
        ),
        err(
            "encapsulated_not_an_item.dcm",
            part10(ds, JPEG_BASELINE)
            + explicit(px, "OB", b"", length=UNDEFINED)
            + item(b"")
            + explicit(0x00100010, "PN", b"Doe^Jane")
            + SEQ_DELIM,
            f"expected an item tag (FFFE,E000) in sequence, found (0010,0010) at offset "
            f"{jb + 12 + 8:#x}",
            jb + 12 + 8,
            tag=px,
            why="something other than an item among the fragments",
        ),
    ]
    return out


# ---- writing, checking, exploring ---------------------------------------------------------------


def build() -> tuple[dict[str, bytes], dict[str, dict]]:
    files: dict[str, bytes] = {}
    manifest: dict[str, dict] = {}
    for c in cases():
        assert c.name not in files, c.name
        files[c.name] = c.data
        manifest[c.name] = c.manifest()
    return files, manifest


def manifest_text(manifest: dict[str, dict]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def write(files: dict[str, bytes], manifest: dict[str, dict]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        if old.name not in files and old.name != "expected.json":
            old.unlink()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    (OUT / "expected.json").write_text(manifest_text(manifest))
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files, {total} bytes, to {OUT}")


def check(files: dict[str, bytes], manifest: dict[str, dict]) -> int:
    bad = [n for n, d in files.items() if not (OUT / n).is_file() or (OUT / n).read_bytes() != d]
    if (OUT / "expected.json").read_text() != manifest_text(manifest):
        bad.append("expected.json")
    for n in bad:
        print(f"differs: {n}")
    return 1 if bad else 0


def explore(files: dict[str, bytes], manifest: dict[str, dict]) -> None:
    import io
    import warnings

    import pydicom

    from dicomscrub import _core

    def pyd(data: bytes) -> str:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(io.BytesIO(data), force=True)
                n = sum(1 for _ in ds.iterall())
            return f"ok ({n} elements)"
        except Exception as e:
            return f"{type(e).__name__}: {str(e)[:100]}"

    for name, data in files.items():
        try:
            d = _core.dump(data)
            got = f"ok ({len(d['dataset'])} top-level)"
        except Exception as e:
            got = f"{type(e).__name__}: {e}"
        print(
            f"{name} [{len(data)} B]\n  expected: {manifest[name]['outcome']} "
            f"{manifest[name].get('message', '')}\n  dicomscrub: {got}\n  pydicom: {pyd(data)}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the folder, write nothing")
    ap.add_argument("--explore", action="store_true", help="print what dicomscrub and pydicom do")
    args = ap.parse_args(argv)
    files, manifest = build()
    if args.explore:
        explore(files, manifest)
        return 0
    if args.check:
        return check(files, manifest)
    write(files, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
