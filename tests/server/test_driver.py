"""The connection driver: requests in, responses out, keep-alive, closing and 100-continue.

Every test runs the real driver on one end of a socketpair, over each poller this platform
has (level and edge must behave the same), with a clock that only moves by hand.
"""

from __future__ import annotations

import logging

import pytest

from treadle.apps.native import Request, Response
from treadle.server import driver as driver_module
from treadle.server import states as states_module

from .helpers import (
    get,
    parse_responses,
    post,
    statuses,
)


def test_simple_request_is_answered(make, poller):
    harness = make(poller=poller)
    [response] = harness.exchange(get("/hello"))
    assert response.status == 200
    assert response.body == b"hello /hello"
    assert response.header("content-length") == "12"
    assert response.header("server") == "treadle"
    assert response.header("connection") is None  # HTTP/1.1 keep-alive is implicit
    assert not harness.peer_eof
    assert not harness.driver.closed


def test_keep_alive_serves_several_requests_in_turn(make, poller):
    harness = make(poller=poller)
    for path in ("/a", "/b", "/c"):
        [response] = harness.exchange(get(path))
        assert response.body == b"hello " + path.encode()
    assert not harness.peer_eof
    assert harness.driver in harness.ctx.connections


def test_pipelined_burst_is_answered_in_order_with_one_send(make, poller):
    harness = make(poller=poller)
    counting = harness.count_io()
    harness.send(b"".join(get(f"/{n}") for n in range(10)))
    harness.turn()
    responses = parse_responses(harness.read())
    assert [r.body for r in responses] == [b"hello /%d" % n for n in range(10)]
    assert len(counting.sends) == 1


def test_requests_split_across_turns_are_reassembled(make, poller):
    harness = make(poller=poller)
    data = get("/split") + get("/after")
    for byte in data[:-1]:
        harness.send(bytes([byte]))
        harness.turn()
    # Everything but the last byte: the first request is answered, the second waits.
    assert [r.body for r in parse_responses(harness.read())] == [b"hello /split"]
    harness.send(data[-1:])
    harness.turn()
    assert [r.body for r in parse_responses(harness.read())] == [b"hello /after"]


def test_connection_close_closes_after_the_response(make, poller):
    harness = make(poller=poller)
    responses = harness.exchange(get("/bye", "Connection: close") + get("/never"))
    assert [r.body for r in responses] == [b"hello /bye"]
    assert responses[0].header("connection") == "close"
    assert harness.peer_eof
    harness.peer.close()
    harness.run_until(lambda: harness.driver.closed)
    assert not harness.registered
    assert harness.driver not in harness.ctx.connections


def test_handler_connection_close_field_closes(make, poller):
    def closing(request: Request) -> Response:
        return Response(200, [("Connection", "close")], b"done")

    harness = make(closing, poller=poller)
    [response] = harness.exchange(get("/"))
    assert response.header("connection") == "close"
    assert response.body == b"done"
    assert harness.peer_eof


def test_http10_closes_by_default(make, poller):
    harness = make(poller=poller)
    [response] = harness.exchange(get("/old", version="1.0"))
    assert response.status == 200
    assert response.body == b"hello /old"
    assert response.header("connection") == "close"
    assert harness.peer_eof


def test_http10_keep_alive_is_honoured(make, poller):
    harness = make(poller=poller)
    [response] = harness.exchange(get("/old", "Connection: keep-alive", version="1.0"))
    assert response.header("connection") == "keep-alive"
    assert not harness.peer_eof
    [response] = harness.exchange(get("/again", "Connection: keep-alive", version="1.0"))
    assert response.body == b"hello /again"


def test_peer_half_close_after_request_still_gets_the_response(make, poller):
    import socket

    harness = make(poller=poller)
    harness.send(get("/last"))
    harness.peer.shutdown(socket.SHUT_WR)
    data = harness.collect(lambda data: harness.peer_eof)
    assert [r.body for r in parse_responses(data)] == [b"hello /last"]
    harness.run_until(lambda: harness.driver.closed)
    assert not harness.registered
    assert harness.driver not in harness.ctx.connections


# --------------------------------------------------------------------- protocol errors


_HOST = b"Host: x\r\n"

BAD_REQUESTS = [
    pytest.param(b"GARBAGE\r\n\r\n", 400, {}, id="garbage"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, {}, id="no-host"),
    pytest.param(b"GET / HTTP/2.0\r\n" + _HOST + b"\r\n", 505, {}, id="version"),
    pytest.param(
        b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n" + _HOST + b"\r\n",
        414,
        {"max_request_line": 64},
        id="long-line",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\n" + _HOST + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        431,
        {"max_header_count": 2},
        id="many-fields",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 2000\r\n\r\n",
        413,
        {"max_body_bytes": 1000},
        id="big-body",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + _HOST + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        {},
        id="unknown-coding",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\n" + _HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
        {},
        id="two-lengths",
    ),
    pytest.param(b"GET / HTTP/1.1\r\n" + _HOST + b"Expect: teapot\r\n\r\n", 417, {}, id="expect"),
]


@pytest.mark.parametrize(("request_bytes", "status", "overrides"), BAD_REQUESTS)
def test_protocol_error_answers_its_status_and_closes(
    make, poller, caplog, request_bytes, status, overrides
):
    calls = []

    def handler(request: Request) -> Response:
        calls.append(request.path)
        return Response(200, [], b"should not happen")

    harness = make(handler, poller=poller, **overrides)
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        # A valid request after the bad one must never be parsed.
        responses = harness.exchange(request_bytes + get("/after"))
    assert statuses(responses) == [status]
    assert responses[0].header("connection") == "close"
    assert responses[0].header("content-type") == "text/plain; charset=utf-8"
    assert responses[0].body.startswith(b"%d " % status)
    assert calls == []
    assert harness.peer_eof
    [record] = [r for r in caplog.records if r.name == "treadle.server"]
    assert record.levelno == logging.INFO
    assert "bad request from 127.0.0.1:1234" in record.getMessage()


def test_protocol_error_lingers_draining_until_the_peer_closes(make, poller):
    harness = make(poller=poller)
    responses = harness.exchange(b"BROKEN\r\n\r\n")
    assert statuses(responses) == [400]
    assert harness.peer_eof  # our write side is shut down...
    driver = harness.driver
    assert not driver.closed  # ...but we still read, so the client is not reset
    assert driver._phase == states_module.LINGER
    # What the client keeps sending is drained and ignored.
    harness.send(b"x" * 100_000)
    harness.turn(3)
    assert not driver.closed
    assert harness.read() == b""
    harness.peer.close()
    harness.run_until(lambda: driver.closed)
    assert not harness.registered
    assert driver not in harness.ctx.connections


def test_linger_ends_after_its_timeout(make, poller):
    harness = make(poller=poller)
    assert statuses(harness.exchange(b"BROKEN\r\n\r\n")) == [400]
    harness.advance(driver_module.LINGER_S - 0.1)
    assert not harness.driver.closed
    harness.advance(0.2)
    assert harness.driver.closed
    assert not harness.registered


def test_error_after_good_pipelined_requests_keeps_their_answers(make, poller):
    harness = make(poller=poller)
    responses = harness.exchange(get("/1") + get("/2") + b"NOT HTTP\r\n\r\n" + get("/3"))
    assert statuses(responses) == [200, 200, 400]
    assert [r.body for r in responses[:2]] == [b"hello /1", b"hello /2"]


# ------------------------------------------------------------------------ 100-continue


def _echo_body(request: Request) -> Response:
    return Response(200, [], b"got " + (request.body or b""))


def test_expect_continue_sends_100_before_reading_the_body(make, poller):
    harness = make(_echo_body, poller=poller)
    harness.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    data = harness.collect(lambda data: b"\r\n\r\n" in data)
    assert data == b"HTTP/1.1 100 Continue\r\n\r\n"
    harness.turn(3)
    assert harness.read() == b""  # nothing more until the body comes
    harness.send(b"hello")
    [response] = parse_responses(harness.collect(lambda data: data.endswith(b"got hello")))
    assert response.status == 200
    assert response.header("connection") is None  # the cycle ended cleanly: keep-alive
    [again] = harness.exchange(get("/next"))
    assert again.status == 200


def test_expect_continue_streamed_body_gets_100_once(make, poller):
    chunks = []

    def streaming(request: Request) -> None:
        assert request.body is None
        request.stream.set_callbacks(
            chunks.append, lambda: request.respond(Response(200, [], b"%d" % sum(map(len, chunks))))
        )

    harness = make(streaming, poller=poller, body_buffer_bytes=10)
    harness.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    )
    assert harness.collect(lambda d: b"\r\n\r\n" in d) == b"HTTP/1.1 100 Continue\r\n\r\n"
    harness.send(b"z" * 100)
    [response] = parse_responses(harness.collect(lambda d: d.endswith(b"100")))
    assert response.body == b"100"


def test_no_100_continue_for_http10(make, poller):
    harness = make(_echo_body, poller=poller)
    harness.send(b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    harness.turn(3)
    assert harness.read() == b""
    harness.send(b"hello")
    data = harness.collect(lambda d: d.endswith(b"got hello"))
    assert b" 100 " not in data
    assert statuses(parse_responses(data)) == [200]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
    ],
    ids=["length-0", "no-body"],
)
def test_no_100_continue_for_an_empty_body(make, poller, request_bytes):
    harness = make(_echo_body, poller=poller)
    responses = harness.exchange(request_bytes)
    assert statuses(responses) == [200]
    assert responses[0].body == b"got "


def test_bodiless_expect_continue_keeps_the_connection(make, poller):
    harness = make(_echo_body, poller=poller)
    [response] = harness.exchange(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
    assert response.header("connection") is None


def test_no_100_continue_when_the_handler_refuses_a_streamed_body_at_once(make, poller):
    """A handler called at the head (the body is over body_buffer_bytes) that answers at
    once: the client is not asked for the body, and the connection closes because nothing
    tells whether the client will send that body anyway."""

    def refuse(request: Request) -> Response:
        return Response(413, [], b"no")

    harness = make(refuse, poller=poller, body_buffer_bytes=10)
    harness.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    )
    data = harness.collect(lambda d: d.endswith(b"no"))
    [response] = parse_responses(data)
    assert response.status == 413
    assert response.header("connection") == "close"
    harness.collect(lambda d: harness.peer_eof)


def test_post_body_is_not_mistaken_for_a_request(make, poller):
    harness = make(_echo_body, poller=poller)
    body = get("/smuggled")
    responses = harness.exchange(post("/", body) + get("/real"))
    assert [r.body for r in responses] == [b"got " + body, b"got "]


def test_half_close_after_a_pipelined_burst_answers_them_all(make, poller):
    import socket

    harness = make(poller=poller, requests_per_turn=2)
    harness.send(b"".join(get(f"/{n}") for n in range(7)))
    harness.peer.shutdown(socket.SHUT_WR)
    data = harness.collect(lambda d: harness.peer_eof)
    assert [r.body for r in parse_responses(data)] == [b"hello /%d" % n for n in range(7)]
    harness.run_until(lambda: harness.driver.closed)
    assert not harness.registered


def test_a_complete_request_with_connection_close_closes_without_lingering(make, poller):
    harness = make(poller=poller)
    [response] = harness.exchange(get("/bye", "Connection: close"))
    assert response.header("connection") == "close"
    harness.run_until(lambda: harness.driver.closed, 5)  # no wait for the client's FIN
    assert harness.peer_eof or harness.read() == b""


def test_connection_close_with_more_pipelined_lingers(make, poller):
    harness = make(poller=poller)
    harness.send(get("/bye", "Connection: close") + get("/unanswered"))
    harness.collect(lambda d: harness.peer_eof, 20)
    assert not harness.driver.closed  # reading and dropping, so the client sees the answer
    assert harness.driver._phase == states_module.LINGER
