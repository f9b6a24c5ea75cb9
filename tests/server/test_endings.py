"""Every way an exchange can end, in every body mode, through the real driver.

The promise under test is the session's one teardown: however the exchange ends
(complete, protocol error, deadline, client gone, application failure, shutdown) and
whatever the body mode (none, buffered whole, streamed), the response iterable's
``close()`` runs exactly once, a streamed body hears ``on_abort`` when it will never
end, and the connection is released (or kept alive, when the ending allows it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from treadle.server import Ending, Exchange, FileSegment

from .helpers import get, parse_responses, post, reset, statuses

PIECE = b"x" * 1024
SMALL_BUFFER = 16  # body_buffer_bytes: a body longer than this is streamed
BODY_MODES = ("none", "buffered", "streamed")


class Tracked:
    """A response iterable that counts ``close()`` and can be endless or fail."""

    def __init__(self, pieces: int | None = None, fail_at: int | None = None) -> None:
        self.pieces = pieces
        self.fail_at = fail_at
        self.sent = 0
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.fail_at is not None and self.sent == self.fail_at:
            raise RuntimeError("the body broke")
        if self.pieces is not None and self.sent >= self.pieces:
            raise StopIteration
        self.sent += 1
        return PIECE

    def close(self) -> None:
        self.closes += 1


class App:
    """Answers every request at once with ``make_body()``; records streams and aborts."""

    def __init__(self, make_body) -> None:
        self.make_body = make_body
        self.bodies: list[Tracked] = []
        self.exchanges: list[Exchange] = []
        self.events: list[str] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        if exchange.stream is not None:
            exchange.stream.set_callbacks(
                lambda data: self.events.append("data"),
                lambda: self.events.append("end"),
                lambda: self.events.append("abort"),
            )
        body = self.make_body()
        self.bodies.append(body)
        exchange.respond_iterable(200, [(b"content-type", b"text/plain")], body)


def _request(mode: str) -> bytes:
    if mode == "none":
        return get("/")
    if mode == "buffered":
        return post("/", b"tiny")
    # streamed: a chunked body whose first piece passes the buffer threshold; the
    # body is left open so that it is still arriving while the response goes out
    return (
        b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"20\r\n" + b"b" * 32 + b"\r\n"
    )


def _released(harness) -> bool:
    return (
        harness.driver.closed
        and not harness.registered
        and harness.driver not in harness.ctx.connections
    )


@pytest.mark.parametrize("mode", BODY_MODES)
def test_complete_closes_the_iterable_once_and_keeps_the_connection(make, poller, mode):
    app = App(lambda: Tracked(pieces=3))
    harness = make(app, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    harness.send(_request(mode))
    if mode == "streamed":
        harness.turn()
        harness.send(b"0\r\n\r\n")  # the body ends, after the response began
    data = harness.collect(lambda d: d.endswith(b"0\r\n\r\n"))
    [response] = parse_responses(data)
    assert response.status == 200 and response.body == PIECE * 3
    [body] = app.bodies
    assert body.closes == 1
    harness.turn(3)
    assert body.closes == 1
    assert not harness.driver.closed  # keep-alive: the next request is welcome
    [response] = harness.exchange(get("/again"))
    assert response.status == 200
    if mode == "streamed":
        # Answered before its body ended: the handler is done with the body, which the
        # server read and dropped; neither on_end nor on_abort is owed.
        assert app.events == ["data"]


@pytest.mark.parametrize("mode", BODY_MODES)
def test_client_gone_closes_the_iterable_once(make, poller, mode):
    app = App(lambda: Tracked())  # endless
    harness = make(
        app, poller=poller, native=False, tcp=True, body_buffer_bytes=SMALL_BUFFER,
        buffer_bytes=8192,
    )  # fmt: skip
    harness.send(_request(mode))
    harness.run_until(lambda: app.bodies and app.bodies[0].sent > 0)
    reset(harness.peer)
    harness.run_until(lambda: harness.driver.closed, 200)
    [body] = app.bodies
    assert body.closes == 1
    assert _released(harness)
    if mode == "streamed":
        assert app.events == ["data", "abort"]


@pytest.mark.parametrize("mode", BODY_MODES)
def test_application_failure_closes_the_iterable_once(make, poller, mode, caplog):
    app = App(lambda: Tracked(fail_at=2))
    harness = make(app, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(_request(mode))
        data = harness.collect(lambda d: harness.peer_eof, 200)
    [response] = parse_responses(data, eof=True)
    assert response.status == 200 and not response.complete  # the head went out: cut
    [body] = app.bodies
    assert body.closes == 1
    assert any("response body iterator" in r.getMessage() for r in caplog.records)
    harness.peer.close()
    harness.run_until(lambda: harness.driver.closed, 200)
    assert _released(harness)
    if mode == "streamed":
        assert app.events == ["data", "abort"]


@pytest.mark.parametrize("mode", BODY_MODES)
def test_write_deadline_closes_the_iterable_once(make, poller, mode):
    app = App(lambda: Tracked())  # endless, to a client that never reads
    harness = make(
        app, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER, buffer_bytes=4096,
        write_timeout=5.0, body_timeout=60.0,
    )  # fmt: skip
    harness.send(_request(mode))
    harness.run_until(lambda: harness.driver.out.items and not harness.driver._write_ready, 200)
    harness.advance(5.0 + 0.01, turns=2)
    assert harness.driver.closed
    [body] = app.bodies
    assert body.closes == 1
    assert _released(harness)
    if mode == "streamed":
        assert app.events == ["data", "abort"]


@pytest.mark.parametrize("mode", BODY_MODES)
def test_shutdown_closes_the_iterable_once(make, poller, mode):
    app = App(lambda: Tracked())
    harness = make(app, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    harness.send(_request(mode))
    harness.run_until(lambda: app.bodies and app.bodies[0].sent > 0)
    harness.driver.close()  # what Server.close does to each connection
    [body] = app.bodies
    assert body.closes == 1
    assert _released(harness)
    assert app.exchanges[0].finished and app.exchanges[0].closed
    if mode == "streamed":
        assert app.events == ["data", "abort"]


def test_protocol_error_mid_body_closes_the_iterable_once(make, poller, caplog):
    """Regression: an endless iterable answering while a chunked body arrives, then the
    client breaks the framing. The connection closed, but close() was never called."""
    app = App(lambda: Tracked())
    harness = make(app, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    harness.send(_request("streamed"))
    harness.run_until(lambda: app.bodies and app.bodies[0].sent > 0)
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.send(b"zz\r\nnot a chunk size\r\n")
        harness.collect(lambda d: harness.peer_eof, 400)
    [body] = app.bodies
    assert body.closes == 1
    assert app.events == ["data", "abort"]
    assert any("bad request" in r.getMessage() for r in caplog.records)
    harness.peer.close()
    harness.run_until(lambda: harness.driver.closed, 200)
    assert _released(harness)


def test_body_deadline_aborts_the_stream_and_answers_408(make, poller):
    app = App(lambda: Tracked(pieces=0))  # empty iterable: the response is done at once
    seen: list[str] = []

    def waits(exchange: Exchange) -> None:
        assert exchange.stream is not None
        exchange.stream.set_callbacks(
            lambda data: seen.append("data"), lambda: seen.append("end"),
            lambda: seen.append("abort"),
        )  # fmt: skip

    harness = make(
        waits, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER, body_timeout=3.0
    )
    harness.send(_request("streamed"))
    harness.turn(2)
    harness.advance(3.0 + 0.01)
    data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data, eof=True)) == [408]
    assert seen == ["data", "abort"]
    assert app.bodies == []


# ------------------------------------------------------------------ regressions


def test_on_end_that_raises_is_answered_500_and_the_connection_released(make, poller, caplog):
    """Regression: the exception escaped to the reactor, the client got nothing and the
    connection stayed open for good (its timer re-armed itself in the app phase)."""

    def handler(exchange: Exchange) -> None:
        assert exchange.stream is not None

        def on_end() -> None:
            raise ValueError("on_end broke")

        exchange.stream.set_callbacks(lambda data: None, on_end)

    harness = make(handler, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(post("/", b"z" * 64))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 500
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert "on_end" in record.getMessage()
    harness.peer.close()
    harness.advance(1000.0, turns=3)
    assert _released(harness)


def test_on_data_that_raises_aborts_the_stream(make, poller, caplog):
    seen: list[str] = []

    def handler(exchange: Exchange) -> None:
        assert exchange.stream is not None

        def on_data(data: bytes) -> None:
            raise ValueError("on_data broke")

        exchange.stream.set_callbacks(on_data, lambda: seen.append("end"),
                                      lambda: seen.append("abort"))  # fmt: skip

    harness = make(handler, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(post("/", b"z" * 64))
        data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data, eof=True)) == [500]
    assert seen == ["abort"]  # the handler learns its body will never end


def test_close_that_raises_after_a_complete_response_closes_the_connection(make, poller, caplog):
    class BadClose(Tracked):
        def close(self) -> None:
            super().close()
            raise OSError("close broke")

    app = App(lambda: BadClose(pieces=1))
    harness = make(app, poller=poller, native=False)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/") + get("/never"))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 200 and response.body == PIECE
    assert app.bodies[0].closes == 1
    assert len(app.bodies) == 1  # the pipelined request is not served on a doubtful connection
    assert any("closing a response body" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ flow control


def test_paused_body_stops_reading_until_resumed(make, poller):
    got: list[bytes] = []
    holder: list[Exchange] = []

    def handler(exchange: Exchange) -> None:
        assert exchange.stream is not None
        holder.append(exchange)
        exchange.stream.set_callbacks(
            got.append, lambda: exchange.respond(200, [], b"%d" % len(b"".join(got)))
        )
        exchange.stream.pause()

    harness = make(handler, poller=poller, native=False, body_buffer_bytes=SMALL_BUFFER)
    harness.send(post("/", b"q" * 40_000))
    harness.turn(3)
    assert not harness.read_interest
    held = len(b"".join(got))
    harness.turn(3)
    assert len(b"".join(got)) == held  # nothing delivered while paused
    holder[0].stream.resume()  # type: ignore[union-attr]
    data = harness.collect(lambda d: d.endswith(b"40000"))
    assert parse_responses(data)[0].body == b"40000"


def test_on_drain_is_called_once_the_client_has_read(make, poller):
    calls: list[str] = []
    holder: list[Exchange] = []

    def handler(exchange: Exchange) -> None:
        holder.append(exchange)
        exchange.start(200, [(b"content-length", b"%d" % (600 * 1024 + 3))])
        exchange.write(b"y" * (600 * 1024))  # past the high-water mark
        assert not exchange.writable
        exchange.on_drain(lambda: (calls.append("drained"), exchange.write(b"end"),
                                   exchange.end()))  # fmt: skip

    harness = make(handler, poller=poller, native=False, buffer_bytes=8192)
    harness.send(get("/"))
    harness.turn(3)
    assert calls == []  # nobody read yet
    data = harness.collect(lambda d: d.endswith(b"end"), 2000)
    assert calls == ["drained"]
    assert parse_responses(data)[0].body.endswith(b"yend")
    assert holder[0].finished


def test_a_file_that_shrinks_mid_response_closes_the_connection(make, poller, tmp_path, caplog):
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * 3_000_000)
    fd = os.open(path, os.O_RDONLY)
    released: list[int] = []

    def handler(exchange: Exchange) -> None:
        segment = FileSegment(fd, 0, 3_000_000, lambda: released.append(1))
        exchange.respond_iterable(200, [(b"content-length", b"3000000")], [segment])

    try:
        harness = make(handler, poller=poller, native=False, buffer_bytes=65536)
        harness.send(get("/"))
        harness.run_until(lambda: harness.driver.out.items and not harness.driver._write_ready)
        os.truncate(path, 100_000)
        with caplog.at_level(logging.WARNING, logger="treadle.server"):
            data = harness.collect(lambda d: harness.peer_eof, 2000)
        assert len(data) < 3_000_000  # cut short of the announced length: the client can tell
        assert released == [1]
        assert _released(harness)
        assert any("file ended" in r.getMessage() for r in caplog.records)
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["complete", "client gone", "shutdown"])
def test_on_finish_tells_how_the_exchange_ended_once(make, poller, how):
    endings: list[object] = []

    def handler(exchange: Exchange) -> None:
        exchange.on_finish(endings.append)
        if how == "complete":
            exchange.respond(200, [], b"done")
        else:
            exchange.start(200, [])

    harness = make(handler, poller=poller, native=False, tcp=True)
    harness.send(get("/"))
    harness.turn(2)
    if how == "client gone":
        reset(harness.peer)
        harness.run_until(lambda: harness.driver.closed, 200)
    elif how == "shutdown":
        harness.driver.close()
    harness.turn(2)
    expected = {"complete": Ending.COMPLETE, "client gone": Ending.CLIENT_GONE,
                "shutdown": Ending.SHUTDOWN}[how]  # fmt: skip
    assert endings == [expected]


def test_on_finish_registered_after_the_end_is_called_at_once(make, poller):
    held: list[Exchange] = []
    harness = make(held.append, poller=poller, native=False)
    harness.send(get("/"))
    harness.turn()
    held[0].respond(204, [])
    late: list[object] = []
    held[0].on_finish(late.append)
    assert late == [Ending.COMPLETE]
