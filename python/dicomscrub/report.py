"""What a run did: one :class:`FileResult` per file, one :class:`Report` per run.

A report is a JSON Lines file: one object per file (``"type": "file"``), then one summary object
(``"type": "summary"``). Neither ever holds the key (only its fingerprint).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

Status = Literal["ok", "failed", "skipped"]

# Notes a FileResult may carry beside its status.
NOTE_RESUMED = "resumed"  # done by an earlier run, kept as it was (journal)
NOTE_COPIED = "copied"  # not DICOM, copied as it is (copy_non_dicom)
NOTE_DICOMDIR = "dicomdir-regenerated"  # a DICOMDIR rebuilt from the anonymized outputs
NOTE_DICOMDIR_NOT_COPIED = "dicomdir-not-copied"  # a DICOMDIR that could not be rebuilt
NOTE_DRY_RUN = "dry-run"  # anonymized in memory only
NOTE_RENAMED = "renamed"  # layout name taken by another file: a suffix was added

MAX_FAILURES_KEPT = 100  # a Report keeps the first failures; the JSONL report has them all

__all__ = ["ElementChange", "FileResult", "Report", "ReportWriter"]


@dataclass
class FileResult:
    """The outcome of one file."""

    src: str
    dst: str | None
    status: Status
    error_kind: str | None = None  # "InvalidDicomError", "OutputError", "NotDicom", ...
    message: str | None = None
    offset: int | None = None
    tag: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    sop_instance_uid: str | None = None  # the output's (pseudonymized) SOP Instance UID
    ids: dict[str, str] = field(default_factory=dict)  # output PatientID / Study / Series UIDs
    note: str | None = None  # one of the NOTE_* values

    @classmethod
    def from_record(cls, record: Mapping[str, Any], **overrides: Any) -> FileResult:
        """From a ``dicomscrub._core.FileRecord``."""
        values = {
            "src": record["src"],
            "dst": record.get("dst"),
            "status": record["status"],
            "error_kind": record.get("error_kind"),
            "message": record.get("message"),
            "offset": record.get("offset"),
            "tag": record.get("tag"),
            "bytes_in": record.get("bytes_in", 0),
            "bytes_out": record.get("bytes_out", 0),
            "actions": dict(record.get("actions") or {}),
            "sop_instance_uid": record.get("sop_instance_uid"),
            "ids": dict(record.get("ids") or {}),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (paths as text, tag as 8 hex digits); no deep copy: this is per file."""
        return {
            "src": _text(self.src),
            "dst": _text(self.dst),
            "status": self.status,
            "error_kind": self.error_kind,
            "message": self.message,
            "offset": self.offset,
            "tag": f"{self.tag:08X}" if self.tag is not None else None,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "actions": self.actions,
            "sop_instance_uid": self.sop_instance_uid,
            "ids": self.ids,
            "note": self.note,
        }


@dataclass
class ElementChange:
    """One element a dry run would change: ``path`` is ``(GGGG,EEEE)`` steps joined by ``/``,
    with ``[i]`` for sequence items."""

    file: str
    path: str
    keyword: str
    change: Literal["removed", "added", "changed", "emptied"]
    before: str | None
    after: str | None


@dataclass
class Report:
    """The summary of a run."""

    src: str | None = None
    dst: str | None = None
    layout: str = "mirror"
    dry_run: bool = False
    key_fingerprint: str | None = None
    profile: str | None = None
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0  # counted in ok (or skipped) too: files an earlier run had done
    copied: int = 0  # counted in skipped too: non-DICOM copied as they are
    bytes_in: int = 0  # of the files processed by this run (resumed files excluded)
    bytes_out: int = 0
    duration: float = 0.0
    actions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # error_kind -> files
    failures: list[FileResult] = field(default_factory=list)  # the first MAX_FAILURES_KEPT
    dicomdirs: list[FileResult] = field(default_factory=list)
    changes: list[ElementChange] = field(default_factory=list)  # dry run: the sample's edits
    planned_files: int = 0  # dry run: files found
    planned_bytes: int = 0
    report_path: str | None = None
    journal_path: str | None = None
    quarantine_path: str | None = None
    linkage_path: str | None = None  # the linkage file, when one was asked for (mode 0600)
    cluster: dict[str, Any] | None = None  # a Dask run: workers, batches, retries (cluster.py)

    @property
    def files(self) -> int:
        """Files seen: ok + failed + skipped."""
        return self.ok + self.failed + self.skipped

    @property
    def processed(self) -> int:
        """Files this run handled itself (resumed ones excluded)."""
        return self.files - self.resumed

    @property
    def files_per_s(self) -> float:
        return self.processed / self.duration if self.duration > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_in / 1e6 / self.duration if self.duration > 0 else 0.0

    @property
    def success(self) -> bool:
        """Nothing failed (skipped non-DICOM files are not failures)."""
        return self.failed == 0

    def add(self, r: FileResult) -> None:
        """Count one file."""
        if r.status == "ok":
            self.ok += 1
        elif r.status == "failed":
            self.failed += 1
            if r.error_kind:
                self.errors[r.error_kind] += 1
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append(r)
        else:
            self.skipped += 1
        if r.note == NOTE_RESUMED:
            self.resumed += 1
        else:
            self.bytes_in += r.bytes_in
            self.bytes_out += r.bytes_out
            self.actions.update(r.actions)
        if r.note == NOTE_COPIED:
            self.copied += 1
        if r.note in (NOTE_DICOMDIR, NOTE_DICOMDIR_NOT_COPIED):
            self.dicomdirs.append(r)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "layout": self.layout,
            "dry_run": self.dry_run,
            **({"planned_files": self.planned_files, "planned_bytes": self.planned_bytes}
               if self.dry_run else {}),
            "profile": self.profile,
            "key_fingerprint": self.key_fingerprint,
            "files": self.files,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "resumed": self.resumed,
            "copied": self.copied,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_s": round(self.duration, 6),
            "files_per_s": round(self.files_per_s, 2),
            "mb_per_s": round(self.mb_per_s, 3),
            "actions": dict(sorted(self.actions.items())),
            "errors": dict(sorted(self.errors.items())),
            "dicomdirs": [{"dst": _text(d.dst), "note": d.note, "message": d.message}
                          for d in self.dicomdirs],
            "report_path": self.report_path,
            "journal_path": self.journal_path,
            "quarantine_path": self.quarantine_path,
            **({"linkage_path": self.linkage_path} if self.linkage_path else {}),
            **({"cluster": self.cluster} if self.cluster is not None else {}),
        }  # fmt: skip

    def summary_lines(self) -> list[str]:
        """A small human-readable table."""
        rows = [
            ("files", f"{self.files}"),
            ("ok", f"{self.ok}"),
            ("failed", f"{self.failed}"),
            ("skipped", f"{self.skipped}" + (f" ({self.copied} copied)" if self.copied else "")),
            *(
                [("resumed", f"{self.resumed} (done by an earlier run, left as they were)")]
                if self.resumed
                else []
            ),
            ("read", _size(self.bytes_in)),
            ("written", _size(self.bytes_out)),
            ("time", f"{self.duration:.2f} s"),
            ("speed", f"{self.files_per_s:.1f} files/s, {self.mb_per_s:.1f} MB/s"),
        ]
        if self.actions:
            rows.append(("actions", ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items()))))
        if self.errors:
            rows.append(("errors", ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items()))))
        if self.cluster:
            c = self.cluster
            rows.append(
                ("cluster", f"{c['workers']} Dask workers ({c['threads']} threads), "
                 f"{c['batches']} batches, {c['retried']} retried, {c['lost']} lost, "
                 f"workers busy {100 * c['busy']:.0f}%")
            )  # fmt: skip
        for d in self.dicomdirs:
            where = _text(d.dst) if d.dst else _text(d.src)
            rows.append(
                ("DICOMDIR", f"{d.note}: {where}" + (f" ({d.message})" if d.message else ""))
            )
        width = max(len(k) for k, _ in rows)
        return [f"{k.ljust(width)}  {v}" for k, v in rows]


class ReportWriter:
    """Writes a JSON Lines report as a run goes (one line per file, then the summary)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._f: TextIO | None = open(self.path, "w", encoding="utf-8")

    def file(self, r: FileResult) -> None:
        if self._f is not None:
            self._f.write(json.dumps({"type": "file", **r.to_dict()}, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def summary(self, report: Report) -> None:
        if self._f is not None:
            line = json.dumps({"type": "summary", **report.to_dict()}, ensure_ascii=False)
            self._f.write(line + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _text(p: str | None) -> str | None:
    """A path as JSON-safe text (undecodable bytes kept as backslash escapes)."""
    if p is None:
        return None
    return os.fsencode(p).decode("utf-8", "backslashreplace")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"
