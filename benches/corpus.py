"""The benchmark corpus: a tree of N DICOM files built from real files, cached by parameters.

Each file of the tree is a copy of a real file (taken round-robin over the sources, the sources
interleaved by transfer syntax so that even a small tree holds every syntax) in which pydicom
rewrote PatientID, PatientName, StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID (and the
File Meta's MediaStorageSOPInstanceUID) to values of its own: every copy is a distinct patient,
study, series and instance. The transfer syntax, the preamble / File Meta layout and the pixel
data bytes of the source are kept, and each source's first copy is read back to prove it.

A tree lives in ``<cache>/tree-<N>-<hash>/`` with ``files/`` (the DICOM files, 100 per folder)
and ``manifest.json`` (per file: relative path, size, source, transfer syntax, the PatientName /
PatientID an engine must change, and a digest of each pixel data element). The hash covers the
parameters and the sources (paths, sizes, modification times), so a changed source rebuilds.

The optional large tree (``build_large``) holds a few multi-frame files built by repeating the
frames of a real file (native and encapsulated), one folder per file, for the large-file
figures (wall against ``cp``, peak RSS at 100 MB and 500 MB).

Usage: ``python benches/corpus.py [--files N] [--src DIR | --corpus samples|real] [--large]
[--cache DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import importlib.util
import io
import json
import os
import shutil
import struct
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
DEFAULT_CACHE = BENCHES / ".corpus"
SAMPLES = REPO / "samples"
FORMAT_VERSION = 3
PER_FOLDER = 100

#: The elements whose bytes an engine must leave identical (Float / Double Float / Pixel Data).
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


def _quiet(fn: Any) -> Any:
    """Run ``fn`` with warnings silenced (pydicom warns on every odd value of real files)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return wrapper


def digest(data: bytes | memoryview) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# ----------------------------------------------------------------------------------- sources


def _tests_corpus() -> Any | None:
    """tests/corpus.py of the clone (the project's real-file corpus), if there is one."""
    path = REPO / "tests" / "corpus.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_dicomscrub_tests_corpus", path)
    if spec is None or spec.loader is None:
        return None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_TESTS = _tests_corpus()


def scan(root: Path) -> list[Path]:
    """The DICOM-looking files under ``root``, sorted (the tests' corpus discovery)."""
    if _TESTS is None:
        raise RuntimeError(f"{REPO / 'tests' / 'corpus.py'} is missing: run from a clone")
    return list(_TESTS.dicom_files(root))


def real_corpus() -> list[Path]:
    """The real-file corpus of the tests (pydicom, pydicom-data, deid-data), or pydicom's own
    test files alone when the test extra is not installed."""
    mod = _TESTS
    if mod is not None:
        try:
            return list(mod.readable_files())
        except RuntimeError:  # fewer than 200 files: no pydicom-data / deid-data
            refused = set(mod.REFUSED)
        else:  # pragma: no cover
            refused = set()
    else:
        refused = set()
    import pydicom.data

    root = Path(pydicom.data.__file__).parent / "test_files"
    return [p for p in scan(root) if p.name not in refused]


REAL = "real corpus (pydicom, pydicom-data, deid-data)"


def source_files(src: Path | None = None, prefer: str = "samples") -> tuple[list[Path], str]:
    """The files a tree is built from and where they came from: ``src`` if given, else the
    bundled ``samples/`` (``prefer="samples"``, when there are any) or the real-file corpus."""
    if src is not None:
        files = scan(Path(src))
        if not files:
            raise ValueError(f"no DICOM file under {src}")
        return files, str(src)
    if prefer not in ("samples", "real"):
        raise ValueError(f"unknown corpus {prefer!r} (samples or real)")
    if prefer == "samples" and SAMPLES.is_dir():
        files = scan(SAMPLES)
        if files:
            return files, "samples"
    return real_corpus(), REAL


def _part10(path: Path) -> bool:
    """Whether pydicom reads the file without ``force`` (preamble and ``DICM``)."""
    with open(path, "rb") as f:
        return f.read(132)[128:132] == b"DICM"


# ------------------------------------------------------------------------------- templates


@dataclasses.dataclass
class Template:
    path: Path
    transfer_syntax: str  # "" for a data set without File Meta
    pixels: dict[str, str | None]  # tag hex -> digest of the raw value bytes
    ds: Any = None  # the pydicom data set, loaded on first use


def _pixel_digests(ds: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for tag in PIXEL_TAGS:
        elem = ds.get(tag)
        value = None if elem is None else elem.value
        out[f"{tag:08X}"] = None if value is None else digest(bytes(value))
    return out


def _transfer_syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""


def _read(path: Path) -> Any:
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=True)


@_quiet
def load_templates(paths: Sequence[Path]) -> tuple[list[Template], list[dict[str, str]]]:
    """The usable sources, interleaved by transfer syntax, and the skipped ones with a reason."""
    by_ts: dict[str, list[Template]] = {}
    skipped = []
    for p in paths:
        try:
            ds = _read(p)
            if (
                str(ds.get("SOPClassUID", "")) == DICOMDIR_SOP_CLASS
                or "DirectoryRecordSequence" in ds
            ):
                skipped.append({"path": str(p), "reason": "DICOMDIR (not an instance)"})
                continue
            for _ in ds.iterall():  # every value converts
                pass
            t = Template(p, _transfer_syntax(ds), _pixel_digests(ds))
        except Exception as e:
            skipped.append({"path": str(p), "reason": f"pydicom cannot read it: {e!r}"[:200]})
            continue
        by_ts.setdefault(t.transfer_syntax, []).append(t)
    # round-robin over the transfer syntaxes (the most common first), each in path order
    groups = sorted(by_ts.values(), key=lambda g: (-len(g), g[0].transfer_syntax))
    out: list[Template] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out, skipped


def _uid(seed: str, i: int, what: str) -> str:
    """A deterministic UID under pydicom's root, shaped like the UIDs of real devices (many
    components: some engines refuse to hash a short ``2.25.<n>`` UID)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["dicomscrub-bench", seed, str(i), what]))


def _personalize(ds: Any, i: int, seed: str) -> tuple[str, str]:
    """Give the data set the identity of copy ``i``; return its (PatientName, PatientID)."""
    name, pid = f"BENCH^PATIENT{i:06d}", f"BENCH{i:06d}"
    ds.PatientName = name
    ds.PatientID = pid
    ds.StudyInstanceUID = _uid(seed, i, "study")
    ds.SeriesInstanceUID = _uid(seed, i, "series")
    ds.SOPInstanceUID = _uid(seed, i, "instance")
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return name, pid


def _write(ds: Any, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(path, enforce_file_format=False)


# ------------------------------------------------------------------------------------ trees


@dataclasses.dataclass
class Tree:
    """A built tree: ``root/files`` holds the DICOM files, ``manifest`` describes them."""

    root: Path
    manifest: dict[str, Any]

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.manifest["files"]

    @property
    def n_files(self) -> int:
        return len(self.manifest["files"])

    @property
    def total_bytes(self) -> int:
        return self.manifest["total_bytes"]

    @classmethod
    def load(cls, root: Path) -> Tree:
        return cls(root, json.loads((root / "manifest.json").read_text()))


def _cache_key(kind: str, params: dict[str, Any], sources: Iterable[Path]) -> str:
    h = hashlib.sha256(json.dumps({"v": FORMAT_VERSION, "kind": kind, **params}).encode())
    for p in sources:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def _finish(tmp: Path, final: Path, manifest: dict[str, Any]) -> Tree:
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    try:
        tmp.rename(final)
    except OSError:  # built concurrently by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return Tree.load(final)


@_quiet
def build_tree(
    n: int = 2000,
    *,
    src: Path | None = None,
    prefer: str = "samples",
    cache: Path = DEFAULT_CACHE,
    log: Any = None,
) -> Tree:
    """The tree of ``n`` files built from ``source_files(src, prefer)`` (cached)."""
    if n < 1:
        raise ValueError("a tree has at least one file")
    paths, origin = source_files(src, prefer)
    key = _cache_key("tree", {"n": n}, paths)
    final = Path(cache) / f"tree-{n}-{key}"
    if (final / "manifest.json").is_file():
        return Tree.load(final)
    t0 = time.monotonic()
    templates, skipped = load_templates(paths)
    if not templates:
        raise ValueError(f"no usable DICOM source in {origin}")
    tmp = Path(cache) / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files: list[dict[str, Any]] = []
    verified: set[int] = set()
    bad: set[int] = set()
    i = 0
    k = 0  # index of the next template to try
    while len(files) < n:
        live = [j for j in range(len(templates)) if j not in bad]
        if not live:
            raise ValueError(f"pydicom could not rewrite any source of {origin}")
        j = live[k % len(live)]
        k += 1
        t = templates[j]
        if t.ds is None:
            t.ds = _read(t.path)
        rel = f"d{i // PER_FOLDER:03d}/f{i:06d}.dcm"
        out = tmp / "files" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            name, pid = _personalize(t.ds, i, key)
            _write(t.ds, out)
            if j not in verified:  # the copy must keep the syntax and the pixel bytes
                back = _read(out)
                if _transfer_syntax(back) != t.transfer_syntax:
                    raise ValueError("pydicom changed the transfer syntax")
                if _pixel_digests(back) != t.pixels:
                    raise ValueError("pydicom changed the pixel data")
                verified.add(j)
        except Exception as e:
            out.unlink(missing_ok=True)
            bad.add(j)
            skipped.append(
                {"path": str(t.path), "reason": f"pydicom cannot rewrite it: {e!r}"[:200]}
            )
            t.ds = None
            continue
        files.append(
            {
                "rel": rel,
                "size": out.stat().st_size,
                "source": str(t.path),
                "transfer_syntax": t.transfer_syntax,
                "part10": _part10(out),
                "patient_name": name,
                "patient_id": pid,
                "pixels": t.pixels,
            }
        )
        i += 1
        if len(files) % (len(templates) or 1) == 0:
            for tt in templates:  # bound the memory of big trees: reload as needed
                tt.ds = None
        if log and len(files) % 500 == 0:
            log(f"corpus: {len(files)}/{n} files")
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "tree",
        "origin": origin,
        "n": n,
        "key": key,
        "sources_used": len({f["source"] for f in files}),
        "sources_skipped": skipped,
        "transfer_syntaxes": sorted({f["transfer_syntax"] for f in files}),
        "total_bytes": sum(f["size"] for f in files),
        "build_seconds": round(time.monotonic() - t0, 2),
        "files": files,
    }
    return _finish(tmp, final, manifest)


@_quiet
def tree_as_is(root: Path) -> Tree:
    """A manifest for an existing tree (benchmark it as it is, without copies): the values the
    engines must change are the files' own. Not cached; nothing is written under ``root``."""
    root = Path(root)
    files = []
    for p in scan(root):
        ds = _read(p)
        files.append(
            {
                "rel": str(p.relative_to(root)),
                "size": p.stat().st_size,
                "source": str(p),
                "transfer_syntax": _transfer_syntax(ds),
                "part10": _part10(p),
                "patient_name": str(ds.get("PatientName", "") or ""),
                "patient_id": str(ds.get("PatientID", "") or ""),
                "pixels": _pixel_digests(ds),
            }
        )
    if not files:
        raise ValueError(f"no DICOM file under {root}")
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "as-is",
        "origin": str(root),
        "n": len(files),
        "transfer_syntaxes": sorted({f["transfer_syntax"] for f in files}),
        "total_bytes": sum(f["size"] for f in files),
        "files": files,
    }
    return _AsIsTree(root, manifest)


class _AsIsTree(Tree):
    @property
    def files_dir(self) -> Path:
        return self.root


# ------------------------------------------------------------------------------ large files

EXPLICIT_LE = "1.2.840.10008.1.2.1"
ENCAPSULATED_PREFERRED = (
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
)
#: (label, size in MB, "native" | "encapsulated"): 1.1 GB in all.
DEFAULT_LARGE = (
    ("100MB-native", 100, "native"),
    ("500MB-native", 500, "native"),
    ("500MB-jpeg", 500, "encapsulated"),
)


def _frames_of(ds: Any) -> list[bytes]:
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        from pydicom.encaps import generate_frames

        return list(generate_frames(ds.PixelData, number_of_frames=n))
    data = bytes(ds.PixelData)
    size = len(data) // n
    return [data[k * size : (k + 1) * size] for k in range(n)]


def _pick_large_template(templates: Sequence[Template], kind: str) -> Template:
    best: tuple[int, Template] | None = None
    for t in templates:
        if t.pixels.get("7FE00010") is None:
            continue
        if kind == "native" and t.transfer_syntax != EXPLICIT_LE:
            continue
        if kind == "encapsulated" and t.transfer_syntax not in ENCAPSULATED_PREFERRED:
            continue
        ds = _read(t.path)
        if kind == "encapsulated":
            score = -ENCAPSULATED_PREFERRED.index(t.transfer_syntax) * 10**9 + len(ds.PixelData)
        else:
            if int(ds.get("BitsAllocated", 0) or 0) not in (8, 16):
                continue
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            # a real multi-frame file first (e.g. an ultrasound cine), then the largest frame
            score = (frames > 1) * 10**12 + len(ds.PixelData) // frames
        if best is None or score > best[0]:
            best = (score, t)
    if best is None:
        raise ValueError(f"no source for a large {kind} file")
    return best[1]


def _write_large(t: Template, out: Path, target: int, i: int, seed: str) -> dict[str, Any]:
    """Header by pydicom (without Pixel Data), then Pixel Data streamed frame by frame."""
    ds = _read(t.path)
    frames = _frames_of(ds)
    encapsulated = ds.file_meta.TransferSyntaxUID.is_encapsulated
    vr = ds["PixelData"].VR if not encapsulated else "OB"
    per_frame = sum(len(f) + (len(f) & 1) + (8 if encapsulated else 0) for f in frames) / len(
        frames
    )
    count = max(1, round(target / per_frame))
    for tag in [t_ for t_ in ds.keys() if t_ >= 0x7FE00010]:
        del ds[tag]
    ds.NumberOfFrames = count
    name, pid = _personalize(ds, i, seed)
    ds.preamble = ds.preamble or b"\0" * 128
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True)
    h = hashlib.blake2b(digest_size=16)
    with open(out, "wb") as f:
        f.write(buf.getvalue())
        if encapsulated:
            f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF))
            value = [struct.pack("<HHI", 0xFFFE, 0xE000, 0)]  # empty Basic Offset Table
            for k in range(count):
                frag = frames[k % len(frames)]
                if len(frag) & 1:
                    frag += b"\0"
                value.append(struct.pack("<HHI", 0xFFFE, 0xE000, len(frag)))
                value.append(frag)
                if len(value) > 256:
                    chunk = b"".join(value)
                    f.write(chunk)
                    h.update(chunk)
                    value = []
            chunk = b"".join(value)
            f.write(chunk)
            h.update(chunk)
            f.write(struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
        else:
            total = sum(len(frames[k % len(frames)]) for k in range(count))
            pad = total & 1
            f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr.encode(), 0, total + pad))
            for k in range(count):
                fr = frames[k % len(frames)]
                f.write(fr)
                h.update(fr)
            if pad:
                f.write(b"\0")
                h.update(b"\0")
    pixels = {f"{tag:08X}": None for tag in PIXEL_TAGS}
    pixels["7FE00010"] = h.hexdigest()
    return {"patient_name": name, "patient_id": pid, "pixels": pixels, "frames": count}


@_quiet
def build_large(
    sizes: Sequence[tuple[str, int, str]] = DEFAULT_LARGE,
    *,
    src: Path | None = None,
    prefer: str = "real",
    cache: Path = DEFAULT_CACHE,
    log: Any = None,
) -> Tree:
    """A few large multi-frame files (one folder each: ``files/<label>/<label>.dcm``), from
    frames of the real corpus by default (it has multi-frame native and JPEG files)."""
    paths, origin = source_files(src, prefer)
    key = _cache_key("large", {"sizes": [list(s) for s in sizes]}, paths)
    final = Path(cache) / f"large-{key}"
    if (final / "manifest.json").is_file():
        return Tree.load(final)
    t0 = time.monotonic()
    templates, _ = load_templates(paths)
    tmp = Path(cache) / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    files = []
    for i, (label, mb, kind) in enumerate(sizes):
        t = _pick_large_template(templates, kind)
        rel = f"{label}/{label}.dcm"
        out = tmp / "files" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if log:
            log(f"corpus: writing {rel} ({mb} MB, frames of {t.path.name})")
        info = _write_large(t, out, mb * 1_000_000, 1_000_000 + i, key)
        back = _read(out)  # the file must read back as written
        if _pixel_digests(back) != info["pixels"]:
            raise RuntimeError(f"large file {rel}: pixel data does not read back")
        del back
        files.append(
            {
                "rel": rel,
                "label": label,
                "size": out.stat().st_size,
                "source": str(t.path),
                "transfer_syntax": t.transfer_syntax,
                "part10": True,
                **info,
            }
        )
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "large",
        "origin": origin,
        "n": len(files),
        "key": key,
        "transfer_syntaxes": sorted({f["transfer_syntax"] for f in files}),
        "total_bytes": sum(f["size"] for f in files),
        "build_seconds": round(time.monotonic() - t0, 2),
        "files": files,
    }
    return _finish(tmp, final, manifest)


def subtree(tree: Tree, rel_dir: str) -> Tree:
    """The part of ``tree`` under ``files/<rel_dir>`` as a tree of its own (same files)."""
    prefix = rel_dir.rstrip("/") + "/"
    files = [
        dict(f, rel=f["rel"][len(prefix) :]) for f in tree.files if f["rel"].startswith(prefix)
    ]
    manifest = dict(
        tree.manifest, files=files, n=len(files), total_bytes=sum(f["size"] for f in files)
    )
    return _AsIsTree(tree.files_dir / rel_dir, manifest)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--src", type=Path)
    ap.add_argument("--corpus", choices=("samples", "real"), default="samples")
    ap.add_argument("--large", action="store_true", help="also build the large multi-frame files")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    a = ap.parse_args(argv)
    tree = build_tree(a.files, src=a.src, prefer=a.corpus, cache=a.cache, log=print)
    m = tree.manifest
    print(
        f"{tree.root}: {tree.n_files} files, {tree.total_bytes / 1e6:.1f} MB, "
        f"{len(m['transfer_syntaxes'])} transfer syntaxes, {m['sources_used']} sources"
    )
    if a.large:
        large = build_large(src=a.src, cache=a.cache, log=print)
        print(f"{large.root}: {large.n_files} files, {large.total_bytes / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
