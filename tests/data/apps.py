"""Native handlers that the functional tests serve (``tests.data.apps:app``).

One handler routes on the first path segment, so one server process answers every
kind of request a test module needs:

``/`` or ``/hello``
    200 text/plain ``Hello, world!``.
``/mark/TOKEN``
    200 with body ``TOKEN`` (pipelining tests check that answers come back in order).
``/echo``
    200 application/json describing the request: method, target, path, query, version,
    headers, client, body (latin-1 text) and whether the body was streamed. Bodies
    larger than ``--body-buffer-bytes`` are collected through ``request.stream`` and
    answered later with ``request.respond``.
``/digest``
    200 text/plain ``LENGTH SHA256`` of the request body, whole or streamed; for bodies
    too large to echo.
``/big?size=N``
    N bytes of ``PATTERN`` as one bytes body (Content-Length).
``/stream?pieces=N&size=M``
    N pieces of M bytes of ``PATTERN`` from a generator (chunked to HTTP/1.1).
``/error``
    raises ``RuntimeError(ERROR_MARKER)`` before answering.
``/error-in-body``
    a generator body that yields one piece, then raises ``RuntimeError(ERROR_MARKER)``.

Anything else is a 404.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs

from treadle.apps.native import Request, Response

#: in the exception the failing handlers raise; must reach the log, never the client
ERROR_MARKER = "deliberate failure in a test handler"
#: what large bodies are made of, so a cut or a shift shows in a comparison
PATTERN = b"0123456789abcdef"

_TEXT = [("content-type", "text/plain")]


def pattern_bytes(size: int) -> bytes:
    """``size`` bytes of ``PATTERN`` repeated."""
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def _int_param(request: Request, name: str, default: int) -> int:
    values = parse_qs(request.query).get(name)
    return int(values[0]) if values else default


def hello(request: Request) -> Response:
    return Response(200, _TEXT, b"Hello, world!")


def mark(request: Request) -> Response:
    token = request.path.split("/", 2)[2] if request.path.count("/") >= 2 else ""
    return Response(200, _TEXT + [("x-marker", token)], token.encode())


def _describe(request: Request, body: bytes, streamed: bool) -> Response:
    document = {
        "method": request.method,
        "target": request.target,
        "path": request.path,
        "query": request.query,
        "http_version": request.http_version,
        "headers": [[name, value] for name, value in request.headers],
        "client": list(request.client) if request.client else None,
        "body": body.decode("latin-1"),
        "streamed": streamed,
    }
    return Response(200, [("content-type", "application/json")], json.dumps(document).encode())


def _collect(request: Request, answer: Callable[[bytes, bool], Response]) -> Response | None:
    """Answer with ``answer(body, streamed)``, now or once a streamed body has ended."""
    if request.body is not None:
        return answer(request.body, False)
    stream = request.stream
    assert stream is not None
    pieces: list[bytes] = []

    def on_end() -> None:
        request.respond(answer(b"".join(pieces), True))

    stream.set_callbacks(pieces.append, on_end)
    return None


def echo(request: Request) -> Response | None:
    return _collect(request, lambda body, streamed: _describe(request, body, streamed))


def digest(request: Request) -> Response | None:
    def answer(body: bytes, streamed: bool) -> Response:
        text = f"{len(body)} {hashlib.sha256(body).hexdigest()}"
        return Response(200, _TEXT + [("x-streamed", str(streamed).lower())], text.encode())

    return _collect(request, answer)


def big(request: Request) -> Response:
    size = _int_param(request, "size", 1024 * 1024)
    return Response(200, [("content-type", "application/octet-stream")], pattern_bytes(size))


def stream(request: Request) -> Response:
    pieces = _int_param(request, "pieces", 4)
    size = _int_param(request, "size", 1024)

    def generate() -> Iterator[bytes]:
        # The same bytes as /big?size=pieces*size, cut into pieces.
        whole = pattern_bytes(pieces * size)
        for index in range(pieces):
            yield whole[index * size : (index + 1) * size]

    return Response(200, [("content-type", "application/octet-stream")], generate())


def error(request: Request) -> Response:
    raise RuntimeError(ERROR_MARKER)


def error_in_body(request: Request) -> Response:
    def generate() -> Iterator[bytes]:
        yield b"first piece\n"
        raise RuntimeError(ERROR_MARKER)

    return Response(200, _TEXT, generate())


def not_found(request: Request) -> Response:
    return Response(404, _TEXT, b"no such test route\n")


ROUTES: dict[str, Callable[[Request], Response | None]] = {
    "": hello,
    "hello": hello,
    "mark": mark,
    "echo": echo,
    "digest": digest,
    "big": big,
    "stream": stream,
    "error": error,
    "error-in-body": error_in_body,
}


def app(request: Request) -> Response | None:
    """Route on the first path segment; see the module docstring."""
    first = request.path.split("/", 2)[1] if request.path.startswith("/") else ""
    return ROUTES.get(first, not_found)(request)
