"""A one-line live progress display on stderr: files, files/s, MB/s, ETA.

Shown only on a terminal (or when forced): a log file or a pipe gets no carriage returns.
The total is counted by a background walk of the source, so the ETA appears once the count is
known, while the work has already started.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO

__all__ = ["Progress", "should_show"]


def should_show(stream: TextIO, force: bool | None) -> bool:
    """``force`` True/False decides; None: only when ``stream`` is a terminal."""
    if force is not None:
        return force
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _hms(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """Call :meth:`advance` as files complete, :meth:`close` at the end."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self._clock = clock
        self.start = clock()
        self.files = 0
        self.bytes = 0
        self.total_files: int | None = None
        self.total_bytes: int | None = None
        self._last = 0.0
        self._width = 0
        self._counter: threading.Thread | None = None
        self.suffix = ""  # appended to the line (a cluster run: its workers)

    def count_in_background(self, entries: Callable[[], Iterable[os.stat_result | int]]) -> None:
        """Count the total (files, bytes) in a daemon thread from ``entries()``: sizes."""
        if not self.enabled:
            return

        def run() -> None:
            n = b = 0
            for size in entries():
                n += 1
                b += int(size)  # type: ignore[arg-type]
            self.total_files, self.total_bytes = n, b

        self._counter = threading.Thread(target=run, name="dicomscrub-count", daemon=True)
        self._counter.start()

    def advance(self, files: int, nbytes: int, *, force: bool = False) -> None:
        self.files += files
        self.bytes += nbytes
        if not self.enabled:
            return
        now = self._clock()
        if force or now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The current status line."""
        now = self._clock() if now is None else now
        dt = max(now - self.start, 1e-9)
        fps = self.files / dt
        mbps = self.bytes / 1e6 / dt
        if self.total_files:
            pct = 100.0 * self.files / self.total_files
            done = f"{self.files}/{self.total_files} files ({pct:.0f}%)"
            if self.total_bytes and self.bytes:
                left = max(self.total_bytes - self.bytes, 0) / (self.bytes / dt)
            else:
                left = max(self.total_files - self.files, 0) / fps if fps > 0 else 0.0
            eta = f"ETA {_hms(left)}"
        else:
            done = f"{self.files} files"
            eta = "ETA counting..."
        return f"{done}  {fps:.0f} files/s  {mbps:.1f} MB/s  {eta}{self.suffix}"

    def _draw(self, now: float) -> None:
        text = self.line(now)
        pad = max(self._width - len(text), 0)
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()
