"""WSGI applications that tests/functional/test_wsgi.py serves (``tests.data.wsgi_apps:...``).

``validated`` is ``router`` inside ``wsgiref.validate.validator``, which asserts PEP 3333
on both sides (the environ and input the server gives, what the application returns and
that its iterable is closed); its own signature says ``(environ, start_response)``, so
``--interface auto`` finds it. ``linted`` is the validator's wrapper itself, whose
signature (``*args``) tells nothing: it needs ``--interface wsgi``. ``router`` is served
bare where the validator would hide a ``wsgi.file_wrapper`` behind its own iterator.
``create_app()`` is a factory (``tests.data.wsgi_apps:create_app()``).

Routes:

``/hello``                 200 ``Hello, WSGI!``
``/environ``               JSON of the environ's text values and a few ``wsgi.*`` flags
``/echo``                  JSON ``{"length", "sha256"}`` of the body, read with read(n)
``/lines``                 JSON list of the body's lines (readline)
``/stream?pieces=N&size=M`` N pieces of M bytes from a generator
``/write``                 the head and two pieces through write(), then a list
``/slow?token=T``          blocks until ``/release?token=T`` (10 s at most), then 200
``/state?token=T``         ``started`` once ``/slow?token=T`` runs, else ``waiting``
``/tracked?token=T``       an endless body whose ``close()`` records T
``/closed?token=T``        ``closed N`` with the number of close() calls seen for T
``/file?name=N``           ``wsgi.file_wrapper`` of the file tests/data/N
``/error-before``          raises before start_response
``/error-after``           yields a piece, then raises
``/bad-header``            a header value with CR LF in it
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.validate import validator

#: in the exceptions the failing routes raise; must reach the log, never the client
ERROR_MARKER = "deliberate failure in a WSGI test app"
HERE = os.path.dirname(os.path.abspath(__file__))
#: longest a /slow request waits for its release
SLOW_LIMIT_S = 10.0

_TEXT = [("Content-Type", "text/plain")]
_JSON = [("Content-Type", "application/json")]

_lock = threading.Lock()
_releases: dict[str, threading.Event] = {}
_started: set[str] = set()
_closes: dict[str, int] = {}


def _param(environ: dict[str, Any], name: str, default: str = "") -> str:
    values = parse_qs(environ.get("QUERY_STRING", "")).get(name)
    return values[0] if values else default


def _release_event(token: str) -> threading.Event:
    with _lock:
        return _releases.setdefault(token, threading.Event())


class _Tracked:
    """An endless body that records its close() under a token."""

    def __init__(self, token: str, size: int) -> None:
        self.token = token
        self.piece = b"t" * size

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield self.piece

    def close(self) -> None:
        with _lock:
            _closes[self.token] = _closes.get(self.token, 0) + 1


def router(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    stream = environ["wsgi.input"]
    if path == "/hello":
        start_response("200 OK", _TEXT)
        return [b"Hello, WSGI!"]
    if path == "/environ":
        document = {key: value for key, value in environ.items() if type(value) is str}
        for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.version"):
            document[key] = environ[key]
        start_response("200 OK", _JSON)
        return [json.dumps(document).encode()]
    if path == "/echo":
        digest = hashlib.sha256()
        length = 0
        while True:
            piece = stream.read(65536)
            if not piece:
                break
            digest.update(piece)
            length += len(piece)
        start_response("200 OK", _JSON)
        return [json.dumps({"length": length, "sha256": digest.hexdigest()}).encode()]
    if path == "/lines":
        lines = [line.decode("latin-1") for line in iter(stream.readline, b"")]
        start_response("200 OK", _JSON)
        return [json.dumps(lines).encode()]
    if path == "/stream":
        pieces = int(_param(environ, "pieces", "3"))
        size = int(_param(environ, "size", "10"))
        start_response("200 OK", _TEXT)
        return (b"%08d" % i + b"s" * (size - 8) for i in range(pieces))
    if path == "/write":
        write = start_response("200 OK", _TEXT)
        write(b"written one, ")
        write(b"written two, ")
        return [b"returned"]
    if path == "/slow":
        token = _param(environ, "token")
        with _lock:
            _started.add(token)
        released = _release_event(token).wait(SLOW_LIMIT_S)
        start_response("200 OK", _TEXT)
        return [b"released" if released else b"gave up"]
    if path == "/release":
        _release_event(_param(environ, "token")).set()
        start_response("200 OK", _TEXT)
        return [b"ok"]
    if path == "/state":
        with _lock:
            started = _param(environ, "token") in _started
        start_response("200 OK", _TEXT)
        return [b"started" if started else b"waiting"]
    if path == "/tracked":
        start_response("200 OK", _TEXT)
        return _Tracked(_param(environ, "token"), 65536)
    if path == "/closed":
        with _lock:
            count = _closes.get(_param(environ, "token"), 0)
        start_response("200 OK", _TEXT)
        return [b"closed %d" % count]
    if path == "/file":
        name = os.path.basename(_param(environ, "name"))
        handle = open(os.path.join(HERE, name), "rb")  # noqa: SIM115 (closed by close())
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle, 8192)  # type: ignore[no-any-return]
    if path == "/error-before":
        raise RuntimeError(ERROR_MARKER)
    if path == "/error-after":
        start_response("200 OK", _TEXT)
        return _fails_after_one_piece()
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b"must not be sent"]
    start_response("404 Not Found", _TEXT)
    return [b"no such route"]


def _fails_after_one_piece() -> Iterator[bytes]:
    yield b"first piece; "
    raise RuntimeError(ERROR_MARKER)


linted = validator(router)


def validated(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``router`` under ``wsgiref.validate``, with a signature ``auto`` can read."""
    return linted(environ, start_response)  # type: ignore[no-any-return]


def create_app() -> Any:
    """A factory: ``tests.data.wsgi_apps:create_app()``."""
    return validated
