"""The native handler API: plain callables that run on the event loop.

A handler takes a ``Request`` and returns a ``Response``::

    def hello(request: Request) -> Response:
        return Response(200, [("content-type", "text/plain")], b"Hello, world!")

It runs on the loop thread, so it must not block: no sleeping, no blocking I/O. The
body of a small request is in ``request.body`` (bytes). A body larger than
``body_buffer_bytes`` arrives while the handler waits: the handler is called with
``request.body`` None, calls ``request.stream.set_callbacks(on_data, on_end, on_abort)``,
returns None, and answers later with ``request.respond(response)``. ``on_abort`` is
called if the body will never end (the client went away, broke the framing, or timed
out); ``request.stream.pause()`` and ``resume()`` hold the body back while the handler
cannot take more.

A response body is bytes (sent with Content-Length) or an iterable of bytes or
``FileSegment`` items (sent chunked to HTTP/1.1 clients unless the handler set
Content-Length), pulled only as fast as the client reads; its ``close()``, if any, is
called once however the exchange ends. An exception in a handler or in any of its
callbacks is logged with its traceback and the client gets a 500 (or, when part of the
response was already sent, the connection is closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from ..http import Headers
from ..server.exchange import BodyPiece, BodyStream, Exchange
from ..server.output import FileSegment

log = logging.getLogger("treadle.app")

FieldPairs = Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]] | Mapping[str, str]


class HeaderView:
    """Request header fields as text: case-insensitive names, several values each."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Headers) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        value = self._fields.get(name)
        return default if value is None else value.decode("latin-1")

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in the order received."""
        return [value.decode("latin-1") for value in self._fields.get_all(name)]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._fields.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for name, value in self._fields:
            yield name.decode("latin-1"), value.decode("latin-1")

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"HeaderView({list(self)!r})"


class Request:
    """What a native handler receives. Text fields are decoded on first use."""

    __slots__ = ("_exchange", "_headers")

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self._headers: HeaderView | None = None

    @property
    def method(self) -> str:
        return self._exchange.request.method.decode("ascii")

    @property
    def target(self) -> str:
        """The request-target exactly as sent."""
        return self._exchange.request.target.decode("latin-1")

    @property
    def raw_path(self) -> bytes:
        """The path as sent, still percent-encoded."""
        return self._exchange.request.path

    @property
    def path(self) -> str:
        """The path, percent-decoded as UTF-8 (undecodable bytes become U+FFFD)."""
        return unquote_to_bytes(self._exchange.request.path).decode("utf-8", "replace")

    @property
    def query(self) -> str:
        """The query string as sent (after ``?``, without it)."""
        return self._exchange.request.query.decode("latin-1")

    @property
    def http_version(self) -> str:
        return self._exchange.request.http_version.decode("ascii")

    @property
    def headers(self) -> HeaderView:
        if self._headers is None:
            self._headers = HeaderView(self._exchange.request.headers)
        return self._headers

    @property
    def client(self) -> tuple[str, int] | None:
        """The peer's ``(host, port)``."""
        return self._exchange.client

    @property
    def body(self) -> bytes | None:
        """The whole body (``b""`` when there is none), or None when it is streamed."""
        return self._exchange.body

    @property
    def stream(self) -> BodyStream | None:
        """The body as it arrives, when it was too large to buffer."""
        return self._exchange.stream

    def respond(self, response: Response) -> None:
        """Answer later, for a handler that returned None."""
        _send(self._exchange, response)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"


class Response:
    """What a native handler returns."""

    __slots__ = ("status", "headers", "body")

    def __init__(
        self,
        status: int = 200,
        headers: FieldPairs = (),
        body: bytes | Iterable[BodyPiece] | FileSegment = b"",
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


Handler = Callable[[Request], "Response | None"]


def _send(exchange: Exchange, response: Response) -> None:
    if type(response) is Response and type(response.body) is bytes:
        fields = response.headers
        if type(fields) is list:  # the common case, straight through
            exchange.responder.respond(exchange, response.status, fields, response.body)
            return
    if not isinstance(response, Response):
        raise TypeError(f"a handler must return a Response or None, not {type(response).__name__}")
    fields = response.headers
    headers: list[Any]
    if isinstance(fields, list):
        headers = fields
    elif isinstance(fields, Mapping):
        headers = list(fields.items())
    else:
        headers = list(fields)
    body = response.body
    if isinstance(body, bytes):
        exchange.respond(response.status, headers, body)
    elif isinstance(body, (bytearray, memoryview)):
        exchange.respond(response.status, headers, bytes(body))
    elif isinstance(body, str):
        raise TypeError("a response body must be bytes or an iterable of bytes, not str")
    elif isinstance(body, FileSegment):
        exchange.respond_iterable(response.status, headers, (body,))
    else:
        exchange.respond_iterable(response.status, headers, body)


class NativeApplication:
    """Adapts a native handler to the server's ``Application`` interface."""

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    def __call__(self, exchange: Exchange) -> None:
        response = self.handler(Request(exchange))
        if response is not None:
            _send(exchange, response)
