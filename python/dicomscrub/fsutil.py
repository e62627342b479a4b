"""File system helpers of the bulk engine: atomic placement and group-commit syncs.

The names of temporary files follow the core's (``.NAME.PID-N.dicomscrub-tmp`` beside the
output), so one sweep (:func:`dicomscrub.walk.remove_temp_files`) cleans both after a crash.
"""

from __future__ import annotations

import itertools
import os
import shutil
from typing import Any

from dicomscrub.errors import OutputError

_counter = itertools.count()
_libc: Any = None  # the C library as ctypes sees it (ctypes is imported on the first sync)

__all__ = ["copy_atomic", "move_noreplace", "syncfs", "temp_name"]


def temp_name(dst: str) -> str:
    """A temporary path beside ``dst``, named like the core's."""
    d, name = os.path.split(dst)
    return os.path.join(d, f".{name}.{os.getpid()}-{next(_counter) + (1 << 40)}.dicomscrub-tmp")


def move_noreplace(src: str, dst: str, *, overwrite: bool = False) -> None:
    """Move ``src`` to ``dst`` on the same file system, atomically; never over an existing
    ``dst`` unless ``overwrite`` (then ``rename(2)`` replaces it atomically).

    Raises :class:`OutputError` when ``dst`` exists already.
    """
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    if overwrite:
        os.replace(src, dst)
        return
    try:
        os.link(src, dst)  # fails if dst exists: the no-replace rename of portable Python
    except FileExistsError:
        raise OutputError(f"output exists already: {dst}", path=dst) from None
    os.unlink(src)


def copy_atomic(src: str, dst: str, *, overwrite: bool = False) -> int:
    """Copy ``src`` to ``dst`` whole or not at all; returns the bytes copied."""
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = temp_name(dst)
    try:
        shutil.copyfile(src, tmp)
        move_noreplace(tmp, dst, overwrite=overwrite)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return os.path.getsize(dst)


def syncfs(path: str) -> None:
    """Flush the whole file system holding ``path`` once (``syncfs(2)``; ``sync(2)`` where
    unavailable): the group commit of a batch."""
    import ctypes

    global _libc
    if _libc is None:
        # the symbols of the running process, libc's among them: no ctypes.util.find_library,
        # which runs ldconfig in a subprocess (and imports subprocess and tempfile to do so)
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:  # pragma: no cover - a platform without dlopen(NULL)
            _libc = False
    fn = getattr(_libc, "syncfs", None) if _libc else None
    if fn is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)
