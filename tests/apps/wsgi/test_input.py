"""``wsgi.input`` through the driver: every way of reading, on a body that arrived whole and
on one streamed in pieces (chunked, over several pauses); 100-continue; the client held back
while the application does not read; a body that never ends."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from typing import Any

import pytest

from tests.server.helpers import chunked_post, post, reset
from treadle.apps.wsgi import ClientDisconnected

from .helpers import Gate

LINES = b"".join(b"line %d %s\n" % (i, b"x" * (i % 13)) for i in range(120))
BODY = LINES + b"\n\nlast line without a newline"

OPERATIONS = {
    "read()": lambda f: [f.read()],
    "read(None)": lambda f: [f.read(None)],
    "read(-1)": lambda f: [f.read(-1)],
    "read(7) to the end": lambda f: list(iter(lambda: f.read(7), b"")),
    "read(4096) to the end": lambda f: list(iter(lambda: f.read(4096), b"")),
    "readline()": lambda f: list(iter(f.readline, b"")),
    "readline(5)": lambda f: list(iter(lambda: f.readline(5), b"")),
    "readline(None)": lambda f: [f.readline(None), f.read()],
    "readlines()": lambda f: f.readlines(),
    "readlines(40)": lambda f: [f.readlines(40), f.read()],
    "iteration": lambda f: list(f),
    "mixed": lambda f: [
        f.read(3),
        f.readline(),
        f.read(0),
        f.readline(0),
        f.readline(100),
        f.read(),
    ],
}


def _reader(operation: str):
    def app(environ, start_response):
        result = OPERATIONS[operation](environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(result).encode()]

    return app


def _expected(operation: str) -> bytes:
    return repr(OPERATIONS[operation](io.BytesIO(BODY))).encode()


@pytest.mark.parametrize("operation", OPERATIONS)
def test_reading_a_body_that_arrived_whole(serve, operation):
    response = serve(_reader(operation)).request(post("/", BODY))
    assert response.body == _expected(operation)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_reading_a_streamed_chunked_body(serve, operation):
    pieces = [BODY[i : i + 97] for i in range(0, len(BODY), 97)]
    # A tiny buffer on each side: the body streams, and the stream pauses many times.
    served = serve(_reader(operation), body_buffer_bytes=64, input_buffer_bytes=200)
    response = served.request(chunked_post("/", pieces))
    assert response.body == _expected(operation)


@pytest.mark.parametrize("operation", ["readline()", "read(4096) to the end", "iteration"])
def test_lines_and_reads_longer_than_the_buffer(serve, operation):
    """A line (or a read) larger than the adapter's buffer still completes: the buffer
    drains into the answer as it fills, and the stream goes on."""
    long_body = b"L" * 5000 + b"\n" + b"tail"

    def app(environ, start_response):
        result = OPERATIONS[operation](environ["wsgi.input"])
        start_response("200 OK", [])
        return [repr(result).encode()]

    pieces = [long_body[i : i + 300] for i in range(0, len(long_body), 300)]
    served = serve(app, body_buffer_bytes=64, input_buffer_bytes=100)
    expected = repr(OPERATIONS[operation](io.BytesIO(long_body))).encode()
    assert served.request(chunked_post("/", pieces)).body == expected


def test_reading_a_streamed_body_with_a_length(serve, poller):
    def app(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"%d %s" % (len(data), hashlib.sha256(data).hexdigest().encode())]

    body = bytes(range(256)) * 4000
    served = serve(app, poller=poller, body_buffer_bytes=1024, input_buffer_bytes=8192)
    response = served.request(post("/", body))
    assert response.body == b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())


def test_inline_applications_get_a_streamed_body_whole(serve):
    def app(environ, start_response):
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    pieces = [BODY[i : i + 50] for i in range(0, len(BODY), 50)]
    served = serve(app, threads=0, body_buffer_bytes=64, spool_bytes=100)
    assert served.request(chunked_post("/", pieces)).body == BODY


# ---------------------------------------------------------------------- 100-continue


def _expect_head(length: int) -> bytes:
    return (
        b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
        % length
    )


def test_100_continue_and_the_body_once_the_application_reads(serve):
    gate = Gate()

    def app(environ, start_response):
        gate.wait()
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"read %d" % len(data)]

    body = b"b" * 5000
    served = serve(app, body_buffer_bytes=1024)
    served.send(_expect_head(len(body)))
    served.pump(gate.reached.is_set, "the application to run")
    gate.open()
    served.pump(lambda: b"100 Continue" in (served.read_now() or bytes(served.received)), "100")
    assert served.received.count(b"100 Continue") == 1
    served.send(body)
    assert served.responses(2)[-1].body == b"read 5000"


def test_no_100_continue_before_the_application_reads(serve):
    gate = Gate()

    def app(environ, start_response):
        gate.wait()
        start_response("413 Content Too Large", [])
        return [b"too large, not read"]

    served = serve(app, body_buffer_bytes=1024)
    served.send(_expect_head(5000))
    served.pump(gate.reached.is_set, "the application to run")
    for _ in range(5):
        served.harness.reactor.run_once(0.002)
    early = bytes(served.received) + served.read_now()
    gate.open()
    served.responses(1)
    assert b"100 Continue" not in early
    assert b"100 Continue" not in served.received


# ------------------------------------------------------------------ flow control in


def _send_what_fits(sock: socket.socket, data: bytes, offset: int) -> int:
    """Send from ``offset`` without blocking; return the new offset."""
    while offset < len(data):
        try:
            offset += sock.send(data[offset : offset + 65536])
        except BlockingIOError:
            break
    return offset


@pytest.mark.parametrize("read_first", [0, 1], ids=["before-any-read", "after-one-byte"])
def test_a_body_faster_than_the_application_is_paused(serve, poller, read_first):
    gate = Gate()
    digest: dict[str, Any] = {}

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        first = stream.read(read_first)
        gate.wait()
        rest = stream.read()
        digest["sha"] = hashlib.sha256(first + rest).hexdigest()
        start_response("200 OK", [])
        return [b"ok"]

    body = bytes(range(256)) * 16384  # 4 MiB
    served = serve(
        app,
        poller=poller,
        buffer_bytes=32768,
        body_buffer_bytes=4096,
        input_buffer_bytes=65536,
        read_bytes_per_turn=65536,
    )
    head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body)
    served.send(head + body[:8192])
    served.pump(gate.reached.is_set, "the application to wait")
    offset = 8192
    for _ in range(60):
        offset = _send_what_fits(served.harness.peer, body, offset)
        served.harness.reactor.run_once(0.002)
    # Held back: socket buffers, the exchange's first read and the adapter's buffer.
    assert 0 < offset < 1024 * 1024
    gate.open()

    def sent_all() -> bool:
        nonlocal offset
        offset = _send_what_fits(served.harness.peer, body, offset)
        return offset == len(body)

    served.pump(sent_all, "the whole body to be taken")
    assert served.responses(1)[0].body == b"ok"
    assert digest["sha"] == hashlib.sha256(body).hexdigest()


# ------------------------------------------------------------------- bodies that end early


def test_a_client_that_leaves_mid_body_makes_the_read_raise(serve, poller):
    raised: list[BaseException] = []
    done = threading.Event()

    def app(environ, start_response):
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as error:
            raised.append(error)
            raise
        finally:
            done.set()
        start_response("200 OK", [])
        return [b"never"]

    served = serve(app, poller=poller, tcp=True, body_buffer_bytes=1024)
    served.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    served.pump(lambda: served.harness.driver.session.requests == 1, "the request")
    reset(served.harness.peer)
    served.pump(done.is_set, "the read to end")
    assert len(raised) == 1 and isinstance(raised[0], OSError)


def test_a_body_deadline_answers_408_and_the_read_raises(serve):
    raised: list[BaseException] = []
    reading = threading.Event()

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        stream.read(10)
        reading.set()
        try:
            stream.read()
        except ClientDisconnected as error:
            raised.append(error)
        start_response("200 OK", [])
        return [b"never"]

    served = serve(app, body_buffer_bytes=1024)
    served.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + b"x" * 2000)
    served.pump(reading.is_set, "the application to read")
    served.harness.advance(31.0)
    assert served.responses(1)[0].status == 408
    served.pump(lambda: bool(raised), "the read to raise")
    assert isinstance(raised[0], ClientDisconnected)
