"""The per-phase deadlines, end to end: request head (slowloris), request body,
keep-alive idle and write stall.

Each scenario waits for a server deadline of about a second, so each runs against the
servers of every poller at once (``run_on_each``): the waits overlap.
"""

from __future__ import annotations

import json
import select
import time

import pytest

from tests.data.apps import pattern_bytes

from .helpers import ServerProcess, request_bytes, run_on_each

TIMEOUT_S = 1.0
#: the slowloris client's pace: one byte of its request head per interval
DRIBBLE_INTERVAL_S = 0.2


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    seconds = str(TIMEOUT_S)
    return [
        "--header-timeout", seconds,
        "--body-timeout", seconds,
        "--idle-timeout", seconds,
        "--write-timeout", seconds,
        "--body-buffer-bytes", "1024",
    ]  # fmt: skip


def test_slowloris_is_cut_by_the_head_deadline(servers: dict[str, ServerProcess]) -> None:
    def scenario(server: ServerProcess) -> None:
        head = request_bytes("GET", "/hello", [("X-Slow", "s" * 200)])
        with server.connect() as slow, server.connect() as other:
            started = time.monotonic()
            served = 0
            for index, byte in enumerate(head):
                slow.send(bytes([byte]))
                # Meanwhile the other client is served normally.
                assert other.get(f"/mark/{index}").body == str(index).encode()
                served += 1
                # The slowloris behaviour under test: the next byte only after an
                # interval; the wait ends early once the server answers.
                readable, _, _ = select.select([slow.sock], [], [], DRIBBLE_INTERVAL_S)
                if readable:
                    break
            else:
                raise AssertionError("the whole head was dribbled without a 408")
            response = slow.read_response()
            lasted = time.monotonic() - started
            assert response.status == 408
            assert response.closes
            assert slow.expect_eof() == b""
            port = slow.sock.getsockname()[1]
        # The deadline runs from the first byte; bytes arriving do not extend it.
        assert lasted >= TIMEOUT_S * 0.9
        assert index < len(head) - 1
        assert served >= 2
        server.wait_for_log(rf"closing 127\.0\.0\.1:{port}: request head timed out")

    run_on_each(servers, scenario)


def test_head_deadline_applies_to_a_second_request(servers: dict[str, ServerProcess]) -> None:
    def scenario(server: ServerProcess) -> None:
        with server.connect() as connection:
            assert connection.get("/mark/first").body == b"first"
            connection.send(b"GET /mark/second HTTP/1.1\r\nHost: x\r\n")
            response = connection.read_response()
            assert response.status == 408 and response.closes
            assert connection.expect_eof() == b""

    run_on_each(servers, scenario)


def test_idle_keep_alive_connection_is_closed_quietly(servers: dict[str, ServerProcess]) -> None:
    def scenario(server: ServerProcess) -> None:
        logged_before = len(server.log_lines())
        with server.connect() as used, server.connect() as never_used:
            assert used.get("/hello").status == 200
            # no 408, no bytes at all: just the end of the connection
            assert used.expect_eof() == b""
            assert never_used.expect_eof() == b""
            ports = [c.sock.getsockname()[1] for c in (used, never_used)]
        # and nothing worth a log line
        for line in server.log_lines()[logged_before:]:
            assert not any(f"127.0.0.1:{port}" in line for port in ports), line

    run_on_each(servers, scenario)


@pytest.mark.parametrize("kind", ["content-length", "chunked"])
def test_stalled_body_gets_408(servers: dict[str, ServerProcess], kind: str) -> None:
    if kind == "content-length":
        data = request_bytes("POST", "/echo", [("Content-Length", "100")]) + b"x" * 10
    else:
        data = request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")]) + b"a\r\n01234"

    def scenario(server: ServerProcess) -> None:
        with server.connect() as connection:
            connection.send(data)
            response = connection.read_response()
            assert response.status == 408, response
            assert response.closes
            assert connection.expect_eof() == b""
            port = connection.sock.getsockname()[1]
        server.wait_for_log(rf"closing 127\.0\.0\.1:{port}: request body timed out")

    run_on_each(servers, scenario)


def test_stalled_streamed_body_gets_408(servers: dict[str, ServerProcess]) -> None:
    """Over --body-buffer-bytes the handler was called at the head and holds the
    exchange; nothing was answered yet, so the body deadline still answers 408."""
    data = request_bytes("POST", "/digest", [("Content-Length", "5000")]) + pattern_bytes(2000)

    def scenario(server: ServerProcess) -> None:
        with server.connect() as connection:
            connection.send(data)
            assert connection.expect_eof().startswith(b"HTTP/1.1 408 ")
            port = connection.sock.getsockname()[1]
        server.wait_for_log(rf"closing 127\.0\.0\.1:{port}: request body timed out")
        with server.connect() as connection:
            assert connection.get("/mark/alive").body == b"alive"

    run_on_each(servers, scenario)


def test_slow_body_that_keeps_coming_is_not_cut(servers: dict[str, ServerProcess]) -> None:
    """The body deadline measures time since the last byte, not since the first."""
    pieces = 8

    def scenario(server: ServerProcess) -> None:
        with server.connect() as connection:
            connection.request("POST", "/echo", [("Content-Length", str(pieces))])
            for _ in range(pieces - 1):
                connection.send(b"x")
                # a byte every quarter of the body deadline: 2 s in all, twice the deadline
                readable, _, _ = select.select([connection.sock], [], [], TIMEOUT_S / 4)
                assert not readable, "the server answered before the body was complete"
            connection.send(b"x")
            response = connection.read_response()
            assert response.status == 200
            assert json.loads(response.body)["body"] == "x" * pieces

    run_on_each(servers, scenario)


def test_client_that_stops_reading_is_closed(servers: dict[str, ServerProcess]) -> None:
    def scenario(server: ServerProcess) -> None:
        with server.connect() as connection:
            connection.request("GET", "/big?size=20000000")
            port = connection.sock.getsockname()[1]
            server.wait_for_log(
                rf"closing 127\.0\.0\.1:{port}: no write progress for {TIMEOUT_S} s"
            )
            # what was sent before the cut, then the end of the connection
            received = b""
            try:
                received = connection.read_until_eof()
            except ConnectionResetError:
                pass
            assert len(received) < 20_000_000

    run_on_each(servers, scenario)
