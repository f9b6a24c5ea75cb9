"""The one small interface between the connection driver and what answers requests.

An application adapter (native handlers today; WSGI and static files later) is a
callable that receives an ``Exchange``: one request, its body (whole or streamed), and
the methods to answer it. The driver implements the methods; adapters never see the
socket, the poller or the protocol state, so every adapter gets backpressure, framing
and deadlines from the same place.

Everything here runs on the loop thread. Work done elsewhere (a WSGI worker thread)
comes back through ``Reactor.call_soon_threadsafe`` before it touches an exchange.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from ..http import Request

if TYPE_CHECKING:
    from .driver import ConnectionDriver

HeaderList = list[tuple[str, str]] | list[tuple[bytes, bytes]]


class Application(Protocol):
    """What the server calls for each request, once its head (or whole body) is in."""

    def __call__(self, exchange: Exchange) -> None: ...


class BodyStream:
    """A request body that arrives in pieces after the handler was called.

    ``on_data`` receives each piece (pieces that arrived before it was set are replayed
    at once); ``on_end`` is called once the body is complete.
    """

    __slots__ = ("_pending", "_ended", "_on_data", "_on_end")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._ended = False
        self._on_data: Callable[[bytes], object] | None = None
        self._on_end: Callable[[], object] | None = None

    def set_callbacks(
        self, on_data: Callable[[bytes], object], on_end: Callable[[], object]
    ) -> None:
        self._on_data, self._on_end = on_data, on_end
        pending, self._pending = self._pending, []
        for piece in pending:
            on_data(piece)
        if self._ended:
            on_end()

    def feed(self, data: bytes) -> None:
        if self._on_data is None:
            self._pending.append(data)
        else:
            self._on_data(data)

    def end(self) -> None:
        self._ended = True
        if self._on_end is not None:
            self._on_end()


class Exchange:
    """One request and the means to answer it.

    ``body`` is the whole request body as bytes when it was small enough to buffer
    (``body_buffer_bytes``), else None and the body comes through ``stream``.
    Answer with ``respond`` (a whole body), ``respond_iterable`` (pieces, pulled as the
    client reads), or ``start``/``write``/``end``.
    """

    __slots__ = ("driver", "request", "client", "body", "stream", "finished")

    def __init__(
        self,
        driver: ConnectionDriver,
        request: Request,
        client: tuple[str, int] | None,
        body: bytes | None,
        stream: BodyStream | None,
    ) -> None:
        self.driver = driver
        self.request = request
        self.client = client
        self.body = body
        self.stream = stream
        self.finished = False

    def respond(self, status: int, headers: HeaderList, body: bytes = b"") -> None:
        """Send a whole response; the head and body leave in one system call if they fit."""
        self.driver.respond(self, status, headers, body)

    def respond_iterable(self, status: int, headers: HeaderList, body: Iterable[bytes]) -> None:
        """Send a response whose body is pulled from ``body`` as the client keeps up."""
        self.driver.respond_iterable(self, status, headers, body)

    def start(self, status: int, headers: HeaderList) -> None:
        """Send the head; the body follows with ``write`` and ``end``."""
        self.driver.start_response(self, status, headers)

    def write(self, data: bytes) -> None:
        self.driver.write_body(self, data)

    def end(self) -> None:
        self.driver.end_response(self)

    @property
    def closed(self) -> bool:
        """True once the connection is gone: writes are then silently dropped."""
        return self.driver.closed
