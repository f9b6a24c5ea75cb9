"""An in-process harness for the connection driver: a fake clock, a real poller, a socketpair.

``Harness`` builds a ``Reactor`` on a real poller with a clock that moves only when the test
says so, a ``ServerContext`` with the given setting overrides, and a connected pair of
non-blocking sockets: one end is driven by a ``ConnectionDriver``, the test holds the other
(``peer``). The test writes requests to ``peer``, turns the loop with ``turn``/``run_until``
(each turn is ``run_once(0)``: it never waits) and reads what arrived with ``read``.

``parse_responses`` splits a byte stream into responses (Content-Length, chunked, or up to
the end when the connection closed), so that assertions are about statuses, fields and
bodies rather than byte offsets.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from treadle.apps.native import NativeApplication, Request, Response
from treadle.config import Settings
from treadle.poll import available_pollers, create_poller
from treadle.reactor import Reactor
from treadle.server.context import ServerContext
from treadle.server.driver import ConnectionDriver
from treadle.server.exchange import Exchange

from ..support import FakeClock

POLLERS = available_pollers()
CLIENT = ("127.0.0.1", 1234)


class CountingSocket:
    """Wraps the driver's socket to count (and optionally cap) ``send`` and ``recv``."""

    def __init__(self, inner: socket.socket) -> None:
        self.inner = inner
        self.sends: list[int] = []
        self.recvs: list[int] = []

    def send(self, data: Any) -> int:
        sent = self.inner.send(data)
        self.sends.append(sent)
        return sent

    def recv(self, size: int) -> bytes:
        data = self.inner.recv(size)
        self.recvs.append(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def handler_app(handler: Callable[[Request], Response | None]) -> NativeApplication:
    return NativeApplication(handler)


def hello(request: Request) -> Response:
    return Response(200, [("content-type", "text/plain")], b"hello " + request.path.encode())


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on the loopback: ``(server side, client side)``.

    For what a Unix socketpair cannot show: a reset (SO_LINGER 0), and a peer's close
    seen as a FIN (readable at EOF) rather than a hang-up.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
    return server, client


def reset(sock: socket.socket) -> None:
    """Close ``sock`` so that the other side gets a reset (TCP only)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Harness:
    """One driver on one end of a socketpair (or a TCP pair); see the module docstring."""

    def __init__(
        self,
        app: Callable[[Exchange], None] | Callable[[Request], Response | None] | None = None,
        poller: str = "epoll",
        *,
        native: bool = True,
        buffer_bytes: int | None = None,
        tcp: bool = False,
        **overrides: Any,
    ) -> None:
        if app is None:
            app = hello
        self.clock = FakeClock()
        self.reactor = Reactor(create_poller(poller), clock=self.clock)
        self.settings = Settings.resolve(overrides, environ={})
        application: Any = NativeApplication(app) if native else app  # type: ignore[arg-type]
        self.ctx = ServerContext(self.reactor, application, self.settings)
        server_sock, self.peer = tcp_pair() if tcp else socket.socketpair()
        if buffer_bytes is not None:
            for sock in (server_sock, self.peer):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
        server_sock.setblocking(False)
        self.peer.setblocking(False)
        self.server_sock = server_sock
        self.driver = ConnectionDriver(self.ctx, server_sock, CLIENT)
        self.ctx.connections.add(self.driver)
        self.fd = self.driver.fd
        self.peer_eof = False

    # -- the loop -----------------------------------------------------------------------

    def turn(self, times: int = 1) -> None:
        for _ in range(times):
            self.reactor.run_once(0)

    def run_until(self, predicate: Callable[[], bool], max_turns: int = 50) -> int:
        """Turn until ``predicate()`` holds; return how many turns it took."""
        for turns in range(max_turns + 1):
            if predicate():
                return turns
            self.reactor.run_once(0)
        raise AssertionError(f"condition not reached in {max_turns} turns")

    def advance(self, seconds: float, turns: int = 1) -> None:
        self.clock.advance(seconds)
        self.turn(turns)

    # -- the peer -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.peer.sendall(data)

    def read(self) -> bytes:
        """Everything the peer can read now, without waiting; notes EOF."""
        chunks = []
        while True:
            try:
                data = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            except ConnectionResetError:
                self.peer_eof = True
                break
            if not data:
                self.peer_eof = True
                break
            chunks.append(data)
        return b"".join(chunks)

    def exchange(self, data: bytes, max_turns: int = 50) -> list[ParsedResponse]:
        """Send ``data``, turn until at least one whole response arrived, return them all."""
        self.send(data)
        received = bytearray()

        def got_response() -> bool:
            received.extend(self.read())
            return bool(parse_responses(bytes(received), partial_ok=True))

        self.run_until(got_response, max_turns)
        self.turn()
        received.extend(self.read())
        return parse_responses(bytes(received), eof=self.peer_eof)

    def collect(self, predicate: Callable[[bytes], bool], max_turns: int = 50) -> bytes:
        """Turn and read until ``predicate(everything read so far)`` holds."""
        received = bytearray()

        def done() -> bool:
            received.extend(self.read())
            return predicate(bytes(received))

        self.run_until(done, max_turns)
        return bytes(received)

    def count_io(self) -> CountingSocket:
        """Count (and let a test wrap) the driver's recv and send calls."""
        counting = CountingSocket(self.server_sock)
        self.driver.transport.recv = counting.recv
        self.driver.transport.send = counting.send
        return counting

    # -- state --------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self.fd in self.reactor._handlers

    @property
    def read_interest(self) -> bool:
        """Whether the driver asked the poller for reads (level) or is willing to read."""
        registration = self.reactor._handlers.get(self.fd)
        if registration is None:
            return False
        if self.reactor.poller.edge_triggered:
            return self.driver._reading
        return bool(registration.events & 1)

    def close(self) -> None:
        if not self.driver.closed:
            self.driver.close()
        self.peer.close()
        self.reactor.close()


@dataclass
class ParsedResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes = b""
    complete: bool = True
    chunked: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.fields.get(name.lower())


def _parse_one(data: bytes, pos: int, eof: bool) -> tuple[ParsedResponse, int] | None:
    end = data.find(b"\r\n\r\n", pos)
    if end < 0:
        return None
    head = data[pos:end].decode("latin-1").split("\r\n")
    version, _, rest = head[0].partition(" ")
    assert version.startswith("HTTP/1."), head[0]
    status_text, _, reason = rest.partition(" ")
    status = int(status_text)
    headers = []
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.append((name.lower(), value.strip()))
    fields = {}
    for name, value in headers:
        fields.setdefault(name, value)
    body_start = end + 4
    if 100 <= status < 200 or status in (204, 304):
        return ParsedResponse(status, reason, headers, b"", data[pos:body_start], fields=fields), (
            body_start
        )
    if "content-length" in fields:
        length = int(fields["content-length"])
        if len(data) < body_start + length:
            return None
        body = data[body_start : body_start + length]
        stop = body_start + length
        return ParsedResponse(status, reason, headers, body, data[pos:stop], fields=fields), stop
    if fields.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        at = body_start
        while True:
            line_end = data.find(b"\r\n", at)
            if line_end < 0:
                break
            size = int(data[at:line_end].split(b";")[0], 16)
            if size == 0:
                trailer_end = data.find(b"\r\n", line_end + 2)
                if trailer_end < 0:
                    break
                stop = trailer_end + 2
                return ParsedResponse(
                    status,
                    reason,
                    headers,
                    b"".join(chunks),
                    data[pos:stop],
                    chunked=True,
                    fields=fields,
                ), stop
            if len(data) < line_end + 2 + size + 2:
                break
            chunks.append(data[line_end + 2 : line_end + 2 + size])
            at = line_end + 2 + size + 2
        if eof:  # cut short: report what came
            return ParsedResponse(
                status,
                reason,
                headers,
                b"".join(chunks),
                data[pos:],
                complete=False,
                chunked=True,
                fields=fields,
            ), len(data)
        return None
    if eof:  # read until close
        body = data[body_start:]
        return ParsedResponse(status, reason, headers, body, data[pos:], fields=fields), len(data)
    return None


def parse_responses(
    data: bytes, *, eof: bool = False, partial_ok: bool = False
) -> list[ParsedResponse]:
    """Split ``data`` into responses; raise if bytes are left over (unless ``partial_ok``)."""
    out = []
    pos = 0
    while pos < len(data):
        parsed = _parse_one(data, pos, eof)
        if parsed is None:
            if partial_ok:
                break
            raise AssertionError(f"trailing bytes that are not a whole response: {data[pos:]!r}")
        response, pos = parsed
        out.append(response)
    return out


def statuses(responses: Iterable[ParsedResponse]) -> list[int]:
    return [response.status for response in responses]


def get(path: str = "/", *fields: str, version: str = "1.1") -> bytes:
    """A bodiless request's bytes."""
    lines = [f"GET {path} HTTP/{version}", "Host: test", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def post(path: str, body: bytes, *fields: str, version: str = "1.1") -> bytes:
    lines = [f"POST {path} HTTP/{version}", "Host: test", f"Content-Length: {len(body)}", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked_post(path: str, pieces: Iterable[bytes], *fields: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Transfer-Encoding: chunked", *fields]
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    for piece in pieces:
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"
