"""``anonymize_tree``: a source tree in, a destination tree out; resumable, with a journal.

One run, batch by batch (``batch_size`` files, 256 by default):

1. the walk yields files (one ``stat`` each, flat memory); the journal says which are done
   already (recorded ok, output present, same size and mtime, same plan): those are skipped;
2. the batch's files are recorded ``pending`` (one commit), then the Rust core anonymizes them in
   parallel with the GIL released, writing each output atomically, and syncs the file system
   once for the batch (group commit);
3. outputs are moved to their layout names when the layout needs the output's values, non-DICOM
   files are copied when asked (then one more sync), and one commit records every outcome.

While the core runs batch *k*, Python prepares batch *k+1* and records batch *k-1*: the cores
never wait for the journal. A run killed anywhere leaves only whole outputs and ``pending`` rows;
the next run deletes the outputs of pending rows, sweeps temporary files and redoes them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TextIO

from dicomscrub import _core, dicomdir
from dicomscrub.errors import DicomScrubError, OutputError
from dicomscrub.fsutil import copy_atomic, move_noreplace, syncfs
from dicomscrub.journal import Journal, Row
from dicomscrub.layout import LAYOUTS, LayoutNamer, mirror_path
from dicomscrub.linkage import LinkageWriter, header_ids
from dicomscrub.lock import RunLock
from dicomscrub.progress import Progress, should_show
from dicomscrub.report import (
    NOTE_COPIED,
    NOTE_DICOMDIR,
    NOTE_DICOMDIR_NOT_COPIED,
    NOTE_DRY_RUN,
    NOTE_RENAMED,
    NOTE_RESUMED,
    FileResult,
    Report,
    ReportWriter,
)
from dicomscrub.walk import STATE_DIR, Entry, is_dicomdir, remove_temp_files, walk

if TYPE_CHECKING:
    from dicomscrub.anonymizer import Anonymizer

BATCH_SIZE = 256
DRY_RUN_SAMPLE = 3
DRY_RUN_MAX_BYTES = 64 << 20
NOT_QUARANTINED = frozenset({"OutputError"})  # failures that say nothing about the input
UNSAFE_PATH = "UnsafePath"  # error_kind: the output would be written outside DST (refused)

__all__ = ["BATCH_SIZE", "UNSAFE_PATH", "TreeOptions", "TreeRun"]


def _within(path: str, root: str) -> bool:
    """Is the (resolved) ``path`` ``root`` or under it?"""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class TreeOptions:
    """The options of :meth:`dicomscrub.Anonymizer.anonymize_tree`."""

    jobs: int | None = None
    progress: bool | None = None  # None: when stderr is a terminal
    layout: str = "mirror"
    overwrite: bool = False
    copy_non_dicom: bool = False
    dry_run: bool = False
    report_path: str | None = None
    batch_size: int = BATCH_SIZE
    sample: int = DRY_RUN_SAMPLE
    stream: TextIO | None = None  # progress output (stderr)
    linkage: str | None = None  # original -> pseudonymized IDs (mode 0600), when asked
    linkage_in_dst: bool = False  # allow the linkage file inside DST


@dataclass
class _Item:
    entry: Entry
    rel: bytes
    dst: str | None = None  # mirror: the output; layout: the staging path
    result: FileResult | None = None  # decided without the core (resumed, refused)
    record_in_journal: bool = True


@dataclass
class _Batch:
    items: list[_Item] = field(default_factory=list)  # every file, in walk order
    work: list[_Item] = field(default_factory=list)  # those the core processes, in pair order
    batch_id: int | None = None
    future: Future[list[dict[str, Any]]] | None = None


def _chunks(it: Iterable[Entry], n: int) -> Iterator[list[Entry]]:
    chunk: list[Entry] = []
    for e in it:
        chunk.append(e)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _unlink(path: str | bytes) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass


class TreeRun:
    """One ``anonymize_tree`` call."""

    def __init__(self, anonymizer: Anonymizer, src: str, dst: str, options: TreeOptions) -> None:
        self.anon = anonymizer
        self.src = os.path.abspath(os.fspath(src))
        self.dst = os.path.abspath(os.fspath(dst))
        self.opts = options
        self.state = os.path.join(self.dst, STATE_DIR)
        self.staging = os.path.join(self.state, "staging")
        self.mirror = options.layout == "mirror"
        self.ids_namer = LayoutNamer(anonymizer.plan, anonymizer.key.secret)
        self.namer = None if self.mirror else self.ids_namer
        self.linkage: LinkageWriter | None = None
        self._dst_real = os.path.realpath(self.dst)
        self._real_dirs: dict[str, str] = {}  # folder -> its realpath (reset every batch)
        self.report = Report(
            src=self.src,
            dst=self.dst,
            layout=options.layout,
            dry_run=options.dry_run,
            key_fingerprint=anonymizer.key.fingerprint,
            profile=anonymizer.profile.name,
        )
        self._batch_no = 0
        self._changed = False  # did this run write or remove any output (DICOMDIRs then redone)

    # -- checks ----------------------------------------------------------------------------

    def _validate(self) -> None:
        o = self.opts
        if o.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {o.layout!r}: one of {', '.join(LAYOUTS)}")
        if o.copy_non_dicom and not self.mirror:
            raise ValueError(
                "copy_non_dicom needs the mirror layout (in another layout, a copied file would "
                "keep its original name)"
            )
        if not os.path.isdir(self.src):
            raise NotADirectoryError(f"the source is not a folder: {self.src}")
        if os.path.exists(self.dst) and os.path.samefile(self.src, self.dst):
            raise ValueError("the destination must differ from the source")
        if o.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not _within(os.path.realpath(self.state), os.path.realpath(self.dst)):
            raise OutputError(
                f"{self.state} is a symbolic link leading outside the destination: refused "
                "(remove it)",
                path=self.state,
            )
        if os.path.isdir(self.state):  # the journal, report, lock, staging: never through a link
            with os.scandir(self.state) as it:
                links = sorted(x.path for x in it if x.is_symlink())
            if links:
                raise OutputError(
                    f"{links[0]} is a symbolic link: the run's own files are never written "
                    "through one (remove it)",
                    path=links[0],
                )
        if o.linkage is not None and not o.linkage_in_dst:
            real = os.path.realpath(o.linkage)
            if _within(real, os.path.realpath(self.dst)):
                raise ValueError(
                    f"the linkage file {o.linkage} would be inside the destination {self.dst}, "
                    "where it would travel with the de-identified data: write it elsewhere (or "
                    "force it: --allow-linkage-in-dst, linkage_in_dst=True)"
                )

    def _walk(self) -> Iterator[Entry]:
        return walk(self.src, exclude=[self.dst] if os.path.isdir(self.dst) else [])

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> Report:
        self._validate()
        if self.opts.dry_run:
            return self._dry_run()
        os.makedirs(self.state, exist_ok=True)
        self._dst_real = os.path.realpath(self.dst)
        with RunLock(os.path.join(self.state, "lock")):
            journal = Journal(os.path.join(self.state, "journal.sqlite"))
            try:
                return self._run(journal)
            finally:
                journal.close()

    def _run(self, journal: Journal) -> Report:
        self.journal = journal
        anon = self.anon
        layouts = journal.layouts()
        if layouts and layouts != {self.opts.layout}:
            raise OutputError(
                f"{self.dst} was written with the {', '.join(sorted(layouts))} layout: use the "
                "same layout to resume, or another destination",
                path=self.dst,
            )
        other = journal.other_plan(anon.plan_id)
        if other is not None and not self.opts.overwrite:
            raise OutputError(
                f"{self.dst} holds outputs made with another profile or key: use overwrite to "
                "redo them with this one, or another destination",
                path=self.dst,
            )
        if journal.interrupted():
            for d in journal.take_pending():
                self._unlink_output(os.fsdecode(d))
            remove_temp_files(self.dst)
        shutil.rmtree(self.staging, ignore_errors=True)
        if not self.mirror:
            os.makedirs(self.staging, exist_ok=True)

        self.run_id = journal.start_run(
            src=self.src,
            plan_id=anon.plan_id,
            key_fingerprint=anon.key.fingerprint,
            profile=anon.profile.name,
            layout=self.opts.layout,
        )
        report_path = self.opts.report_path or os.path.join(self.state, "report.jsonl")
        self.report.report_path = report_path
        self.report.journal_path = journal.path
        self.writer = ReportWriter(report_path)
        stream = self.opts.stream if self.opts.stream is not None else sys.stderr
        self.progress = Progress(stream, enabled=should_show(stream, self.opts.progress))
        self.progress.count_in_background(lambda: (e.size for e in self._walk()))
        self.dicomdirs: list[Entry] = []
        if self.opts.linkage is not None:
            self.linkage = LinkageWriter(self.opts.linkage)
        t0 = time.perf_counter()
        try:
            self._batches()
            for e in self.dicomdirs:
                rb = os.fsencode(e.rel)
                done = None if self._changed else self._dicomdir_resumed(e, rb)
                if done is not None:
                    self._emit([(e, rb, done)], None, skip_journal={id(done)}, linkage=False)
                else:
                    self._emit([(e, rb, self._dicomdir(e))], None, linkage=False)
        except BaseException:
            if self.linkage is not None:
                self.linkage.discard()
            raise
        finally:
            self.report.duration = time.perf_counter() - t0
            self.progress.close()
        if self.linkage is not None:
            self.linkage.commit()
            self.report.linkage_path = self.linkage.path
        self.report.quarantine_path = self._write_quarantine()
        self.writer.summary(self.report)
        self.writer.close()
        journal.finish_run(self.run_id, self.report.to_dict())
        return self.report

    # -- batches ---------------------------------------------------------------------------

    def _batches(self) -> None:
        """Every batch of the walk: prepared, run by the core, completed (in walk order).
        :class:`dicomscrub.cluster.ClusterTreeRun` overrides this to run them on Dask."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="dicomscrub-core")
        inflight: _Batch | None = None
        try:
            for chunk in _chunks(self._walk(), self.opts.batch_size):
                batch = self._prepare(chunk)
                if batch.work:
                    batch.future = executor.submit(self._core, batch)
                if inflight is not None:
                    self._complete(inflight)
                inflight = batch
            if inflight is not None:
                batch, inflight = inflight, None
                self._complete(batch)
        finally:
            if inflight is not None and inflight.future is not None:
                inflight.future.cancel()
                try:  # let the core finish its batch: its outputs are whole; rows stay pending
                    inflight.future.result()
                except BaseException:
                    pass
            executor.shutdown(wait=True)

    def _prepare(self, chunk: list[Entry]) -> _Batch:
        """Decide each file (resume, refuse, process), then mark the work pending."""
        self._batch_no += 1
        self._real_dirs.clear()
        anon, o = self.anon, self.opts
        rels = [os.fsencode(e.rel) for e in chunk]
        rows = self.journal.lookup(rels)
        batch = _Batch()
        to_delete: list[str] = []
        for n, (e, rb) in enumerate(zip(chunk, rels, strict=True)):
            item = _Item(e, rb)
            row = rows.get(rb)
            done = self._resumed(e, row)
            dicomdir_row = row is not None and (row.note or "").startswith("dicomdir")
            if done is not None and not dicomdir_row:  # no need to open it again
                item.result, item.record_in_journal = done, False
                batch.items.append(item)
                continue
            if dicomdir_row or is_dicomdir(e.path):
                self.dicomdirs.append(e)
                continue
            own = (
                os.fsdecode(row.dst)
                if row is not None and row.dst is not None and row.status in ("ok", "skipped")
                else None
            )
            if self.mirror:
                item.dst = mirror_path(self.dst, e.rel)
                outside = self._outside(item.dst)
                if outside is not None:
                    item.result = self._refused(e, item.dst, outside)
                elif os.path.lexists(item.dst):
                    if item.dst == own:
                        to_delete.append(own)  # ours, from an older version of the source
                    elif not o.overwrite:
                        item.result = FileResult(
                            src=e.path,
                            dst=item.dst,
                            status="failed",
                            error_kind="OutputError",
                            message=f"output exists already: {item.dst}",
                        )
            else:
                item.dst = os.path.join(self.staging, f"{self._batch_no}-{n}.dcm")
                if own is not None and os.path.lexists(own):
                    to_delete.append(own)
            batch.items.append(item)
        batch.work = [i for i in batch.items if i.result is None]
        pending = [
            (i.rel, i.entry.size, i.entry.mtime_ns, self._pending_dst(i, rows.get(i.rel)))
            for i in batch.work
        ]
        if pending:
            batch.batch_id = self.journal.begin_batch(self.run_id, pending, anon.plan_id)
        for d in to_delete:  # after the pending commit: a crash now redoes these files
            self._unlink_output(d)
            self._changed = True
        return batch

    def _pending_dst(self, item: _Item, row: Row | None) -> str | None:
        if self.mirror or row is None or row.dst is None:
            return item.dst
        return os.fsdecode(row.dst)  # layout: the old output, deleted by a crash recovery

    def _resumed(self, e: Entry, row: Row | None) -> FileResult | None:
        if row is None or row.size != e.size or row.mtime_ns != e.mtime_ns:
            return None
        if row.plan_id != self.anon.plan_id or row.status not in ("ok", "skipped"):
            return None
        dst = os.fsdecode(row.dst) if row.dst is not None else None
        if row.status == "ok" and (dst is None or not os.path.exists(dst)):
            return None
        if row.status == "skipped":
            copied = row.note == NOTE_COPIED
            if copied != self.opts.copy_non_dicom or (copied and not dst):
                return None
            if copied and not os.path.exists(dst):  # type: ignore[arg-type]
                return None
        return FileResult(
            src=e.path,
            dst=dst,
            status=row.status,  # type: ignore[arg-type]
            error_kind="NotDicom" if row.status == "skipped" else None,
            bytes_in=row.bytes_in,
            bytes_out=row.bytes_out,
            note=NOTE_RESUMED,
        )

    def _core(self, batch: _Batch) -> list[dict[str, Any]]:
        pairs = [(i.entry.path, i.dst) for i in batch.work]
        return _core.anonymize_batch(
            pairs,
            self.anon._plan,
            jobs=self.opts.jobs,
            overwrite=self.opts.overwrite,
            sync=self.mirror,
        )

    def _complete(self, batch: _Batch) -> None:
        """Place outputs, copy non-DICOM files, sync once, record the batch; one commit."""
        work = batch.work
        records = batch.future.result() if batch.future is not None else []
        wrote = False
        placed: list[_Item] = []
        claimed: set[str] = set()
        for item, rec in zip(work, records, strict=True):
            r = FileResult.from_record(rec)
            if r.status == "ok" and self.namer is not None:
                final, renamed = self._layout_name(item, r, claimed)
                outside = self._outside(final) if final is not None else None
                if final is None or outside is not None:
                    _unlink(r.dst or "")
                    if final is None:
                        kind = "OutputError"
                        message = (
                            "output exists already (not made by this destination's runs): "
                            f"{self._layout_target(item, r)}"
                        )
                    else:
                        kind = UNSAFE_PATH
                        message = self._refused(item.entry, final, outside or "").message
                    r = FileResult.from_record(
                        rec, status="failed", error_kind=kind, message=message, dst=None,
                        actions={},
                    )  # fmt: skip
                else:
                    claimed.add(final)
                    placed.append(item)
                    r.note = NOTE_RENAMED if renamed else None
                    r.dst = final
            elif r.status == "skipped" and r.error_kind == "NotDicom":
                r.dst = None
                if self.opts.copy_non_dicom and item.dst is not None:
                    try:
                        r.bytes_out = copy_atomic(
                            item.entry.path, item.dst, overwrite=self.opts.overwrite
                        )
                        r.bytes_in = item.entry.size
                        r.dst, r.note = item.dst, NOTE_COPIED
                        wrote = True
                    except (OSError, DicomScrubError) as exc:
                        r.status, r.error_kind = "failed", "OutputError"
                        r.message = f"cannot copy the non-DICOM file: {exc}"
            elif r.status == "failed" and self.mirror is False:
                r.dst = None
            item.result = r
        if placed:
            # before moving: a crash from now on deletes them (they are pending)
            self.journal.set_dsts([(i.rel, i.result.dst) for i in placed])  # type: ignore[union-attr,misc]
            for item in placed:
                res = item.result
                assert res is not None and res.dst is not None
                staged = item.dst or ""
                try:
                    move_noreplace(staged, res.dst, overwrite=self.opts.overwrite)
                    wrote = True
                except (OSError, DicomScrubError) as exc:
                    _unlink(staged)
                    res.status, res.error_kind, res.dst = "failed", "OutputError", None
                    res.message = f"cannot move the output into place: {exc}"
                    res.actions = {}
        if wrote:
            syncfs(self.dst)
        if any(i.result is not None and i.result.status == "ok" for i in work):
            self._changed = True
        self._emit(
            [(i.entry, i.rel, i.result) for i in batch.items if i.result is not None],
            batch.batch_id,
            skip_journal={id(i.result) for i in batch.items if not i.record_in_journal},
        )

    def _layout_target(self, item: _Item, r: FileResult) -> str:
        assert self.namer is not None
        return os.path.join(self.dst, self.namer.relpath(r.ids, r.sop_instance_uid, item.entry.rel))

    def _layout_name(
        self, item: _Item, r: FileResult, claimed: set[str]
    ) -> tuple[str | None, bool]:
        """The free layout name of an output: ``SOP.dcm``, else ``SOP_2.dcm``..., or None when
        a file the journal does not know is in the way (and overwrite is off)."""
        assert self.namer is not None
        base = self.namer.relpath(r.ids, r.sop_instance_uid, item.entry.rel)
        n = 1
        while True:
            rel = base if n == 1 else self.namer.with_suffix(base, n)
            final = os.path.join(self.dst, rel)
            owner = self.journal.dst_owner(final)
            if final in claimed or (owner is not None and owner != item.rel):
                n += 1
                continue
            if owner is None and os.path.lexists(final) and not self.opts.overwrite:
                return None, False
            return final, n > 1

    def _emit(
        self,
        results: list[tuple[Entry, bytes, FileResult]],
        batch_id: int | None,
        skip_journal: set[int] = frozenset(),  # type: ignore[assignment]
        linkage: bool = True,
    ) -> None:
        rows = [(rb, e.size, e.mtime_ns, r) for e, rb, r in results if id(r) not in skip_journal]
        if rows or batch_id is not None:
            self.journal.finish_batch(batch_id, rows, self.anon.plan_id, self.run_id)
        nbytes = 0
        for e, _rb, r in results:
            if linkage and self.linkage is not None and r.status == "ok":
                self._link(e, r)
            self.writer.file(self._public(r))
            self.report.add(r)
            nbytes += e.size
        self.writer.flush()
        self.progress.advance(len(results), nbytes)

    # -- safety: paths inside DST, IDs pseudonymized in reports ---------------------------

    def _outside(self, path: str) -> str | None:
        """Where ``path`` really leads when that is outside DST (a symbolic link in DST on the
        way, or at the end), else None. Folders are resolved once per batch."""
        folder, name = os.path.split(path)
        real = self._real_dirs.get(folder)
        if real is None:
            real = self._real_dirs[folder] = os.path.realpath(folder)
        target = (
            os.path.realpath(path)
            if os.path.islink(path)
            else os.path.normpath(os.path.join(real, name))
        )
        return None if _within(target, self._dst_real) else target

    def _refused(self, e: Entry, path: str, real: str) -> FileResult:
        return FileResult(
            src=e.path, dst=None, status="failed", error_kind=UNSAFE_PATH,
            message=f"refused: the output {path} would be written outside the destination, at "
            f"{real} (a symbolic link in the destination leads there)",
        )  # fmt: skip

    def _unlink_output(self, path: str) -> None:
        """Delete an output of ours, never through a symbolic link leading out of DST."""
        if self._outside(path) is None:
            _unlink(path)

    def _public(self, r: FileResult) -> FileResult:
        """``r`` as the report shows it: an ID the plan keeps as it is (keep-all, retain-uids,
        a ``keep`` rule) appears as the keyed pseudonym the layout uses, never as the value."""
        if not self.ids_namer.keeps_any or not (r.ids or r.sop_instance_uid):
            return r
        shown = self.ids_namer.pseudonymized
        return replace(
            r,
            ids={k: shown(k, v) or v for k, v in r.ids.items()},
            sop_instance_uid=shown("SOPInstanceUID", r.sop_instance_uid),
        )

    def _link(self, e: Entry, r: FileResult) -> None:
        """The linkage row of an output (originals from the source's header)."""
        assert self.linkage is not None
        pseudo = dict(r.ids)
        if r.sop_instance_uid:
            pseudo["SOPInstanceUID"] = r.sop_instance_uid
        if not pseudo and r.dst:  # resumed, or copied unparsed (keep-all): read the output
            pseudo = header_ids(r.dst)
        self.linkage.add(e.path, r.dst, pseudo)

    # -- DICOMDIR --------------------------------------------------------------------------

    def _dicomdir_resumed(self, e: Entry, rb: bytes) -> FileResult | None:
        """A DICOMDIR an earlier run regenerated, when nothing changed since."""
        row = self.journal.lookup([rb]).get(rb)
        r = self._resumed(e, row)
        if r is None or row is None or row.note != NOTE_DICOMDIR:
            return None
        r.note = NOTE_RESUMED
        return r

    def _dicomdir(self, e: Entry) -> FileResult:
        """Regenerate a DICOMDIR from the anonymized outputs (or say why not)."""
        out = mirror_path(self.dst, e.rel) if self.mirror else None

        def not_copied(why: str) -> FileResult:
            return FileResult(
                src=e.path, dst=None, status="skipped", bytes_in=e.size,
                note=NOTE_DICOMDIR_NOT_COPIED, message=why,
            )  # fmt: skip

        if out is None:
            return not_copied(
                "the patient/study/series layout renames the files a DICOMDIR references"
            )
        outside = self._outside(out)
        if outside is not None:
            r = self._refused(e, out, outside)
            r.bytes_in, r.note = e.size, NOTE_DICOMDIR_NOT_COPIED
            return r
        try:
            source = dicomdir.read_source(e.path)
        except dicomdir.DicomdirError as exc:
            return not_copied(str(exc))
        unsafe = source.unsafe()
        if unsafe:
            return FileResult(
                src=e.path, dst=None, status="failed", error_kind=UNSAFE_PATH, bytes_in=e.size,
                note=NOTE_DICOMDIR_NOT_COPIED,
                message=f"refused: {len(unsafe)} referenced File IDs lead outside the file-set's "
                f"folder ('..', absolute or path-separator components, e.g. {unsafe[0]!r}); no "
                "DICOMDIR is written for it",
            )  # fmt: skip
        leaking = source.leaking()
        if leaking:
            return not_copied(
                f"{len(leaking)} referenced File IDs hold identifying values of the records "
                f"(e.g. the Patient ID as a folder name: {leaking[0]!r}); a DICOMDIR would "
                "repeat them (and the mirror layout keeps those folder names: consider "
                "--layout patient/study/series)"
            )
        folder = os.path.dirname(e.path)
        instances: list[tuple[tuple[str, ...], str]] = []
        missing = 0
        for comps in source.file_ids:
            ref = os.path.normpath(os.path.join(folder, *comps))
            rel = os.path.relpath(ref, self.src)
            known = self.journal.output_of(os.fsencode(rel))
            if known is None or known[0] != "ok" or known[1] is None:
                missing += 1
                continue
            instances.append((comps, known[1]))
        rb = os.fsencode(e.rel)
        uid_source = source.uid or ("dicomdir-path:" + e.rel)
        try:
            made = dicomdir.regenerate(
                out,
                instances,
                fileset_uid=_core.keyed_uid(self.anon.key.secret, uid_source),
                replace=lambda p: self.opts.overwrite or self.journal.dst_owner(p) == rb,
            )
        except dicomdir.DicomdirError as exc:
            return not_copied(str(exc))
        omitted = len(made.omitted) + missing
        msg = f"{made.records} records" + (
            f"; {omitted} referenced files left out (not anonymized or unreadable)"
            if omitted
            else ""
        )
        return FileResult(
            src=e.path, dst=out, status="ok", bytes_in=e.size, bytes_out=made.bytes_out,
            note=NOTE_DICOMDIR, message=msg,
        )  # fmt: skip

    # -- quarantine ------------------------------------------------------------------------

    def _write_quarantine(self) -> str:
        """DST/.dicomscrub/quarantine.jsonl: every input file that failed (from the journal,
        so it covers the files of earlier runs that are still failing)."""
        path = os.path.join(self.state, "quarantine.jsonl")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for row in self.journal.failed():
                if row["error_kind"] in NOT_QUARANTINED:
                    continue
                row["src"] = os.path.join(self.src, row["src"])
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    # -- dry run ---------------------------------------------------------------------------

    def _dry_run(self) -> Report:
        """Walk, count, and anonymize a sample in memory: nothing is written anywhere."""
        t0 = time.perf_counter()
        rep = self.report
        sampled = 0
        tried = 0
        for e in self._walk():
            rep.planned_files += 1
            rep.planned_bytes += e.size
            if is_dicomdir(e.path):
                rep.add(
                    FileResult(
                        src=e.path, dst=None, status="skipped", note=NOTE_DICOMDIR,
                        message="would be regenerated from the anonymized outputs"
                        if self.mirror else "would not be copied (layout)",
                    )
                )  # fmt: skip
                continue
            if sampled >= self.opts.sample or tried >= 50 * max(self.opts.sample, 1):
                continue
            if e.size > DRY_RUN_MAX_BYTES:
                continue
            tried += 1
            r = self._sample(e)
            if r is not None:
                rep.add(r)
                sampled += r.status == "ok"
        rep.duration = time.perf_counter() - t0
        return rep

    def _sample(self, e: Entry) -> FileResult | None:
        from dicomscrub.dumpview import diff

        try:
            with open(e.path, "rb") as f:
                data = f.read()
            out = _core.anonymize_bytes(data, self.anon._plan)
            before, after = _core.dump(data), _core.dump(out)
        except DicomScrubError as exc:
            if str(exc).startswith("not a DICOM file"):
                return None
            return FileResult(
                src=e.path, dst=None, status="failed", error_kind=exc.kind,
                message=exc.message, offset=exc.offset, tag=exc.tag, note=NOTE_DRY_RUN,
            )  # fmt: skip
        except OSError:
            return None
        ids = _ids(after)
        dst = (
            mirror_path(self.dst, e.rel)
            if self.namer is None
            else os.path.join(self.dst, self.namer.relpath(ids, ids.get("SOPInstanceUID"), e.rel))
        )
        self.report.changes.extend(diff(before, after, e.rel))
        return FileResult(
            src=e.path, dst=dst, status="ok", bytes_in=len(data), bytes_out=len(out),
            ids=ids, sop_instance_uid=ids.get("SOPInstanceUID"), note=NOTE_DRY_RUN,
        )  # fmt: skip


_ID_TAGS = {
    0x00100020: "PatientID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
    0x00080018: "SOPInstanceUID",
}


def _ids(d: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in d["dataset"]:
        name = _ID_TAGS.get(e["tag"])
        if name and e.get("text") is not None:
            out[name] = e["text"].strip(" \x00")
    return out
