"""A streamed WSGI response on its way from a worker thread to the loop, with backpressure.

A response whose body is not known whole when the application returns (a generator,
``write()`` calls) is made of items the worker puts here: the head, body pieces (bytes,
or a ``FileSegment`` of a ``wsgi.file_wrapper`` file), then the end or a failure. The
loop takes them and answers through the exchange.

Hand-offs coalesce. A worker that puts an item while an earlier hand-off is still
pending adds it to the same batch instead of waking the loop again; a generator of many
small pieces costs a few wake-ups, not one per piece. A batch that holds the head, the
whole body (as bytes) and the end, as it does for a generator that yields once, is
answered with one ``respond`` and a Content-Length, like a list.

Backpressure. The worker waits while ``limit_bytes`` of body are waiting here. The loop
writes a batch to the exchange, and when the exchange is no longer ``writable`` (its
output is above the high-water mark) it stops taking batches until ``on_drain``. So a
response costs at most the exchange's high-water mark plus two batches of memory,
however fast the application yields and however slowly the client reads.

Endings. ``finish`` (from the exchange's ``on_finish``: the client went away, a
deadline, shutdown, or the response simply completed) wakes a waiting worker, whose
next ``put`` raises ``ClientDisconnected``; the adapter then calls the application's
``close()``. File segments that will never be written are released here.

Only the loop thread calls exchange methods; the worker only calls ``put``.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Condition

from ...server import Exchange, FileSegment
from .body import ClientDisconnected


class Head:
    """The status and fields of a response, as the first item."""

    __slots__ = ("status", "headers")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers


class Failure:
    """The application failed after its head was handed over."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = _End()

Item = Head | bytes | FileSegment | Failure | _End
#: runs a callable on the loop thread; False once the loop is gone
Handoff = Callable[..., bool]
#: fails the exchange through the server's guard (loop thread): a 500, or a cut
Abort = Callable[[BaseException], None]


class ResponseOutput:
    """One streamed response between a worker and the loop; see the module docstring."""

    __slots__ = (
        "_exchange",
        "_handoff",
        "_abort",
        "_limit_bytes",
        "_cond",
        "_items",
        "_buffered",
        "_wake_pending",
        "_blocked",
        "_finished",
        "_started",
    )

    def __init__(
        self, exchange: Exchange, handoff: Handoff, abort: Abort, limit_bytes: int
    ) -> None:
        self._exchange = exchange
        self._handoff = handoff
        self._abort = abort
        self._limit_bytes = max(1, limit_bytes)
        self._cond = Condition()
        self._items: list[Item] = []
        self._buffered = 0  # body bytes in _items
        self._wake_pending = False  # a _flush is on its way to the loop
        self._blocked = False  # the loop waits for on_drain
        self._finished = False
        self._started = False  # the loop has sent the head

    # ---------------------------------------------------------- worker thread

    def put(self, item: Item, size: int = 0) -> None:
        """Add an item (``size`` body bytes); wait while the buffer is full.

        Raises ClientDisconnected once the exchange has ended (a segment that was not
        taken is released first).
        """
        cond = self._cond
        with cond:
            if size:
                while self._buffered >= self._limit_bytes and not self._finished:
                    cond.wait()
            if self._finished:
                if type(item) is FileSegment:
                    item.done()
                raise ClientDisconnected("the client went away, or the exchange ended")
            self._items.append(item)
            self._buffered += size
            wake = not self._wake_pending
            self._wake_pending = True
        if wake and not self._handoff(self._flush):
            self._lost()
            raise ClientDisconnected("the server is closing")

    def _lost(self) -> None:
        with self._cond:
            self._finished = True
            items, self._items = self._items, []
        _release(items)

    # ------------------------------------------------------------ loop thread

    def finish(self) -> None:
        """The exchange ended: wake the worker, release what will never be sent."""
        with self._cond:
            self._finished = True
            items, self._items = self._items, []
            self._buffered = 0
            self._cond.notify_all()
        _release(items)

    def _flush(self) -> None:
        with self._cond:
            if self._blocked:
                return  # _drained flushes; until then puts need not wake the loop
            self._wake_pending = False
            if self._finished or not self._items:
                return
            items, self._items = self._items, []
            self._buffered = 0
            self._cond.notify()
        self._write(items)

    def _drained(self) -> None:
        with self._cond:
            self._blocked = False
        self._flush()

    def _write(self, items: list[Item]) -> None:
        exchange = self._exchange
        start = 0
        if not self._started:
            head = items[0]
            assert type(head) is Head
            last = len(items) - 1
            if items[last] is END and all(type(item) is bytes for item in items[1:last]):
                self._started = True
                body = items[1] if last == 2 else b"".join(items[1:last])  # type: ignore[arg-type]
                exchange.respond(head.status, head.headers, body)  # type: ignore[arg-type]
                return
            for item in items:
                if type(item) is Failure:
                    # Nothing has reached the client yet: it still gets a clean 500.
                    _release(items)
                    self._abort(item.error)
                    return
            self._started = True
            exchange.start(head.status, head.headers)
            start = 1
        for index in range(start, len(items)):
            item = items[index]
            if self._finished or exchange.finished:
                _release(items[index:])
                return
            kind = type(item)
            if kind is bytes or kind is FileSegment:
                exchange.write(item)  # type: ignore[arg-type]
            elif item is END:
                exchange.end()
                return
            elif kind is Failure:
                _release(items[index + 1 :])
                self._abort(item.error)  # type: ignore[union-attr]
                return
        if not exchange.finished and not exchange.writable:
            with self._cond:
                self._blocked = True
                self._wake_pending = True
            exchange.on_drain(self._drained)


def _release(items: list[Item]) -> None:
    for item in items:
        if type(item) is FileSegment:
            item.done()
