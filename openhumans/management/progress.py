"""Progress output for the long-running commands: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """Report ``done`` of ``total`` items on ``stream``.

    On a terminal the bar is redrawn in place; otherwise (cron, CI, a log file) a plain
    line is written at most every ``every`` seconds and at the end, so logs stay short.
    """

    def __init__(self, stream: Any, total: int | None, label: str, *, every: float = 5.0):
        self.stream: TextIO = stream
        self.total = total
        self.label = label
        self.every = every
        self.done = 0
        self._last: float | None = None
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items done and redraw (or log) if it is time."""
        self.done += count
        if self._tty:
            self._draw()
        elif self._last is None or time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self._line()

    def finish(self) -> None:
        """Write the final count (and end the bar's line on a terminal)."""
        if self._tty:
            self._draw()
            self.stream.write("\n")
        else:
            self._line()
        self.stream.flush()

    def _of(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def _line(self) -> None:
        self.stream.write(f"{self.label}: {self._of()}\n")
        self.stream.flush()

    def _draw(self) -> None:
        width = 30
        if self.total:
            filled = min(width, width * self.done // self.total)
            bar = "#" * filled + "-" * (width - filled)
        else:
            bar = "." * (self.done % (width + 1))
        self.stream.write(f"\r{self.label} [{bar:<{width}}] {self._of()}")
        self.stream.flush()
