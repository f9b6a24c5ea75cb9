"""The answering half of the session: how an application's answers become output.

``Session`` (``session.py``) takes requests in, guards application code and tears
exchanges down; this mixin is the ``Responder`` side it hands to applications through
each ``Exchange``: a whole response, an iterable pulled as the client reads (bytes and
file segments), start/write/end, the drain signal, and pausing a request body. Every
answer is checked against the current exchange, serialised by the HTTP core and
queued on ``out``; an answer the core refuses fails the exchange (a 500, or a cut
connection), and a completed one goes through the session's one teardown.

Split from ``session.py`` to keep each room to one concern; the two share state (the
session's slots), which the ``TYPE_CHECKING`` block below names for the type checker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..http import Data, EndOfMessage, LocalProtocolError, Request, Response, ServerConnection
from .exchange import BodyPiece, BodyStream, Exchange, HeaderList, ResponseFields
from .output import FileSegment, OutputQueue
from .states import _COMPLETE, Ending

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("treadle.server")


class Answering:
    """The ``Responder`` methods of a session (a mixin: the state is the session's)."""

    if not TYPE_CHECKING:
        # No slots of its own (no per-instance dict either: Session has the slots);
        # hidden from the type checker, which would refuse the session's attributes.
        __slots__ = ()
    else:
        ctx: ServerContext
        conn: ServerConnection
        out: OutputQueue
        kick: Callable[[], None]
        in_turn: bool
        closed: bool
        held_back: bool
        producing: bool
        _exchange: Exchange | None
        _iterator: Iterator[BodyPiece] | None
        _closer: Callable[[], object] | None
        _stream: BodyStream | None
        _body_paused: bool
        _drain: Callable[[], object] | None

        call_app: Callable[..., bool]

        def _fail(self) -> None: ...

        def _end(self, ending: Ending, answer: bytes = b"") -> None: ...

        def _send_continue(self, request: Request) -> None: ...

    def _current(self, exchange: Exchange) -> bool:
        if exchange is not self._exchange or exchange.finished:
            if not self.closed and not exchange.finished:
                raise RuntimeError("this exchange is no longer current")
            return False
        return True

    def respond(
        self, exchange: Exchange, status: int, headers: ResponseFields, body: bytes
    ) -> None:
        if exchange is not self._exchange or exchange.finished:
            self._current(exchange)
            return
        try:
            data = self.conn.send_response(status, headers, body)
        except LocalProtocolError:
            log.exception("application response rejected")
            self._fail()
            return
        self._complete(data)

    def respond_iterable(
        self, exchange: Exchange, status: int, headers: HeaderList, body: Iterable[BodyPiece]
    ) -> None:
        if not self._current(exchange):
            return
        # iter() before the head: a body that is not iterable still gets a clean 500.
        try:
            iterator = iter(body)
        except Exception:
            log.exception("response body is not iterable")
            self._fail()
            return
        self._iterator = iterator
        self.producing = True
        # PEP 3333: close() is the iterable's, which need not be its iterator's.
        self._closer = getattr(body, "close", None) or getattr(iterator, "close", None)
        self.start_response(exchange, status, headers)
        if self._exchange is exchange:
            self.call_app(self._pump, exchange, iterator)

    def start_response(self, exchange: Exchange, status: int, headers: HeaderList) -> None:
        if not self._current(exchange):
            return
        data = self._serialize(Response(status, headers))
        if data is not None:
            self.out.push(data)
            self.kick()

    def write_body(self, exchange: Exchange, piece: BodyPiece) -> None:
        if not self._current(exchange):
            return
        try:
            self._queue_piece(piece)
        except LocalProtocolError:
            log.exception("application response rejected")
            self._fail()
            return
        self.kick()

    def end_response(self, exchange: Exchange) -> None:
        if not self._current(exchange):
            return
        data = self._serialize(EndOfMessage())
        if data is not None:
            self._complete(data)

    def writable(self, exchange: Exchange) -> bool:
        return not self.closed and self.out.size <= self.ctx.write_high_water

    def on_drain(self, exchange: Exchange, callback: Callable[[], object]) -> None:
        if not self._current(exchange):
            return
        self._drain = callback
        self.producing = True
        self.kick()  # the turn calls it at once if the output has drained already

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        # The session has no loop of its own; the one it runs on (asyncio's offers the
        # same call) does the hand-over through its waker.
        self.ctx.reactor.call_soon_threadsafe(callback, *args)

    def pause_body(self, exchange: Exchange) -> None:
        if exchange is self._exchange and self._stream is not None:
            self._body_paused = True

    def resume_body(self, exchange: Exchange) -> None:
        if self._body_paused:
            self._body_paused = False
            if exchange is self._exchange and not self.conn.response_started:
                # RFC 9110 10.1.1: now somebody reads the body; ask for it.
                self._send_continue(exchange.request)
            self.held_back = True  # the driver runs process() again even with no input
            self.kick()

    def _complete(self, data: bytes) -> None:
        self.out.push(data)
        self._end(_COMPLETE)
        if not self.in_turn:
            self.kick()

    def _serialize(self, event: Response | EndOfMessage) -> bytes | None:
        """The bytes of an application's event, or None when it cannot be sent (logged;
        the exchange then failed: a 500, or the connection cut)."""
        try:
            return self.conn.send(event)
        except LocalProtocolError:
            log.exception("application response rejected")
            self._fail()
            return None

    def _queue_piece(self, piece: BodyPiece) -> None:
        """Frame one body piece onto the output. Raises LocalProtocolError (too long for
        its Content-Length) and TypeError (not bytes-like, nor a FileSegment)."""
        if type(piece) is not bytes:
            if type(piece) is FileSegment:
                try:
                    frame = self.conn.frame_segment(piece.count)
                except LocalProtocolError:
                    piece.done()  # refused (longer than its Content-Length): released
                    raise
                if frame is None:
                    piece.done()  # HEAD, 204, 304: no body goes out
                    return
                self.out.push(frame[0])
                self.out.push_file(piece)
                self.out.push(frame[1])
                return
            # Bytes-like only (TypeError otherwise): bytes(97), from iterating over a
            # bytes object, would send 97 NUL bytes.
            piece = memoryview(piece).tobytes()  # type: ignore[arg-type]
        if piece:
            self.out.push(self.conn.send(Data(piece)))

    def _pump(self, exchange: Exchange, iterator: Iterator[BodyPiece]) -> None:
        """Pull body pieces until the output passes the high-water mark or it ends."""
        out = self.out
        high_water = self.ctx.write_high_water
        while out.size <= high_water:
            if self._iterator is not iterator:
                return  # the exchange ended meanwhile
            try:
                piece = next(iterator)
            except StopIteration:
                self.end_response(exchange)
                return
            self._queue_piece(piece)
        self.kick()
