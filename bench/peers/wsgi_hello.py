"""The WSGI peer's hello handler, served by granian in the benchmark.

It answers every request as treadle's hello handler does: 200, text/plain,
``Hello, world!``, with an explicit Content-Length so that no side chunks. The
header list and body are built once: the handler's own cost is a call and a return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b"Hello, world!"
STATUS = "200 OK"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
RESPONSE = [BODY]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response(STATUS, HEADERS)
    return RESPONSE
