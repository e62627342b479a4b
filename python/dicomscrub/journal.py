"""The journal of a destination tree: which source files are done, so a re-run resumes.

SQLite at ``DST/.dicomscrub/journal.sqlite`` in WAL mode with ``synchronous=FULL``: every commit
is durable, and there are two commits per batch of files, never one per file (group commit):

1. :meth:`Journal.begin_batch` records the batch's files as ``pending`` (with the output path
   each will get) *before* the core writes anything;
2. the core writes the outputs and syncs the filesystem;
3. :meth:`Journal.finish_batch` records each file's outcome and marks the batch ``done``
   (not fsynced itself: it reaches the disk with the next batch's pending commit or sync).

A run killed between 1 and 3 leaves ``pending`` rows: :meth:`Journal.take_pending` hands their
output paths to the next run, which deletes them (they may be incomplete in a crash, never in a
kill: outputs are renamed into place whole) and processes those files again.

Source paths are stored as the bytes of their path relative to the source root (``BLOB``), so
any file name round-trips.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dicomscrub.report import FileResult

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL,
    src TEXT,
    plan_id TEXT NOT NULL,
    key_fingerprint TEXT,
    profile TEXT,
    layout TEXT NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    state TEXT NOT NULL,              -- pending | done | abandoned
    files INTEGER NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS files (
    src BLOB PRIMARY KEY,             -- path relative to the source root, as bytes
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL,             -- pending | ok | failed | skipped
    dst BLOB,                         -- the output path (absolute), as bytes
    note TEXT,
    error_kind TEXT,
    reason TEXT,
    offset INTEGER,
    tag INTEGER,
    bytes_in INTEGER NOT NULL DEFAULT 0,
    bytes_out INTEGER NOT NULL DEFAULT 0,
    plan_id TEXT,
    run_id INTEGER,
    batch_id INTEGER
);
CREATE INDEX IF NOT EXISTS files_dst ON files(dst);
CREATE INDEX IF NOT EXISTS files_status ON files(status);
"""

__all__ = ["Journal", "Row"]


@dataclass(frozen=True, slots=True)
class Row:
    """A file as the journal knows it."""

    src: bytes
    size: int
    mtime_ns: int
    status: str
    dst: bytes | None
    note: str | None
    plan_id: str | None
    bytes_in: int
    bytes_out: int


def _b(path: str | bytes | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


class Journal:
    """One destination's journal. Not thread-safe: use it from the thread that opened it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self, *, src: str, plan_id: str, key_fingerprint: str, profile: str, layout: str
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO runs(started_at, src, plan_id, key_fingerprint, profile, layout) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), src, plan_id, key_fingerprint, profile, layout),
        )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, summary: dict[str, Any]) -> None:
        self._db.execute(
            "UPDATE runs SET finished_at = ?, summary = ? WHERE id = ?",
            (time.time(), json.dumps(summary), run_id),
        )

    def interrupted(self) -> bool:
        """Did an earlier run stop before its end (killed, crashed)?"""
        row = self._db.execute("SELECT 1 FROM runs WHERE finished_at IS NULL LIMIT 1").fetchone()
        pending = self._db.execute("SELECT 1 FROM files WHERE status = 'pending' LIMIT 1")
        return row is not None or pending.fetchone() is not None

    def other_plan(self, plan_id: str) -> str | None:
        """The plan id of a finished output made with another plan (profile or key), if any."""
        row = self._db.execute(
            "SELECT plan_id FROM files WHERE status = 'ok' AND plan_id != ? LIMIT 1", (plan_id,)
        ).fetchone()
        return row[0] if row else None

    def layouts(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT DISTINCT layout FROM runs")}

    # -- recovery --------------------------------------------------------------------------

    def take_pending(self) -> list[bytes]:
        """Forget the files of batches left pending; returns their output paths (to delete)."""
        with self._tx():
            dsts = [
                r[0]
                for r in self._db.execute(
                    "SELECT dst FROM files WHERE status = 'pending' AND dst IS NOT NULL"
                )
            ]
            self._db.execute("DELETE FROM files WHERE status = 'pending'")
            self._db.execute("UPDATE batches SET state = 'abandoned' WHERE state = 'pending'")
            self._db.execute(
                "UPDATE runs SET finished_at = ?, summary = '{\"interrupted\": true}' "
                "WHERE finished_at IS NULL",
                (time.time(),),
            )
        return dsts

    # -- batches ---------------------------------------------------------------------------

    def lookup(self, srcs: Sequence[bytes]) -> dict[bytes, Row]:
        """The rows of ``srcs`` (relative source paths as bytes) that exist."""
        out: dict[bytes, Row] = {}
        for i in range(0, len(srcs), 500):
            chunk = srcs[i : i + 500]
            q = ",".join("?" * len(chunk))
            for r in self._db.execute(
                "SELECT src, size, mtime_ns, status, dst, note, plan_id, bytes_in, bytes_out "
                f"FROM files WHERE src IN ({q})",
                list(chunk),
            ):
                out[r[0]] = Row(*r)
        return out

    def dst_owner(self, dst: str | bytes) -> bytes | None:
        """The source that the journal says produced (or is producing) ``dst``."""
        row = self._db.execute(
            "SELECT src FROM files WHERE dst = ? AND status IN ('ok', 'pending', 'skipped') "
            "LIMIT 1",
            (_b(dst),),
        ).fetchone()
        return row[0] if row else None

    def begin_batch(
        self, run_id: int, files: Iterable[tuple[bytes, int, int, str | None]], plan_id: str
    ) -> int:
        """Mark ``(src, size, mtime_ns, dst)`` files pending in a new batch; one commit."""
        files = list(files)
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO batches(run_id, state, files, started_at) VALUES (?, 'pending', ?, ?)",
                (run_id, len(files), time.time()),
            )
            batch_id = int(cur.lastrowid or 0)
            self._db.executemany(
                "INSERT OR REPLACE INTO files(src, size, mtime_ns, status, dst, plan_id, run_id, "
                "batch_id) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
                [(s, size, m, _b(d), plan_id, run_id, batch_id) for s, size, m, d in files],
            )
        return batch_id

    def set_dsts(self, pairs: Iterable[tuple[bytes, str]]) -> None:
        """Record the final output paths of pending files (before they are moved there)."""
        with self._tx():
            self._db.executemany(
                "UPDATE files SET dst = ? WHERE src = ? AND status = 'pending'",
                [(_b(d), s) for s, d in pairs],
            )

    def finish_batch(
        self,
        batch_id: int | None,
        results: Iterable[tuple[bytes, int, int, FileResult]],
        plan_id: str,
        run_id: int,
    ) -> None:
        """Record ``(src, size, mtime_ns, result)`` outcomes and close the batch; one commit."""
        rows = [
            (
                s, size, m, r.status, _b(r.dst) if r.status != "failed" else None, r.note,
                r.error_kind, r.message, r.offset, r.tag, r.bytes_in, r.bytes_out, plan_id,
                run_id, batch_id,
            )
            for s, size, m, r in results
        ]  # fmt: skip
        # Not durable: losing it (power cut) only means redoing the batch; its outputs were
        # synced before, and its pending mark was durable.
        with self._tx(durable=False):
            self._db.executemany(
                "INSERT OR REPLACE INTO files(src, size, mtime_ns, status, dst, note, error_kind, "
                "reason, offset, tag, bytes_in, bytes_out, plan_id, run_id, batch_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if batch_id is not None:
                self._db.execute(
                    "UPDATE batches SET state = 'done', finished_at = ? WHERE id = ?",
                    (time.time(), batch_id),
                )

    # -- queries ---------------------------------------------------------------------------

    def failed(self) -> Iterator[dict[str, Any]]:
        """Failed files (for the quarantine list), in source order."""
        for r in self._db.execute(
            "SELECT src, error_kind, reason, offset, tag, size FROM files "
            "WHERE status = 'failed' ORDER BY src"
        ):
            yield {
                "src": os.fsdecode(r[0]),
                "error_kind": r[1],
                "reason": r[2],
                "offset": r[3],
                "tag": f"{r[4]:08X}" if r[4] is not None else None,
                "size": r[5],
            }

    def output_of(self, src: bytes) -> tuple[str, str | None] | None:
        """``(status, dst)`` of a source file, when the journal has it."""
        r = self._db.execute("SELECT status, dst FROM files WHERE src = ?", (src,)).fetchone()
        if r is None:
            return None
        return r[0], os.fsdecode(r[1]) if r[1] is not None else None

    def ok_outputs_under(self, prefix: bytes) -> Iterator[tuple[bytes, str]]:
        """``(src, dst)`` of the files done under the relative folder ``prefix`` (b"" = all)."""
        for r in self._db.execute(
            "SELECT src, dst FROM files WHERE status = 'ok' "
            "AND (note IS NULL OR note NOT LIKE 'dicomdir%') ORDER BY src"
        ):
            if r[1] is not None and (not prefix or r[0].startswith(prefix)):
                yield r[0], os.fsdecode(r[1])

    # -- internals -------------------------------------------------------------------------

    def _tx(self, *, durable: bool = True) -> _Transaction:
        return _Transaction(self._db, durable)


class _Transaction:
    """``durable``: the commit is on disk when it returns (synchronous=FULL: one fsync of the
    WAL). Otherwise (NORMAL) it is safe against a killed process and reaches the disk with the
    next durable commit or the core's syncfs of the batch, whichever comes first."""

    def __init__(self, db: sqlite3.Connection, durable: bool) -> None:
        self._db = db
        self._durable = durable

    def __enter__(self) -> None:
        self._db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
