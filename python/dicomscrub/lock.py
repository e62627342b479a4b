"""One run per destination: an exclusive ``flock`` on ``DST/.dicomscrub/lock``.

The lock belongs to the open file: the kernel releases it when the process ends, however it
ends (SIGKILL included), so a stale lock never blocks the next run.
"""

from __future__ import annotations

import fcntl
import os

from dicomscrub.errors import RunLockedError

__all__ = ["RunLock"]


class RunLock:
    """``with RunLock(path): ...`` holds the lock or raises :class:`RunLockedError` at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RunLockedError(
                f"another dicomscrub run is writing to this destination{who}: "
                f"wait for it to finish (lock: {self.path})",
                path=self.path,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
