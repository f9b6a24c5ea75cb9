"""Small native handlers for the README, the tests and the benchmarks."""

from __future__ import annotations

from .apps.native import Request, Response

_HELLO_HEADERS = [(b"content-type", b"text/plain")]


def hello(request: Request) -> Response:
    """200, text/plain, ``Hello, world!`` — whatever was asked."""
    return Response(200, _HELLO_HEADERS, b"Hello, world!")
