"""The connection driver: moves bytes between a transport and a session, arms one timer.

Theory of operation. Each accepted socket gets one ``ConnectionDriver``, registered with
the reactor as its I/O handler; the policy lives in its ``Session`` (``session.py``)
and the socket behind a ``Transport`` (``transport.py``). A turn (``_run``) is:

    session.process()      take requests out of the received bytes, call the app
    out.write_to(...)      send what the answers queued, until EAGAIN
    session.produce()      below the low-water mark: let a producer (an iterable, a
                           drain callback) add more, and send again (bounded)
    _settle()              close if done; set poller interest; arm the phase deadline

Reading drains the transport before the turn, until a short read (fewer bytes than
asked: the buffer was empty), EAGAIN, the end of input or this turn's byte budget, so a
burst of pipelined requests is parsed, answered and sent with one ``send``; see
``_read`` for why a short read is a safe stop in edge mode too.

Level and edge pollers differ only in registration. With a level poller we ask for
write readiness only while output is pending and drop read interest while not
reading; the edge poller is registered once for everything and the driver keeps
readiness in user space (``_read_ready``, ``_write_ready``): if it stopped reading
with bytes left (budget spent, or backpressure), nothing will tell it again, so it
schedules itself with ``call_soon``.

Flow control: when unsent output passes ``write_high_water`` the driver stops reading
(and the session stops taking requests); once it is below ``write_low_water`` it reads
again. A client that never reads therefore costs at most about the high-water mark
(file segments cost no memory at all). Fairness: at most ``requests_per_turn``
requests and ``read_bytes_per_turn`` bytes per connection and loop turn.

Deadlines: one timer per connection, re-armed lazily. The session says which phase
applies; entering a phase sets ``_deadline`` (a float write, no heap work per request),
and progress in it (a body byte read, a byte written) moves it on. When the timer
fires early because the deadline moved later, it re-arms itself.

What the driver uses of the reactor is a subset of asyncio's loop API in spirit
(``call_soon``, ``call_at`` with ``cancel``, ``time``, reader/writer registration), so a
driver of the same shape can run the same session on an asyncio loop.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING

from ..poll import EVENT_READ, EVENT_WRITE
from .context import LINGER_S
from .output import FileShrankError
from .session import Session
from .states import APP, BODY, IDLE, LINGER, WRITE, Ending, format_client
from .transport import SocketTransport, Transport

if TYPE_CHECKING:
    from .context import ServerContext

__all__ = ["LINGER_S", "ConnectionDriver"]

log = logging.getLogger("treadle.server")

# 64 KiB: a larger recv() allocates its bytes object above glibc's mmap threshold,
# and the mmap/munmap on every read cost more than the read (measured by bench/).
_RECV_SIZE = 64 * 1024
# Bound on produce-and-send rounds in one turn: a fast client of a streamed body
# must still let other connections have the loop.
_PRODUCE_ROUNDS = 4

_DISCONNECT_ERRORS = (ConnectionError, TimeoutError)
_DISCONNECT_ERRNOS = (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT)


class ConnectionDriver:
    """Drives one client connection; see the module docstring."""

    __slots__ = (
        "ctx",
        "transport",
        "fd",
        "session",
        "out",
        "closed",
        "_edge",
        "_events",
        "_reading",
        "_read_ready",
        "_hangup",
        "_write_ready",
        "_scheduled",
        "_phase",
        "_requests_seen",
        "_deadline",
        "_timer",
        "_timer_at",
        "__weakref__",
    )

    def __init__(
        self,
        ctx: ServerContext,
        sock: socket.socket,
        client: tuple[str, int] | None,
        transport: Transport | None = None,
    ) -> None:
        self.ctx = ctx
        self.transport: Transport = transport if transport is not None else SocketTransport(sock)
        self.fd = self.transport.fd
        self.session = session = Session(ctx, client)
        self.out = session.out
        self.closed = False
        self._edge = ctx.edge_triggered
        self._events = EVENT_READ
        self._reading = True  # read interest (level) / willingness to read (edge)
        self._read_ready = False  # edge: the transport may hold unread bytes
        self._hangup = False  # the poller said the peer shut down: read on to the end
        self._write_ready = True  # edge: the last send did not hit EAGAIN
        self._scheduled = False  # a call_soon(_resume) is pending
        self._phase = IDLE
        self._requests_seen = 0  # session.requests at the last settle
        # Registered first: a full poller (PollerFullError) leaves nothing behind.
        ctx.reactor.add_handler(
            self.fd, self, EVENT_READ | EVENT_WRITE if self._edge else EVENT_READ
        )
        session.kick = self._run
        self._deadline = ctx.reactor.time() + ctx.idle_timeout_s
        self._timer = ctx.reactor.call_at(self._deadline, self._on_timer)
        self._timer_at = self._deadline

    @property
    def client(self) -> tuple[str, int] | None:
        return self.session.client

    # ------------------------------------------------------------------ reactor side

    def handle_read(self) -> None:
        if self.closed:
            return
        if self._phase == LINGER:
            self._linger_read()
            return
        if not self._reading:
            self._read_ready = True  # edge poller: remember it for when we resume
            return
        self._read()
        self._run()

    def handle_hangup(self) -> None:
        """The end of input is queued (maybe behind data): a short read no longer
        means that everything was read."""
        self._hangup = True

    def handle_write(self) -> None:
        if self.closed:
            return
        self._write_ready = True
        if self.out.items:
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
        """Receive until a short read, EAGAIN, the end of input or this turn's budget.

        A short read (fewer bytes than asked) means the kernel's buffer was empty at
        that instant, so the ``recv`` that would only raise EAGAIN is not made. Level
        pollers report the socket again if more came; the edge poller raises a new
        edge on every arrival of data; a FIN queued behind the data raises no new edge,
        which is why the poller's hang-up report (``handle_hangup``) makes this read on
        to the end. A transport holding decrypted bytes (``pending``) is read on too.
        """
        feed = self.session.conn.receive_data
        transport = self.transport
        recv = transport.recv
        budget = self.ctx.read_bytes_per_turn
        got_data = False
        while True:
            # Never more than the budget left: one recv must not overshoot it.
            size = budget if budget < _RECV_SIZE else _RECV_SIZE
            try:
                data = recv(size)
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
                feed(b"")
                break
            got_data = True
            feed(data)
            received = len(data)
            if received < size and not self._hangup and not transport.pending:
                self._read_ready = False  # a short read: nothing more was there
                break
            budget -= received
            if budget <= 0:
                # Fairness: leave the rest for the next turn. Nothing will report it
                # again to an edge poller, so remember it ourselves.
                self._read_ready = True
                self._schedule()
                break
        if got_data and self._phase == BODY:
            self._set_deadline(self.ctx.reactor.time() + self.ctx.body_timeout_s)

    def _linger_read(self) -> None:
        recv = self.transport.recv
        while True:
            try:
                data = recv(_RECV_SIZE)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except OSError:
                self.close(Ending.CLIENT_GONE)
                return
            if not data:
                self.close(Ending.COMPLETE)
                return

    # ------------------------------------------------------------------------ turn

    def _run(self) -> None:
        """One turn of work: process requests, flush, produce, settle.

        The one place that sequences a connection's work; re-entry from application
        code called inside it is turned into a no-op by ``session.in_turn``.
        """
        session = self.session
        if session.in_turn or self.closed:
            return
        session.in_turn = True
        try:
            out = self.out
            low_water = self.ctx.write_low_water
            if session.process():
                self._schedule()  # the request budget is spent: the rest next turn
            for _ in range(_PRODUCE_ROUNDS):
                if self.closed:
                    return
                if out.items and self._write_ready:
                    self._flush()
                    if self.closed:
                        return
                if not session.producing or out.size > low_water:
                    break
                session.produce()
            if not self.closed:
                self._settle()
        finally:
            session.in_turn = False

    def _flush(self) -> None:
        """Send queued output until it is gone or the transport says EAGAIN."""
        items = self.out.items
        if len(items) == 1 and type(items[0]) is bytes:
            # The common case, one response's bytes (or a pipelined burst's, already
            # joined): one send, and the general path only for what it left.
            data: bytes = items[0]
            try:
                sent = self.transport.send(data)
            except BlockingIOError:
                self._write_ready = False
                return
            except OSError as error:
                self._io_failed("send", error)
                return
            if sent == len(data):
                items.clear()
                self.out.size = 0
                if self._phase == WRITE:
                    self._deadline = self.ctx.reactor.time() + self.ctx.write_timeout_s
                return
            items[0] = data[sent:]
            self.out.size -= sent
            if sent and self._phase == WRITE:
                self._deadline = self.ctx.reactor.time() + self.ctx.write_timeout_s
        try:
            sent, blocked = self.out.write_to(self.transport)
        except FileShrankError as error:
            log.warning("closing %s: %s", format_client(self.client), error)
            self.close(Ending.APP_FAILED)
            return
        except OSError as error:
            self._io_failed("send", error)
            return
        if blocked:
            self._write_ready = False
        if sent and self._phase == WRITE:
            self._deadline = self.ctx.reactor.time() + self.ctx.write_timeout_s

    def _settle(self) -> None:
        """End of a turn: close if done, set poller interest and the deadline phase."""
        ctx = self.ctx
        session = self.session
        out = self.out
        if session.close_when_flushed and session.finished:
            self._close_or_linger()
            return
        if session.producing and (not out.items or self._write_ready):
            # More to produce, and nothing to wait for: either no output is pending, or
            # the turn stopped producing without a flush hitting EAGAIN, so an edge
            # poller will not report the socket writable again.
            self._schedule()
        if session.held_back and out.size <= ctx.write_high_water:
            # process() stopped for a reason that has since cleared (output sent, a
            # body resumed): nothing else (no input, no write readiness) would resume it.
            self._schedule()
        water = ctx.write_low_water if not self._reading else ctx.write_high_water
        # Nothing more can come after the peer's EOF; a level poller would report the
        # socket readable on every turn until the handler answers (a busy loop).
        want_read = (out.size <= water or session.streaming_body) and session.accepts_input
        if want_read != self._reading:
            self._reading = want_read
            if want_read and (self._read_ready or session.conn.buffered):
                self._schedule()
        if not self._edge:
            events = (EVENT_READ if self._reading else 0) | (EVENT_WRITE if out.items else 0)
            if events != self._events:
                self._events = events
                ctx.reactor.modify_handler(self.fd, events)
        # A phase entered anew (or the same phase of a new request: keep-alive idle
        # after an answer) starts its deadline from now.
        phase = session.phase
        if phase != self._phase or session.requests != self._requests_seen:
            self._phase = phase
            self._requests_seen = session.requests
            if phase != APP:
                # _set_deadline, inlined: it runs once per request
                deadline = ctx.reactor.time() + ctx.phase_timeouts[phase]
                self._deadline = deadline
                if deadline < self._timer_at:
                    self._timer.cancel()
                    self._timer = ctx.reactor.call_at(deadline, self._on_timer)
                    self._timer_at = deadline

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
        reactor = self.ctx.reactor
        phase = self._phase
        now = reactor.time()
        if phase == APP:
            self._deadline = now + self.ctx.idle_timeout_s  # look again later
        if now < self._deadline:
            self._timer = reactor.call_at(self._deadline, self._on_timer)
            self._timer_at = self._deadline
            return
        if phase == LINGER or self.session.deadline_expired(phase):
            self.close(Ending.COMPLETE if phase in (IDLE, LINGER) else Ending.DEADLINE)
            return
        self._run()
        if not self.closed:
            # The timer that called us is spent, and _set_deadline only ever moves a
            # pending timer earlier, so the turn above armed nothing: arm the deadline
            # it chose (the linger time, or the write stall if the 408 is stuck).
            self._timer = reactor.call_at(self._deadline, self._on_timer)
            self._timer_at = self._deadline

    # --------------------------------------------------------------------- closing

    def _close_or_linger(self) -> None:
        if not self.session.linger:
            self.close(Ending.COMPLETE)
            return
        try:
            self.transport.shutdown_write()
        except OSError:
            self.close(Ending.CLIENT_GONE)
            return
        self._phase = LINGER
        self._reading = True
        ctx = self.ctx
        if not self._edge and self._events != EVENT_READ:
            self._events = EVENT_READ
            ctx.reactor.modify_handler(self.fd, EVENT_READ)
        self._set_deadline(ctx.reactor.time() + LINGER_S)
        self._linger_read()

    def close(self, ending: Ending = Ending.SHUTDOWN) -> None:
        """Close the connection now and forget it. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._timer.cancel()
        self.session.close(ending)
        self.ctx.reactor.remove_handler(self.fd)
        self.transport.close()
        self.ctx.connection_closed(self)

    def _io_failed(self, what: str, error: OSError) -> None:
        """A recv or send failed: the peer is gone (quietly) or something odd (logged)."""
        if not isinstance(error, _DISCONNECT_ERRORS) and error.errno not in _DISCONNECT_ERRNOS:
            log.warning("%s failed for %s: %s", what, format_client(self.client), error)
        self.close(Ending.CLIENT_GONE)
