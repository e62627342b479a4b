"""The public entry point: :class:`Anonymizer` compiles a profile once and runs it on bytes,
files, lists of files and whole trees.

>>> from dicomscrub import Anonymizer, Profile
>>> anon = Anonymizer(Profile.basic(["retain-uids"]), key=b"project key")   # doctest: +SKIP
>>> report = anon.anonymize_tree("in/", "out/")                              # doctest: +SKIP
>>> report.ok, report.failed, f"{report.files_per_s:.0f} files/s"            # doctest: +SKIP

The module-level :func:`anonymize_bytes`, :func:`anonymize_file` and :func:`anonymize_tree` do
the same with a one-off Anonymizer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from os import PathLike
from typing import Any, Literal, TextIO

from dicomscrub import _core
from dicomscrub.keys import Key, resolve_key
from dicomscrub.profiles import Profile
from dicomscrub.report import FileResult, Report
from dicomscrub.tree import BATCH_SIZE, TreeOptions, TreeRun

StrPath = str | PathLike[str]
KeyLike = bytes | bytearray | memoryview | Key

__all__ = ["Anonymizer", "anonymize_bytes", "anonymize_file", "anonymize_tree"]


class Anonymizer:
    """A profile compiled to a plan (``dicomscrub._core.Plan``) bound to a project key.

    ``key`` (bytes) or ``key_file`` (a path); with neither, ``$DICOMSCRUB_KEY_FILE`` or the
    default key file (created on first use, see :mod:`dicomscrub.keys`).
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        key: KeyLike | None = None,
        key_file: StrPath | None = None,
    ) -> None:
        self.profile = profile if profile is not None else Profile.basic()
        self.key: Key = resolve_key(key, key_file)
        self._plan_json = self.profile.to_json()
        self.plan: dict[str, Any] = self.profile.to_plan()
        self._plan = _core.Plan(self._plan_json, self.key.secret)
        digest = hashlib.sha256(self._plan_json.encode("utf-8"))
        digest.update(b"\x00" + self.key.fingerprint.encode("ascii"))
        #: identifies (plan, key) in journals: outputs of another plan or key are never resumed
        self.plan_id = digest.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Anonymizer(profile={self.profile!r}, key_fingerprint={self.key.fingerprint!r})"

    @property
    def changes_anything(self) -> bool:
        """False for a plan that copies files unchanged."""
        return bool(self._plan.changes_anything)

    # -- one file --------------------------------------------------------------------------

    def anonymize_bytes(self, data: bytes | bytearray | memoryview) -> bytes:
        """The anonymized bytes of an in-memory file. Raises InvalidDicomError and friends."""
        return _core.anonymize_bytes(data, self._plan)

    def anonymize_file(self, src: StrPath, dst: StrPath, *, overwrite: bool = False) -> FileResult:
        """Anonymize ``src`` into ``dst``: the output appears whole or not at all, never over an
        existing file unless ``overwrite``. Raises on error (InvalidDicomError, OutputError,
        OSError...); see :meth:`anonymize_paths` for the never-raising form."""
        src, dst = os.fspath(src), os.fspath(dst)
        parent = os.path.dirname(dst)
        if parent:
            os.makedirs(parent, exist_ok=True)
        record = _core.anonymize_file(src, dst, self._plan, overwrite=overwrite)
        return FileResult.from_record(record)

    # -- many files ------------------------------------------------------------------------

    def anonymize_paths(
        self,
        pairs: Iterable[tuple[StrPath, StrPath]],
        *,
        jobs: int | None = None,
        overwrite: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> Iterator[FileResult]:
        """Anonymize ``(src, dst)`` pairs in parallel, in batches of ``batch_size`` through the
        Rust core (GIL released, one file system sync per batch); yields one result per pair, in
        order. Never raises for a file: a bad one is a ``failed`` result and the rest go on.

        ``jobs``: worker threads (default: ``$DICOMSCRUB_JOBS`` or the number of cores).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")

        def run(chunk: list[tuple[str, str]]) -> list[dict[str, Any]]:
            return _core.anonymize_batch(chunk, self._plan, jobs=jobs, overwrite=overwrite)

        with ThreadPoolExecutor(1, thread_name_prefix="dicomscrub-core") as pool:
            pending = None
            for chunk in _chunks(pairs, batch_size):
                fut = pool.submit(run, chunk)  # the core works on this chunk while we yield
                if pending is not None:
                    yield from (FileResult.from_record(r) for r in pending.result())
                pending = fut
            if pending is not None:
                yield from (FileResult.from_record(r) for r in pending.result())

    def anonymize_tree(
        self,
        src: StrPath,
        dst: StrPath,
        *,
        jobs: int | None = None,
        progress: bool | Literal["always"] = True,
        layout: str = "mirror",
        overwrite: bool = False,
        copy_non_dicom: bool = False,
        dry_run: bool = False,
        report_path: StrPath | None = None,
        batch_size: int = BATCH_SIZE,
        progress_stream: TextIO | None = None,
        cluster: Any = None,
        batch_bytes: int | None = None,
        linkage: StrPath | None = None,
        linkage_in_dst: bool = False,
    ) -> Report:
        """Anonymize every file under ``src`` into ``dst``; resumable (see :mod:`dicomscrub.tree`).

        - ``layout``: ``"mirror"`` (same relative paths) or ``"patient/study/series"`` (names from
          the output's pseudonymized Patient ID and UIDs only);
        - ``progress``: a live line on ``progress_stream`` (stderr) when it is a terminal;
          ``False``: never; ``"always"``: even when it is not (the CLI's ``--progress``);
        - ``overwrite``: replace outputs that exist already (otherwise such files fail);
        - ``copy_non_dicom``: copy non-DICOM files as they are (otherwise reported, skipped);
        - ``dry_run``: write nothing; anonymize a sample in memory and report its changes;
        - ``report_path``: the JSON Lines report (default ``DST/.dicomscrub/report.jsonl``);
        - ``cluster``: run the batches on Dask (the ``dask`` extra; see :mod:`dicomscrub.cluster`):
          a ``distributed.Client``, a cluster object, ``"local:N"`` or a scheduler address or
          file; SRC and DST must then be on a file system every worker shares, at the same
          paths. ``batch_bytes`` caps the bytes of a batch there (``jobs``: threads per batch).
        - ``linkage``: also write this file (mode 0600; ``.csv``: CSV, else JSON Lines) mapping
          each output's original Patient ID and Study/Series/SOP Instance UIDs to the
          pseudonymized ones (:mod:`dicomscrub.linkage`); refused inside ``dst`` (ValueError)
          unless ``linkage_in_dst``. A dry run writes none.

        Raises before any work for usage errors (ValueError, RunLockedError when another run holds
        ``dst``, OutputError when ``dst`` holds another plan's outputs); never for a file.
        """
        opts = TreeOptions(
            jobs=jobs,
            progress=True if progress == "always" else (None if progress else False),
            layout=layout,
            overwrite=overwrite,
            copy_non_dicom=copy_non_dicom,
            dry_run=dry_run,
            report_path=os.fspath(report_path) if report_path is not None else None,
            batch_size=batch_size,
            stream=progress_stream,
            linkage=os.fspath(linkage) if linkage is not None else None,
            linkage_in_dst=linkage_in_dst,
        )
        if cluster is not None:
            from dicomscrub.cluster import ClusterTreeRun

            run = ClusterTreeRun(
                self, os.fspath(src), os.fspath(dst), opts, cluster=cluster, batch_bytes=batch_bytes
            )
            return run.run()
        return TreeRun(self, os.fspath(src), os.fspath(dst), opts).run()


def _chunks(pairs: Iterable[tuple[StrPath, StrPath]], n: int) -> Iterator[list[tuple[str, str]]]:
    chunk: list[tuple[str, str]] = []
    for s, d in pairs:
        chunk.append((os.fspath(s), os.fspath(d)))
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- shortcuts -----------------------------------------------------------------------------


def anonymize_bytes(
    data: bytes | bytearray | memoryview,
    profile: Profile | None = None,
    *,
    key: KeyLike | None = None,
    key_file: StrPath | None = None,
) -> bytes:
    """``Anonymizer(profile, key=...).anonymize_bytes(data)``."""
    return Anonymizer(profile, key=key, key_file=key_file).anonymize_bytes(data)


def anonymize_file(
    src: StrPath,
    dst: StrPath,
    profile: Profile | None = None,
    *,
    key: KeyLike | None = None,
    key_file: StrPath | None = None,
    overwrite: bool = False,
) -> FileResult:
    """``Anonymizer(profile, key=...).anonymize_file(src, dst)``."""
    anon = Anonymizer(profile, key=key, key_file=key_file)
    return anon.anonymize_file(src, dst, overwrite=overwrite)


def anonymize_tree(
    src: StrPath,
    dst: StrPath,
    profile: Profile | None = None,
    *,
    key: KeyLike | None = None,
    key_file: StrPath | None = None,
    **options: Any,
) -> Report:
    """``Anonymizer(profile, key=...).anonymize_tree(src, dst, **options)``."""
    return Anonymizer(profile, key=key, key_file=key_file).anonymize_tree(src, dst, **options)
