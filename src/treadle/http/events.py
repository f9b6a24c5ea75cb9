"""What the HTTP core hands out and takes in.

Received: ``Request``, ``Data``, ``EndOfMessage``, ``ConnectionClosed``, or one of the
sentinels ``NEED_DATA`` (feed more bytes) and ``PAUSED`` (finish the response first).
Sent: ``InformationalResponse``, ``Response``, ``Data``, ``EndOfMessage``.

``Request`` is built once per request on the hottest path, so it is a plain slotted
class rather than a frozen dataclass (whose ``__init__`` goes through
``object.__setattr__`` for every field).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from .headers import EMPTY_HEADERS, Headers

HeaderPairs = Sequence[tuple[bytes | str, bytes | str]]


class Sentinel(enum.Enum):
    """Answers of ``next_event`` that are not events."""

    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA = Sentinel.NEED_DATA
PAUSED = Sentinel.PAUSED


class Request:
    """A parsed request head.

    ``target`` is the request-target as sent; ``path`` and ``query`` are its two halves
    (for absolute-form, of the path part). ``host`` is the Host field, or the authority
    of an absolute-form target, which replaces it (RFC 9112 3.2.2). ``http_version`` is
    ``b"1.0"`` or ``b"1.1"``: a higher HTTP/1.x minor is served as 1.1 (RFC 9110 6.2).
    """

    __slots__ = (
        "method",
        "target",
        "http_version",
        "headers",
        "path",
        "query",
        "host",
        "keep_alive",
        "expect_continue",
        "content_length",
        "chunked",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        http_version: bytes,
        headers: Headers,
        path: bytes,
        query: bytes,
        host: bytes | None,
        keep_alive: bool,
        expect_continue: bool = False,
        content_length: int | None = None,
        chunked: bool = False,
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.path = path
        self.query = query
        self.host = host
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.content_length = content_length
        self.chunked = chunked

    @property
    def has_body(self) -> bool:
        """Whether body bytes follow the head (chunked, or a non-zero length)."""
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return (
            f"Request(method={self.method!r}, target={self.target!r}, "
            f"http_version={self.http_version!r}, headers={list(self.headers)!r})"
        )


class Data:
    """A piece of a message body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({self.data[:40]!r}{'...' if len(self.data) > 40 else ''})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Data) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]


class EndOfMessage:
    """The end of a message body; ``trailers`` are chunked trailer fields, kept apart."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: Headers = EMPTY_HEADERS) -> None:
        self.trailers = trailers

    def __repr__(self) -> str:
        return f"EndOfMessage(trailers={list(self.trailers)!r})"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer ended its side cleanly, between requests."""


@dataclass(frozen=True, slots=True)
class Response:
    """A final response head to send. ``reason`` empty means the standard phrase."""

    status: int
    headers: HeaderPairs = field(default_factory=tuple)
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class InformationalResponse:
    """A 1xx interim response (``100 Continue``)."""

    status: int = 100
    headers: HeaderPairs = field(default_factory=tuple)
    reason: bytes = b""


END_OF_MESSAGE = EndOfMessage()
