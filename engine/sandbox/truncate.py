"""Keeping the head and tail of long output, with the size of what was dropped.

What the model sees of a tool's output is bounded: the first and last part
are kept and a line in the middle says how many bytes were left out, e.g.
``[... 49,152,000 bytes of output omitted ...]``. Cuts are made on UTF-8
character boundaries; the count is exact (total bytes minus bytes kept).
"""

from __future__ import annotations

from collections import deque


def omitted_line(n: int) -> str:
    return f"\n[... {n:,} bytes of output omitted ...]\n"


def _head(data: bytes, n: int) -> bytes:
    """The longest prefix of ``data`` of at most ``n`` bytes that ends on a character boundary."""
    cut = data[:n]
    return cut.decode("utf-8", "ignore").encode("utf-8")


def _tail(data: bytes, n: int) -> bytes:
    if n <= 0:
        return b""
    cut = data[-n:]
    return cut.decode("utf-8", "ignore").encode("utf-8")


class HeadTail:
    """A text accumulator that keeps at most ``limit`` bytes from each end.

    Memory stays bounded (about ``2 * limit``) however much is written;
    ``total_bytes`` counts everything. ``render(limit)`` gives the text with
    the middle replaced by the omitted-bytes line, within ``limit`` bytes.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.total_bytes = 0
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        self.total_bytes += len(data)
        room = self.limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail and self._tail_len - len(self._tail[0]) >= self.limit:
            self._tail_len -= len(self._tail.popleft())

    @property
    def dropped_any(self) -> bool:
        return self.total_bytes > len(self._head) + self._tail_len

    def _tail_bytes(self) -> bytes:
        data = b"".join(self._tail)
        return data[-self.limit :] if self.limit else b""

    def render(self, limit: int | None = None) -> tuple[str, int]:
        """(text, bytes omitted). ``limit`` defaults to the accumulator's own."""
        limit = self.limit if limit is None else min(limit, self.limit)
        if self.total_bytes <= limit:
            data = bytes(self._head) + b"".join(self._tail)
            return data.decode("utf-8", "replace"), 0
        budget = max(0, limit - len(omitted_line(self.total_bytes).encode()))
        head = _head(bytes(self._head), budget - budget // 2)
        if self._tail:
            tail = _tail(self._tail_bytes(), budget // 2)
        else:  # everything still lives in head (total <= self.limit): its end is the tail
            tail = _tail(bytes(self._head)[len(head) :], budget // 2)
        dropped = self.total_bytes - len(head) - len(tail)
        text = head.decode("utf-8") + omitted_line(dropped) + tail.decode("utf-8")
        return text, dropped

    def text(self) -> str:
        """Everything kept, with the omitted line if anything was dropped."""
        return self.render()[0]


def truncate_middle(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, head and tail kept.

    Returns (text, bytes omitted); unchanged text and 0 when it fits.
    """
    acc = HeadTail(limit)
    acc.write(text)
    return acc.render()


def _last_rewrite(line: str) -> str:
    """What a terminal shows of one line rewritten with carriage returns."""
    body = line.rstrip("\r")
    cut = body.rfind("\r")
    return body[cut + 1 :] if cut >= 0 else body


class CarriageReturns:
    """Turns progress-bar output into what a terminal would finally show.

    ``tqdm`` and friends redraw a line with ``\\r`` hundreds of times; the model
    only needs the last version of each line. ``feed`` returns the text that is
    settled so far (whole lines); ``flush`` the rest at the end. A partial line
    is held back only up to ``max_pending`` characters, so memory stays bounded.
    """

    def __init__(self, max_pending: int = 64 * 1024) -> None:
        self.max_pending = max_pending
        self._pending = ""

    def feed(self, text: str) -> str:
        data = self._pending + text
        nl = data.rfind("\n")
        out = ""
        if nl >= 0:
            done, data = data[: nl + 1], data[nl + 1 :]
            if "\r" in done:
                done = "\n".join(_last_rewrite(x) for x in done[:-1].split("\n")) + "\n"
            out = done
        if len(data) > self.max_pending:
            cut = data.rstrip("\r").rfind("\r")
            if cut >= 0:
                data = data[cut + 1 :]  # everything before it will be overwritten anyway
            if len(data) > self.max_pending:
                out, data = out + data, ""
        self._pending = data
        return out

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return _last_rewrite(rest) if "\r" in rest else rest


class ModelView:
    """What the model is shown of a tool call's output, built as it streams: each
    stream's progress bars folded (``CarriageReturns``, per stream, so a bar on
    stderr does not swallow stdout lines), then head and tail kept (``HeadTail``)."""

    def __init__(self, limit: int) -> None:
        self.kept = HeadTail(limit)
        self._streams = {
            "stdout": CarriageReturns(max_pending=limit),
            "stderr": CarriageReturns(max_pending=limit),
        }
        self._last_char = "\n"

    def add(self, text: str) -> None:
        """Text the model sees as it is (a result, a note)."""
        if text:
            self.kept.write(text)
            self._last_char = text[-1]

    def feed(self, stream: str, text: str) -> None:
        """Output of the call on ``stream`` (anything not ``stderr`` is stdout)."""
        self.add(self._streams["stderr" if stream == "stderr" else "stdout"].feed(text))

    def flush(self) -> None:
        """The streams' partial last lines, once the call has ended."""
        for stream in self._streams.values():
            self.add(stream.flush())

    def new_line(self) -> None:
        """Start a new line, unless the output so far ends one."""
        if self._last_char != "\n":
            self.add("\n")
