"""The responder interface itself (``Exchange``), as an adapter other than the native one
would use it: start/write/end, answers after the connection is gone, the BodyStream."""

from __future__ import annotations

import logging
from collections.abc import Callable

from treadle.http import ServerConnection
from treadle.server import BodyStream, Exchange

from .helpers import get, parse_responses, post, statuses


class Held:
    """A raw application that keeps each exchange for the test to answer."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)


def test_start_write_end_is_chunked_for_http11(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/"))
    harness.turn()
    [exchange] = app.exchanges
    assert exchange.request.path == b"/"
    assert exchange.client == ("127.0.0.1", 1234)
    assert exchange.body == b"" and exchange.stream is None
    exchange.start(200, [(b"content-type", b"text/plain")])
    head = harness.collect(lambda d: d.endswith(b"\r\n\r\n"))
    assert b"transfer-encoding: chunked" in head  # the head leaves before the body
    exchange.write(b"one ")
    exchange.write(b"")  # nothing: no empty chunk, which would end the body
    exchange.write(b"two")
    exchange.end()
    assert exchange.finished
    [response] = parse_responses(head + harness.collect(lambda d: d.endswith(b"0\r\n\r\n")))
    assert response.body == b"one two"
    assert not harness.peer_eof


def test_start_write_end_with_content_length(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/", version="1.0"))
    harness.turn()
    [exchange] = app.exchanges
    exchange.start(200, [("Content-Length", "6")])
    exchange.write(b"abc")
    exchange.write(b"def")
    exchange.end()
    data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data)
    assert response.body == b"abcdef"
    assert response.header("connection") == "close"  # HTTP/1.0 without keep-alive


def test_end_short_of_content_length_closes(make, poller, caplog):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/") + get("/next"))
    harness.turn()
    exchange = app.exchanges[0]
    exchange.start(200, [("Content-Length", "10")])
    exchange.write(b"abc")
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        exchange.end()
    data = harness.collect(lambda d: harness.peer_eof)
    assert data.endswith(b"\r\n\r\nabc")
    assert len(app.exchanges) == 1  # the next request is never taken
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_answers_after_the_connection_closed_are_dropped(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/"))
    harness.turn()
    [exchange] = app.exchanges
    assert not exchange.closed
    harness.peer.close()
    harness.turn(3)
    harness.driver.close()
    assert exchange.closed
    exchange.start(200, [])
    exchange.write(b"nobody listens")
    exchange.end()
    exchange.respond(200, [], b"nor here")


def test_a_finished_exchange_ignores_further_answers(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/a") + get("/b"))
    harness.turn()
    first = app.exchanges[0]
    first.respond(200, [], b"first")
    harness.turn()
    first.respond(200, [], b"again")  # ignored: the cycle has moved on
    first.write(b"more")
    assert len(app.exchanges) == 2
    app.exchanges[1].respond(200, [], b"second")
    data = harness.collect(lambda d: d.endswith(b"second"))
    assert [r.body for r in parse_responses(data)] == [b"first", b"second"]


def test_head_request_with_start_write_end_sends_no_body(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    harness.turn()
    [exchange] = app.exchanges
    exchange.start(200, [("Content-Length", "5")])
    exchange.write(b"hello")
    exchange.end()
    harness.send(get("/after"))
    harness.turn()
    app.exchanges[1].respond(200, [], b"after")
    data = harness.collect(lambda d: d.endswith(b"after"))
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 5" in head
    assert rest.startswith(b"HTTP/1.1 200")
    assert b"hello" not in data


def test_exchange_stream_for_a_raw_application(make, poller):
    app = Held()
    harness = make(app, poller=poller, native=False, body_buffer_bytes=8)
    harness.send(post("/", b"0123456789abcdef"))
    harness.turn()
    [exchange] = app.exchanges
    assert exchange.body is None
    assert isinstance(exchange.stream, BodyStream)
    pieces: list[bytes] = []
    exchange.stream.set_callbacks(
        pieces.append, lambda: exchange.respond(200, [], b"%d" % len(b"".join(pieces)))
    )
    assert statuses(parse_responses(harness.collect(lambda d: d.endswith(b"16")))) == [200]
    assert b"".join(pieces) == b"0123456789abcdef"


class StubResponder:
    """Just enough of a Responder for a BodyStream on its own: runs callbacks, records
    pause and resume."""

    closed = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def call_app(self, callback: Callable[..., object], *args: object) -> bool:
        callback(*args)
        return True

    def pause_body(self, exchange: Exchange) -> None:
        self.calls.append("pause")

    def resume_body(self, exchange: Exchange) -> None:
        self.calls.append("resume")


def _stream() -> tuple[BodyStream, StubResponder]:
    responder = StubResponder()
    request = ServerConnection()
    request.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    event = request.next_event()
    exchange = Exchange(responder, event, None, None)  # type: ignore[arg-type]
    assert exchange.stream is not None
    return exchange.stream, responder


def test_body_stream_replays_and_ends_once():
    stream, _ = _stream()
    stream.feed(b"a")
    stream.feed(b"b")
    stream.end()
    seen: list[object] = []
    stream.set_callbacks(seen.append, lambda: seen.append("END"))
    assert seen == [b"a", b"b", "END"]
    stream.abort()  # after the end: nothing more
    live, _ = _stream()
    live.set_callbacks(seen.append, lambda: seen.append("END2"), lambda: seen.append("ABORT"))
    live.feed(b"c")
    live.end()
    live.end()
    assert seen[3:] == [b"c", "END2"]


def test_body_stream_pause_holds_pieces_until_resume():
    stream, responder = _stream()
    seen: list[object] = []
    stream.set_callbacks(seen.append, lambda: seen.append("END"))
    stream.pause()
    assert stream.paused and responder.calls == ["pause"]
    stream.feed(b"x")
    stream.feed(b"y")
    stream.end()
    assert seen == []
    stream.resume()
    assert seen == [b"x", b"y", "END"] and responder.calls == ["pause", "resume"]


def test_body_stream_abort_is_told_once_even_when_set_late():
    stream, _ = _stream()
    seen: list[object] = []
    stream.feed(b"lost")
    stream.abort()
    stream.abort()
    stream.set_callbacks(seen.append, lambda: seen.append("END"), lambda: seen.append("ABORT"))
    assert seen == ["ABORT"]
    stream.end()  # too late: aborted streams never end
    assert seen == ["ABORT"]


def test_late_answer_with_an_invalid_field_sends_500_and_closes(make, poller, caplog):
    """A deferred answer refused by the protocol layer happens outside any loop turn: the
    500 must still be sent and the connection closed (they sat queued, forever)."""
    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/"))
    harness.turn()
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        app.exchanges[0].respond(200, [("bad name", "v")], b"body")
    data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data, eof=True)) == [500]
    harness.peer.close()
    harness.run_until(lambda: harness.driver.closed)


def test_another_thread_answers_through_call_soon_threadsafe(make, poller):
    import threading

    app = Held()
    harness = make(app, poller=poller, native=False)
    harness.send(get("/threaded"))
    harness.turn()
    [exchange] = app.exchanges
    seen: list[str] = []

    def work() -> None:
        # never touch the exchange here: hand the answer to the loop thread
        exchange.call_soon_threadsafe(
            lambda: (seen.append(threading.current_thread().name),
                     exchange.respond(200, [], b"from a thread"))
        )  # fmt: skip

    worker = threading.Thread(target=work, name="worker")
    worker.start()
    worker.join(10)
    data = harness.collect(lambda d: d.endswith(b"from a thread"))
    assert parse_responses(data)[0].body == b"from a thread"
    assert seen == [threading.main_thread().name]
