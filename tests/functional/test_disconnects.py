"""Clients that vanish (reset) or stop sending (half-close) in every phase of an exchange.

After each scenario the server still answers another client, and its descriptor count
comes back to what it was when it started: no socket is leaked, whatever the client
did. Scenarios run on the servers of every poller at once (``run_on_each``), because
each ends waiting for the server to notice and close.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from tests.data.apps import pattern_bytes

from .helpers import RawConnection, ServerProcess, request_bytes, run_on_each

BODY_BUFFER = 64 * 1024
BIG = 16 * 1024 * 1024  # more than loopback socket buffers hold


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    return ["--body-buffer-bytes", str(BODY_BUFFER)]


@pytest.fixture(scope="module")
def baselines(servers: dict[str, ServerProcess]) -> dict[str, int]:
    """Each server's descriptor count with no client connected."""
    return {name: server.fd_count() for name, server in servers.items()}


@pytest.fixture
def check_clean(
    servers: dict[str, ServerProcess], baselines: dict[str, int]
) -> Iterator[Callable[[ServerProcess], None]]:
    """``check_clean(server)``: it serves another client and holds no extra descriptor."""

    def check(server: ServerProcess) -> None:
        with server.connect() as other:
            assert other.get("/mark/other").body == b"other"
        server.wait_fd_count(baselines[server.poller])

    yield check
    for server in servers.values():
        assert not server.log_lines("ERROR"), server.tail()
        assert not server.log_lines("WARNING"), server.tail()


def receive_at_least(connection: RawConnection, size: int) -> None:
    """Read until ``size`` bytes of the response have arrived (they stay buffered)."""
    while len(connection.buffer) < size:
        assert connection._fill(), "EOF before the response was under way"


# --------------------------------------------------------------------- resets

RESETS: dict[str, Callable[[RawConnection], None]] = {
    "before-any-request": lambda c: None,
    "mid-head": lambda c: c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Partial: yes"),
    "mid-body": lambda c: c.send(
        request_bytes("POST", "/echo", [("Content-Length", "1000")]) + b"x" * 100
    ),
    "mid-chunked-body": lambda c: c.send(
        request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")]) + b"100\r\nabc"
    ),
    "mid-streamed-body": lambda c: c.send(
        request_bytes("POST", "/digest", [("Content-Length", str(10 * BODY_BUFFER))])
        + pattern_bytes(3 * BODY_BUFFER)
    ),
    "mid-response": lambda c: (
        c.request("GET", f"/big?size={BIG}"),
        receive_at_least(c, 100_000),
    ),
    "mid-iterable-response": lambda c: (
        c.request("GET", f"/stream?pieces={BIG // 65536}&size=65536"),
        receive_at_least(c, 100_000),
    ),
    "with-pipelined-requests-unread": lambda c: c.send(
        b"".join(request_bytes("GET", "/big?size=1000000") for _ in range(30))
    ),
}


@pytest.mark.parametrize("when", list(RESETS))
def test_reset(
    servers: dict[str, ServerProcess], check_clean: Callable[[ServerProcess], None], when: str
) -> None:
    def scenario(server: ServerProcess) -> None:
        connection = server.connect()
        RESETS[when](connection)
        connection.reset()
        check_clean(server)

    run_on_each(servers, scenario)


# ---------------------------------------------------------------- half-closes


def half_close_after_request(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("GET", "/mark/half")
        connection.shutdown_write()
        assert connection.read_response().body == b"half"
        assert connection.expect_eof() == b""


def half_close_after_pipelined_requests(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.send(b"".join(request_bytes("GET", f"/mark/{i}") for i in range(20)))
        connection.shutdown_write()
        for index in range(20):
            assert connection.read_response().body == str(index).encode()
        assert connection.expect_eof() == b""


def half_close_before_a_large_response(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("GET", f"/big?size={BIG}")
        connection.shutdown_write()
        assert connection.read_response().body == pattern_bytes(BIG)
        assert connection.expect_eof() == b""


def half_close_mid_response(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("GET", f"/stream?pieces={BIG // 65536}&size=65536")
        receive_at_least(connection, 100_000)
        connection.shutdown_write()
        response = connection.read_response()
        assert response.framing == "chunked"
        assert response.body == pattern_bytes(BIG)
        assert connection.expect_eof() == b""


def half_close_after_a_streamed_body(server: ServerProcess) -> None:
    body = pattern_bytes(5 * BODY_BUFFER)
    with server.connect() as connection:
        connection.request("POST", "/digest", body=body)
        connection.shutdown_write()
        response = connection.read_response()
        assert response.body == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
        assert response.header("x-streamed") == "true"
        assert connection.expect_eof() == b""


def half_close_mid_head(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        connection.shutdown_write()
        response = connection.read_response()
        assert response.status == 400 and response.closes
        assert connection.expect_eof() == b""


def half_close_mid_body(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request("POST", "/echo", [("Content-Length", "1000")], b"x" * 100)
        connection.shutdown_write()
        response = connection.read_response()
        assert response.status == 400 and response.closes
        assert b"body" in response.body
        assert connection.expect_eof() == b""


def half_close_mid_streamed_body(server: ServerProcess) -> None:
    with server.connect() as connection:
        connection.request(
            "POST",
            "/digest",
            [("Content-Length", str(10 * BODY_BUFFER))],
            pattern_bytes(3 * BODY_BUFFER),
        )
        connection.shutdown_write()
        response = connection.read_response()
        assert response.status == 400 and response.closes
        assert connection.expect_eof() == b""


def half_close_when_idle(server: ServerProcess) -> None:
    with server.connect() as connection:
        assert connection.get("/hello").status == 200
        connection.shutdown_write()
        assert connection.expect_eof() == b""


HALF_CLOSES = [
    half_close_after_request,
    half_close_after_pipelined_requests,
    half_close_before_a_large_response,
    half_close_mid_response,
    half_close_after_a_streamed_body,
    half_close_mid_head,
    half_close_mid_body,
    half_close_mid_streamed_body,
    half_close_when_idle,
]


@pytest.mark.parametrize(
    "scenario", HALF_CLOSES, ids=[f.__name__.removeprefix("half_close_") for f in HALF_CLOSES]
)
def test_half_close(
    servers: dict[str, ServerProcess],
    check_clean: Callable[[ServerProcess], None],
    scenario: Callable[[ServerProcess], None],
) -> None:
    def run(server: ServerProcess) -> None:
        scenario(server)
        check_clean(server)

    run_on_each(servers, run)
