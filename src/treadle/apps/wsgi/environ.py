"""The WSGI environ of one request, built from the parsed request head.

PEP 3333 asks for CGI-style text: every value a native ``str`` carrying bytes as
latin-1, so that an application recovers the bytes the client sent with
``.encode("latin-1")``. PATH_INFO is the path percent-decoded (as CGI does), so a UTF-8
path ``/caf%C3%A9`` becomes ``"/caf\\xc3\\xa9"``; frameworks decode it as UTF-8 from there.
QUERY_STRING, RAW_URI and REQUEST_URI stay as sent.

Header fields become ``HTTP_*`` keys: the name upper-cased with ``-`` turned into
``_``. A field whose own name holds ``_`` is dropped, because ``X-User_Id`` and
``X-User-Id`` would land on the same key and a proxy that checked the one would let the
other through. Repeated fields are joined with ``", "`` (RFC 9110 5.3), Cookie with
``"; "`` (RFC 6265 5.4). Content-Type and Content-Length go to CONTENT_TYPE and
CONTENT_LENGTH, never to ``HTTP_*``. A chunked body that arrived whole gets the
CONTENT_LENGTH of what arrived, for applications that read exactly CONTENT_LENGTH
bytes; ``wsgi.input_terminated`` is True in every case.

SERVER_NAME and SERVER_PORT come from the Host field (or an absolute-form target);
a request without one (HTTP/1.0) gets the address the server was configured to bind,
since the exchange does not name the socket a request arrived on. SCRIPT_NAME is the
configured root path; a path that begins with it has it removed from PATH_INFO.

The per-request work is one copy of a prepared dictionary and one pass over the
fields; the key of each field name is computed once and remembered.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from ...http import Request

Environ = dict[str, Any]

#: where wsgi.errors writes
errors_log = logging.getLogger("treadle.wsgi")

_FIELD_KEYS_MAX = 1024
_DROPPED = ""


class ErrorStream:
    """``wsgi.errors``: text written here is logged on ``treadle.wsgi`` at ERROR.

    A write that ends a line logs everything written since the last record as one
    record (so a traceback written in one call stays one record); ``flush`` logs what
    is pending. Text is kept apart per thread, so requests on different worker threads
    never mix their lines.
    """

    __slots__ = ("_logger", "_local")

    def __init__(self, logger: logging.Logger = errors_log) -> None:
        self._logger = logger
        self._local = threading.local()

    def write(self, text: str) -> int:
        if type(text) is not str:
            raise TypeError(f"wsgi.errors takes str, not {type(text).__name__}")
        pending: str = getattr(self._local, "pending", "") + text
        if pending.endswith("\n"):
            self._local.pending = ""
            self._emit(pending[:-1])
        else:
            self._local.pending = pending
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pending: str = getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self._emit(pending)

    def writable(self) -> bool:
        return True

    def _emit(self, text: str) -> None:
        if text:
            self._logger.error("%s", text)


def split_host(host: bytes) -> tuple[str, str] | None:
    """``(SERVER_NAME, SERVER_PORT)`` of a Host value, or None when it is empty or
    malformed. The port defaults to 80; an IPv6 literal keeps its brackets, so that
    ``SERVER_NAME + ":" + SERVER_PORT`` is still an authority."""
    text = host.decode("latin-1")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port = rest[1:]
    else:
        name, _, port = text.partition(":")
    if not name:
        return None
    return name, port or "80"


def wsgi_text(text: str) -> str:
    """Text as PEP 3333 carries it: its UTF-8 bytes seen as latin-1."""
    return text.encode("utf-8").decode("latin-1")


class EnvironBuilder:
    """Makes the environ of each request; what never changes is prepared once."""

    __slots__ = ("_base", "_script_name", "_script_bytes", "_fallback", "_keys")

    def __init__(
        self,
        *,
        root_path: str = "",
        multithread: bool = True,
        server_address: tuple[str, int] = ("127.0.0.1", 8000),
        errors: ErrorStream | None = None,
        file_wrapper: object = None,
        server_software: str = "treadle",
    ) -> None:
        root_path = root_path.rstrip("/")
        self._script_name = wsgi_text(root_path)
        self._script_bytes = root_path.encode("utf-8")
        host, port = server_address
        self._fallback = (f"[{host}]" if ":" in host else host, str(port))
        self._base: Environ = {
            "SCRIPT_NAME": self._script_name,
            "SERVER_SOFTWARE": server_software,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": errors if errors is not None else ErrorStream(),
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        if file_wrapper is not None:
            self._base["wsgi.file_wrapper"] = file_wrapper
        self._keys: dict[bytes, str] = {}

    def build(
        self,
        request: Request,
        client: tuple[str, int] | None,
        body_input: IO[bytes],
        whole_body_length: int | None = None,
    ) -> Environ:
        """The environ of ``request``; ``whole_body_length`` is the size of a body that
        arrived whole (it names CONTENT_LENGTH when the request was chunked)."""
        environ = self._base.copy()
        raw_path = request.path
        path = unquote_to_bytes(raw_path) if b"%" in raw_path else raw_path
        script = self._script_bytes
        if (
            script
            and path.startswith(script)
            and (len(path) == len(script) or path[len(script)] == 0x2F)
        ):
            path = path[len(script) :]
        target = request.target.decode("latin-1")
        environ["REQUEST_METHOD"] = request.method.decode("latin-1")
        environ["PATH_INFO"] = path.decode("latin-1")
        environ["QUERY_STRING"] = request.query.decode("latin-1")
        environ["RAW_URI"] = target
        environ["REQUEST_URI"] = target
        environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.http_version == b"1.1" else "HTTP/1.0"
        environ["wsgi.input"] = body_input
        if client:
            environ["REMOTE_ADDR"] = client[0]
            environ["REMOTE_PORT"] = str(client[1])
        host = request.host
        server = split_host(host) if host else None
        environ["SERVER_NAME"], environ["SERVER_PORT"] = server or self._fallback
        if request.content_length is not None:
            environ["CONTENT_LENGTH"] = str(request.content_length)
        elif whole_body_length is not None and request.chunked:
            environ["CONTENT_LENGTH"] = str(whole_body_length)
        keys = self._keys
        for name, value in request.headers:
            key = keys.get(name)
            if key is None:
                key = self._key(name)
            if not key:
                continue
            text = value.decode("latin-1")
            previous = environ.get(key)
            if previous is None:
                environ[key] = text
            elif key == "HTTP_COOKIE":
                environ[key] = previous + "; " + text
            else:
                environ[key] = previous + ", " + text
        return environ

    def _key(self, name: bytes) -> str:
        if b"_" in name:
            key = _DROPPED
        elif name == b"content-type":
            key = "CONTENT_TYPE"
        elif name == b"content-length":
            key = _DROPPED  # from the parsed request above: the core has checked it
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(self._keys) >= _FIELD_KEYS_MAX:
            self._keys.clear()
        self._keys[name] = key
        return key
