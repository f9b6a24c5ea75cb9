"""HTTP/1.1 end to end: errors, 100-continue, HEAD, chunked bodies both ways, pipelining,
failing handlers, IPv6. Raw sockets, so every byte the server sends is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
import requests

from tests.data.apps import ERROR_MARKER, pattern_bytes

from .helpers import (
    TIMEOUT_S,
    RawConnection,
    ServerProcess,
    chunked,
    request_bytes,
    requires_ipv6,
)

MAX_BODY = 4096
BODY_BUFFER = 1024


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    # Small limits so that 413 and the streamed-body path are cheap to reach.
    return ["--max-body-bytes", str(MAX_BODY), "--body-buffer-bytes", str(BODY_BUFFER)]


# ----------------------------------------------------------------- bad requests

BAD_REQUESTS = {
    "missing-host": (400, b"GET / HTTP/1.1\r\n\r\n"),
    "bad-method": (400, b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "bare-lf": (400, b"GET / HTTP/1.1\nHost: x\n\n"),
    "obs-fold": (400, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n"),
    "space-before-colon": (400, b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    "cl-and-te": (
        400,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    "conflicting-cl": (400, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab"),
    "bad-chunk-size": (
        400,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ),
    "te-in-http10": (400, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "body-over-limit": (
        413,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1),
    ),
    "chunked-body-over-limit": (
        413,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked(b"x" * (MAX_BODY // 2), b"y" * (MAX_BODY // 2 + 10)),
    ),
    "request-line-too-long": (414, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    "header-section-too-large": (
        431,
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n",
    ),
    "too-many-fields": (
        431,
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
        + b"\r\n",
    ),
    "unknown-transfer-coding": (
        501,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ),
    "http-2-0": (505, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
    "http-3-1": (505, b"GET / HTTP/3.1\r\nHost: x\r\n\r\n"),
    "unknown-expectation": (417, b"GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_a_close(server: ServerProcess, name: str) -> None:
    status, data = BAD_REQUESTS[name]
    with server.connect() as connection:
        connection.send(data)
        response = connection.read_response()
        assert response.status == status, response
        assert response.closes
        assert (response.header("content-type") or "").startswith("text/plain")
        assert len(response.body) < 1000
        assert connection.expect_eof() == b""
        client_port = connection.sock.getsockname()[1]
    server.wait_for_log(
        rf"INFO treadle\.server: bad request from 127\.0\.0\.1:{client_port}: "
        rf".*\({status}\)$"
    )


def test_bad_request_after_a_good_one_on_the_same_connection(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.send(request_bytes("GET", "/mark/fine") + b"GET / HTTP/1.1\r\n\r\n")
        assert connection.read_response().body == b"fine"
        response = connection.read_response()
        assert response.status == 400 and response.closes
        assert connection.expect_eof() == b""


# --------------------------------------------------------------- 100-continue


def test_expect_continue_is_answered_before_the_body_is_sent(server: ServerProcess) -> None:
    body = b"the body, sent only after 100 Continue"
    with server.connect() as connection:
        connection.request(
            "POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(len(body)))]
        )
        interim = connection.read_response(interim=True)
        assert (interim.status, interim.headers) == (100, [])
        connection.send(body)
        response = connection.read_response()
        assert response.status == 200
        assert json.loads(response.body)["body"] == body.decode()


def test_expect_continue_for_a_streamed_body(server: ServerProcess) -> None:
    body = pattern_bytes(BODY_BUFFER * 3)
    with server.connect() as connection:
        connection.request(
            "POST", "/digest", [("Expect", "100-continue"), ("Transfer-Encoding", "chunked")]
        )
        assert connection.read_response(interim=True).status == 100
        connection.send(chunked(body[:1000], body[1000:]))
        response = connection.read_response()
        assert response.body.startswith(b"%d " % len(body))
        assert response.header("x-streamed") == "true"


def test_no_continue_for_a_body_that_is_refused(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request(
            "POST", "/echo", [("Expect", "100-continue"), ("Content-Length", str(MAX_BODY * 2))]
        )
        response = connection.read_response(interim=True)
        assert response.status == 413
        assert connection.expect_eof() == b""


def test_no_continue_for_http10(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request(
            "POST", "/echo", [("Expect", "100-continue")], b"abc", "HTTP/1.0", host=None
        )
        # the first thing to come back is the final response: no interim 100
        response = connection.read_response(interim=True)
        assert response.status == 200
        assert json.loads(response.body)["body"] == "abc"


def test_continue_then_pipelined_request(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "2")])
        assert connection.read_response(interim=True).status == 100
        connection.send(b"ok" + request_bytes("GET", "/mark/next"))
        assert json.loads(connection.read_response().body)["body"] == "ok"
        # the second request did not ask for 100 Continue and gets none
        assert connection.read_response(interim=True).body == b"next"


# ------------------------------------------------------------------------ HEAD


@pytest.mark.parametrize("target", ["/hello", "/big?size=100000", "/stream?pieces=3&size=10"])
def test_head_has_no_body(server: ServerProcess, target: str) -> None:
    with server.connect() as connection:
        connection.request("HEAD", target)
        response = connection.read_response("HEAD")
        assert response.status == 200
        if target == "/hello":
            assert response.header("content-length") == "13"
        # had any body byte been sent, it would now be read as the next status line
        assert connection.get("/mark/after-head").body == b"after-head"


# -------------------------------------------------------------- request bodies


def test_chunked_request_body_reaches_the_handler(server: ServerProcess) -> None:
    body = chunked(b"Hello, ", b"chunked ", b"world", trailers=[("X-Trailer", "t")])
    with server.connect() as connection:
        connection.request("POST", "/echo", [("Transfer-Encoding", "chunked")], body)
        document = json.loads(connection.read_response().body)
        assert document["body"] == "Hello, chunked world"
        assert not document["streamed"]
        # the connection is in step afterwards
        assert connection.get("/mark/x").body == b"x"


def test_chunked_request_with_extensions_split_across_sends(server: ServerProcess) -> None:
    data = (
        request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")])
        + b"5;name=value\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n"
    )
    with server.connect() as connection:
        for start in range(0, len(data), 7):
            connection.send(data[start : start + 7])
        assert json.loads(connection.read_response().body)["body"] == "abcdefgh"


def test_large_chunked_body_is_streamed_to_the_handler(server: ServerProcess) -> None:
    # over --body-buffer-bytes but under --max-body-bytes
    body = pattern_bytes(MAX_BODY - 10)
    pieces = [body[i : i + 500] for i in range(0, len(body), 500)]
    with server.connect() as connection:
        connection.request("POST", "/echo", [("Transfer-Encoding", "chunked")], chunked(*pieces))
        document = json.loads(connection.read_response().body)
        assert document["streamed"]
        assert document["body"] == body.decode()


def test_content_length_body_exactly_at_the_buffer_limit(server: ServerProcess) -> None:
    for size, streamed in [(BODY_BUFFER, False), (BODY_BUFFER + 1, True)]:
        body = pattern_bytes(size)
        with server.connect() as connection:
            connection.request("POST", "/echo", body=body)
            document = json.loads(connection.read_response().body)
            assert (len(document["body"]), document["streamed"]) == (size, streamed)


# ------------------------------------------------------------- response bodies


def test_iterable_is_chunked_to_http11(server: ServerProcess) -> None:
    with server.connect() as connection:
        response = connection.get("/stream?pieces=20&size=100")
        assert response.framing == "chunked"
        assert response.header("content-length") is None
        assert response.body == pattern_bytes(2000)
        assert not response.closes
        assert connection.get("/mark/next").body == b"next"


def test_iterable_is_close_delimited_to_http10(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("GET", "/stream?pieces=20&size=100", version="HTTP/1.0", host=None)
        response = connection.read_response()
        assert response.framing == "close"
        assert response.header("transfer-encoding") is None
        assert response.closes
        assert response.body == pattern_bytes(2000)


def test_iterable_to_http10_keep_alive_still_closes(server: ServerProcess) -> None:
    # Without a length, the end of the body can only be the end of the connection.
    with server.connect() as connection:
        connection.request(
            "GET", "/stream?pieces=2&size=5", [("Connection", "keep-alive")], version="HTTP/1.0"
        )
        response = connection.read_response()
        assert (response.framing, response.body) == ("close", pattern_bytes(10))


# ------------------------------------------------------------ failing handlers


def test_handler_exception_is_500_and_logged_with_traceback(server: ServerProcess) -> None:
    with server.connect() as connection:
        response = connection.get("/error")
        assert response.status == 500
        assert response.closes
        assert ERROR_MARKER.encode() not in response.body
        assert b"Traceback" not in response.body and b"RuntimeError" not in response.body
        assert connection.expect_eof() == b""
    server.wait_for_log(
        r"ERROR treadle\.server: unhandled exception in application for GET /error$"
    )
    server.wait_for_log(rf"^RuntimeError: {re.escape(ERROR_MARKER)}$")
    assert "Traceback (most recent call last):" in server.log
    # and the server goes on
    with server.connect() as connection:
        assert connection.get("/mark/alive").body == b"alive"


def test_exception_in_body_iterator_cuts_the_response(server: ServerProcess) -> None:
    before = len(server.log_lines("unhandled exception in response body iterator"))
    with server.connect() as connection:
        connection.request("GET", "/error-in-body")
        raw = connection.read_until_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head.lower()
    # the first piece went out; the terminating chunk never does, so a client can tell
    # the body was cut
    assert body == b"c\r\nfirst piece\n\r\n"
    server.wait_for_log("unhandled exception in response body iterator", count=before + 1)


# ------------------------------------------------------------------ pipelining


def test_pipelined_burst_is_answered_in_order(server: ServerProcess) -> None:
    count = 100
    burst = b"".join(request_bytes("GET", f"/mark/req-{i}") for i in range(count))
    with server.connect() as connection:
        connection.send(burst)
        for index in range(count):
            response = connection.read_response()
            assert response.status == 200
            assert response.header("x-marker") == f"req-{index}"
            assert response.body == f"req-{index}".encode()


def test_pipelined_mixed_methods_and_bodies(server: ServerProcess) -> None:
    burst = (
        request_bytes("POST", "/echo", body=b"first")
        + request_bytes("HEAD", "/hello")
        + request_bytes(
            "POST", "/echo", [("Transfer-Encoding", "chunked")], chunked(b"sec", b"ond")
        )
        + request_bytes("GET", "/stream?pieces=2&size=4")
        + request_bytes("GET", "/mark/end", [("Connection", "close")])
    )
    with server.connect() as connection:
        connection.send(burst)
        assert json.loads(connection.read_response().body)["body"] == "first"
        assert connection.read_response("HEAD").header("content-length") == "13"
        assert json.loads(connection.read_response().body)["body"] == "second"
        assert connection.read_response().body == pattern_bytes(8)
        last = connection.read_response()
        assert last.body == b"end" and last.closes
        assert connection.expect_eof() == b""


# ------------------------------------------------------------------------ IPv6


@requires_ipv6
def test_ipv6_loopback(spawn: Callable[..., ServerProcess], poller: str) -> None:
    server = spawn(poller=poller, bind=["[::1]:0", "127.0.0.1:0"])
    # one log line per bind, in the order given
    lines = server.log_lines("listening on")
    assert len(lines) == 2, lines
    (host6, port6), (host4, port4) = server.addresses
    assert (host6, host4) == ("::1", "127.0.0.1")
    assert lines[0].endswith(f"listening on http://[::1]:{port6} (poller {poller})")
    assert lines[1].endswith(f"listening on http://127.0.0.1:{port4} (poller {poller})")
    with server.connect() as connection:
        document = json.loads(connection.get("/echo").body)
    assert document["client"][0] == "::1"
    response = requests.post(server.url + "/echo", data=b"over IPv6", timeout=TIMEOUT_S)
    assert response.json()["body"] == "over IPv6"
    with RawConnection((host4, port4)) as connection:
        assert json.loads(connection.get("/echo").body)["client"][0] == "127.0.0.1"
