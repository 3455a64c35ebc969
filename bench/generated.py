"""A seekable stream that exists only as a length: for benchmarks (no file on disk).

Imports nothing from either library, so the 0.2.0 worker can use it too.
"""

from __future__ import annotations

import io
from typing import Any


class GeneratedFile(io.RawIOBase):
    """``size`` bytes of ``fill``, seekable, generated as they are read."""

    def __init__(self, size: int, fill: bytes = b"\x00") -> None:
        self.size, self.pos, self.fill = size, 0, fill

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self.pos))
        buffer[:n] = self.fill * n
        self.pos += n
        return n
