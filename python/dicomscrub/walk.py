"""Walking a source tree: every regular file, in a stable order, one ``stat`` each.

The walk is a generator (memory stays flat whatever the size of the tree). It skips the
destination when it lies inside the source, every ``.dicomscrub`` folder (journals, staging) and
the core's temporary files; it does not follow symbolic links to folders (no loops), and follows
symbolic links to files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

STATE_DIR = ".dicomscrub"  # the run's own folder inside DST
TEMP_NAME = re.compile(r"^\..+\.\d+-\d+\.dicomscrub-tmp$")  # the core's temporary outputs
_DICOMDIR_CLASS = re.compile(rb"1\.2\.840\.10008\.1\.3\.10(?![0-9.])")  # Media Storage Directory
SNIFF_BYTES = 512

__all__ = ["STATE_DIR", "TEMP_NAME", "Entry", "is_dicomdir", "remove_temp_files", "walk"]


@dataclass(frozen=True, slots=True)
class Entry:
    """A file found by :func:`walk`."""

    path: str  # as found (root joined with rel)
    rel: str  # relative to the root, with os.sep
    size: int
    mtime_ns: int


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def walk(
    root: str | os.PathLike[str],
    *,
    exclude: Iterable[str | os.PathLike[str]] = (),
    errors: list[tuple[str, OSError]] | None = None,
) -> Iterator[Entry]:
    """Every regular file under ``root``, depth first, names sorted (files before folders).

    ``exclude``: folders not to enter (compared by device and inode, so any spelling works).
    Folders that cannot be read are skipped and listed in ``errors`` when given.
    """
    root = os.fspath(root)
    skip = {d for d in (_dir_id(os.fspath(p)) for p in exclude) if d is not None}
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        path, rel = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if errors is not None:
                errors.append((path, exc))
            continue
        subdirs: list[tuple[str, str]] = []
        for e in entries:
            erel = os.path.join(rel, e.name) if rel else e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.name == STATE_DIR:
                        continue
                    st = e.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) in skip:
                        continue
                    subdirs.append((e.path, erel))
                elif e.is_file():
                    if TEMP_NAME.match(e.name):
                        continue
                    st = e.stat()
                    yield Entry(e.path, erel, st.st_size, st.st_mtime_ns)
            except OSError as exc:  # vanished meanwhile, dangling link...
                if errors is not None:
                    errors.append((e.path, exc))
        stack.extend(reversed(subdirs))


def is_dicomdir(path: str, name: str | None = None) -> bool:
    """A DICOMDIR: named so, or whose first bytes hold the Media Storage Directory SOP Class."""
    name = os.path.basename(path) if name is None else name
    if name.upper() == "DICOMDIR":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return False
    return _DICOMDIR_CLASS.search(head) is not None


def remove_temp_files(root: str | os.PathLike[str]) -> int:
    """Delete the core's leftover temporary files (``.NAME.PID-N.dicomscrub-tmp``) under
    ``root``; returns how many."""
    n = 0
    stack = [os.fspath(root)]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        if e.name != STATE_DIR:
                            stack.append(e.path)
                    elif TEMP_NAME.match(e.name):
                        try:
                            os.unlink(e.path)
                            n += 1
                        except FileNotFoundError:
                            pass
        except OSError:
            continue
    return n
