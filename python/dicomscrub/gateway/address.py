"""``AET@HOST:PORT`` addresses of DICOM application entities."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Address", "check_aet", "parse_address"]


def check_aet(aet: str) -> str:
    """An AE title: 1-16 characters of the default repertoire, no backslash, not all spaces."""
    if not aet or not aet.strip() or len(aet) > 16:
        raise ValueError(f"an AE title has 1 to 16 characters: {aet!r}")
    if any(not (32 <= ord(c) < 127) or c == "\\" for c in aet):
        raise ValueError(f"an AE title holds printable ASCII characters, no backslash: {aet!r}")
    return aet.strip()


@dataclass(frozen=True)
class Address:
    """A DICOM application entity on the network."""

    aet: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.aet}@{host}:{self.port}"

    @property
    def url(self) -> str:
        """``dicom://AET@HOST:PORT`` (for reports)."""
        return f"dicom://{self}"


def parse_address(text: str, *, allow_port_zero: bool = False) -> Address:
    """``AET@HOST:PORT`` (``AET@[::1]:PORT`` for IPv6); ValueError otherwise."""
    aet, at, rest = text.rpartition("@")
    if not at:
        raise ValueError(f"expected AET@HOST:PORT, got {text!r}")
    host, colon, port_text = rest.rpartition(":")
    if not colon or not host or not port_text.isdigit():
        raise ValueError(f"expected AET@HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return Address(check_aet(aet), host, port)
