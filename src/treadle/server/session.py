"""The session: one connection's policy, without sockets or clocks.

Theory of operation. The driver (``driver.py``) feeds received bytes into
``session.conn`` (the HTTP core's ``ServerConnection``) and calls ``process``: the
session takes events out of the core and turns them into exchanges for the
application. It decides how a request body reaches the handler (buffered whole up to
``body_buffer_bytes``, else streamed through a ``BodyStream``), when ``100 Continue``
goes out (only once someone waits for the body: RFC 9110 10.1.1), when pipelined
requests wait (output above the high-water mark, or a paused body), and which
deadline phase the connection is in. The application answers through the
``Responder`` methods; every answer becomes bytes or file segments on ``out``, which
the driver sends. The session never reads a clock or touches a socket, so the same
session can sit under another loop (asyncio) unchanged, and it is tested like the
HTTP core.

One teardown. However an exchange ends, it goes through ``_end``:

    COMPLETE        the response was produced in full
    PROTOCOL_ERROR  the client sent bytes we refuse (its status, then close)
    DEADLINE        a head or body deadline passed (408), or a write stalled
    CLIENT_GONE     the peer reset, vanished, or the socket failed
    APP_FAILED      application code raised, or gave a response that cannot be sent
    SHUTDOWN        the server is closing

``_end`` marks the exchange finished, closes the response iterable exactly once,
aborts a body stream the handler still listens to (its ``on_abort``), forgets a drain
callback, queues the error answer when one is due and nothing was sent yet, and sets
what the connection does next (keep alive, close, or close after lingering). Nothing
else does any of this, so the endings cannot drift apart.

One guard. Application code runs only through ``call_app``: the handler, body-stream
callbacks, the body iterable's ``__next__`` (``pump``), drain callbacks. An exception
is logged with its traceback and ends the exchange as APP_FAILED: a 500 if nothing was
sent, else the connection is closed after what was queued. ``close()`` of a body
iterable is guarded the same way; since the response was already produced, its
failure closes the connection.

Phases, for the driver's one timer: IDLE (keep-alive wait), HEAD (a head has begun),
BODY (reading a body someone waits for, or discarding one), APP (the application has
the exchange: no deadline), WRITE (output the client has not taken). The driver adds
LINGER, its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    ProtocolError,
    Request,
    ServerConnection,
    error_response,
)
from .answers import Answering
from .exchange import BodyPiece, BodyStream, Exchange
from .output import OutputQueue
from .states import (
    _COMPLETE,
    APP,
    BODY,
    HEAD,
    IDLE,
    PHASE_NAMES,
    WRITE,
    Ending,
    format_client,
)

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("treadle.server")

# Endings after which the client may still be sending: read and drop its bytes for a
# while before closing, so it reads our answer instead of a reset.
_LINGERING_ENDINGS = frozenset({Ending.PROTOCOL_ERROR, Ending.DEADLINE, Ending.APP_FAILED})


def _nothing() -> None:
    return None


class Session(Answering):
    """The policy of one client connection; see the module docstring."""

    __slots__ = (
        "ctx",
        "client",
        "conn",
        "out",
        "kick",
        "in_turn",
        "closed",
        "close_when_flushed",
        "linger",
        "held_back",
        "requests",
        "producing",
        "_exchange",
        "_iterator",
        "_closer",
        "_buffering",
        "_buffered_size",
        "_stream",
        "_body_paused",
        "_discarding",
        "_drain",
    )

    def __init__(self, ctx: ServerContext, client: tuple[str, int] | None) -> None:
        self.ctx = ctx
        self.client = client
        self.conn = ServerConnection(ctx.limits, ctx.defaults)
        self.out = OutputQueue()
        #: run a turn of the driver now (set by the driver; a no-op inside a turn)
        self.kick: Callable[[], None] = _nothing
        #: the driver is inside a turn (its end sends whatever was queued): no kick needed
        self.in_turn = False
        self.closed = False
        #: close once the output is sent and no exchange is open
        self.close_when_flushed = False
        #: and read-and-drop for a while before closing (the client may still send)
        self.linger = False
        #: ``process`` stopped for a reason that can clear without new input
        self.held_back = False
        #: requests started on this connection (the driver restarts deadlines on a new one)
        self.requests = 0
        #: a producer waits for the output to drain (a body iterable, a drain callback)
        self.producing = False
        self._exchange: Exchange | None = None
        self._iterator: Iterator[BodyPiece] | None = None
        self._closer: Callable[[], object] | None = None
        self._buffering: list[bytes] | None = None
        self._buffered_size = 0
        self._stream: BodyStream | None = None
        self._body_paused = False
        self._discarding = False  # reading a body nobody waits for
        self._drain: Callable[[], object] | None = None

    # ------------------------------------------------------------ for the driver

    @property
    def phase(self) -> int:
        """Which deadline applies now (IDLE, HEAD, BODY, APP or WRITE)."""
        if self.out.items:
            return WRITE
        if (
            self._buffering is not None
            or self._discarding
            or (self._stream is not None and not self._body_paused)
        ):
            return BODY
        if self._exchange is not None:
            return APP
        if self.conn.buffered:
            return HEAD
        return IDLE

    @property
    def accepts_input(self) -> bool:
        """Whether reading more from the client is of any use now."""
        return not (self.close_when_flushed or self._body_paused or self.conn.their_eof)

    @property
    def streaming_body(self) -> bool:
        """Whether the current exchange's body is being read past its handler's call
        (streamed to it, or dropped after an early answer), not held by a pause."""
        return (self._stream is not None and not self._body_paused) or self._discarding

    @property
    def finished(self) -> bool:
        """Whether the connection should close now (lingering first if ``linger``)."""
        return self.close_when_flushed and not self.out.items and self._exchange is None

    def process(self) -> bool:
        """Take events out of the protocol until it needs data, pauses, or this turn's
        request budget is spent. Returns True when it stopped for the budget."""
        conn = self.conn
        out = self.out
        handled = 0
        limit = self.ctx.requests_per_turn
        high_water = self.ctx.write_high_water
        self.held_back = False
        while not (self.closed or self.close_when_flushed):
            if out.size > high_water and not self.streaming_body:
                # Backpressure: no new request while output piles up; the driver resumes
                # once it has drained. A body being streamed to (or dropped for) the
                # current exchange goes on: its handler has pause() for that.
                self.held_back = True
                return False
            if self._body_paused:
                return False
            try:
                event = conn.next_event()
            except ProtocolError as error:
                self._on_protocol_error(error)
                return False
            kind = type(event)
            if kind is Request:
                handled += 1
                self._start_request(event)  # type: ignore[arg-type]
                if handled >= limit and self._exchange is None:
                    return True
            elif kind is Data:
                self._on_body_data(event.data)  # type: ignore[union-attr]
            elif kind is EndOfMessage:
                if self._buffering is not None or self._stream is not None:
                    self._on_body_end()
                else:
                    self._discarding = False  # a bodiless request, or a body dropped
            elif event is NEED_DATA:
                return False
            elif event is PAUSED:
                # Our response is still under way, or this cycle ends the connection.
                if not conn.keep_alive and self._exchange is None:
                    self.close_when_flushed = True
                return False
            elif kind is ConnectionClosed:
                self.close_when_flushed = True
                return False
        return False

    def produce(self) -> None:
        """The output has drained: let the waiting producer go on."""
        if self._iterator is not None:
            exchange = self._exchange
            if exchange is not None:
                self.call_app(self._pump, exchange, self._iterator)
        elif self._drain is not None:
            callback, self._drain = self._drain, None
            self.producing = False
            self.call_app(callback)

    def deadline_expired(self, phase: int) -> bool:
        """The deadline of ``phase`` passed. Returns True when the connection should just
        close now (idle, or a stalled write); else a 408 is queued to go out first."""
        if phase in (IDLE, WRITE):
            if phase == WRITE:
                log.info(
                    "closing %s: no write progress for %.1f s",
                    format_client(self.client),
                    self.ctx.write_timeout_s,
                )
            return True
        name = PHASE_NAMES[phase]
        log.info("closing %s: request %s timed out", format_client(self.client), name)
        # 408 whenever nothing was answered yet, even while a streaming handler holds
        # the exchange: the client learns why, and the handler hears on_abort.
        self._end(Ending.DEADLINE, error_response(408, f"request {name} timed out", self._date()))
        return False

    def close(self, ending: Ending) -> None:
        """The connection is going away: end the exchange, drop unsent output."""
        if self.closed:
            return
        self.closed = True
        self._end(ending)
        self.out.discard()

    # ------------------------------------------------------------ requests in

    def _start_request(self, request: Request) -> None:
        self.requests += 1
        self._discarding = False
        if not (request.chunked or request.content_length):  # Request.has_body, inlined
            self._exchange = exchange = Exchange(self, request, self.client, b"")
            self.call_app(self.ctx.app, exchange)
            return
        length = request.content_length
        if request.chunked or (length is not None and length <= self.ctx.body_buffer_bytes):
            # Small, or of unknown length: buffer while it stays small, stream past that.
            self._buffering = []
            self._buffered_size = 0
            self._send_continue(request)
            return
        self._start_streaming(request, [])

    def _send_continue(self, request: Request) -> None:
        # RFC 9110 10.1.1: 100 Continue only when we are about to read the body.
        if request.expect_continue and not self.conn.continue_sent:
            self.out.push(self.conn.send(InformationalResponse(100)))

    def _start_streaming(self, request: Request, received: list[bytes]) -> None:
        exchange = Exchange(self, request, self.client, None)
        stream = exchange.stream
        assert stream is not None
        for piece in received:
            stream.feed(piece)
        self._stream = stream
        self._buffering = None
        self._exchange = exchange
        self.call_app(self.ctx.app, exchange)
        # Ask for the body only once the handler has shown it waits for it: one that
        # answered at once (a 413, say) spares the client sending it (RFC 9110 10.1.1).
        # A handler that paused the body at once (a worker pool that has not started the
        # application yet) gets its 100 Continue when it resumes: when the body is read.
        if self._exchange is exchange and not self.conn.response_started and not self._body_paused:
            self._send_continue(request)

    def _on_body_data(self, data: bytes) -> None:
        if self._buffering is not None:
            self._buffering.append(data)
            self._buffered_size += len(data)
            if self._buffered_size > self.ctx.body_buffer_bytes:
                request = self.conn.request
                assert request is not None
                received, self._buffering = self._buffering, None
                self._start_streaming(request, received)
        elif self._stream is not None:
            self._stream.feed(data)
        # else: the response was sent early; the rest of the body is read and dropped

    def _on_body_end(self) -> None:
        self._discarding = False
        if self._buffering is not None:
            body = b"".join(self._buffering)
            self._buffering = None
            request = self.conn.request
            assert request is not None
            self._exchange = exchange = Exchange(self, request, self.client, body)
            self.call_app(self.ctx.app, exchange)
        elif self._stream is not None:
            stream, self._stream = self._stream, None
            stream.end()

    # --------------------------------------------------- the guard and the teardown

    def call_app(self, callback: Callable[..., object], *args: object) -> bool:
        """Run application code; on an exception, log it and fail the exchange.

        Returns False when the callback raised.
        """
        try:
            callback(*args)
            return True
        except Exception:
            if callback is self.ctx.app:
                what = "application"
            elif callback == self._pump:
                what = "response body iterator"
            else:
                what = "application callback " + getattr(callback, "__qualname__", repr(callback))
            exchange = self._exchange
            if exchange is not None:
                request = exchange.request
                log.exception(
                    "unhandled exception in %s for %s %s",
                    what,
                    request.method.decode("latin-1"),
                    request.target.decode("latin-1"),
                )
            else:
                log.exception("unhandled exception in %s after its exchange ended", what)
            self._fail()
            return False

    def _fail(self) -> None:
        """Our side broke: a 500 if nothing was sent yet, else cut the connection."""
        if self._exchange is None:
            # A callback that outlived its exchange (a late on_abort): nothing to
            # answer, but this connection's state is not to be trusted any more.
            self.close_when_flushed = True
        else:
            self._end(
                Ending.APP_FAILED,
                error_response(500, "the server failed to answer this request", self._date()),
            )
        # Called from application code outside a turn too (a late respond with a bad
        # field, an end() short of its Content-Length): send and close now.
        self.kick()

    def _end(self, ending: Ending, answer: bytes = b"") -> None:
        """The one teardown of an exchange; see the module docstring."""
        exchange = self._exchange
        finish_callbacks = None
        if exchange is not None:
            exchange.finished = True
            exchange.ending = ending
            finish_callbacks = exchange._on_finish
            self._exchange = None
        stream = self._stream
        if stream is not None or self.producing:
            self.producing = False
            self._drain = None
            self._stream = None
            self._body_paused = False
            if self._iterator is not None:
                self._iterator = None
                self._close_body()
            if stream is not None:
                if ending is _COMPLETE:
                    # Answered before the body ended: keep reading it, but nobody listens
                    # now. Still the BODY phase: the client is sending.
                    self._discarding = True
                else:
                    stream.abort()
        conn = self.conn
        if ending is _COMPLETE:
            if not conn.keep_alive:
                self.close_when_flushed = True
                # Linger only if the client may still be sending: its body is not all
                # in, or it pipelined more. A complete request closes at once.
                if not conn.request_done or conn.buffered:
                    self.linger = True
        else:
            self._buffering = None
            self._discarding = False
            self.close_when_flushed = True
            if ending in _LINGERING_ENDINGS:
                self.linger = True
            if answer and not self.closed and not conn.response_started:
                self.out.push(answer)
        if finish_callbacks is not None:
            # Last, once the session's state is whole again: these may call back in.
            exchange._on_finish = None  # type: ignore[union-attr]
            for callback in finish_callbacks:
                self.call_app(callback, ending)

    def _close_body(self) -> None:
        """Call the response iterable's ``close()``, if it has one: once, guarded."""
        close, self._closer = self._closer, None
        if close is None:
            return
        try:
            close()
        except Exception:
            log.exception("error closing a response body")
            self.close_when_flushed = True

    def _on_protocol_error(self, error: ProtocolError) -> None:
        log.info("bad request from %s: %s (%d)", format_client(self.client), error, error.status)
        self._end(Ending.PROTOCOL_ERROR, error_response(error.status, str(error), self._date()))

    def _date(self) -> bytes:
        return self.ctx.defaults.date
