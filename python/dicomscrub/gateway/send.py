"""``dicomscrub send``: push the DICOM files of a tree into a PACS (C-STORE SCU).

Each file is proposed in its own transfer syntax and sent as it is: its encoded data set is
streamed from the file after its File Meta (pynetdicom's chunked send), never decoded by pydicom
nor transcoded. ``associations`` workers share the files, each over its own association (a new
one whenever its next files need more than 128 presentation contexts).
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dicomscrub.gateway.address import Address
from dicomscrub.gateway.dimse import (
    MAX_CONTEXTS,
    DestinationUnavailable,
    FileMeta,
    NoContext,
    Requestor,
    is_accepted,
    read_meta_file,
    status_text,
)
from dicomscrub.report import FileResult, Report
from dicomscrub.walk import walk

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

__all__ = ["SendItem", "prepare", "send_items", "send_tree"]


@dataclass
class SendItem:
    """A file to send, with its File Meta (None: it cannot be sent, see ``result``)."""

    path: str
    size: int
    meta: FileMeta | None = None
    result: FileResult | None = None  # decided before sending (skipped, not sendable)


def prepare(paths: Iterable[tuple[str, int]]) -> list[SendItem]:
    """Read each file's File Meta; files without one are skipped (not Part 10 files), DICOMDIRs
    too (they are not storage instances)."""
    out: list[SendItem] = []
    for path, size in paths:
        item = SendItem(path, size)
        try:
            item.meta = read_meta_file(path)
        except (OSError, ValueError) as exc:
            no_meta = isinstance(exc, ValueError) and "DICM" in str(exc)
            item.result = FileResult(
                src=path,
                dst=None,
                status="skipped" if no_meta else "failed",
                error_kind="NotDicom" if no_meta else "NotSendable",
                message=f"cannot be sent as it is: {exc}",
                bytes_in=size,
            )
        else:
            if item.meta.sop_class == MEDIA_STORAGE_DIRECTORY:
                item.result = FileResult(
                    src=path, dst=None, status="skipped", error_kind="NotDicom",
                    message="a DICOMDIR is not a storage instance", bytes_in=size,
                )  # fmt: skip
        out.append(item)
    return out


def _chunks(items: Sequence[SendItem]) -> Iterable[list[SendItem]]:
    """Runs of items needing at most MAX_CONTEXTS (SOP class, syntax) pairs."""
    chunk: list[SendItem] = []
    pairs: set[tuple[str, str]] = set()
    for it in items:
        assert it.meta is not None
        p = (it.meta.sop_class, it.meta.transfer_syntax)
        if p not in pairs and len(pairs) >= MAX_CONTEXTS:
            yield chunk
            chunk, pairs = [], set()
        pairs.add(p)
        chunk.append(it)
    if chunk:
        yield chunk


def send_items(
    items: Sequence[SendItem],
    to: Address,
    *,
    calling_aet: str = "DICOMSCRUB",
    associations: int = 4,
    tls: ssl.SSLContext | None = None,
    on_result: Callable[[SendItem, FileResult], None] | None = None,
    connect_timeout: float = 10.0,
    dimse_timeout: float = 120.0,
) -> list[FileResult]:
    """Send ``items`` (from :func:`prepare`) over ``associations`` parallel associations; one
    result per item, in order. Never raises for a file."""
    results: list[FileResult | None] = [it.result for it in items]
    todo = [i for i, it in enumerate(items) if it.result is None]
    lock = threading.Lock()

    def done(i: int, r: FileResult) -> None:
        results[i] = r
        if on_result is not None:
            with lock:
                on_result(items[i], r)

    for it in items:
        if it.result is not None and on_result is not None:
            on_result(it, it.result)

    unreachable: list[str | None] = [None]  # set once no association could ever be made

    def worker(indices: list[int]) -> None:
        mine = [items[i] for i in indices]
        pos = {id(items[i]): i for i in indices}
        for chunk in _chunks(mine):
            pairs = [(it.meta.sop_class, it.meta.transfer_syntax) for it in chunk if it.meta]
            req = Requestor(
                to,
                pairs,
                calling_aet=calling_aet,
                tls=tls,
                connect_timeout=connect_timeout,
                dimse_timeout=dimse_timeout,
            )
            try:
                for it in chunk:
                    if unreachable[0] is not None:  # the PACS cannot be reached: stop trying
                        r = FileResult(
                            src=it.path, dst=None, status="failed", bytes_in=it.size,
                            error_kind="DestinationUnavailable", message=unreachable[0],
                        )  # fmt: skip
                    else:
                        r = _send_one(req, it, to)
                        if r.error_kind == "DestinationUnavailable" and not req.ever_opened:
                            unreachable[0] = r.message
                    done(pos[id(it)], r)
            finally:
                req.close()

    n = max(1, min(associations, len(todo)))
    shares = [todo[k::n] for k in range(n)]
    threads = [
        threading.Thread(target=worker, args=(s,), name=f"dicomscrub-send-{k}", daemon=True)
        for k, s in enumerate(shares)
        if s
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def _send_one(req: Requestor, it: SendItem, to: Address) -> FileResult:
    assert it.meta is not None
    m = it.meta
    base = {"src": it.path, "bytes_in": it.size, "sop_instance_uid": m.sop_instance}
    for attempt in (1, 2):  # one new association if the first one died under us
        try:
            status = req.store(it.path, m.sop_class, m.transfer_syntax)
        except NoContext as exc:
            return FileResult(**base, dst=None, status="failed", error_kind="NoContext",
                              message=str(exc))  # fmt: skip
        except DestinationUnavailable as exc:
            if attempt == 2:
                return FileResult(
                    **base, dst=None, status="failed", error_kind="DestinationUnavailable",
                    message=str(exc),
                )  # fmt: skip
            req.abort()
            continue
        except (OSError, ValueError, AttributeError) as exc:
            return FileResult(**base, dst=None, status="failed", error_kind="NotSendable",
                              message=f"{type(exc).__name__}: {exc}")  # fmt: skip
        if is_accepted(status):
            return FileResult(**base, dst=to.url, status="ok", bytes_out=it.size,
                              message=None if status == 0 else status_text(status))  # fmt: skip
        return FileResult(**base, dst=None, status="failed", error_kind="DestinationRefused",
                          message=f"{to} answered {status_text(status)}")  # fmt: skip
    raise AssertionError("unreachable")


def send_tree(
    root: str,
    to: Address,
    *,
    calling_aet: str = "DICOMSCRUB",
    associations: int = 4,
    tls: ssl.SSLContext | None = None,
    on_result: Callable[[SendItem, FileResult], None] | None = None,
) -> Report:
    """Send every DICOM file under ``root`` (the ``.dicomscrub`` state folder excluded)."""
    t0 = time.perf_counter()
    entries = [(e.path, e.size) for e in walk(root)]
    items = prepare(entries)
    report = Report(src=os.path.abspath(root), dst=to.url, layout="send")
    for r in send_items(
        items, to, calling_aet=calling_aet, associations=associations, tls=tls,
        on_result=on_result,
    ):  # fmt: skip
        report.add(r)
    report.duration = time.perf_counter() - t0
    return report
