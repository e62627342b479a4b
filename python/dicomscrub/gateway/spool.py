"""The gateway's durable queue: anonymized instances waiting for a destination that is down.

A spool folder holds ``queue.sqlite`` (SQLite, WAL, ``synchronous=FULL``), ``files/`` (one
anonymized Part 10 file per queued instance), ``tmp/`` (staging) and ``dead/`` (instances the
destination refused after they were queued, kept for inspection). ``lock`` is ``flock``ed by the
gateway that owns the spool: two gateways never drain one queue.

Order of the writes, which is what makes "Success" safe to answer:

1. :meth:`Spool.put` writes the file in ``tmp/``, ``fsync``s it, renames it into ``files/`` and
   ``fsync``s the folder; then inserts its row in one durable commit. Only after that commit
   does the sender get Success. A crash before it leaves at most a file without a row (deleted
   at the next start) and a sender without an answer, which sends again.
2. :meth:`Spool.delivered` deletes the row (commit), then the file. A crash between the two
   leaves a file without a row (deleted at the next start); a crash before the commit sends the
   instance again after the restart: harmless, a PACS keeps one copy per SOP Instance UID.

Every committed row therefore has its whole file, and survives a restart (``kill -9`` or power
loss) of the gateway; the next gateway on the same spool drains it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dicomscrub.lock import RunLock

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,               -- its name in files/ (dead/ once dead)
    sop_class TEXT NOT NULL,
    sop_instance TEXT NOT NULL,       -- the anonymized instance's SOP Instance UID
    transfer_syntax TEXT NOT NULL,
    size INTEGER NOT NULL,
    source TEXT,                      -- where it came from (the report's src)
    ids TEXT,                         -- JSON: the output's PatientID, Study/Series UIDs
    state TEXT NOT NULL,              -- queued | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL NOT NULL,
    next_attempt REAL NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS queue_due ON queue(state, next_attempt);
"""

__all__ = ["Entry", "Spool"]


@dataclass
class Entry:
    """A queued instance."""

    id: int
    path: str
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    size: int
    source: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    enqueued_at: float = 0.0
    last_error: str | None = None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Spool:
    """The queue of one gateway (thread-safe)."""

    def __init__(self, root: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.files = os.path.join(self.root, "files")
        self.tmp = os.path.join(self.root, "tmp")
        self.dead_dir = os.path.join(self.root, "dead")
        for d in (self.root, self.files, self.tmp, self.dead_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._lock_file = RunLock(os.path.join(self.root, "lock")) if lock else None
        if self._lock_file is not None:
            self._lock_file.acquire()
        self._mutex = threading.Lock()
        self.path = os.path.join(self.root, "queue.sqlite")
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(name, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )
        self.recovered = self._recover()

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self) -> dict[str, int]:
        """Delete staging leftovers and files without a row; mark rows without a file dead."""
        removed = 0
        for name in os.listdir(self.tmp):
            _unlink(os.path.join(self.tmp, name))
            removed += 1
        with self._mutex:
            known = {r[0] for r in self._db.execute("SELECT file FROM queue WHERE state='queued'")}
            for name in os.listdir(self.files):
                if name not in known:
                    _unlink(os.path.join(self.files, name))
                    removed += 1
            missing = [
                r[0]
                for r in self._db.execute("SELECT id, file FROM queue WHERE state='queued'")
                if not os.path.exists(os.path.join(self.files, r[1]))
            ]
            if missing:
                self._db.executemany(
                    "UPDATE queue SET state='dead', last_error='spool file missing' WHERE id=?",
                    [(i,) for i in missing],
                )
            queued = self._count("queued")
        return {"removed_files": removed, "missing": len(missing), "queued": queued}

    # -- writing -----------------------------------------------------------------------------

    def stage(self, data: bytes | bytearray | memoryview) -> str:
        """Write ``data`` to a new staging file (not synced): for a send that reads a path."""
        path = os.path.join(self.tmp, uuid.uuid4().hex + ".dcm")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def discard(self, staged: str | None) -> None:
        if staged is not None:
            _unlink(staged)

    def put(
        self,
        *,
        sop_class: str,
        sop_instance: str,
        transfer_syntax: str,
        data: bytes | bytearray | memoryview | None = None,
        staged: str | None = None,
        source: str | None = None,
        ids: Mapping[str, str] | None = None,
        error: str | None = None,
        not_before: float | None = None,
        attempts: int = 0,
    ) -> Entry:
        """Queue an instance durably (file synced, then row committed); returns its entry.
        Give its bytes (``data``) or a file from :meth:`stage` (moved into the queue)."""
        name = uuid.uuid4().hex + ".dcm"
        final = os.path.join(self.files, name)
        if staged is None:
            if data is None:
                raise ValueError("put needs data or staged")
            staged = self.stage(data)
        try:
            fd = os.open(staged, os.O_RDONLY)
            try:
                os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.rename(staged, final)
            _fsync_dir(self.files)
        except BaseException:
            _unlink(staged)
            _unlink(final)
            raise
        now = time.time()
        ids_text = json.dumps(dict(ids or {}), sort_keys=True)
        try:
            with self._mutex, self._tx(durable=True):
                cur = self._db.execute(
                    "INSERT INTO queue(file, sop_class, sop_instance, transfer_syntax, size, "
                    "source, ids, state, attempts, enqueued_at, next_attempt, last_error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                    (
                        name, sop_class, sop_instance, transfer_syntax, size, source, ids_text,
                        attempts, now, now if not_before is None else not_before, error,
                    ),
                )  # fmt: skip
                row_id = int(cur.lastrowid or 0)
        except BaseException:
            _unlink(final)
            raise
        return Entry(
            row_id, final, sop_class, sop_instance, transfer_syntax, size, source,
            dict(ids or {}), attempts, now, error,
        )  # fmt: skip

    # -- reading -----------------------------------------------------------------------------

    def due(self, limit: int = 64, now: float | None = None) -> list[Entry]:
        """Queued entries whose next attempt is due, oldest first."""
        now = time.time() if now is None else now
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, file, sop_class, sop_instance, transfer_syntax, size, source, ids, "
                "attempts, enqueued_at, last_error FROM queue "
                "WHERE state='queued' AND next_attempt <= ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [self._entry(r) for r in rows]

    def entries(self, state: str = "queued") -> Iterator[Entry]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, file, sop_class, sop_instance, transfer_syntax, size, source, ids, "
                "attempts, enqueued_at, last_error FROM queue WHERE state=? ORDER BY id",
                (state,),
            ).fetchall()
        for r in rows:
            yield self._entry(r, dead=state == "dead")

    def _entry(self, r: tuple[Any, ...], *, dead: bool = False) -> Entry:
        return Entry(
            id=r[0],
            path=os.path.join(self.dead_dir if dead else self.files, r[1]),
            sop_class=r[2],
            sop_instance=r[3],
            transfer_syntax=r[4],
            size=r[5],
            source=r[6],
            ids=json.loads(r[7] or "{}"),
            attempts=r[8],
            enqueued_at=r[9],
            last_error=r[10],
        )

    def next_due(self) -> float | None:
        """When the earliest queued entry is due (None: the queue is empty)."""
        with self._mutex:
            row = self._db.execute(
                "SELECT MIN(next_attempt) FROM queue WHERE state='queued'"
            ).fetchone()
        return row[0] if row and row[0] is not None else None

    def depth(self) -> int:
        with self._mutex:
            return self._count("queued")

    def dead_count(self) -> int:
        with self._mutex:
            return self._count("dead")

    def _count(self, state: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM queue WHERE state=?", (state,)).fetchone()
        return int(row[0])

    # -- outcomes ----------------------------------------------------------------------------

    def delivered(self, entries: list[Entry]) -> None:
        """The destination has them: rows deleted (one commit), then the files."""
        if not entries:
            return
        with self._mutex, self._tx(durable=False):
            self._db.executemany("DELETE FROM queue WHERE id=?", [(e.id,) for e in entries])
        for e in entries:
            _unlink(e.path)

    def defer(self, entries: list[Entry], error: str, at: float) -> None:
        """This instance failed (no answer to it, a transient refusal): one more attempt
        counted, retry at ``at``."""
        if not entries:
            return
        with self._mutex, self._tx(durable=False):
            self._db.executemany(
                "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
                "WHERE id = ?",
                [(at, error, e.id) for e in entries],
            )

    def postpone_all(self, at: float, error: str) -> None:
        """Every queued entry waits until ``at`` at least (the destination is down); their
        ``attempts`` (failures of the instance itself) do not change."""
        with self._mutex, self._tx(durable=False):
            self._db.execute(
                "UPDATE queue SET next_attempt = ?, last_error = ? "
                "WHERE state='queued' AND next_attempt < ?",
                (at, error, at),
            )

    def kill(self, entry: Entry, reason: str) -> str:
        """The destination refused it for good: the file moves to ``dead/``; returns its path."""
        dead = os.path.join(self.dead_dir, os.path.basename(entry.path))
        try:
            os.rename(entry.path, dead)
        except FileNotFoundError:
            dead = ""
        with self._mutex, self._tx(durable=False):
            self._db.execute(
                "UPDATE queue SET state='dead', attempts = attempts + 1, last_error=? WHERE id=?",
                (reason, entry.id),
            )
        return dead

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        if self._lock_file is not None:
            self._lock_file.release()

    def _tx(self, *, durable: bool) -> _Transaction:
        return _Transaction(self._db, durable)


class _Transaction:
    def __init__(self, db: sqlite3.Connection, durable: bool) -> None:
        self._db = db
        self._durable = durable

    def __enter__(self) -> None:
        self._db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'NORMAL'}")
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
