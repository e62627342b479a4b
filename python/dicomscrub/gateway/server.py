"""``dicomscrub serve``: a Storage SCP that anonymizes on the fly and forwards.

Per C-STORE (each association has its own pynetdicom thread):

1. the data set arrives as encoded bytes; with pynetdicom's File Meta for it they make a Part 10
   file in memory (``event.encoded_dataset()``); pydicom decodes nothing;
2. the Rust core anonymizes it in a thread pool (``jobs`` threads, GIL released); a failure
   answers ``0xC000`` (cannot understand) with the reason in the log and the report;
3. the result goes to the destination:

   - a PACS: C-STORE over an association the gateway opens for the incoming one, proposing the
     same (SOP class, transfer syntax) pairs; the instance travels as its anonymized bytes. The
     PACS's status is the sender's: a refusal comes back to the sender as it was given;
   - a folder: written whole and synced, recorded in the journal, then Success;
   - DICOMweb STOW-RS: one POST per instance; a refusal comes back as a failure status.

   When a network destination cannot be reached (connection refused, association rejected or
   aborted, no answer, HTTP 5xx), the instance is queued durably in the spool
   (:mod:`dicomscrub.gateway.spool`) and only then does the sender get Success. While the
   destination is known to be down, new instances go straight to the queue. A worker thread
   drains the queue with exponential backoff (``retry_min`` doubling up to ``retry_max``); a
   restarted gateway on the same spool drains what an earlier one left.

Only the AE titles in ``allow_aets`` may associate (pynetdicom rejects the others: "calling AE
title not recognised"); TLS is optional. The key never reaches a log or a report (only its
fingerprint).
"""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom import _config as pynetdicom_config

from dicomscrub import _core
from dicomscrub.errors import DicomScrubError
from dicomscrub.gateway.address import Address
from dicomscrub.gateway.destinations import Destination, Outgoing, Result, Session
from dicomscrub.gateway.dimse import (
    MAX_CONTEXTS,
    NO_DELAY,
    STATUS_CANNOT_UNDERSTAND,
    STATUS_OUT_OF_RESOURCES,
    STATUS_PROCESSING_FAILURE,
    VERIFICATION,
    DestinationUnavailable,
    NoAnswer,
    is_accepted,
    is_transient,
    read_meta,
    status_text,
    storage_sop_classes,
    transfer_syntaxes,
)
from dicomscrub.gateway.spool import Entry, Spool
from dicomscrub.progress import should_show
from dicomscrub.report import FileResult, Report, ReportWriter

if TYPE_CHECKING:
    from dicomscrub.anonymizer import Anonymizer

log = logging.getLogger("dicomscrub.gateway")

NOTE_QUEUED = "queued"  # answered Success once durably queued (destination down)
NOTE_FROM_QUEUE = "delivered-from-queue"  # a queued instance reached the destination
NOTE_DEAD = "refused-after-queueing"  # the destination refused a queued instance (kept in dead/)

__all__ = ["Gateway", "GatewayOptions", "GatewayReport"]


@dataclass
class GatewayOptions:
    """How the gateway listens and behaves."""

    listen: Address
    #: calling AE titles allowed to associate; ``None``: any (an explicit choice)
    allow_aets: Sequence[str] | None
    jobs: int | None = None  # anonymization threads (default: cores)
    max_associations: int = 16
    tls: ssl.SSLContext | None = None  # server side
    retry_min: float = 1.0  # seconds before the first retry of a down destination
    retry_max: float = 60.0
    report_path: str | None = None
    progress: bool | None = None  # None: when the stream is a terminal
    stream: TextIO | None = None  # progress output (stderr)
    progress_interval: float = 0.5
    acse_timeout: float = 30.0
    dimse_timeout: float = 120.0  # waiting for the sender's next message
    drain_batch: int = 64
    #: an instance that went unanswered (or refused as "out of resources") this many times
    #: while others went through is given up: kept in the spool's dead/, logged, reported
    max_attempts: int = 5


@dataclass
class GatewayReport(Report):
    """The summary of a gateway's life; ``ok`` counts instances answered Success."""

    forwarded: int = 0  # stored or sent straight away
    queued: int = 0  # answered Success once durably queued
    delivered_from_queue: int = 0
    dead: int = 0  # refused by the destination after being queued (in the spool's dead/)
    queue_depth: int = 0  # still queued when the gateway stopped
    associations: int = 0
    rejected_associations: int = 0
    echoes: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["gateway"] = {
            "forwarded": self.forwarded,
            "queued": self.queued,
            "delivered_from_queue": self.delivered_from_queue,
            "dead": self.dead,
            "queue_depth": self.queue_depth,
            "associations": self.associations,
            "rejected_associations": self.rejected_associations,
            "echoes": self.echoes,
        }
        return d


class _AppendingReportWriter(ReportWriter):
    """A gateway restarts: its report grows, one summary line per run of the gateway."""

    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")


_ID_TAGS = {
    0x00100020: "PatientID",
    0x0020000D: "StudyInstanceUID",
    0x0020000E: "SeriesInstanceUID",
    0x00080018: "SOPInstanceUID",
}


def _ids(data: bytes) -> dict[str, str]:
    """The output's PatientID, Study/Series/SOP Instance UIDs (for the report and the layout)."""
    out: dict[str, str] = {}
    for e in _core.dump(data)["dataset"]:
        name = _ID_TAGS.get(e["tag"])
        if name and e.get("text") is not None:
            out[name] = e["text"].strip(" \x00")
    return out


def _status(status: int, comment: str | None) -> Dataset | int:
    """A C-STORE response status, with an Error Comment (LO, 64 characters) for a failure."""
    if not comment or is_accepted(status):
        return status
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment.replace("\\", "/")[:64]
    return ds


class Gateway:
    """A running gateway: :meth:`start`, then :meth:`stop` (returns the summary)."""

    def __init__(
        self,
        anonymizer: Anonymizer,
        destination: Destination,
        options: GatewayOptions,
        *,
        spool: Spool | None = None,
    ) -> None:
        if options.allow_aets is not None and not list(options.allow_aets):
            raise ValueError("allow_aets is empty: name the calling AE titles (None: any)")
        if destination.queues and spool is None:
            raise ValueError("a network destination needs a spool (the durable queue)")
        self.anon = anonymizer
        self.dest = destination
        self.opts = options
        self.spool = spool
        self.address = options.listen
        self.report = GatewayReport(
            src=options.listen.url,
            dst=destination.label,
            layout="gateway",
            key_fingerprint=anonymizer.key.fingerprint,
            profile=anonymizer.profile.name,
        )
        self._lock = threading.Lock()  # report, writer, counters, sessions
        self._sessions: dict[Any, Session] = {}
        self._down = threading.Event()
        self._down_reason: str | None = None
        self._stopping = threading.Event()
        self._kick = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self._pool: ThreadPoolExecutor | None = None
        self._ae: AE | None = None
        self._server: Any = None
        self._threads: list[threading.Thread] = []
        self._writer: ReportWriter | None = None
        self._t0 = time.perf_counter()
        self._rate: deque[tuple[float, int, int]] = deque(maxlen=64)
        self._progress: _Progress | None = None

    # -- life --------------------------------------------------------------------------------

    def start(self) -> Address:
        """Open the destination, start listening; returns the address actually bound (a port
        0 asks the system for a free one)."""
        o = self.opts
        self.dest.start()
        try:
            report_path = o.report_path or self._default_report_path()
            self._writer = _AppendingReportWriter(report_path)
            self.report.report_path = report_path
            self._pool = ThreadPoolExecutor(
                o.jobs or os.cpu_count() or 1, thread_name_prefix="dicomscrub-core"
            )
            # private and unknown SOP classes are storage too (vendors' CSA headers, raw data,
            # presentation states...): pynetdicom accepts them only with this switch, which is
            # process-wide; public non-storage services still need their contexts (Verification)
            pynetdicom_config.UNRESTRICTED_STORAGE_SERVICE = True
            ae = AE(ae_title=o.listen.aet)
            ae.maximum_associations = o.max_associations
            ae.acse_timeout = o.acse_timeout
            ae.dimse_timeout = o.dimse_timeout
            ae.network_timeout = o.dimse_timeout
            syntaxes = transfer_syntaxes()
            for uid in storage_sop_classes():
                ae.add_supported_context(uid, syntaxes)
            ae.add_supported_context(VERIFICATION, syntaxes[:4])
            if o.allow_aets is not None:
                ae.require_calling_aet = list(o.allow_aets)
            handlers = [
                NO_DELAY,
                (evt.EVT_C_STORE, self._on_store),
                (evt.EVT_C_ECHO, self._on_echo),
                (evt.EVT_ACCEPTED, self._on_accepted),
                (evt.EVT_REJECTED, self._on_rejected),
                (evt.EVT_RELEASED, self._on_closed),
                (evt.EVT_ABORTED, self._on_closed),
                (evt.EVT_CONN_CLOSE, self._on_closed),
            ]
            self._server = ae.start_server(
                (o.listen.host, o.listen.port),
                block=False,
                evt_handlers=handlers,  # type: ignore[arg-type]
                ssl_context=o.tls,
            )
            self._ae = ae
        except BaseException:
            self.dest.close()
            raise
        port = int(self._server.server_address[1])
        self.address = Address(o.listen.aet, o.listen.host, port)
        self.report.src = self.address.url
        if self.spool is not None and self.dest.queues:
            t = threading.Thread(target=self._drain_loop, name="dicomscrub-drain", daemon=True)
            t.start()
            self._threads.append(t)
            depth = self.spool.depth()
            if depth:
                log.info("%d instances waiting in the queue from an earlier run", depth)
        stream = o.stream if o.stream is not None else sys.stderr
        if should_show(stream, o.progress):
            self._progress = _Progress(self, stream, o.progress_interval)
            self._progress.start()
        log.info(
            "listening on %s%s, forwarding to %s (profile %s, key %s)",
            self.address,
            " (TLS)" if o.tls is not None else "",
            self.dest.label,
            self.anon.profile.name,
            self.anon.key.fingerprint,
        )
        return self.address

    def _default_report_path(self) -> str:
        if self.spool is not None and self.dest.queues:
            return os.path.join(self.spool.root, "report.jsonl")
        state = getattr(self.dest, "state", None)
        if state:
            return os.path.join(state, "report.jsonl")
        return os.path.abspath("dicomscrub-gateway-report.jsonl")

    def stop(self, *, grace: float = 10.0) -> GatewayReport:
        """Stop listening, abort the associations still open, wait for the instances being
        handled, stop the queue worker; writes the summary and returns it."""
        self._stopping.set()
        self._kick.set()
        if self._ae is not None:
            self._ae.shutdown()
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=grace)
        for t in self._threads:
            t.join(timeout=grace)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()
        if self._progress is not None:
            self._progress.close()
        self.report.duration = time.perf_counter() - self._t0
        if self.spool is not None:
            self.report.queue_depth = self.spool.depth()
        summary = self.report.to_dict()
        if self._writer is not None:
            self._writer.summary(self.report)
            self._writer.close()
        try:
            self.dest.close(summary)
        finally:
            if self.spool is not None:
                self.spool.close()
        log.info(
            "stopped: %d instances received, %d failed, %d queued, %d still in the queue",
            self.report.files,
            self.report.failed,
            self.report.queued,
            self.report.queue_depth,
        )
        return self.report

    @property
    def destination_down(self) -> bool:
        return self._down.is_set()

    # -- association events ------------------------------------------------------------------

    def _on_accepted(self, event: Any) -> None:
        r = event.assoc.requestor
        with self._lock:
            self.report.associations += 1
        log.info("association from %s@%s:%s accepted", r.ae_title, r.address, r.port)

    def _on_rejected(self, event: Any) -> None:
        r = event.assoc.requestor
        with self._lock:
            self.report.rejected_associations += 1
        log.warning(
            "association from %r at %s:%s rejected (calling AE title not allowed)",
            r.ae_title,
            r.address,
            r.port,
        )

    def _on_closed(self, event: Any) -> None:
        with self._lock:
            session = self._sessions.pop(event.assoc, None)
        if session is not None:
            session.close()

    def _on_echo(self, event: Any) -> int:
        with self._lock:
            self.report.echoes += 1
        return 0x0000

    # -- C-STORE -----------------------------------------------------------------------------

    def _on_store(self, event: Any) -> Dataset | int:
        with self._lock:
            self._inflight += 1
        try:
            return self._store(event)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def _store(self, event: Any) -> Dataset | int:
        assoc = event.assoc
        req = event.request
        r = assoc.requestor
        source = f"dicom://{r.ae_title}@{r.address}/{req.AffectedSOPInstanceUID or ''}"
        data = event.encoded_dataset()
        nbytes = len(data)
        if self._stopping.is_set():
            return self._refuse(source, nbytes, STATUS_OUT_OF_RESOURCES, "Stopping",
                                "the gateway is stopping")  # fmt: skip
        assert self._pool is not None
        try:
            out, ids = self._pool.submit(self._anonymize, data).result()
            meta = read_meta(out)
        except DicomScrubError as exc:
            return self._refuse(source, nbytes, STATUS_CANNOT_UNDERSTAND, exc.kind, exc.message,
                                offset=exc.offset, tag=exc.tag)  # fmt: skip
        except Exception as exc:  # a bug: still a failure status, never a silent drop
            log.exception("%s: anonymization failed unexpectedly", source)
            return self._refuse(source, nbytes, STATUS_CANNOT_UNDERSTAND, type(exc).__name__,
                                str(exc) or "internal error")  # fmt: skip
        del data
        item = Outgoing(
            sop_class=meta.sop_class,
            sop_instance=meta.sop_instance,
            transfer_syntax=meta.transfer_syntax,
            data=out,
            source=source,
            ids=ids,
            size=nbytes,
        )
        try:
            return self._deliver(assoc, item)
        except Exception as exc:
            log.exception("%s: delivery failed unexpectedly", source)
            return self._refuse(source, nbytes, STATUS_PROCESSING_FAILURE, type(exc).__name__,
                                str(exc) or "internal error")  # fmt: skip
        finally:
            if item.staged and self.spool is not None:
                self.spool.discard(item.path)

    def _anonymize(self, data: bytes) -> tuple[bytes, dict[str, str]]:
        out = self.anon.anonymize_bytes(data)
        return out, _ids(out)

    def _session(self, assoc: Any) -> Session:
        with self._lock:
            s = self._sessions.get(assoc)
        if s is None:
            pairs = [
                (str(cx.abstract_syntax), str(cx.transfer_syntax[0]))
                for cx in assoc.accepted_contexts
                if str(cx.abstract_syntax) != VERIFICATION
            ][:MAX_CONTEXTS]
            s = self.dest.session(pairs)
            with self._lock:
                self._sessions[assoc] = s
        return s

    def _drop_session(self, assoc: Any) -> None:
        with self._lock:
            s = self._sessions.pop(assoc, None)
        if s is not None:
            s.close()

    def _deliver(self, assoc: Any, item: Outgoing) -> Dataset | int:
        if not self.dest.queues:
            return self._answer(item, self._session(assoc).send(item))
        if not self._down.is_set():
            try:
                res = self._session(assoc).send(item)
            except DestinationUnavailable as exc:
                self._drop_session(assoc)
                self._mark_down(str(exc))
                return self._enqueue(item, attempts=1 if isinstance(exc, NoAnswer) else 0)
            return self._answer(item, res)
        return self._enqueue(item)

    def _answer(self, item: Outgoing, res: Result) -> Dataset | int:
        if is_accepted(res.status):
            r = FileResult(
                src=item.source or "",
                dst=res.dst or self.dest.label,
                status="ok",
                bytes_in=item.size,
                bytes_out=len(item.data) if item.data is not None else item.size,
                sop_instance_uid=item.sop_instance,
                ids=item.ids,
                message=None if res.status == 0 else status_text(res.status),
            )
            with self._lock:
                self.report.forwarded += 1
            self._emit(r)
            return res.status
        kind = "OutputError" if not self.dest.queues else "DestinationRefused"
        why = res.message or f"refused by {self.dest.label}"
        return self._refuse(item.source or "", item.size, res.status, kind, why,
                            sop_instance=item.sop_instance, ids=item.ids)  # fmt: skip

    def _enqueue(self, item: Outgoing, attempts: int = 0) -> Dataset | int:
        assert self.spool is not None
        try:
            self.spool.put(
                attempts=attempts,
                sop_class=item.sop_class,
                sop_instance=item.sop_instance,
                transfer_syntax=item.transfer_syntax,
                data=None if item.staged else item.data,
                staged=item.path if item.staged else None,
                source=item.source,
                ids=item.ids,
                error=self._down_reason,
            )
        except (OSError, Exception) as exc:  # disk full...: the sender keeps it
            item.staged = False
            return self._refuse(item.source or "", item.size, STATUS_OUT_OF_RESOURCES,
                                "QueueError", f"cannot queue the instance: {exc}")  # fmt: skip
        item.staged = False  # moved into the queue
        r = FileResult(
            src=item.source or "",
            dst=self.dest.label,
            status="ok",
            bytes_in=item.size,
            bytes_out=len(item.data) if item.data is not None else item.size,
            sop_instance_uid=item.sop_instance,
            ids=item.ids,
            note=NOTE_QUEUED,
        )
        with self._lock:
            self.report.queued += 1
        self._emit(r)
        self._kick.set()
        return 0x0000

    def _refuse(
        self,
        source: str,
        nbytes: int,
        status: int,
        kind: str,
        message: str,
        *,
        offset: int | None = None,
        tag: int | None = None,
        sop_instance: str | None = None,
        ids: dict[str, str] | None = None,
    ) -> Dataset | int:
        log.warning("%s: %s: %s; answered %s", source, kind, message, status_text(status))
        self._emit(
            FileResult(
                src=source,
                dst=None,
                status="failed",
                error_kind=kind,
                message=f"{message} (answered {status_text(status)})",
                offset=offset,
                tag=tag,
                bytes_in=nbytes,
                sop_instance_uid=sop_instance,
                ids=dict(ids or {}),
            )
        )
        return _status(status, message)

    def _emit(self, r: FileResult, *, count: bool = True) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.file(r)
                self._writer.flush()
            if count:
                self.report.add(r)
                self._rate.append((time.monotonic(), self.report.files, self.report.bytes_in))

    # -- destination state -------------------------------------------------------------------

    def _mark_down(self, reason: str, retry_in: float | None = None) -> None:
        with self._lock:
            was = self._down.is_set()
            self._down_reason = reason
            self._down.set()
        if not was:
            log.warning(
                "destination unavailable (%s): instances are queued in %s",
                reason,
                self.spool.root if self.spool else "?",
            )
        elif retry_in is not None:
            log.info("destination still unavailable (%s): next try in %.1f s", reason, retry_in)
        self._kick.set()

    def _mark_up(self) -> None:
        with self._lock:
            was = self._down.is_set()
            self._down.clear()
            self._down_reason = None
        if was:
            log.info("destination %s reachable again", self.dest.label)

    # -- the queue worker --------------------------------------------------------------------

    def _drain_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                failures = self._drain_once(failures)
            except Exception:  # never let the worker die: log, wait, go on
                log.exception("queue worker error")
                self._stopping.wait(self.opts.retry_min)

    def _drain_once(self, failures: int) -> int:
        assert self.spool is not None
        due = self.spool.next_due()
        now = time.time()
        if due is None or due > now:
            self._kick.wait(timeout=1.0 if due is None else min(1.0, due - now))
            self._kick.clear()
            return failures
        batch: list[Entry] = []
        pairs: list[tuple[str, str]] = []
        for e in self.spool.due(limit=self.opts.drain_batch):
            p = (e.sop_class, e.transfer_syntax)
            if p not in pairs:
                if len(pairs) >= MAX_CONTEXTS:
                    continue
                pairs.append(p)
            batch.append(e)
        if not batch:
            return failures
        session = self.dest.session(pairs)
        done: list[Entry] = []
        handled: set[int] = set()
        unanswered = False  # did the previous instance go unanswered
        try:
            for e in batch:
                if self._stopping.is_set():
                    break
                item = Outgoing(
                    sop_class=e.sop_class,
                    sop_instance=e.sop_instance,
                    transfer_syntax=e.transfer_syntax,
                    path=e.path,
                    source=e.source,
                    ids=e.ids,
                    size=e.size,
                )
                try:
                    res = session.send(item)
                except NoAnswer as exc:
                    if unanswered:  # two in a row: the destination, not this instance
                        raise
                    unanswered = True
                    handled.add(e.id)
                    self._unanswered(e, str(exc))
                    session.close()
                    session = self.dest.session(pairs)  # a fresh association for the rest
                    continue
                except DestinationUnavailable:
                    raise
                except Exception as exc:  # an unreadable spool file...
                    res = Result(STATUS_PROCESSING_FAILURE, f"{type(exc).__name__}: {exc}")
                unanswered = False
                handled.add(e.id)
                if is_accepted(res.status):
                    done.append(e)
                    self._mark_up()
                    self._delivered(e, res)
                elif is_transient(res.status) and e.attempts + 1 < self.opts.max_attempts:
                    why = res.message or status_text(res.status)
                    self.spool.defer([e], why, time.time() + self._backoff(e.attempts + 1))
                else:
                    self._dead(e, res)
        except DestinationUnavailable as exc:
            failures += 1
            wait = self._backoff(failures)
            self.spool.postpone_all(time.time() + wait, str(exc))
            self._mark_down(str(exc), retry_in=wait)
            return failures
        finally:
            self.spool.delivered(done)
            session.close()
        return 0

    def _unanswered(self, e: Entry, why: str) -> None:
        """The destination took others but did not answer this instance."""
        assert self.spool is not None
        n = e.attempts + 1
        if n >= self.opts.max_attempts:
            msg = f"no answer from the destination to this instance, {n} times: {why}"
            self._dead(e, Result(STATUS_PROCESSING_FAILURE, msg))
            return
        wait = self._backoff(n)
        log.warning("%s: no answer from the destination (%s); retry in %.0f s", e.source, why, wait)
        self.spool.defer([e], why, time.time() + wait)

    def _backoff(self, n: int) -> float:
        return float(min(self.opts.retry_max, self.opts.retry_min * 2 ** min(n - 1, 30)))

    def _delivered(self, e: Entry, res: Result) -> None:
        with self._lock:
            self.report.delivered_from_queue += 1
        self._emit(
            FileResult(
                src=e.source or "",
                dst=res.dst or self.dest.label,
                status="ok",
                bytes_out=e.size,
                sop_instance_uid=e.sop_instance,
                ids=e.ids,
                note=NOTE_FROM_QUEUE,
                message=None if res.status == 0 else status_text(res.status),
            ),
            count=False,
        )

    def _dead(self, e: Entry, res: Result) -> None:
        assert self.spool is not None
        why = res.message or f"{self.dest.label} answered {status_text(res.status)}"
        kept = self.spool.kill(e, why)
        log.error(
            "%s: refused by the destination after it was queued (%s); kept in %s",
            e.source,
            why,
            kept or "(file missing)",
        )
        with self._lock:
            self.report.dead += 1
        self._emit(
            FileResult(
                src=e.source or "",
                dst=kept or None,
                status="failed",
                error_kind="DestinationRefused",
                message=why,
                bytes_out=e.size,
                sop_instance_uid=e.sop_instance,
                ids=e.ids,
                note=NOTE_DEAD,
            ),
            count=False,
        )

    # -- progress ----------------------------------------------------------------------------

    def status_line(self) -> str:
        now = time.monotonic()
        with self._lock:
            rep = self.report
            files, failed, queued = rep.files, rep.failed, rep.queued
            fwd, dq = rep.forwarded, rep.delivered_from_queue
            window = [s for s in self._rate if now - s[0] <= 5.0]
        if len(window) >= 2 and window[-1][0] > window[0][0]:
            dt = max(now - window[0][0], 1e-3)
            rate = (window[-1][1] - window[0][1]) / dt
            mbps = (window[-1][2] - window[0][2]) / 1e6 / dt
        else:
            rate = mbps = 0.0
        depth = self.spool.depth() if self.spool is not None else 0
        state = "down" if self._down.is_set() else "up"
        return (
            f"{files} received  {rate:.1f}/s  {mbps:.1f} MB/s  forwarded {fwd}  "
            f"queued {queued} (depth {depth}, delivered {dq})  failed {failed}  "
            f"destination {state}"
        )


class _Progress:
    """The live line on stderr (a terminal: redrawn in place; otherwise one line per interval
    when something changed)."""

    def __init__(self, gw: Gateway, stream: TextIO, interval: float) -> None:
        self.gw = gw
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = interval if self.tty else max(interval, 2.0)
        self._stop = threading.Event()
        self._width = 0
        self._last = ""
        self._thread = threading.Thread(target=self._run, name="dicomscrub-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.draw()

    def draw(self) -> None:
        text = self.gw.status_line()
        if self.tty:
            pad = max(self._width - len(text), 0)
            self._width = len(text)
            self.stream.write("\r" + text + " " * pad)
        elif text != self._last:
            self.stream.write(text + "\n")
        self._last = text
        self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
