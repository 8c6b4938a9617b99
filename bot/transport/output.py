"""How an argv run ended, and reading its output under a byte cap; shared by both transports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.logs import redact_text

_READ_CHUNK = 65_536


class ByteReader(Protocol):
    """A subprocess pipe or an SSH channel's stdout: `read(n)` gives up to n bytes, b"" at the end."""

    async def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Finished:
    """How an argv run ended: its exit code, the last bytes of its output and how much there was."""

    exit_code: int
    tail: bytes
    total_bytes: int
    lines: int

    @property
    def truncated(self) -> bool:
        return self.total_bytes > len(self.tail)

    def kept_lines(self, secrets: set[str]) -> list[str]:
        """The whole output lines in the tail, redacted; a line cut by the byte cap is dropped."""
        kept = self.tail.decode("utf-8", errors="replace").splitlines()
        if self.truncated and kept:
            kept = kept[1:]
        return [redact_text(line, secrets) for line in kept]


async def read_tail(reader: ByteReader, cap: int) -> tuple[bytes, int, int]:
    """The last `cap` bytes of output, the total byte count and the number of lines."""
    tail = bytearray()
    total = lines = 0
    last = b"\n"
    while chunk := await reader.read(_READ_CHUNK):
        total += len(chunk)
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        tail += chunk
        if len(tail) > cap:
            del tail[: len(tail) - cap]
    if last != b"\n":
        lines += 1
    return bytes(tail), total, lines
