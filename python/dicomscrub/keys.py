"""The project key: the secret behind every keyed UID, pseudonym and date offset.

A key comes from, in this order: bytes given to the API, a key file given explicitly
(``--key-file PATH``), the key file named by the environment variable ``DICOMSCRUB_KEY_FILE``,
or the default key file ``$XDG_CONFIG_HOME/dicomscrub/key`` (``~/.config/dicomscrub/key``),
which is generated on first use: 32 random bytes written as 64 hexadecimal characters, mode
0600, its path announced once on stderr.

The key is secret: :class:`Key` never shows it (``repr``, ``str``, exception text, reports and
journals only ever see its :attr:`Key.fingerprint`, an HMAC of a fixed label, from which the key
cannot be recovered). Keep the key file: the same key gives the same pseudonyms, UIDs and date
offsets, which is what keeps a patient's studies linked across runs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from os import PathLike
from pathlib import Path
from typing import TextIO

from dicomscrub.errors import KeyFileError

ENV_KEY_FILE = "DICOMSCRUB_KEY_FILE"
KEY_BYTES = 32  # entropy of a generated key
MAX_KEY_FILE_SIZE = 4096

__all__ = [
    "ENV_KEY_FILE",
    "Key",
    "default_key_path",
    "generate_key_file",
    "load_key_file",
    "resolve_key",
]


class Key:
    """A project key. Its bytes are only reachable through :attr:`secret`."""

    __slots__ = ("_secret", "source")

    def __init__(self, secret: bytes, *, source: str = "bytes") -> None:
        if not isinstance(secret, bytes | bytearray | memoryview):
            raise TypeError("a key is bytes")
        secret = bytes(secret)
        if not secret:
            raise KeyFileError("the key is empty")
        self._secret = secret
        self.source = source  # where it came from ("bytes" or "file:PATH"): never the key

    @property
    def secret(self) -> bytes:
        """The key bytes (for ``dicomscrub._core.Plan``; never print them)."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """16 hex digits that identify the key without revealing it (HMAC of a fixed label)."""
        mac = hmac.new(self._secret, b"dicomscrub/fingerprint\x00", hashlib.sha256)
        return mac.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Key(fingerprint={self.fingerprint!r}, source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> object:
        raise TypeError("a Key is not picklable (it would write the secret out)")


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/dicomscrub/key``, or ``~/.config/dicomscrub/key``."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "dicomscrub" / "key"


def load_key_file(path: str | PathLike[str]) -> Key:
    """Read a key file: its bytes, without a trailing end of line (so ``echo secret > key``
    works). Raises :class:`KeyFileError` (naming the path, never the content)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"{p}: cannot read the key file: {exc.strerror}", path=str(p)) from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFileError(f"{p}: a key file holds at most {MAX_KEY_FILE_SIZE} bytes", path=str(p))
    data = data.rstrip(b"\r\n")
    if not data:
        raise KeyFileError(f"{p}: the key file is empty", path=str(p))
    return Key(data, source=f"file:{p}")


def generate_key_file(path: str | PathLike[str]) -> Key:
    """Create a new key file at ``path`` (mode 0600, folder 0700), failing if it exists."""
    p = Path(path)
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(
            f"{p}: cannot create the key file: {exc.strerror}", path=str(p)
        ) from None
    text = secrets.token_hex(KEY_BYTES).encode("ascii") + b"\n"
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise KeyFileError(f"{p}: cannot write the key file: {exc.strerror}", path=str(p)) from None
    return Key(text.rstrip(b"\n"), source=f"file:{p}")


def resolve_key(
    key: bytes | bytearray | memoryview | Key | None = None,
    key_file: str | PathLike[str] | None = None,
    *,
    announce: TextIO | None = None,
) -> Key:
    """The key to use: ``key``, else ``key_file``, else ``$DICOMSCRUB_KEY_FILE``, else the
    default key file (generated on first use; its path is written once to ``announce``,
    stderr by default)."""
    if key is not None and key_file is not None:
        raise ValueError("give either key or key_file, not both")
    if isinstance(key, Key):
        return key
    if key is not None:
        return Key(bytes(key))
    if key_file is not None:
        return load_key_file(key_file)
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return load_key_file(env)
    path = default_key_path()
    if path.exists():
        return load_key_file(path)
    try:
        k = generate_key_file(path)
    except FileExistsError:  # created by a concurrent process meanwhile
        return load_key_file(path)
    stream = announce if announce is not None else sys.stderr
    print(
        f"dicomscrub: generated a new project key at {path} (keep it: the same key gives the "
        "same pseudonyms and UIDs across runs)",
        file=stream,
    )
    return k
