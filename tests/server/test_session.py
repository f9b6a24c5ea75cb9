"""The session without a loop or a socket, and file segments through a fake transport.

The session is driven by hand here, as a later asyncio driver would drive it: bytes into
``session.conn``, ``process()``, and whatever ``session.out`` holds written to a fake
transport that takes a few bytes at a time, refuses with EAGAIN, or cannot sendfile.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from treadle.config import Settings
from treadle.server import Exchange, FileSegment
from treadle.server.context import ServerContext
from treadle.server.output import FileShrankError, OutputQueue
from treadle.server.session import Session
from treadle.server.states import APP, BODY, HEAD, IDLE, WRITE, Ending

from .helpers import get, parse_responses, post

SERVER_DIR = Path(__file__).resolve().parents[2] / "src" / "treadle" / "server"


class FakeTransport:
    """Takes at most ``per_call`` bytes a call and ``budget`` bytes until ``refill``;
    EAGAIN after that. Records what it was given, and how."""

    fd = -1
    pending = 0

    def __init__(self, per_call: int = 1 << 30, budget: int = 1 << 40, sendfile=True):
        self.per_call = per_call
        self.budget = budget
        self.can_sendfile = sendfile
        self.received = bytearray()
        self.calls: list[str] = []

    def refill(self, budget: int) -> None:
        self.budget = budget

    def _take(self, size: int) -> int:
        size = min(size, self.per_call, self.budget)
        if size == 0:
            raise BlockingIOError
        self.budget -= size
        return size

    def send(self, data) -> int:
        taken = self._take(len(data))
        self.received += bytes(data[:taken])
        self.calls.append("send")
        return taken

    def send_more(self, data) -> int:
        self.calls.append("send_more")
        return self.send(data)

    def recv(self, size: int) -> bytes:
        raise BlockingIOError

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        available = os.fstat(fd).st_size - offset
        if available <= 0:
            return 0
        taken = self._take(min(count, available))
        self.received += os.pread(fd, taken, offset)
        self.calls.append("sendfile")
        return taken

    def shutdown_write(self) -> None:
        pass

    def close(self) -> None:
        pass


def _context(app, **overrides) -> ServerContext:
    no_reactor = SimpleNamespace(poller=SimpleNamespace(edge_triggered=False))
    return ServerContext(no_reactor, app, Settings.resolve(overrides, environ={}))  # type: ignore[arg-type]


def _drain(session: Session, transport: FakeTransport) -> None:
    while session.out.items:
        session.out.write_to(transport)
        if session.producing and session.out.size <= session.ctx.write_low_water:
            session.produce()


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 400)  # 102,400 bytes
    fd = os.open(path, os.O_RDONLY)
    yield path, fd
    os.close(fd)


def test_the_session_modules_import_no_socket_or_clock():
    for name in ("session.py", "answers.py", "states.py", "output.py", "exchange.py"):
        tree = ast.parse((SERVER_DIR / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module or "")
        assert not imported & {"socket", "select", "selectors", "time", "ssl"}, (name, imported)


def test_a_request_through_the_session_alone():
    def app(exchange: Exchange) -> None:
        exchange.respond(200, [(b"content-type", b"text/plain")], b"hi " + exchange.request.path)

    session = Session(_context(app), ("127.0.0.1", 9))
    assert session.phase == IDLE
    session.conn.receive_data(get("/a")[:10])
    assert session.process() is False
    assert session.phase == HEAD
    session.conn.receive_data(get("/a")[10:] + get("/b"))
    session.process()
    assert session.phase == WRITE and session.requests == 2
    transport = FakeTransport(per_call=7)
    _drain(session, transport)
    assert [r.body for r in parse_responses(bytes(transport.received))] == [b"hi /a", b"hi /b"]
    assert session.phase == IDLE and not session.finished


def test_phases_follow_the_body_and_the_application():
    held: list[Exchange] = []
    session = Session(_context(held.append, body_buffer_bytes=16), None)
    session.conn.receive_data(post("/", b"x" * 40)[:-20])
    session.process()
    assert session.phase == BODY  # streamed: the handler has the exchange, the body flows
    held[0].stream.pause()  # type: ignore[union-attr]
    assert session.phase == APP and not session.accepts_input
    held[0].stream.resume()  # type: ignore[union-attr]
    assert session.phase == BODY and session.held_back


def test_file_segment_with_short_sends_and_eagain(data_file):
    path, fd = data_file
    released: list[int] = []

    def app(exchange: Exchange) -> None:
        segment = FileSegment(fd, 1000, 50_000, lambda: released.append(1))
        exchange.respond_iterable(200, [(b"content-length", b"50000")], [segment])

    session = Session(_context(app), None)
    session.conn.receive_data(get("/file"))
    session.process()
    transport = FakeTransport(per_call=4096, budget=10_000)
    sent, blocked = session.out.write_to(transport)
    assert blocked and 0 < sent <= 10_000
    assert released == []  # still under way: the owner keeps its file
    before = session.out.size
    sent_again, blocked = session.out.write_to(transport)  # still refused: nothing moves
    assert (sent_again, blocked) == (0, True) and session.out.size == before
    transport.refill(1 << 40)
    _drain(session, transport)
    [response] = parse_responses(bytes(transport.received))
    assert response.body == path.read_bytes()[1000:51_000]
    assert released == [1]
    assert transport.calls[:2] == ["send_more", "send"]  # the head, told a file follows
    assert "sendfile" in transport.calls


def test_file_segment_is_read_and_sent_where_sendfile_is_not_possible(data_file):
    path, fd = data_file

    def app(exchange: Exchange) -> None:
        exchange.respond_iterable(200, [], [b"<", FileSegment(fd, 0, 102_400), b">"])

    session = Session(_context(app), None)
    session.conn.receive_data(get("/file"))
    session.process()
    transport = FakeTransport(per_call=30_000, sendfile=False)
    _drain(session, transport)
    [response] = parse_responses(bytes(transport.received))
    assert response.chunked  # no Content-Length: the segment is framed as one chunk
    assert response.body == b"<" + path.read_bytes() + b">"
    assert "sendfile" not in transport.calls


def test_a_file_that_shrinks_while_being_sent_raises_and_is_released(data_file):
    path, fd = data_file
    released: list[int] = []

    def app(exchange: Exchange) -> None:
        segment = FileSegment(fd, 0, 102_400, lambda: released.append(1))
        exchange.respond_iterable(200, [(b"content-length", b"102400")], [segment])

    session = Session(_context(app), None)
    session.conn.receive_data(get("/file"))
    session.process()
    transport = FakeTransport(budget=20_000)
    session.out.write_to(transport)
    os.truncate(path, 30_000)
    transport.refill(1 << 40)
    with pytest.raises(FileShrankError):
        session.out.write_to(transport)
    session.close(Ending.APP_FAILED)
    assert released == [1]
    assert len(transport.received) < 30_000 + 200  # never more than the file had


def test_a_file_that_grows_sends_the_length_announced(data_file):
    path, fd = data_file

    def app(exchange: Exchange) -> None:
        exchange.respond_iterable(200, [(b"content-length", b"1000")], [FileSegment(fd, 0, 1000)])

    session = Session(_context(app), None)
    session.conn.receive_data(get("/file"))
    session.process()
    with open(path, "ab") as grow:
        grow.write(b"more" * 1000)
    transport = FakeTransport()
    _drain(session, transport)
    [response] = parse_responses(bytes(transport.received))
    assert response.body == path.read_bytes()[:1000]


def test_head_and_304_drop_file_segments_and_release_them(data_file):
    _, fd = data_file
    released: list[str] = []

    def app(exchange: Exchange) -> None:
        segment = FileSegment(fd, 0, 500, lambda: released.append(exchange.request.target))
        exchange.respond_iterable(200, [(b"content-length", b"500")], [segment])

    session = Session(_context(app), None)
    session.conn.receive_data(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
    session.process()
    transport = FakeTransport()
    _drain(session, transport)
    raw = bytes(transport.received)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 500\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")  # the head only: a HEAD response has no body
    assert released == [b"/h"]


def test_a_segment_longer_than_content_length_fails_the_exchange(data_file, caplog):
    _, fd = data_file

    def app(exchange: Exchange) -> None:
        exchange.respond_iterable(200, [(b"content-length", b"10")], [FileSegment(fd, 0, 11)])

    session = Session(_context(app), None)
    session.conn.receive_data(get("/"))
    session.process()
    transport = FakeTransport()
    session.out.write_to(transport)
    assert session.finished and session.linger  # the head went out: close, no second status
    assert not parse_responses(bytes(transport.received), partial_ok=True)


def test_output_queue_counts_bytes_and_files_alike(data_file):
    _, fd = data_file
    released: list[int] = []
    queue = OutputQueue()
    queue.push(b"abc")
    queue.push_file(FileSegment(fd, 0, 1000, lambda: released.append(1)))
    queue.push_file(FileSegment(fd, 0, 0, lambda: released.append(2)))  # empty: released now
    assert queue.size == 1003 and released == [2]
    queue.discard()
    assert queue.size == 0 and not queue and released == [2, 1]
    with pytest.raises(ValueError):
        FileSegment(fd, -1, 10)
