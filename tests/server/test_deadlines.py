"""The driver's named deadlines, on a clock moved by hand.

IDLE (keep-alive wait: close quietly), HEAD (from a head's first byte: 408), BODY (since
the last body byte: 408), WRITE (since the last write progress: close), APP (the
application is answering: none). Each test moves the clock to just before a deadline
(nothing happens), then just past it.
"""

from __future__ import annotations

import logging

import pytest

from treadle.apps.native import Request, Response
from treadle.server import driver as driver_module

from .helpers import get, parse_responses, statuses

TIMEOUTS = {
    "idle_timeout": 5.0,
    "header_timeout": 10.0,
    "body_timeout": 3.0,
    "write_timeout": 7.0,
}
EPSILON = 0.01


def _server_records(caplog):
    return [r for r in caplog.records if r.name.startswith("treadle")]


# ------------------------------------------------------------------------------ idle


def test_fresh_connection_closes_after_idle_timeout(make, poller, caplog):
    harness = make(poller=poller, **TIMEOUTS)
    with caplog.at_level(logging.DEBUG):
        harness.advance(5.0 - EPSILON)
        assert not harness.driver.closed
        harness.advance(2 * EPSILON)
        assert harness.driver.closed
    assert harness.read() == b""
    assert harness.peer_eof
    assert not harness.registered
    assert harness.driver not in harness.ctx.connections
    assert _server_records(caplog) == []  # an idle close is not news


def test_idle_deadline_counts_from_the_last_response(make, poller):
    harness = make(poller=poller, **TIMEOUTS)
    harness.advance(4.0)
    assert statuses(harness.exchange(get("/"))) == [200]
    harness.advance(5.0 - EPSILON)  # 9 s after connecting, 5 s after the response
    assert not harness.driver.closed
    assert statuses(harness.exchange(get("/"))) == [200]
    harness.advance(5.0 - EPSILON)
    assert not harness.driver.closed
    harness.advance(2 * EPSILON)
    assert harness.driver.closed
    assert harness.read() == b""
    assert harness.peer_eof


# ------------------------------------------------------------------------------ head


def test_head_deadline_counts_from_the_first_byte_not_from_connect(make, poller, caplog):
    harness = make(poller=poller, **TIMEOUTS)
    harness.advance(4.0)  # idle for a while, below the idle timeout
    harness.send(b"GET / HT")
    harness.turn()
    # Past the idle deadline (5 s after connect) and past 10 s after connect: the head
    # deadline runs from the first byte, at t=4.
    harness.advance(10.0 - EPSILON)
    assert not harness.driver.closed
    assert harness.read() == b""
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.advance(2 * EPSILON)
    [response] = parse_responses(harness.collect(lambda d: harness.peer_eof), eof=True)
    assert response.status == 408
    assert response.header("connection") == "close"
    assert any("timed out" in r.getMessage() for r in _server_records(caplog))


def test_head_deadline_is_not_extended_by_dribbled_bytes(make, poller):
    harness = make(poller=poller, **TIMEOUTS)
    request = get("/slow")
    for byte in request[:9]:
        harness.send(bytes([byte]))
        harness.turn()
        harness.advance(1.0)
    assert not harness.driver.closed  # 9 s after the first byte
    harness.send(request[9:10])
    harness.turn()
    harness.advance(1.0 - EPSILON)
    assert not harness.driver.closed
    harness.advance(2 * EPSILON)  # 10 s after the first byte
    responses = parse_responses(harness.collect(lambda d: harness.peer_eof), eof=True)
    assert statuses(responses) == [408]


def test_head_deadline_shorter_than_idle(make, poller):
    harness = make(poller=poller, idle_timeout=30.0, header_timeout=2.0)
    harness.advance(1.0)
    harness.send(b"G")
    harness.turn()  # the clock starts when the driver reads the byte
    harness.advance(2.0 - EPSILON)
    assert not harness.driver.closed
    harness.advance(2 * EPSILON)
    assert statuses(parse_responses(harness.collect(lambda d: harness.peer_eof))) == [408]


def test_second_head_deadline_starts_at_its_own_first_byte(make, poller):
    harness = make(poller=poller, **TIMEOUTS)
    harness.send(b"GET /a HTTP/1.1\r\n")
    harness.advance(9.0)
    harness.send(b"Host: x\r\n\r\nGET /b")  # the first head ends, the second begins
    harness.turn()
    assert [r.body for r in parse_responses(harness.read())] == [b"hello /a"]
    harness.advance(10.0 - EPSILON)
    assert not harness.driver.closed
    harness.advance(2 * EPSILON)
    assert statuses(parse_responses(harness.collect(lambda d: harness.peer_eof))) == [408]


def test_timed_out_connection_lingers_for_the_linger_time_only(make, poller):
    harness = make(poller=poller, **TIMEOUTS)
    harness.send(b"GET")
    harness.turn()
    harness.advance(10.0 + EPSILON)
    harness.collect(lambda d: harness.peer_eof)
    assert not harness.driver.closed  # lingering: still draining what the client sends
    harness.advance(driver_module.LINGER_S + EPSILON)
    assert harness.driver.closed
    assert not harness.registered


# ------------------------------------------------------------------------------ body


def _echo_length(request: Request) -> Response:
    return Response(200, [], b"%d" % len(request.body or b""))


def test_body_deadline_is_extended_by_each_body_byte(make, poller):
    harness = make(_echo_length, poller=poller, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
    harness.turn()
    for _ in range(3):
        harness.advance(3.0 - EPSILON)
        assert not harness.driver.closed
        harness.send(b"x" * 5)
        harness.turn()
    # 15 of 30 bytes came, each time just in time; now nothing for 3 s.
    harness.advance(3.0 - EPSILON)
    assert not harness.driver.closed
    assert harness.read() == b""
    harness.advance(2 * EPSILON)
    responses = parse_responses(harness.collect(lambda d: harness.peer_eof), eof=True)
    assert statuses(responses) == [408]
    assert b"body" in responses[0].body


def test_body_deadline_replaces_the_head_deadline(make, poller):
    """The head took 9 s of its 10; the body has its own 3 s from its last byte."""
    harness = make(_echo_length, poller=poller, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\n")
    harness.advance(9.0)
    harness.send(b"Host: x\r\nContent-Length: 4\r\n\r\nab")
    harness.advance(3.0 - EPSILON)  # 12 s after the head began
    assert not harness.driver.closed
    harness.send(b"cd")
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"4")))
    assert response.status == 200


def test_streamed_body_timeout_answers_408_and_drops_the_late_answer(make, poller, caplog):
    """The handler was called at the head and holds the exchange, but nothing was sent:
    the client gets the 408 the body deadline promises, and a late answer from the
    handler is dropped without blowing up."""
    held = []

    def streaming(request: Request) -> None:
        request.stream.set_callbacks(lambda data: None, lambda: None)
        held.append(request)

    harness = make(streaming, poller=poller, body_buffer_bytes=10, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 20)
    harness.turn()
    assert len(held) == 1
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.advance(3.0 + EPSILON)
    data = harness.collect(lambda d: harness.peer_eof)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert b"late" not in data
    assert any("body timed out" in r.getMessage() for r in _server_records(caplog))
    # The handler answers late, while the connection lingers or after it closed.
    held[0].respond(Response(200, [], b"late"))
    harness.advance(driver_module.LINGER_S + EPSILON)
    assert harness.driver.closed
    held[0].respond(Response(200, [], b"later"))


# ----------------------------------------------------------------------------- write


def _big_iterable(request: Request) -> Response:
    return Response(200, [], (b"x" * 16384 for _ in range(1000)))


def _stall(harness) -> None:
    """Turn until the driver holds output the kernel will not take."""
    harness.run_until(lambda: harness.driver.out.items and not harness.driver._write_ready, 200)
    harness.turn(3)


def test_write_stall_closes_after_write_timeout(make, poller, caplog):
    harness = make(_big_iterable, poller=poller, buffer_bytes=32768, **TIMEOUTS)
    harness.send(get("/big"))
    _stall(harness)
    harness.advance(7.0 - EPSILON)
    assert not harness.driver.closed
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.advance(2 * EPSILON)
    assert harness.driver.closed
    assert not harness.registered
    assert harness.driver not in harness.ctx.connections
    [record] = _server_records(caplog)
    assert "no write progress" in record.getMessage()
    assert record.levelno == logging.INFO


def test_write_progress_extends_the_write_deadline(make, poller):
    harness = make(_big_iterable, poller=poller, buffer_bytes=32768, **TIMEOUTS)
    harness.send(get("/big"))
    _stall(harness)
    for _ in range(4):
        harness.advance(7.0 - EPSILON)
        assert not harness.driver.closed
        assert harness.read()  # the client reads a little: progress
        _stall(harness)
    harness.advance(7.0 + EPSILON)
    assert harness.driver.closed


# ------------------------------------------------------------------------------- app


def test_app_phase_is_not_timed_out(make, poller):
    pending = []

    def later(request: Request) -> None:
        pending.append(request)

    harness = make(later, poller=poller, **TIMEOUTS)
    harness.send(get("/wait"))
    harness.turn()
    assert len(pending) == 1
    for _ in range(10):  # far past every timeout, in steps that fire each timer
        harness.advance(11.0)
    assert not harness.driver.closed
    assert harness.read() == b""
    pending[0].respond(Response(200, [], b"at last"))
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"at last")))
    assert response.status == 200
    # Then the keep-alive wait starts.
    harness.advance(5.0 - EPSILON)
    assert not harness.driver.closed
    harness.advance(2 * EPSILON)
    assert harness.driver.closed


def test_app_phase_after_a_buffered_body_is_not_timed_out(make, poller):
    pending = []
    harness = make(pending.append, poller=poller, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    harness.turn()
    [request] = pending
    assert request.body == b"abc"
    harness.advance(31.0)
    harness.advance(31.0)
    assert not harness.driver.closed
    request.respond(Response(204))
    assert statuses(parse_responses(harness.collect(lambda d: d.endswith(b"\r\n\r\n")))) == [204]


@pytest.mark.parametrize("phase_timeout", ["header_timeout", "idle_timeout"])
def test_a_deadline_moved_later_rearms_rather_than_firing(make, poller, phase_timeout):
    """Deadlines are re-armed lazily: an early timer that finds its deadline moved on
    must wait again, whichever timeout is the shorter."""
    overrides = dict(TIMEOUTS)
    overrides[phase_timeout] = 1.0
    harness = make(poller=poller, **overrides)
    for _ in range(5):
        assert statuses(harness.exchange(get("/"))) == [200]
        harness.advance(0.9)
    assert not harness.driver.closed


# ---------------------------------------------------------- discarding after an answer


def _refuse_streamed(request: Request) -> Response:
    if request.body is None:  # streamed: answered before the body came
        return Response(413, [], b"no")
    return Response(200, [], b"next")


def test_body_discarded_after_an_early_answer_is_timed_as_a_body(make, poller):
    """After an early answer the client is still sending its body: the idle deadline must
    not cut it (it did, mid-body, idle_timeout after the answer); the body deadline,
    moved on by each byte, applies."""
    harness = make(_refuse_streamed, poller=poller, body_buffer_bytes=10, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 100)
    [early] = parse_responses(harness.collect(lambda d: d.endswith(b"no")))
    assert early.status == 413
    for _ in range(9):  # 900 more bytes, one piece every 2.9 s: over 26 s in all
        harness.advance(3.0 - EPSILON)
        assert not harness.driver.closed
        harness.send(b"z" * 100)
        harness.turn()
    harness.send(get("/next"))
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"next")))
    assert response.status == 200
    # Then the keep-alive wait applies again.
    harness.advance(5.0 + EPSILON)
    assert harness.driver.closed


def test_body_discarded_after_an_early_answer_stalls(make, poller, caplog):
    harness = make(_refuse_streamed, poller=poller, body_buffer_bytes=10, **TIMEOUTS)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"z" * 100)
    harness.collect(lambda d: d.endswith(b"no"))
    harness.send(b"z" * 100)
    harness.turn()
    harness.advance(3.0 - EPSILON)
    assert not harness.driver.closed
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.advance(2 * EPSILON)
    # Answered already: no 408 after the 413, the connection just ends.
    assert harness.collect(lambda d: harness.peer_eof) == b""
    assert any("body timed out" in r.getMessage() for r in _server_records(caplog))
