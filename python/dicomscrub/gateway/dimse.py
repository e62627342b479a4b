"""pynetdicom glue shared by ``serve`` and ``send``: presentation contexts, C-STORE statuses,
and sending a Part 10 file *as it is* (its encoded data set, never decoded by pydicom).

Importing this module sets pynetdicom's ``STORE_SEND_CHUNKED_DATASET``: ``send_c_store(path)``
then streams the data set bytes from the file after its File Meta, in the file's own transfer
syntax, instead of decoding and re-encoding it. It also quietens the ``pynetdicom`` logger to
warnings (its debug output would print data sets).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import ssl
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pydicom.uid
from pynetdicom import (
    AE,
    ALL_TRANSFER_SYNTAXES,
    AllStoragePresentationContexts,
    _config,
    build_context,
    evt,
)
from pynetdicom.presentation import PresentationContext

from dicomscrub.gateway.address import Address

_config.STORE_SEND_CHUNKED_DATASET = True
logging.getLogger("pynetdicom").setLevel(logging.WARNING)

VERIFICATION = "1.2.840.10008.1.1"
MAX_CONTEXTS = 128  # presentation contexts one association can propose (PS3.8: odd IDs 1-255)

STATUS_SUCCESS = 0x0000
STATUS_PROCESSING_FAILURE = 0x0110
STATUS_SOP_CLASS_NOT_SUPPORTED = 0x0122
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000  # the anonymization failed: PS3.4 B.2.3 "cannot understand"

_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)

__all__ = [
    "MAX_CONTEXTS",
    "NO_DELAY",
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_OUT_OF_RESOURCES",
    "STATUS_PROCESSING_FAILURE",
    "STATUS_SOP_CLASS_NOT_SUPPORTED",
    "STATUS_SUCCESS",
    "VERIFICATION",
    "ConnectFailed",
    "DestinationUnavailable",
    "FileMeta",
    "NoAnswer",
    "NoContext",
    "Requestor",
    "is_accepted",
    "is_transient",
    "read_meta",
    "read_meta_file",
    "status_text",
    "storage_sop_classes",
    "transfer_syntaxes",
]


class DestinationUnavailable(Exception):
    """The peer cannot be reached or did not answer (connection refused, association rejected
    or aborted, timeout): the instance may be retried later."""


class ConnectFailed(DestinationUnavailable):
    """No association: connection refused or timed out, association rejected or aborted."""


class NoAnswer(DestinationUnavailable):
    """The association was up but the peer did not answer this request (timeout, abort): the
    peer may be down, or choking on this very instance."""


class NoContext(Exception):
    """The peer did not accept the instance's SOP class in its transfer syntax."""


def transfer_syntaxes() -> list[str]:
    """Every transfer syntax pynetdicom or pydicom knows (native and encapsulated), in a stable
    order: the gateway accepts each as it is and never transcodes."""
    out: list[str] = []
    for uid in (*ALL_TRANSFER_SYNTAXES, *pydicom.uid.AllTransferSyntaxes):
        if uid not in out:
            out.append(str(uid))
    return out


_NOT_STORAGE = ("Commitment", "Media Storage Directory")


@functools.cache
def storage_sop_classes() -> tuple[str, ...]:
    """Every storage SOP class pynetdicom knows, and the other ones pydicom's dictionary names
    "... Storage" (retired and trial ones among them), registered with pynetdicom's Storage
    service so that their C-STOREs reach the gateway's handler."""
    from pynetdicom.service_class import ServiceClass, StorageServiceClass
    from pynetdicom.sop_class import register_uid, uid_to_service_class

    out = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
    known = set(out)
    from pydicom._uid_dict import UID_dictionary

    for uid, (name, kind, *_rest) in sorted(UID_dictionary.items()):
        if kind != "SOP Class" or "Storage" not in name or uid in known:
            continue
        if any(word in name for word in _NOT_STORAGE):
            continue
        service = uid_to_service_class(uid)
        if service is ServiceClass:  # unknown to pynetdicom: route its C-STOREs to Storage
            kw = "DicomScrubStorage_" + uid.replace(".", "_")
            register_uid(uid, kw, StorageServiceClass)
        elif not issubclass(service, StorageServiceClass) and service.__name__ not in (
            "NonPatientObjectStorageServiceClass",
        ):
            continue
        out.append(uid)
        known.add(uid)
    return tuple(out)


def is_accepted(status: int) -> bool:
    """Success or a warning (the instance was stored)."""
    return status in (0x0000, 0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF


def is_transient(status: int) -> bool:
    """A failure worth retrying later: out of resources (A7xx)."""
    return 0xA700 <= status <= 0xA7FF


def status_text(status: int) -> str:
    if status == 0:
        return "success"
    if is_accepted(status):
        return f"warning 0x{status:04X}"
    kind = {
        0xA7: "out of resources",
        0xA9: "data set does not match SOP class",
        0xC0: "cannot understand",
    }.get(status >> 8)
    if status == STATUS_SOP_CLASS_NOT_SUPPORTED:
        kind = "SOP class not supported"
    elif status == STATUS_PROCESSING_FAILURE:
        kind = "processing failure"
    elif kind is None and 0xC000 <= status <= 0xCFFF:
        kind = "cannot understand"
    return f"failure 0x{status:04X}" + (f" ({kind})" if kind else "")


# -- File Meta ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileMeta:
    """What sending a Part 10 file needs from its File Meta Information."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    dataset_offset: int  # where the data set starts (after the meta group)


def _text(value: bytes) -> str:
    return value.rstrip(b"\x00 ").decode("ascii", "replace").strip()


def read_meta(data: bytes | bytearray | memoryview) -> FileMeta:
    """The File Meta of Part 10 bytes (preamble, ``DICM``, group 0002 in explicit VR little
    endian); ValueError when there is none or it lacks a SOP class, instance or syntax."""
    buf = memoryview(data)
    if len(buf) < 132 or bytes(buf[128:132]) != b"DICM":
        raise ValueError("no DICOM File Meta Information (no DICM prefix)")
    values: dict[int, str] = {}
    off = 132
    while off + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, off)
        if group != 0x0002:
            break
        vr = bytes(buf[off + 4 : off + 6])
        if vr in _LONG_VRS:
            if off + 12 > len(buf):
                raise ValueError("truncated File Meta Information")
            (length,) = struct.unpack_from("<I", buf, off + 8)
            start = off + 12
        else:
            (length,) = struct.unpack_from("<H", buf, off + 6)
            start = off + 8
        end = start + length
        if length == 0xFFFFFFFF or end > len(buf):
            raise ValueError("damaged File Meta Information")
        if vr == b"UI":
            values[elem] = _text(bytes(buf[start:end]))
        off = end
    try:
        return FileMeta(
            sop_class=values[0x0002],
            sop_instance=values[0x0003],
            transfer_syntax=values[0x0010],
            dataset_offset=off,
        )
    except KeyError:
        raise ValueError(
            "the File Meta Information lacks the Media Storage SOP Class or Instance UID or the "
            "Transfer Syntax UID"
        ) from None


def read_meta_file(path: str | os.PathLike[str]) -> FileMeta:
    """:func:`read_meta` of a file's first bytes (64 KiB; up to 16 MiB for a huge meta)."""
    with open(path, "rb") as f:
        head = f.read(64 << 10)
        try:
            return read_meta(head)
        except ValueError:
            if len(head) < 64 << 10:
                raise
            return read_meta(head + f.read(16 << 20))


# -- sockets -----------------------------------------------------------------------------------


#: how long pynetdicom's network thread sleeps when it finds nothing to do (its default, 1 ms,
#: is paid several times per C-STORE: a serial sender waits for each answer)
LOOP_DELAY = float(os.environ.get("DICOMSCRUB_DUL_DELAY", "0.0002"))


def _no_delay(event: Any) -> None:
    """Turn off Nagle's algorithm on a new association's socket: pynetdicom writes a message
    in several small sends, and Nagle plus the peer's delayed ACK cost ~40 ms per C-STORE.
    Also shortens the idle sleep of the association's network thread (LOOP_DELAY)."""
    dul = getattr(event.assoc, "dul", None)
    if dul is not None and hasattr(dul, "_run_loop_delay"):
        dul._run_loop_delay = LOOP_DELAY
    try:
        sock = event.assoc.dul.socket.socket
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


#: an ``evt_handlers`` entry for pynetdicom: TCP_NODELAY on every connection
NO_DELAY = (evt.EVT_CONN_OPEN, _no_delay)


# -- the requestor side ------------------------------------------------------------------------


def contexts_for(pairs: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """One presentation context per (SOP class, transfer syntax): each file proposed in its own
    transfer syntax only (no conversion)."""
    out: list[PresentationContext] = []
    seen: set[tuple[str, str]] = set()
    for sop_class, ts in pairs:
        if (sop_class, ts) not in seen:
            seen.add((sop_class, ts))
            out.append(build_context(sop_class, [ts]))
    if len(out) > MAX_CONTEXTS:
        raise ValueError(f"{len(out)} presentation contexts: at most {MAX_CONTEXTS}")
    return out


class Requestor:
    """One association to a peer, for C-STORE (and C-ECHO) of files as they are."""

    def __init__(
        self,
        peer: Address,
        contexts: Sequence[tuple[str, str]],
        *,
        calling_aet: str,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        acse_timeout: float = 15.0,
        dimse_timeout: float = 60.0,
    ) -> None:
        self.peer = peer
        self._pairs = list(dict.fromkeys(contexts))
        ae = AE(ae_title=calling_aet)
        ae.connection_timeout = connect_timeout
        ae.acse_timeout = acse_timeout
        ae.dimse_timeout = dimse_timeout
        ae.network_timeout = dimse_timeout
        self._ae = ae
        self._tls = tls
        self._assoc: Any = None
        self._accepted: set[tuple[str, str]] = set()
        self.ever_opened = False

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def open(self) -> None:
        """Associate; DestinationUnavailable when the peer cannot be reached or rejects."""
        kwargs: dict[str, Any] = {
            "ae_title": self.peer.aet,
            "contexts": contexts_for(self._pairs),
            "evt_handlers": [NO_DELAY],
        }
        if self._tls is not None:
            kwargs["tls_args"] = (self._tls, self.peer.host)
        try:
            assoc = self._ae.associate(self.peer.host, self.peer.port, **kwargs)
        except (OSError, RuntimeError) as exc:
            raise ConnectFailed(f"{self.peer}: cannot associate: {exc}") from None
        if not assoc.is_established:
            if assoc.is_rejected:
                why = "association rejected"
            else:  # pynetdicom reports a refused connection as an aborted association
                why = "no association (connection refused or aborted)"
            raise ConnectFailed(f"{self.peer}: {why}")
        self._assoc = assoc
        self.ever_opened = True
        self._accepted = {
            (str(cx.abstract_syntax), str(cx.transfer_syntax[0])) for cx in assoc.accepted_contexts
        }

    @property
    def is_open(self) -> bool:
        return self._assoc is not None and self._assoc.is_established

    def accepts(self, sop_class: str, ts: str) -> bool:
        return (sop_class, ts) in self._accepted

    def store(self, path: str | os.PathLike[str], sop_class: str, ts: str) -> int:
        """C-STORE the Part 10 file at ``path`` as it is: the peer's status.

        NoContext when the peer did not accept (SOP class, syntax); DestinationUnavailable when
        the association fails (ConnectFailed) or the peer does not answer (NoAnswer: the
        instance may or may not be stored; resending it is harmless, a PACS keeps one copy per
        SOP Instance UID)."""
        if not self.is_open:
            self.open()
        if not self.accepts(sop_class, ts):
            raise NoContext(f"{self.peer} did not accept {sop_class} in transfer syntax {ts}")
        try:
            rsp = self._assoc.send_c_store(os.fspath(path))
        except RuntimeError as exc:  # the association ended meanwhile
            self.abort()
            raise NoAnswer(f"{self.peer}: {exc}") from None
        except ValueError as exc:  # no accepted context (checked above), unreadable file
            raise NoContext(f"{self.peer}: {exc}") from None
        status = getattr(rsp, "Status", None)
        if status is None:
            self.abort()
            raise NoAnswer(f"{self.peer}: no answer to the C-STORE (timeout or abort)")
        return int(status)

    def echo(self) -> int:
        if not self.is_open:
            self.open()
        rsp = self._assoc.send_c_echo()
        status = getattr(rsp, "Status", None)
        if status is None:
            self.abort()
            raise NoAnswer(f"{self.peer}: no answer to the C-ECHO")
        return int(status)

    def close(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            try:
                assoc.release()
            except Exception:  # a peer gone meanwhile: nothing more to do
                assoc.abort()

    def abort(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None:
            try:
                assoc.abort()
            except Exception:
                pass
