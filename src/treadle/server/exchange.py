"""The one small interface between the server and what answers requests.

An application adapter (native handlers, static files; WSGI later) is a callable that
receives an ``Exchange``: one request, its body (whole or streamed), and the means to
answer it. The exchange forwards every answer to a ``Responder``, the protocol that
the session (``session.py``) implements; adapters never see the socket, the poller,
the protocol state or the concrete session, so every adapter gets framing,
backpressure, deadlines and one teardown from the same place, and a later asyncio
driver can serve the same adapters through the same session.

Flow control both ways:

- out: ``Exchange.writable`` says whether the output is below the high-water mark, and
  ``on_drain(callback)`` asks to be called once it has fallen to the low-water mark,
  for producers that write at their own pace (a thread, an upload echo);
- in: ``BodyStream.pause()`` stops reading the request body (the client's window fills
  and it waits), ``resume()`` goes on; ``on_abort`` tells the handler that the body will
  never end (the client went away, broke the framing, or ran out of time).

Everything here runs on the loop thread. Work done elsewhere (a WSGI worker thread)
comes back through the loop's ``call_soon_threadsafe`` before it touches an exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..http import PreparedFields, Request
from .output import FileSegment

HeaderList = list[tuple[str, str]] | list[tuple[bytes, bytes]]
#: what ``respond`` takes: a list, or fields prepared once (``treadle.http.PreparedFields``)
ResponseFields = HeaderList | PreparedFields
#: a piece of a response body: bytes, or a range of a file sent without reading it
BodyPiece = bytes | FileSegment


class Application(Protocol):
    """What the server calls for each request, once its head (or whole body) is in."""

    def __call__(self, exchange: Exchange) -> None: ...


class Responder(Protocol):
    """How an exchange is answered; implemented by the session.

    Each method takes the exchange it answers: an exchange that is no longer current
    (answered, failed, or its connection gone) is ignored when it ended on its own, and
    a RuntimeError when it was never current (a bug in the caller).
    """

    @property
    def closed(self) -> bool: ...

    def respond(
        self, exchange: Exchange, status: int, headers: ResponseFields, body: bytes
    ) -> None: ...

    def respond_iterable(
        self, exchange: Exchange, status: int, headers: HeaderList, body: Iterable[BodyPiece]
    ) -> None: ...

    def start_response(self, exchange: Exchange, status: int, headers: HeaderList) -> None: ...

    def write_body(self, exchange: Exchange, piece: BodyPiece) -> None: ...

    def end_response(self, exchange: Exchange) -> None: ...

    def writable(self, exchange: Exchange) -> bool: ...

    def on_drain(self, exchange: Exchange, callback: Callable[[], object]) -> None: ...

    def call_app(self, callback: Callable[..., object], *args: object) -> bool: ...

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on the loop thread soon; the one call that other
        threads (a WSGI worker) may make. Raises RuntimeError once the loop is closed."""
        ...

    def pause_body(self, exchange: Exchange) -> None: ...

    def resume_body(self, exchange: Exchange) -> None: ...


class BodyStream:
    """A request body that arrives in pieces after the handler was called.

    ``on_data`` receives each piece (pieces that arrived before it was set are replayed
    at once, unless paused); ``on_end`` is called once the body is complete;
    ``on_abort`` once if it never will be. Exactly one of ``on_end`` and ``on_abort``
    is called, unless the handler answered first (then neither: it is done with the
    body, which the server reads and drops). Every callback runs under the session's
    guard: an exception is logged and answered with a 500 (or a close).
    """

    __slots__ = (
        "_exchange",
        "_pending",
        "_ended",
        "_aborted",
        "_done",
        "_paused",
        "_on_data",
        "_on_end",
        "_on_abort",
    )

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._pending: list[bytes] = []
        self._ended = False
        self._aborted = False
        self._done = False  # on_end or on_abort has been called
        self._paused = False
        self._on_data: Callable[[bytes], object] | None = None
        self._on_end: Callable[[], object] | None = None
        self._on_abort: Callable[[], object] | None = None

    # -- the handler's side ------------------------------------------------------------

    def set_callbacks(
        self,
        on_data: Callable[[bytes], object],
        on_end: Callable[[], object],
        on_abort: Callable[[], object] | None = None,
    ) -> None:
        self._on_data, self._on_end, self._on_abort = on_data, on_end, on_abort
        if self._aborted:
            self._call_abort()
            return
        self._deliver_pending()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop reading the body until ``resume``; pieces already read wait too."""
        if not self._paused:
            self._paused = True
            self._exchange.responder.pause_body(self._exchange)

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._deliver_pending()
            if not self._paused:
                self._exchange.responder.resume_body(self._exchange)

    # -- the session's side ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._on_data is None or self._paused or self._pending:
            self._pending.append(data)
        else:
            self._exchange.responder.call_app(self._on_data, data)

    def end(self) -> None:
        self._ended = True
        if self._on_data is not None and not self._pending:
            self._call_end()

    def abort(self) -> None:
        """The body will never end. Calls ``on_abort`` once (now, or when it is set)."""
        if self._aborted or self._done:
            return
        self._aborted = True
        self._pending.clear()
        if self._on_data is not None:
            self._call_abort()

    def _deliver_pending(self) -> None:
        on_data = self._on_data
        if on_data is None:
            return
        call = self._exchange.responder.call_app
        while self._pending and not self._paused and not self._aborted:
            if not call(on_data, self._pending.pop(0)):
                return
        if self._ended and not self._pending and not self._aborted:
            self._call_end()

    def _call_end(self) -> None:
        if self._done:
            return
        self._done = True
        on_end, self._on_end = self._on_end, None
        self._on_abort = None
        if on_end is not None:
            self._exchange.responder.call_app(on_end)

    def _call_abort(self) -> None:
        if self._done:
            return
        self._done = True
        on_abort, self._on_abort = self._on_abort, None
        self._on_end = None
        if on_abort is not None:
            self._exchange.responder.call_app(on_abort)


class Exchange:
    """One request and the means to answer it.

    ``body`` is the whole request body as bytes when it was small enough to buffer
    (``body_buffer_bytes``), else None and the body comes through ``stream``.
    Answer with ``respond`` (a whole body), ``respond_iterable`` (pieces, pulled as the
    client reads), or ``start``/``write``/``end``. A piece may be a ``FileSegment``:
    the file's bytes go out with ``sendfile`` where the transport can.
    """

    __slots__ = (
        "responder",
        "request",
        "client",
        "body",
        "stream",
        "finished",
        "ending",
        "_on_finish",
    )

    def __init__(
        self,
        responder: Responder,
        request: Request,
        client: tuple[str, int] | None,
        body: bytes | None,
    ) -> None:
        self.responder = responder
        self.request = request
        self.client = client
        self.body = body
        self.stream: BodyStream | None = None if body is not None else BodyStream(self)
        #: set by the session once the exchange ended, whichever way
        self.finished = False
        #: how it ended (a ``session.Ending``), once finished
        self.ending: object = None
        self._on_finish: list[Callable[[object], object]] | None = None

    def respond(self, status: int, headers: ResponseFields, body: bytes = b"") -> None:
        """Send a whole response; the head and body leave in one system call if they fit."""
        self.responder.respond(self, status, headers, body)

    def respond_iterable(self, status: int, headers: HeaderList, body: Iterable[BodyPiece]) -> None:
        """Send a response whose body is pulled from ``body`` as the client keeps up;
        ``body.close()``, if it has one, is called exactly once however the exchange ends."""
        self.responder.respond_iterable(self, status, headers, body)

    def start(self, status: int, headers: HeaderList) -> None:
        """Send the head; the body follows with ``write`` and ``end``."""
        self.responder.start_response(self, status, headers)

    def write(self, piece: BodyPiece) -> None:
        """Queue a piece of the body. Check ``writable`` (or use ``on_drain``) to keep
        the output bounded: ``write`` itself never refuses."""
        self.responder.write_body(self, piece)

    def end(self) -> None:
        self.responder.end_response(self)

    @property
    def writable(self) -> bool:
        """True while unsent output is below the high-water mark."""
        return self.responder.writable(self)

    def on_drain(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once, when unsent output has fallen to the low-water mark
        (soon, if it already has). Dropped if the exchange ends first."""
        self.responder.on_drain(self, callback)

    @property
    def closed(self) -> bool:
        """True once the connection is gone: answers are then silently dropped."""
        return self.responder.closed

    def on_finish(self, callback: Callable[[object], object]) -> None:
        """Call ``callback(ending)`` once when the exchange ends, however it ends
        (``ending`` is a ``session.Ending``); at once if it has ended already. For
        adapters that must learn that their client went away (a worker thread waiting
        to write), and for logs and metrics. Loop thread only."""
        if self.finished:
            callback(self.ending)
        elif self._on_finish is None:
            self._on_finish = [callback]
        else:
            self._on_finish.append(callback)

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        """From any thread: run ``callback(*args)`` on the loop thread, where the
        exchange may be answered. Everything else here is for the loop thread only."""
        self.responder.call_soon_threadsafe(callback, *args)
