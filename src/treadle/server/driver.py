"""The connection driver: the one place that moves bytes between a socket and HTTP.

Theory of operation. Each accepted socket gets one ``ConnectionDriver``, registered
with the reactor as its I/O handler. Reading drains the socket until EAGAIN (or this
turn's byte budget), feeds ``ServerConnection`` and then *processes*: takes events out
of the protocol and hands complete requests to the application through an
``Exchange``. Responses are queued in ``_out`` and flushed once at the end of the
turn, so a burst of pipelined requests costs one ``send``; a flush writes until
EAGAIN, and only what the kernel refused waits for write readiness.

Level and edge pollers differ only in registration. With a level poller we ask for
write readiness only while output is pending and drop read interest while paused;
the edge poller is registered once for everything and the driver keeps readiness in
user space (``_read_ready``): if it stopped reading before EAGAIN (budget spent, or
backpressure), nothing will tell it again, so it schedules itself with ``call_soon``.

Fairness: one connection handles at most ``requests_per_turn`` requests and reads at
most ``read_bytes_per_turn`` bytes per loop turn, then yields to the others.

Backpressure: when unsent output passes ``write_high_water`` the driver stops reading
and stops taking requests; below ``write_low_water`` it resumes. A client that never
reads therefore costs at most about the high-water mark.

Deadlines: one timer per connection, re-armed lazily. Each phase sets ``_deadline``
(a plain float write, no heap work per request); when the timer fires early because
the deadline moved later, it re-arms itself. Phases: IDLE (keep-alive wait: close
quietly), HEAD (from a head's first byte: 408), BODY (since the last body byte: 408),
WRITE (since the last write progress: close), APP (the application is answering: none).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..http import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    LocalProtocolError,
    ProtocolError,
    Request,
    Response,
    ServerConnection,
    error_response,
)
from ..poll import EVENT_READ, EVENT_WRITE
from .exchange import BodyStream, Exchange, HeaderList

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger("treadle.server")

_IDLE, _HEAD, _BODY, _APP, _WRITE, _LINGER = range(6)
_PHASE_NAMES = ("idle", "head", "body", "app", "write", "linger")

# 64 KiB: a larger recv() allocates its bytes object above glibc's mmap threshold,
# and the mmap/munmap on every read cost more than the read (measured by bench/).
_RECV_SIZE = 64 * 1024
# How long a closing connection keeps reading (and discarding) so that the client
# reads our last response before the kernel answers its unread bytes with a reset.
_LINGER_S = 2.0

_DISCONNECT_ERRORS = (ConnectionError, TimeoutError)
_DISCONNECT_ERRNOS = (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT)


class ConnectionDriver:
    """Drives one client connection; see the module docstring."""

    __slots__ = (
        "ctx",
        "sock",
        "fd",
        "client",
        "conn",
        "closed",
        "_out",
        "_out_size",
        "_edge",
        "_events",
        "_reading",
        "_read_ready",
        "_write_ready",
        "_scheduled",
        "_close_when_flushed",
        "_linger_when_closing",
        "_exchange",
        "_iterator",
        "_stream",
        "_buffering",
        "_buffered_size",
        "_discarding",
        "_busy",
        "_held_back",
        "_phase",
        "_deadline",
        "_head_started",
        "_timer",
        "_timer_at",
        "__weakref__",
    )

    def __init__(
        self, ctx: ServerContext, sock: socket.socket, client: tuple[str, int] | None
    ) -> None:
        self.ctx = ctx
        self.sock = sock
        self.fd = sock.fileno()
        self.client = client
        self.conn = ServerConnection(ctx.limits, ctx.defaults)
        self.closed = False
        self._out: list[bytes] = []
        self._out_size = 0
        self._edge = ctx.edge_triggered
        self._events = EVENT_READ
        self._reading = True  # read interest (level) / willingness to read (edge)
        self._read_ready = False  # edge: the socket may hold unread bytes
        self._write_ready = True  # edge: last send did not hit EAGAIN
        self._scheduled = False  # a call_soon(_resume) is pending
        self._close_when_flushed = False
        self._linger_when_closing = False
        self._exchange: Exchange | None = None
        self._iterator: Iterator[bytes] | None = None
        self._stream: BodyStream | None = None
        self._buffering: list[bytes] | None = None
        self._buffered_size = 0
        self._discarding = False  # reading a body nobody waits for
        self._busy = False  # inside _run
        self._held_back = False  # _process stopped at the high-water mark
        self._phase = _IDLE
        # Registered first: a full poller (PollerFullError) leaves nothing behind.
        ctx.reactor.add_handler(
            self.fd, self, EVENT_READ | EVENT_WRITE if self._edge else EVENT_READ
        )
        now = ctx.reactor.time()
        self._deadline = now + ctx.idle_timeout_s
        self._head_started = now
        self._timer = ctx.reactor.call_at(self._deadline, self._on_timer)
        self._timer_at = self._deadline

    # ------------------------------------------------------------------ reactor side

    def handle_read(self) -> None:
        if self.closed:
            return
        if self._phase == _LINGER:
            self._linger_read()
            return
        if not self._reading:
            self._read_ready = True  # edge poller: remember it for when we resume
            return
        self._read()
        self._run()

    def handle_write(self) -> None:
        if self.closed:
            return
        self._write_ready = True
        if self._out:
            self._run()

    def _resume(self) -> None:
        """Continue work that stopped for fairness or backpressure, next turn."""
        self._scheduled = False
        if self.closed:
            return
        if self._read_ready and self._reading:
            self._read()
        self._run()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.ctx.reactor.call_soon(self._resume)

    # --------------------------------------------------------------------- reading

    def _read(self) -> None:
        """Receive until EAGAIN, end of input or this turn's byte budget."""
        conn = self.conn
        recv = self.sock.recv
        budget = self.ctx.read_bytes_per_turn
        got_data = False
        while True:
            try:
                # Never more than the budget left: one recv must not overshoot it.
                data = recv(budget if budget < _RECV_SIZE else _RECV_SIZE)
            except BlockingIOError:
                self._read_ready = False
                break
            except InterruptedError:
                continue
            except OSError as error:
                self._io_failed("recv", error)
                return
            if not data:
                self._read_ready = False
                conn.receive_data(b"")
                break
            got_data = True
            conn.receive_data(data)
            budget -= len(data)
            if budget <= 0:
                # Fairness: leave the rest for the next turn. Nothing will report it
                # again to an edge poller, so remember it ourselves.
                self._read_ready = True
                self._schedule()
                break
        if got_data and self._phase == _BODY:
            self._set_deadline(self.ctx.reactor.time() + self.ctx.body_timeout_s)

    def _linger_read(self) -> None:
        while True:
            try:
                data = self.sock.recv(_RECV_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                self.close()
                return
            if not data:
                self.close()
                return

    # ------------------------------------------------------------------ processing

    def _process(self) -> None:
        """Take events out of the protocol until it needs data, pauses or the turn's
        request budget is spent."""
        conn = self.conn
        handled = 0
        limit = self.ctx.requests_per_turn
        high_water = self.ctx.write_high_water
        self._held_back = False
        while not self.closed:
            if self._out_size > high_water:
                # Backpressure: _settle resumes reading below the low-water mark, and
                # resumes these events once the output is below the high-water mark.
                self._held_back = True
                return
            try:
                event = conn.next_event()
            except ProtocolError as error:
                self._on_protocol_error(error)
                return
            kind = type(event)
            if kind is Request:
                handled += 1
                self._start_request(event)  # type: ignore[arg-type]
                if handled >= limit and not self._exchange:
                    self._schedule()
                    return
            elif kind is Data:
                self._on_body_data(event.data)  # type: ignore[union-attr]
            elif kind is EndOfMessage:
                self._on_body_end()
            elif event is NEED_DATA:
                return
            elif event is PAUSED:
                # Our response is still under way, or this cycle ends the connection.
                if not conn.keep_alive and self._exchange is None:
                    self._close_when_flushed = True
                return
            elif kind is ConnectionClosed:
                self._close_when_flushed = True
                return

    def _start_request(self, request: Request) -> None:
        ctx = self.ctx
        self._phase = _APP
        self._discarding = False
        if not request.has_body:
            self._call_app(Exchange(self, request, self.client, b"", None))
            return
        self._set_deadline(ctx.reactor.time() + ctx.body_timeout_s)
        length = request.content_length
        if length is not None and length <= ctx.body_buffer_bytes:
            self._buffering = []
            self._buffered_size = 0
            self._phase = _BODY
            self._send_continue(request)
            return
        if request.chunked:
            # Unknown length: buffer while it stays small, stream past the threshold.
            self._buffering = []
            self._buffered_size = 0
            self._phase = _BODY
            self._send_continue(request)
            return
        self._start_streaming(request, [])

    def _send_continue(self, request: Request) -> None:
        # RFC 9110 10.1.1: 100 Continue only when we are about to read the body.
        if request.expect_continue and not self.conn.continue_sent:
            self._queue(self.conn.send(InformationalResponse(100)))

    def _start_streaming(self, request: Request, received: list[bytes]) -> None:
        stream = BodyStream()
        for piece in received:
            stream.feed(piece)
        self._stream = stream
        self._buffering = None
        self._phase = _BODY
        self._call_app(Exchange(self, request, self.client, None, stream))
        # Ask for the body only once the handler has shown it waits for it: one that
        # answered at once (a 413, say) spares the client sending it (RFC 9110 10.1.1).
        if self._exchange is not None and not self.conn.response_started:
            self._send_continue(request)
        if self._exchange is not None or self._stream is not None:
            self._phase = _BODY

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
        if self._buffering is not None:
            body = b"".join(self._buffering)
            self._buffering = None
            request = self.conn.request
            assert request is not None
            self._phase = _APP
            self._call_app(Exchange(self, request, self.client, body, None))
        elif self._stream is not None:
            stream, self._stream = self._stream, None
            self._phase = _APP
            stream.end()
        self._discarding = False

    def _call_app(self, exchange: Exchange) -> None:
        self._exchange = exchange
        try:
            self.ctx.app(exchange)
        except Exception:
            log.exception(
                "unhandled exception in application for %s %s",
                exchange.request.method.decode("latin-1"),
                exchange.request.target.decode("latin-1"),
            )
            self._fail_exchange(exchange)

    def _fail_exchange(self, exchange: Exchange) -> None:
        """Our side broke: answer 500 if nothing was sent yet, else cut the response."""
        if exchange.finished or self.closed:
            return
        exchange.finished = True
        self._exchange = None
        self._iterator = None
        self._stream = None
        if not self.conn.response_started:
            self._queue(
                error_response(
                    500, "the server failed to answer this request", self.ctx.defaults.date
                )
            )
        self._close_when_flushed = True
        self._linger_when_closing = True
        # Called from application code outside a turn too (a late respond with a bad
        # field, an end() short of its Content-Length): send and close now.
        self._flush_soon()

    # -------------------------------------------------------------- answering (apps)

    def respond(self, exchange: Exchange, status: int, headers: HeaderList, body: bytes) -> None:
        if not self._check_exchange(exchange):
            return
        try:
            data = self.conn.send_response(status, headers, body)
        except LocalProtocolError:
            log.exception("application response rejected")
            self._fail_exchange(exchange)
            return
        self._complete(exchange, data)

    def start_response(self, exchange: Exchange, status: int, headers: HeaderList) -> None:
        if not self._check_exchange(exchange):
            return
        data = self._serialize(exchange, Response(status, headers))
        if data is not None:
            self._queue(data)
            self._flush_soon()

    def write_body(self, exchange: Exchange, data: bytes) -> None:
        if not self._check_exchange(exchange) or not data:
            return
        out = self._serialize(exchange, Data(data))
        if out is not None:
            self._queue(out)
            self._flush_soon()

    def end_response(self, exchange: Exchange) -> None:
        if not self._check_exchange(exchange):
            return
        data = self._serialize(exchange, EndOfMessage())
        if data is not None:
            self._complete(exchange, data)

    def _serialize(self, exchange: Exchange, event: Response | Data | EndOfMessage) -> bytes | None:
        """The bytes of an application's event, or None when it cannot be sent (logged;
        the exchange then failed: a 500, or the connection cut)."""
        try:
            return self.conn.send(event)
        except LocalProtocolError:
            log.exception("application response rejected")
            self._fail_exchange(exchange)
            return None

    def respond_iterable(
        self, exchange: Exchange, status: int, headers: HeaderList, body: Iterable[bytes]
    ) -> None:
        if not self._check_exchange(exchange):
            return
        # iter() before the head: a body that is not iterable still gets a clean 500.
        try:
            iterator = iter(body)
        except Exception:
            log.exception("response body is not iterable")
            self._fail_exchange(exchange)
            return
        self.start_response(exchange, status, headers)
        if self._exchange is not exchange:
            _close_iterator(iterator)  # the head was refused: release the body too
            return
        self._iterator = iterator
        self._pump()

    def _pump(self) -> None:
        """Pull body pieces until the output passes the high-water mark or it ends."""
        exchange, iterator = self._exchange, self._iterator
        if exchange is None or iterator is None:
            return
        high_water = self.ctx.write_high_water
        conn = self.conn
        try:
            while self._out_size <= high_water:
                try:
                    piece = next(iterator)
                except StopIteration:
                    self._iterator = None
                    _close_iterator(iterator)
                    self.end_response(exchange)
                    return
                if type(piece) is not bytes:
                    # Bytes-like only (TypeError otherwise): bytes(97), from iterating
                    # over a bytes object, would send 97 NUL bytes.
                    piece = memoryview(piece).tobytes()
                if piece:
                    self._queue(conn.send(Data(piece)))
        except Exception:
            log.exception("unhandled exception in response body iterator")
            self._iterator = None
            _close_iterator(iterator)
            self._fail_exchange(exchange)
            return
        self._flush_soon()

    def _check_exchange(self, exchange: Exchange) -> bool:
        if exchange is not self._exchange or exchange.finished:
            if not self.closed and not exchange.finished:
                raise RuntimeError("this exchange is no longer current")
            return False
        return True

    def _complete(self, exchange: Exchange, data: bytes) -> None:
        exchange.finished = True
        self._exchange = None
        self._queue(data)
        if self._stream is not None:
            # Answered before the body ended: keep reading it, but nobody listens now.
            # Still the BODY phase: the client is sending, so the idle deadline must
            # not cut it (each body byte moves the body deadline on).
            self._stream = None
            self._discarding = True
        if not self.conn.keep_alive:
            self._close_when_flushed = True
            if self.conn.request is not None or self.conn.buffered:
                self._linger_when_closing = True
        self._flush_soon()

    def _flush_soon(self) -> None:
        """After application code answered: run a turn now unless one is running
        (then its end flushes everything queued, in one send)."""
        if not self._busy:
            self._run()

    # ---------------------------------------------------------------------- errors

    def _on_protocol_error(self, error: ProtocolError) -> None:
        log.info("bad request from %s: %s (%d)", _format_client(self.client), error, error.status)
        if self._exchange is not None:
            self._exchange.finished = True
            self._exchange = None
            self._iterator = None
        self._stream = None
        if not self.conn.response_started:
            self._queue(error_response(error.status, str(error), self.ctx.defaults.date))
        self._close_when_flushed = True
        self._linger_when_closing = True

    # --------------------------------------------------------------------- writing

    def _queue(self, data: bytes) -> None:
        if data:
            self._out.append(data)
            self._out_size += len(data)

    def _flush(self) -> None:
        """Send queued output until it is gone or the kernel says EAGAIN."""
        out = self._out
        data = out[0] if len(out) == 1 else b"".join(out)
        send = self.sock.send
        sent_total = 0
        size = len(data)
        view = None
        while sent_total < size:
            try:
                if sent_total == 0:
                    sent = send(data)
                else:
                    if view is None:
                        view = memoryview(data)
                    sent = send(view[sent_total:])
            except BlockingIOError:
                self._write_ready = False
                break
            except InterruptedError:
                continue
            except OSError as error:
                self._io_failed("send", error)
                return
            sent_total += sent
        if sent_total and self._phase == _WRITE:
            self._deadline = self.ctx.reactor.time() + self.ctx.write_timeout_s
        if sent_total >= size:
            out.clear()
            self._out_size = 0
        else:
            rest = data[sent_total:]
            out[:] = [rest]
            self._out_size = len(rest)

    def _run(self) -> None:
        """One turn of work: process requests, flush, pull streamed bodies, settle.

        The one place that sequences a connection's work; re-entry from application
        code called inside it is turned into a no-op by ``_busy``.
        """
        if self._busy or self.closed:
            return
        self._busy = True
        try:
            ctx = self.ctx
            for _ in range(4):  # bounded: a fast client of a streamed body yields too
                self._process()
                if self.closed:
                    return
                if self._out and self._write_ready:
                    self._flush()
                    if self.closed:
                        return
                if self._iterator is None or self._out_size > ctx.write_low_water:
                    break
                self._pump()
                if self.closed:
                    return
            self._settle()
        finally:
            self._busy = False

    def _settle(self) -> None:
        """End of a turn: close if done, set poller interest and the deadline phase."""
        ctx = self.ctx
        if not self._out and self._close_when_flushed and self._exchange is None:
            self._close_or_linger()
            return
        if self._iterator is not None and (not self._out or self._write_ready):
            # More body to pull, and nothing to wait for: either no output is pending, or
            # _run stopped after a pump without flushing it and the socket never said
            # EAGAIN, so an edge poller will not report it writable again.
            self._schedule()
        if self._held_back and self._out_size <= ctx.write_high_water:
            # _process stopped for output that this turn's flush has since sent: nothing
            # else (no input, no write readiness) would make it take the events it left.
            self._schedule()
        high_water = ctx.write_low_water if not self._reading else ctx.write_high_water
        # Nothing more can come after the peer's EOF; a level poller would report the
        # socket readable on every turn until the handler answers (a busy loop).
        want_read = (
            self._out_size <= high_water
            and not self._close_when_flushed
            and not self.conn.their_eof
        )
        if want_read != self._reading:
            self._reading = want_read
            if want_read and (self._read_ready or self.conn.buffered):
                self._schedule()
        if not self._edge:
            events = (EVENT_READ if self._reading else 0) | (EVENT_WRITE if self._out else 0)
            if events != self._events:
                self._events = events
                ctx.reactor.modify_handler(self.fd, events)
        # The deadline phase.
        if self._out:
            if self._phase != _WRITE:
                self._phase = _WRITE
                self._set_deadline(ctx.reactor.time() + ctx.write_timeout_s)
        elif self._buffering is not None or self._stream is not None or self._discarding:
            self._phase = _BODY
        elif self._exchange is not None:
            self._phase = _APP
        elif self.conn.buffered:
            if self._phase != _HEAD:
                self._phase = _HEAD
                self._head_started = ctx.reactor.time()
                self._set_deadline(self._head_started + ctx.header_timeout_s)
        elif self._phase != _IDLE:
            self._phase = _IDLE
            self._set_deadline(ctx.reactor.time() + ctx.idle_timeout_s)

    def _set_deadline(self, deadline: float) -> None:
        self._deadline = deadline
        if deadline < self._timer_at:
            self._timer.cancel()
            self._timer = self.ctx.reactor.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    # ------------------------------------------------------------------- deadlines

    def _on_timer(self) -> None:
        if self.closed:
            return
        ctx = self.ctx
        phase = self._phase
        deadline = self._deadline
        if phase == _APP:
            deadline = ctx.reactor.time() + ctx.idle_timeout_s  # look again later
            self._deadline = deadline
        now = ctx.reactor.time()
        if now < deadline:
            self._timer = ctx.reactor.call_at(deadline, self._on_timer)
            self._timer_at = deadline
            return
        if phase in (_IDLE, _LINGER):
            self.close()
        elif phase == _WRITE:
            log.info(
                "closing %s: no write progress for %.1f s",
                _format_client(self.client),
                ctx.write_timeout_s,
            )
            self.close()
        else:
            log.info(
                "closing %s: request %s timed out", _format_client(self.client), _PHASE_NAMES[phase]
            )
            # 408 whenever nothing was answered yet, even while a streaming handler
            # holds the exchange: the client learns why, the handler's answer is moot.
            if not self.conn.response_started:
                self._queue(
                    error_response(
                        408, f"request {_PHASE_NAMES[phase]} timed out", ctx.defaults.date
                    )
                )
            if self._exchange is not None:
                # A streaming handler still holds it: its late answer is dropped quietly.
                self._exchange.finished = True
                self._exchange = None
            self._stream = None
            self._close_when_flushed = True
            self._linger_when_closing = True
            self._run()
            if not self.closed:
                # The timer that called us is spent, and _set_deadline only ever moves a
                # pending timer earlier, so the turn above armed nothing: arm the deadline
                # it chose (the linger time, or the write stall if the 408 is stuck).
                self._timer = ctx.reactor.call_at(self._deadline, self._on_timer)
                self._timer_at = self._deadline

    # --------------------------------------------------------------------- closing

    def _close_or_linger(self) -> None:
        if not self._linger_when_closing:
            self.close()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self._phase = _LINGER
        self._reading = True
        ctx = self.ctx
        if not self._edge and self._events != EVENT_READ:
            self._events = EVENT_READ
            ctx.reactor.modify_handler(self.fd, EVENT_READ)
        self._deadline = ctx.reactor.time() + _LINGER_S
        self._set_deadline(self._deadline)
        self._linger_read()

    def _abort(self) -> None:
        """The peer reset or vanished: drop everything, quietly."""
        if self._exchange is not None:
            self._exchange.finished = True
        self.close()

    def close(self) -> None:
        """Close the socket now and forget this connection. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._timer.cancel()
        self._out.clear()
        self._out_size = 0
        self._exchange = None
        if self._iterator is not None:
            _close_iterator(self._iterator)
            self._iterator = None
        self.ctx.reactor.remove_handler(self.fd)
        try:
            self.sock.close()
        except OSError:
            pass
        self.ctx.connection_closed(self)

    def _io_failed(self, what: str, error: OSError) -> None:
        """A recv or send failed: the peer is gone (quietly) or something odd (logged)."""
        quiet = isinstance(error, _DISCONNECT_ERRORS) or error.errno in _DISCONNECT_ERRNOS
        if not quiet:
            log.warning("%s failed for %s: %s", what, _format_client(self.client), error)
        self._abort()


def _close_iterator(iterator: object) -> None:
    close: Callable[[], object] | None = getattr(iterator, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("error closing a response body iterator")


def _format_client(client: tuple[str, int] | None) -> str:
    if not client:
        return "client"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
