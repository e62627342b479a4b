"""Where the gateway sends anonymized instances: a PACS (C-STORE), a folder (the bulk engine's
atomic writer and journal), or a DICOMweb server (STOW-RS).

A destination opens *sessions*; a session's :meth:`~Session.send` returns the destination's
verdict as a :class:`Result` (a C-STORE status: success, warning or a refusal), or raises
:class:`~dicomscrub.gateway.dimse.DestinationUnavailable` when the destination cannot be reached,
in which case the gateway queues the instance (network destinations only): ``ConnectFailed``
when no association or connection could be made, ``NoAnswer`` when the request went unanswered.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dicomscrub.fsutil import temp_name
from dicomscrub.gateway.address import Address
from dicomscrub.gateway.dimse import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_OUT_OF_RESOURCES,
    STATUS_PROCESSING_FAILURE,
    STATUS_SOP_CLASS_NOT_SUPPORTED,
    ConnectFailed,
    NoAnswer,
    NoContext,
    Requestor,
)
from dicomscrub.journal import Journal
from dicomscrub.layout import LayoutNamer
from dicomscrub.lock import RunLock
from dicomscrub.report import FileResult
from dicomscrub.walk import STATE_DIR

if TYPE_CHECKING:
    from dicomscrub.anonymizer import Anonymizer
    from dicomscrub.gateway.spool import Spool

__all__ = [
    "DicomDestination",
    "DirDestination",
    "Outgoing",
    "Result",
    "Session",
    "StowDestination",
]


@dataclass
class Outgoing:
    """An anonymized instance on its way: its bytes (``data``) or a file (``path``)."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    data: bytes | None = None
    path: str | None = None
    staged: bool = False  # ``path`` is a staging file of the spool (deleted once sent)
    source: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    size: int = 0

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as f:
            return f.read()


@dataclass(frozen=True)
class Result:
    """The destination's answer: a C-STORE status and, for a refusal, why."""

    status: int
    message: str | None = None
    dst: str | None = None  # where it went (a path for a folder)


class Session:
    """Sends instances one by one; :meth:`close` at the end."""

    def send(self, item: Outgoing) -> Result:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Destination:
    """Base of the three destinations."""

    label = ""  # the report's dst
    queues = True  # network destinations queue when down; a folder answers at once

    def session(self, pairs: list[tuple[str, str]]) -> Session:
        raise NotImplementedError

    def start(self) -> None:
        pass

    def close(self, summary: dict[str, Any] | None = None) -> None:
        pass


# -- C-STORE to a PACS -------------------------------------------------------------------------


class DicomDestination(Destination):
    """C-STORE SCU to ``address``: each instance in its own transfer syntax, sent from a file
    as it is (the anonymized bytes; pydicom never decodes them)."""

    def __init__(
        self,
        address: Address,
        *,
        calling_aet: str,
        spool: Spool,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        dimse_timeout: float = 20.0,
    ) -> None:
        self.address = address
        self.calling_aet = calling_aet
        self.spool = spool
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.dimse_timeout = dimse_timeout
        self.label = address.url

    def session(self, pairs: list[tuple[str, str]]) -> Session:
        return _DicomSession(self, pairs)


class _DicomSession(Session):
    def __init__(self, dest: DicomDestination, pairs: list[tuple[str, str]]) -> None:
        self.dest = dest
        self.requestor = Requestor(
            dest.address,
            pairs,
            calling_aet=dest.calling_aet,
            tls=dest.tls,
            connect_timeout=dest.connect_timeout,
            dimse_timeout=dest.dimse_timeout,
        )

    def send(self, item: Outgoing) -> Result:
        if item.path is None:
            assert item.data is not None
            item.path = self.dest.spool.stage(item.data)
            item.staged = True
        try:
            status = self.requestor.store(item.path, item.sop_class, item.transfer_syntax)
        except NoContext as exc:
            return Result(STATUS_SOP_CLASS_NOT_SUPPORTED, str(exc), self.dest.label)
        return Result(status, None, self.dest.label)

    def close(self) -> None:
        self.requestor.close()


# -- DICOMweb STOW-RS --------------------------------------------------------------------------

_RETRY_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


class StowDestination(Destination):
    """DICOMweb STOW-RS: one ``POST`` of ``multipart/related; type="application/dicom"`` per
    instance (urllib). Connection errors, timeouts and 408/429/5xx answers mean "unavailable"
    (queued, retried); other refusals are passed back to the sender as failure statuses."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 20.0,
        tls: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a STOW-RS URL starts with http:// or https://: {url!r}")
        self.url = url
        self.timeout = timeout
        self.tls = tls
        self.headers = dict(headers or {})
        self.label = url

    def session(self, pairs: list[tuple[str, str]]) -> Session:
        return _StowSession(self)


class _StowSession(Session):
    def __init__(self, dest: StowDestination) -> None:
        self.dest = dest

    def send(self, item: Outgoing) -> Result:
        boundary = "dicomscrub-" + uuid.uuid4().hex
        body = b"".join(
            (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii"),
                item.read(),
                f"\r\n--{boundary}--\r\n".encode("ascii"),
            )
        )
        req = urllib.request.Request(
            self.dest.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
                **self.dest.headers,
            },
        )
        label = self.dest.label
        try:
            with urllib.request.urlopen(req, timeout=self.dest.timeout, context=self.dest.tls) as r:
                code, payload = r.status, r.read()
        except urllib.error.HTTPError as exc:
            code, payload = exc.code, exc.read()
            if code in _RETRY_HTTP:
                raise ConnectFailed(f"{label}: HTTP {code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise NoAnswer(f"{label}: no answer (timeout)") from None
            raise ConnectFailed(f"{label}: {reason}") from None
        return _stow_result(code, payload, item.sop_instance, label)


def _stow_result(code: int, payload: bytes, sop_instance: str, label: str) -> Result:
    """PS3.18 10.5.3: 200 all stored, 202 some warnings/failures, 409 all failed, 4xx refused."""
    try:
        doc = json.loads(payload) if payload else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}

    def items(tag: str) -> list[dict[str, Any]]:
        v = doc.get(tag, {}).get("Value", [])
        return [i for i in v if isinstance(i, dict)]

    def first(item: dict[str, Any], tag: str) -> Any:
        v = item.get(tag, {}).get("Value", [])
        return v[0] if v else None

    for it in items("00081198"):  # Failed SOP Sequence
        if first(it, "00081155") in (sop_instance, None):
            reason = first(it, "00081197")
            status = int(reason) if isinstance(reason, int) else STATUS_PROCESSING_FAILURE
            return Result(status, f"STOW-RS HTTP {code}: failure reason 0x{status:04X}", label)
    if code in (200, 202):
        for it in items("00081199"):  # Referenced SOP Sequence
            warn = first(it, "00081196")
            if first(it, "00081155") == sop_instance and isinstance(warn, int) and warn:
                return Result(warn, f"STOW-RS warning 0x{warn:04X}", label)
        return Result(0x0000, None, label)
    status = STATUS_SOP_CLASS_NOT_SUPPORTED if code == 415 else STATUS_CANNOT_UNDERSTAND
    text = payload[:200].decode("utf-8", "replace").strip() if not doc else ""
    return Result(status, f"STOW-RS HTTP {code}" + (f": {text}" if text else ""), label)


# -- a folder ----------------------------------------------------------------------------------


class DirDestination(Destination):
    """The bulk engine's destination layout ``patient/study/series`` (names from the output's
    values only), each file written whole (temporary file, ``fsync``, rename, folder
    ``fsync``) and recorded in ``DIR/.dicomscrub/journal.sqlite`` before the sender gets
    Success; ``DIR/.dicomscrub/lock`` keeps a ``run`` or another gateway out meanwhile."""

    queues = False
    LAYOUT = "patient/study/series"

    def __init__(self, root: str, anonymizer: Anonymizer, *, source: str) -> None:
        self.root = os.path.abspath(root)
        self.anon = anonymizer
        self.source = source
        self.label = self.root
        self.state = os.path.join(self.root, STATE_DIR)
        self.namer = LayoutNamer(anonymizer.plan, anonymizer.key.secret)
        self._lock = RunLock(os.path.join(self.state, "lock"))
        # the journal is not thread-safe: one thread owns it
        self._jx = ThreadPoolExecutor(1, thread_name_prefix="dicomscrub-journal")
        self._journal: Journal | None = None
        self._run_id = 0
        self._dirs_synced: set[str] = set()
        self._mutex = threading.Lock()

    def start(self) -> None:
        os.makedirs(self.state, exist_ok=True)
        self._lock.acquire()
        try:
            self._jx.submit(self._open).result()
        except BaseException:
            self._lock.release()
            raise

    def _open(self) -> None:
        from dicomscrub.errors import OutputError

        j = Journal(os.path.join(self.state, "journal.sqlite"))
        layouts = j.layouts()
        if layouts and layouts != {self.LAYOUT}:
            j.close()
            raise OutputError(
                f"{self.root} was written with the {', '.join(sorted(layouts))} layout: the "
                f"gateway writes {self.LAYOUT}; use another folder",
                path=self.root,
            )
        other = j.other_plan(self.anon.plan_id)
        if other is not None:
            j.close()
            raise OutputError(
                f"{self.root} holds outputs made with another profile or key: use another folder",
                path=self.root,
            )
        self._run_id = j.start_run(
            src=self.source,
            plan_id=self.anon.plan_id,
            key_fingerprint=self.anon.key.fingerprint,
            profile=self.anon.profile.name,
            layout=self.LAYOUT,
        )
        self._journal = j

    def session(self, pairs: list[tuple[str, str]]) -> Session:
        return _DirSession(self)

    def store(self, item: Outgoing) -> Result:
        rel = self.namer.relpath(item.ids, item.sop_instance, item.source or "")
        final = os.path.join(self.root, rel)
        folder = os.path.dirname(final)
        data = item.read()
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = temp_name(final)
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                # a resent instance replaces its earlier output (same plan, key: same bytes)
                os.replace(tmp, final)
            except BaseException:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
                raise
            self._sync_dirs(folder)
        except OSError as exc:
            return Result(STATUS_OUT_OF_RESOURCES, f"cannot write {final}: {exc.strerror}")
        r = FileResult(
            src=item.source or "",
            dst=final,
            status="ok",
            bytes_in=item.size,
            bytes_out=len(data),
            sop_instance_uid=item.sop_instance,
            ids=dict(item.ids),
        )
        key = b"dicom:" + item.sop_instance.encode("ascii", "replace")
        self._jx.submit(self._record, key, r).result()
        return Result(0x0000, None, final)

    def _sync_dirs(self, folder: str) -> None:
        """``fsync`` the file's folder, and once each the new folders above it."""
        todo = [folder]
        with self._mutex:
            d = os.path.dirname(folder)
            while d.startswith(self.root) and d not in self._dirs_synced and d != self.root:
                todo.append(d)
                d = os.path.dirname(d)
            if self.root not in self._dirs_synced:
                todo.append(self.root)
        for d in todo:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        with self._mutex:
            self._dirs_synced.update(todo[1:])

    def _record(self, key: bytes, r: FileResult) -> None:
        assert self._journal is not None
        self._journal.finish_batch(None, [(key, r.bytes_in, 0, r)], self.anon.plan_id, self._run_id)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        def fin() -> None:
            if self._journal is not None:
                self._journal.finish_run(self._run_id, summary or {})
                self._journal.close()
                self._journal = None

        try:
            self._jx.submit(fin).result()
        finally:
            self._jx.shutdown(wait=True)
            self._lock.release()


class _DirSession(Session):
    def __init__(self, dest: DirDestination) -> None:
        self.dest = dest

    def send(self, item: Outgoing) -> Result:
        return self.dest.store(item)
