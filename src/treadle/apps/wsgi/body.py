"""``wsgi.input`` for a request body that streams in while the application runs.

A body up to ``body_buffer_bytes`` reaches the adapter whole and is read from an
``io.BytesIO``. A larger one arrives in pieces through the exchange's ``BodyStream``
on the loop thread, while the application reads it on a worker thread: the two meet
in a ``StreamedInput``, a bounded buffer under a condition variable.

Flow control. The adapter pauses the stream as soon as the request is handed to a
worker: until the application first reads, nothing of the body is read from the
client (and once the server defers ``100 Continue`` for a paused stream, a client that
sent ``Expect: 100-continue`` is not asked for a body that nobody reads). The first
``read`` asks the loop to set the stream's callbacks and resume it. Pieces then fill
the buffer on the loop thread; past ``limit_bytes`` the loop pauses the stream (the
client's window fills, it waits), and the worker, having read the buffer down to half
of that, asks the loop to resume. Requests to the loop go through
``call_soon_threadsafe``; nothing here touches the exchange from a worker thread.

Endings. The stream's end makes reads return what is left, then ``b""``. An abort
(the client went away, broke the chunked framing, or ran out of time) and the end of
the exchange (``on_finish``) wake a blocked reader, whose read raises
``ClientDisconnected``: a short read would let an application store half an upload as
if it were whole.

``read(n)`` returns ``n`` bytes unless the body ends first, as a file does; ``read()``
returns the rest; ``readline``, ``readlines`` and iteration split at ``\\n``.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from threading import Condition
from typing import IO

from ...server import BodyStream


class ClientDisconnected(OSError):
    """The client went away (or the exchange ended) while the application was reading
    its body or writing its response."""


#: how a worker asks the loop to run something (``exchange.call_soon_threadsafe``)
Handoff = Callable[..., object]


class StreamedInput:
    """``wsgi.input`` over a ``BodyStream``; see the module docstring."""

    __slots__ = (
        "_stream",
        "_handoff",
        "_limit_bytes",
        "_cond",
        "_chunks",
        "_offset",
        "_available",
        "_eof",
        "_error",
        "_closed",
        "_started",
        "_paused",
        "_resume_asked",
    )

    def __init__(self, stream: BodyStream, handoff: Handoff, limit_bytes: int = 256 * 1024):
        self._stream = stream
        self._handoff = handoff
        self._limit_bytes = max(1, limit_bytes)
        self._cond = Condition()
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of _chunks[0] already read
        self._available = 0  # unread bytes in _chunks
        self._eof = False
        self._error = ""
        self._closed = False  # the exchange ended: the stream is not ours to touch
        self._started = False  # the worker asked for the body
        self._paused = False  # the loop paused the stream because the buffer is full
        self._resume_asked = False

    # ------------------------------------------------------------ loop thread

    def hold(self) -> None:
        """Loop thread, before the worker runs: keep the body unread until asked for."""
        self._stream.pause()

    def _start(self) -> None:
        if self._closed:
            return
        self._stream.set_callbacks(self._on_data, self._on_end, self._on_abort)
        self._stream.resume()

    def _resume(self) -> None:
        with self._cond:
            self._resume_asked = False
            if self._closed or self._available > self._limit_bytes // 2:
                return
            self._paused = False
        self._stream.resume()

    def _on_data(self, data: bytes) -> None:
        with self._cond:
            if data:
                self._chunks.append(data)
                self._available += len(data)
                self._cond.notify()
            full = self._available >= self._limit_bytes
            if full:
                self._paused = True
        if full:
            self._stream.pause()

    def _on_end(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify()

    def _on_abort(self) -> None:
        self.fail("the request body ended early: the client went away or broke its framing")

    def fail(self, reason: str) -> None:
        """Loop thread: the body will never end, or the exchange did (then the stream
        is never touched again); wake a reader, whose read raises unless the body was
        complete."""
        with self._cond:
            self._closed = True
            if not self._eof and not self._error:
                self._error = reason
            self._cond.notify_all()

    # ---------------------------------------------------------- worker thread

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative or None), fewer only at
        the end of the body. Raises ClientDisconnected if the body will never end."""
        if size is None or size < 0:
            parts: list[bytes] = []
            while True:
                piece = self._read_some(1 << 20, exact=False)
                if not piece:
                    return b"".join(parts)
                parts.append(piece)
        if size == 0:
            return b""
        return self._read_some(size, exact=True)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, ``\\n`` included, or at most ``size`` bytes of it."""
        limit = size if size is not None and size >= 0 else -1
        if limit == 0:
            return b""
        parts: list[bytes] = []
        got = 0
        with self._cond:
            self._begin()
            while True:
                remaining = -1 if limit < 0 else limit - got
                end = self._find_newline(remaining)
                if end >= 0:
                    parts.append(self._take(end))
                    break
                available = self._available
                if 0 <= remaining <= available:
                    parts.append(self._take(remaining))
                    break
                if self._eof:
                    parts.append(self._take(available))
                    break
                if available:
                    # A line longer than the buffer: hold its start here, so the
                    # buffer drains and the stream goes on.
                    parts.append(self._take(available))
                    got += available
                self._wait()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Lines until the end, or until they add up to ``hint`` bytes."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        """The server owns the input; closing it does nothing."""

    def _read_some(self, size: int, *, exact: bool) -> bytes:
        parts: list[bytes] = []
        need = size
        with self._cond:
            self._begin()
            while True:
                available = self._available
                if available >= need or self._eof or (available and not exact):
                    parts.append(self._take(min(need, available)))
                    break
                if available:
                    # More was asked for than the buffer holds: take what is here, so
                    # the buffer drains and the stream goes on.
                    parts.append(self._take(available))
                    need -= available
                self._wait()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _begin(self) -> None:
        if not self._started:
            self._started = True
            self._handoff(self._start)

    def _wait(self) -> None:
        if self._error:
            raise ClientDisconnected(self._error)
        self._cond.wait()

    def _find_newline(self, limit: int) -> int:
        """Bytes up to and including the first newline within ``limit``, or -1."""
        seen = 0
        offset = self._offset
        for chunk in self._chunks:
            at = chunk.find(b"\n", offset)
            if at >= 0:
                length = seen + at - offset + 1
                return length if limit < 0 or length <= limit else -1
            seen += len(chunk) - offset
            offset = 0
            if 0 <= limit <= seen:
                return -1
        return -1

    def _take(self, size: int) -> bytes:
        """Remove and return ``size`` buffered bytes (lock held); ask the loop to resume
        the stream once the buffer is down to half of its limit."""
        chunks = self._chunks
        parts = []
        left = size
        while left:
            chunk = chunks[0]
            start = self._offset
            rest = len(chunk) - start
            if rest <= left:
                parts.append(chunk[start:] if start else chunk)
                chunks.popleft()
                self._offset = 0
                left -= rest
            else:
                parts.append(chunk[start : start + left])
                self._offset = start + left
                left = 0
        self._available -= size
        if (
            self._paused
            and not self._resume_asked
            and not self._error
            and self._available <= self._limit_bytes // 2
        ):
            self._resume_asked = True
            self._handoff(self._resume)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


class CollectedInput:
    """Loop thread (``--threads 0``): gathers a streamed body into a spooled temporary
    file, then calls ``on_complete(file, size)`` with the file rewound; the application
    then runs inline with the whole body, as if it had been buffered."""

    __slots__ = ("_file", "_on_complete")

    def __init__(
        self,
        stream: BodyStream,
        on_complete: Callable[[IO[bytes], int], object],
        memory_bytes: int,
    ) -> None:
        # Closed by its owner once the application has run (or by _abort).
        spool = tempfile.SpooledTemporaryFile(max_size=memory_bytes)  # noqa: SIM115
        self._file: tempfile.SpooledTemporaryFile[bytes] = spool
        self._on_complete = on_complete
        stream.set_callbacks(self._file.write, self._end, self._abort)

    def _end(self) -> None:
        size = self._file.tell()
        self._file.seek(0)
        self._on_complete(self._file, size)

    def _abort(self) -> None:
        self._file.close()
