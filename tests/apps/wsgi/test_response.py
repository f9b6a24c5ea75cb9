"""Responses of WSGI applications through the driver: the one-hand-off fast path, streaming
with backpressure, write(), exc_info, what start_response refuses, close() exactly once
however the exchange ends, file wrappers, and inline (threads=0) applications."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from typing import Any

import pytest

from tests.server.helpers import get, parse_responses, reset
from treadle.apps.wsgi import ClientDisconnected, WSGIApplication

from .helpers import Gate, Served, Tracked, pump, simple

MARKER = "deliberate failure in a WSGI test app"


def _count_handoffs(served: Served) -> list[object]:
    """Record every call_soon_threadsafe made on the served connection's loop."""
    reactor = served.harness.reactor
    calls: list[object] = []
    original = reactor.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> None:
        calls.append(callback)
        original(callback, *args)

    reactor.call_soon_threadsafe = counting  # type: ignore[method-assign]
    return calls


# --------------------------------------------------------------------- the fast path


@pytest.mark.parametrize(
    ("result", "body"),
    [([b"hello"], b"hello"), ([b"a", b"", b"bc"], b"abc"), ((b"x", b"y"), b"xy"), ([], b"")],
)
def test_a_list_is_answered_with_one_handoff_and_a_content_length(serve, poller, result, body):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return result

    served = serve(app, poller=poller)
    handoffs = _count_handoffs(served)
    response = served.request(get("/"))
    assert (response.status, response.body) == (200, body)
    assert response.header("content-length") == str(len(body))
    assert response.header("content-type") == "text/plain"
    assert len(handoffs) == 1
    # keep-alive: the next request on the connection is answered too
    assert served.request(get("/again")).body == body


def test_pipelined_requests_are_answered_in_order(serve, poller):
    def app(environ, start_response):
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/gen":
            return (piece for piece in [b"gen", b"erated"])
        return [environ["PATH_INFO"].encode()]

    served = serve(app, poller=poller, threads=4)
    served.send(get("/one") + get("/gen") + get("/three") + get("/four"))
    bodies = [response.body for response in served.responses(4)]
    assert bodies == [b"/one", b"generated", b"/three", b"/four"]


def test_inline_applications_need_no_handoff(serve):
    served = serve(simple(b"inline"), threads=0)
    handoffs = _count_handoffs(served)
    response = served.request(get("/"))
    assert (response.status, response.body) == (200, b"inline")
    assert handoffs == []


def test_a_generator_that_yields_once_ends_as_one_response(serve):
    gate = Gate()

    def app(environ, start_response):
        start_response("200 OK", [])
        yield b"only piece"
        gate.wait()  # the piece must reach the client before the generator goes on

    served = serve(app)
    served.send(get("/"))
    served.pump(lambda: b"only piece" in served.read_now() + bytes(served.received), "the piece")
    gate.open()
    [response] = served.responses(1)
    assert response.body == b"only piece"
    assert response.chunked  # its head left before the end was known


# ------------------------------------------------------------------------ streaming


def test_generator_pieces_arrive_in_order_chunked(serve, poller):
    pieces = [b"%04d|" % i * 50 for i in range(200)]

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield from pieces

    response = serve(app, poller=poller).request(get("/"))
    assert response.body == b"".join(pieces)
    assert response.chunked or response.header("content-length") == str(len(response.body))


def test_http_1_0_streams_until_close(serve):
    gate = Gate()

    def app(environ, start_response):
        start_response("200 OK", [])
        yield b"first "
        gate.wait()
        yield b"second"

    served = serve(app)
    served.send(get("/", version="1.0"))
    served.pump(lambda: b"first" in (served.read_now() or bytes(served.received)), "first")
    gate.open()
    data = served.wait_closed()
    [response] = parse_responses(data, eof=True)
    assert response.body == b"first second"
    assert response.header("content-length") is None and not response.chunked


def test_write_callable_sends_head_and_pieces_before_the_iterable(serve):
    def app(environ, start_response):
        write = start_response("201 Created", [("X-Mode", "write")])
        write(b"one ")
        write(bytearray(b"two "))
        return [b"three"]

    response = serve(app).request(get("/"))
    assert (response.status, response.body) == (201, b"one two three")
    assert response.header("x-mode") == "write"


def test_an_app_faster_than_its_client_is_paused(serve, poller):
    """Backpressure out: a client that does not read holds the generator back."""
    piece = b"z" * 16384
    produced: list[int] = []

    def app(environ, start_response):
        start_response("200 OK", [])
        for i in range(300):  # 4.8 MiB if nothing held it back
            produced.append(i)
            yield piece

    high = 64 * 1024
    served = serve(
        app,
        poller=poller,
        buffer_bytes=32768,
        output_buffer_bytes=high,
        write_high_water=high,
        write_low_water=16 * 1024,
    )
    served.send(get("/"))
    # The client reads nothing: production stops at about the socket buffers, the
    # high-water mark and the adapter's buffer.
    bound = (4 * 32768 + 2 * high + high) // len(piece) + 4
    for _ in range(100):
        served.harness.reactor.run_once(0.002)
    assert 0 < len(produced) <= bound
    received = served.responses(1)
    assert received[0].body == piece * 300


# -------------------------------------------------------------------------- exc_info


def test_exc_info_before_the_head_replaces_it(serve):
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("broken")
        except ValueError:
            start_response("503 Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    response = serve(app).request(get("/"))
    assert (response.status, response.body) == (503, b"sorry")
    assert response.header("x-second") == "2" and response.header("x-first") is None


def test_exc_info_after_the_head_reraises_and_cuts_the_connection(serve, caplog):
    seen: list[BaseException] = []
    gate = Gate()

    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"partial")
        gate.wait()  # until the client has the head: "headers sent" on the wire too
        try:
            raise KeyError(MARKER)
        except KeyError:
            try:
                start_response("500 Error", [], sys.exc_info())
            except KeyError as again:
                seen.append(again)
                raise
        return [b"never"]

    served = serve(app)
    served.send(get("/"))
    served.pump(lambda: b"partial" in (served.read_now() or bytes(served.received)), "head")
    gate.open()
    data = served.wait_closed()
    assert len(seen) == 1 and MARKER in str(seen[0])
    assert data.count(b"HTTP/1.1 ") == 1  # never a second status line
    [response] = parse_responses(data, eof=True)
    assert response.status == 200 and not response.complete
    assert response.body == b"partial"
    assert any(MARKER in (record.exc_text or "") for record in caplog.records)


def test_start_response_twice_without_exc_info_is_an_error(serve, caplog):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("404 Not Found", [])
        return [b"x"]

    assert serve(app).request(get("/")).status == 500
    assert "start_response() called again without exc_info" in caplog.text


# --------------------------------------------------------------- start_response refuses


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        ("200 OK", [("X-Bad", "a\r\nSet-Cookie: injected=1")]),
        ("200 OK", [("X-Bad", "a\nb")]),
        ("200 OK", [("X-Bad", "a\x00b")]),
        ("200 OK", [("X-Bad\r\nX-Evil", "v")]),
        ("200 OK", [("Bad Name", "v")]),
        ("200 OK", [("X-Text", "snowman \u2603")]),
        ("200 OK", [("Connection", "close")]),
        ("200 OK", [("Keep-Alive", "timeout=5")]),
        ("200 OK", [("Transfer-Encoding", "chunked")]),
        ("200 OK", [("Upgrade", "websocket")]),
        ("200 OK", [("TE", "trailers")]),
        ("200 OK", [("Trailer", "X-Sum")]),
        ("200 OK", [("Proxy-Authenticate", "Basic")]),
        ("200 OK", [(b"X-Bytes", b"v")]),
        ("200 OK", [["X-List", "v"]]),
        ("200 OK", "X-Not-A-List"),
        ("200", []),
        ("OK 200", []),
        ("2000 OK", []),
        ("100 Continue", []),
        ("200 OK\r\nX-Evil: 1", []),
        (200, []),
    ],
)
def test_refused_heads_are_500_and_logged(serve, caplog, status, headers):
    def app(environ, start_response):
        start_response(status, headers)
        return [b"body that must not be sent"]

    served = serve(app)
    response = served.request(get("/"))
    assert response.status == 500
    assert b"injected" not in served.received and b"X-Evil" not in served.received
    assert b"must not be sent" not in served.received
    assert any(record.levelno == logging.ERROR for record in caplog.records)


# ------------------------------------------------------------------- failing apps


def test_an_exception_before_any_byte_is_a_500_with_the_traceback_logged(serve, caplog):
    def app(environ, start_response):
        raise RuntimeError(MARKER)

    served = serve(app)
    response = served.request(get("/boom"))
    assert response.status == 500
    assert MARKER.encode() not in served.received  # the reason is for the log only
    [record] = [r for r in caplog.records if r.exc_info and MARKER in str(r.exc_info[1])]
    assert "GET /boom" in record.getMessage()


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(["text"], id="str-in-a-list"),
        pytest.param(iter(["text"]), id="str-from-an-iterator"),
        pytest.param(42, id="not-iterable"),
    ],
)
def test_a_body_that_is_not_bytes_is_a_500(serve, caplog, result):
    def app(environ, start_response):
        start_response("200 OK", [])
        return result

    assert serve(app).request(get("/")).status == 500
    assert "TypeError" in caplog.text


def test_no_start_response_is_a_500(serve, caplog):
    assert serve(lambda environ, start_response: [b"x"]).request(get("/")).status == 500
    assert "before calling start_response" in caplog.text


# ----------------------------------------------------------- close() exactly once


def test_close_once_on_a_normal_end(serve, poller):
    body = Tracked([b"a", b"b"])

    def app(environ, start_response):
        start_response("200 OK", [])
        return body

    served = serve(app, poller=poller)
    response = served.request(get("/"))
    assert response.body == b"ab"
    assert body.closes == 1  # close() runs before the hand-off that ends the response


def test_close_once_on_head(serve):
    body = Tracked([b"abc"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "3")])
        return body

    served = serve(app)
    served.send(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    served.pump(lambda: b"\r\n\r\n" in (served.read_now() or bytes(served.received)), "head")
    assert served.received.endswith(b"\r\n\r\n")  # no body
    assert b"content-length: 3" in served.received.lower()
    served.pump(body.closed.is_set, "close()")
    assert body.closes == 1


def test_close_once_when_the_client_disconnects_mid_response(serve, poller):
    piece = b"q" * 65536

    def forever(index: int) -> None:
        return None

    body = Tracked(iter(lambda: piece, None), before_each=forever)

    def app(environ, start_response):
        start_response("200 OK", [])
        return body

    served = serve(app, poller=poller, tcp=True, buffer_bytes=32768)
    served.send(get("/"))
    served.pump(lambda: body.pulled > 4, "the body to start")
    reset(served.harness.peer)
    served.pump(lambda: served.harness.driver.closed and body.closed.is_set(), "close()")
    assert body.closes == 1


def test_close_once_when_the_app_fails_mid_iteration(serve, caplog):
    body = Tracked([b"a" * 10, b"b" * 10, b"c"], fail_after=2)

    def app(environ, start_response):
        start_response("200 OK", [])
        return body

    served = serve(app)
    served.send(get("/"))
    data = served.wait_closed()
    assert body.closes == 1
    assert data.count(b"HTTP/1.1 ") == 1
    assert "deliberate failure mid-iteration" in caplog.text


def test_close_that_fails_is_a_500_before_the_head(serve, caplog):
    class Failing(list):
        def close(self):
            raise OSError(MARKER)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Failing([b"x"])

    assert serve(app).request(get("/")).status == 500
    assert MARKER in caplog.text


def test_write_after_the_client_left_raises(serve):
    raised: list[BaseException] = []
    left = threading.Event()

    def app(environ, start_response):
        write = start_response("200 OK", [])
        try:
            while True:
                write(b"w" * 65536)
        except ClientDisconnected as error:
            raised.append(error)
            left.set()
            raise
        return []

    served = serve(app, tcp=True, buffer_bytes=32768)
    served.send(get("/"))
    served.pump(lambda: len(served.read_now() or b"") > 0 or bool(served.received), "bytes")
    reset(served.harness.peer)
    served.pump(left.is_set, "write() to raise")
    assert isinstance(raised[0], OSError)


# --------------------------------------------------------------- wsgi.file_wrapper


def test_file_wrapper_of_a_real_file_is_sent_from_its_descriptor(serve, tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    files: list[Any] = []

    def app(environ, start_response):
        handle = open(path, "rb")  # noqa: SIM115 (the wrapper's close() closes it)
        handle.seek(1000)
        files.append(handle)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](handle, 4096)

    served = serve(app)
    response = served.request(get("/"))
    assert response.body == data[1000:]
    assert response.header("content-length") == str(len(data) - 1000)
    assert files[0].closed  # close() went to the file, yet every byte was sent


def test_file_wrapper_stops_at_the_content_length_set(serve, tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"0123456789")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "4")])
        return environ["wsgi.file_wrapper"](open(path, "rb"))  # noqa: SIM115

    assert serve(app).request(get("/")).body == b"0123"


def test_file_wrapper_of_a_file_like_object_is_read(serve):
    def app(environ, start_response):
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory " * 1000), 1000)

    assert serve(app).request(get("/")).body == b"in memory " * 1000


def test_file_wrapper_after_write_goes_out_as_a_segment(serve, tmp_path):
    path = tmp_path / "tail.txt"
    path.write_bytes(b"tail")

    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"head ")
        return environ["wsgi.file_wrapper"](open(path, "rb"))  # noqa: SIM115

    assert serve(app).request(get("/")).body == b"head tail"


# --------------------------------------------------------------------- inline mode


@pytest.mark.parametrize("shape", ["list", "generator", "write", "empty-generator", "file"])
def test_inline_shapes(serve, tmp_path, shape):
    path = tmp_path / "f.txt"
    path.write_bytes(b"from a file")

    def app(environ, start_response):
        write = start_response("200 OK", [])
        if shape == "list":
            return [b"from ", b"a list"]
        if shape == "write":
            write(b"from ")
            return [b"write"]
        if shape == "file":
            return environ["wsgi.file_wrapper"](open(path, "rb"))  # noqa: SIM115
        if shape == "empty-generator":
            return (piece for piece in [b"", b""])
        return (piece for piece in [b"", b"from ", b"a generator"])

    expected = {
        "list": b"from a list",
        "generator": b"from a generator",
        "write": b"from write",
        "empty-generator": b"",
        "file": b"from a file",
    }[shape]
    assert serve(app, threads=0).request(get("/")).body == expected


def test_inline_failures(serve, caplog):
    body = Tracked([b"a"], fail_after=0)

    def app(environ, start_response):
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/raise":
            raise RuntimeError(MARKER)
        return body

    served = serve(app, threads=0)
    assert served.request(get("/raise")).status == 500
    assert MARKER in caplog.text
    served2 = serve(adapter=served.adapter)
    assert served2.request(get("/iter")).status == 500  # failed before its first piece
    assert body.closes == 1


# ---------------------------------------------------------------- pool and queue


def test_503_when_every_thread_is_busy_and_the_queue_full_then_recovery(make, adapters, caplog):
    gate = Gate()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/wait":
            gate.wait()
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    adapter = WSGIApplication(app, threads=1, queue_size=1)
    adapters.append(adapter)
    first, second, third, later = (Served(make, adapter) for _ in range(4))
    harnesses = [s.harness for s in (first, second, third, later)]
    first.send(get("/wait"))
    pump(harnesses, gate.reached.is_set, "the first request to run")
    second.send(get("/queued"))
    pump(harnesses, lambda: adapter.pool is not None and adapter.pool.queued == 1, "queued")
    refused = third.request(get("/refused"))
    assert refused.status == 503
    assert refused.header("retry-after") == "1"
    assert "WSGI worker threads are busy" in caplog.text
    assert first.received == b"" and second.received == b""  # still waiting, not refused
    gate.open()
    assert first.responses(1)[0].body == b"/wait"
    assert second.responses(1)[0].body == b"/queued"
    assert later.request(get("/later")).body == b"/later"
    assert third.request(get("/retry")).body == b"/retry"  # the refused connection lives on


def test_a_slow_application_does_not_hold_up_another_connection(make, adapters):
    gate = Gate()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            gate.wait()
        start_response("200 OK", [])
        return [b"done " + environ["PATH_INFO"].encode()]

    adapter = WSGIApplication(app, threads=2)
    adapters.append(adapter)
    slow, fast = Served(make, adapter), Served(make, adapter)
    slow.send(get("/slow"))
    pump([slow.harness, fast.harness], gate.reached.is_set, "the slow request to start")
    fast.send(get("/fast"))
    pump(
        [slow.harness, fast.harness],
        lambda: bool(fast.read_now() or fast.received),
        "the fast answer",
    )
    assert parse_responses(bytes(fast.received))[0].body == b"done /fast"
    assert slow.read_now() == b""  # still running
    gate.open()
    pump([slow.harness], lambda: bool(slow.read_now() or slow.received), "the slow answer")
    assert b"done /slow" in slow.received
