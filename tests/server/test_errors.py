"""When things break: application errors (ours: 500, logged at ERROR with the traceback)
and peers that vanish (theirs: closed quietly, nothing left registered)."""

from __future__ import annotations

import logging

import pytest

from treadle.apps.native import Request, Response

from .helpers import get, parse_responses, post, reset, statuses
from .test_flow import RecordingPoller


def _errors(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_gone(harness) -> None:
    assert harness.driver.closed
    assert not harness.registered
    poller = harness.reactor.poller
    poller = getattr(poller, "inner", poller)  # unwrap a RecordingPoller
    with pytest.raises(FileNotFoundError):
        poller.modify(harness.fd, 1)  # the contract: unknown to the backend too
    assert harness.driver not in harness.ctx.connections


# ------------------------------------------------------------------ application errors


def test_handler_exception_gives_500_and_logs_the_traceback(make, poller, caplog):
    def broken(request: Request) -> Response:
        raise KeyError("secret-internal-detail")

    harness = make(broken, poller=poller)
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        harness.send(get("/boom") + get("/after"))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 500
    assert response.header("content-type") == "text/plain; charset=utf-8"
    assert response.header("connection") == "close"
    assert b"secret-internal-detail" not in response.body
    assert b"Traceback" not in response.body
    assert b"KeyError" not in response.body
    [record] = _errors(caplog)
    assert record.name == "treadle.server"
    assert record.levelno == logging.ERROR
    assert "GET" in record.getMessage() and "/boom" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "secret-internal-detail" in caplog.text  # the traceback is in the log


@pytest.mark.parametrize(
    "returned",
    [b"bytes", "text", {"status": 200}, 200, (200, [], b"")],
    ids=["bytes", "str", "dict", "int", "tuple"],
)
def test_handler_returning_a_non_response_gives_500(make, poller, caplog, returned):
    harness = make(lambda request: returned, poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data, eof=True)) == [500]
    [record] = _errors(caplog)
    assert record.exc_info[0] is TypeError


def test_str_body_gives_500(make, poller, caplog):
    harness = make(lambda request: Response(200, [], "text, not bytes"), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        [response] = harness.exchange(get("/"))
    assert response.status == 500
    assert b"text, not bytes" not in response.body
    [record] = _errors(caplog)
    assert record.exc_info[0] is TypeError


class Pieces:
    """An iterable body that fails after ``fail_after`` pieces and records close()."""

    def __init__(self, fail_after: int | None, count: int = 10) -> None:
        self.fail_after = fail_after
        self.count = count
        self.closed = 0
        self.sent = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self.fail_after is not None and self.sent == self.fail_after:
            raise RuntimeError("iterator broke")
        if self.sent == self.count:
            raise StopIteration
        self.sent += 1
        return b"piece%d;" % self.sent

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("fail_after", [0, 3])
def test_iterable_that_raises_cuts_the_response(make, poller, caplog, fail_after):
    body = Pieces(fail_after)
    harness = make(lambda request: Response(200, [], body), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/") + get("/after"))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 200  # the head went out: nothing else can be said
    assert response.chunked and not response.complete
    assert not data.endswith(b"0\r\n\r\n")
    assert response.body == b"".join(b"piece%d;" % n for n in range(1, fail_after + 1))
    [record] = _errors(caplog)
    assert "iterator" in record.getMessage()
    assert record.exc_info[0] is RuntimeError
    assert body.closed == 1


def test_iterable_is_closed_after_it_ends(make, poller):
    body = Pieces(None, count=3)
    harness = make(lambda request: Response(200, [], body), poller=poller)
    [response] = harness.exchange(get("/"))
    assert response.body == b"piece1;piece2;piece3;"
    assert body.closed == 1


def test_non_iterable_body_gives_500(make, poller, caplog):
    harness = make(lambda request: Response(200, [], 12345), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 500  # not a 200 head cut short: nothing was sent yet
    assert data.count(b"HTTP/1.1") == 1
    [record] = _errors(caplog)
    assert record.exc_info[0] is TypeError


def test_iterable_body_with_a_refused_head_is_closed(make, poller, caplog):
    body = Pieces(None)
    harness = make(lambda request: Response(200, [("bad name", "v")], body), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    assert statuses(parse_responses(data, eof=True)) == [500]
    assert body.sent == 0
    assert body.closed == 1


BAD_FIELDS = {
    "space-in-name": [("bad name", "v")],
    "crlf-in-value": [("X-Ok", "split\r\nInjected: yes")],
    "nul": [("X-Ok", "nul\x00")],
    "empty-name": [("", "empty name")],
    "not-latin-1": [("X-Snowman", "\u2603")],
    "bad-length": [("Content-Length", "999")],  # does not match the body
}
# (A short iterable under a longer Content-Length: see test_iterable_shorter_than_its_...)
BAD_FIELD_CASES = [
    pytest.param(headers, kind, id=f"{name}-{kind}")
    for name, headers in BAD_FIELDS.items()
    for kind in ("bytes", "iterable")
    if not (name == "bad-length" and kind == "iterable")
]


@pytest.mark.parametrize(("headers", "body_kind"), BAD_FIELD_CASES)
def test_invalid_response_fields_give_500_and_nothing_half_written(
    make, poller, caplog, headers, body_kind
):
    body = b"body" if body_kind == "bytes" else iter([b"bo", b"dy"])
    harness = make(lambda request: Response(200, headers, body), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    [response] = parse_responses(data, eof=True)
    assert response.status == 500
    assert b"Injected" not in data
    assert b"body" not in data and b"bo" not in response.body
    assert data.count(b"HTTP/1.1") == 1
    [record] = _errors(caplog)
    assert record.exc_info is not None


def test_iterable_longer_than_its_content_length_is_cut(make, poller, caplog):
    harness = make(
        lambda request: Response(200, [("Content-Length", "4")], iter([b"abc", b"def"])),
        poller=poller,
    )
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert rest == b"abc"  # never more than announced
    assert _errors(caplog)


def test_iterable_shorter_than_its_content_length_closes(make, poller, caplog):
    harness = make(
        lambda request: Response(200, [("Content-Length", "10")], iter([b"abc"])),
        poller=poller,
    )
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/") + get("/after"))
        data = harness.collect(lambda d: harness.peer_eof)
    assert data.endswith(b"\r\n\r\nabc")  # the client sees the connection end short
    assert data.count(b"HTTP/1.1") == 1
    assert _errors(caplog)


def test_exception_after_responding_keeps_the_response(make, poller, caplog):
    def answer_then_fail(request: Request) -> Response:
        request.respond(Response(200, [], b"answered"))
        raise ValueError("after the answer")

    harness = make(answer_then_fail, poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        [response] = harness.exchange(get("/"))
    assert response.body == b"answered"
    assert [r.exc_info[0] for r in _errors(caplog)] == [ValueError]


def test_responding_twice_is_ignored(make, poller):
    held = []

    def handler(request: Request) -> None:
        held.append(request)

    harness = make(handler, poller=poller)
    harness.send(get("/"))
    harness.turn()
    held[0].respond(Response(200, [], b"first"))
    held[0].respond(Response(200, [], b"second"))
    data = harness.collect(lambda d: d.endswith(b"first"))
    harness.turn(2)
    assert [r.body for r in parse_responses(data + harness.read())] == [b"first"]


# ------------------------------------------------------------------------- peers that go


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /partial HT", b"GET / HTTP/1.1\r\nHost: x\r\n", post("/", b"x" * 100)[:-50]],
    ids=["nothing", "mid-line", "mid-head", "mid-body"],
)
@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_peer_closing_mid_request_closes_quietly(make, poller, caplog, sent, tcp):
    harness = make(poller=poller, tcp=tcp)
    if sent:
        harness.send(sent)
        harness.turn()
    with caplog.at_level(logging.DEBUG):
        harness.peer.close()
        harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)
    assert _errors(caplog) == []


@pytest.mark.parametrize(
    "sent", [b"", b"GET / HTTP/1.1\r\nHo", get("/")], ids=["idle", "mid-head", "whole"]
)
def test_peer_reset_closes_quietly(make, poller, caplog, sent):
    harness = make(lambda request: None, poller=poller, tcp=True)
    if sent:
        harness.send(sent)
        harness.turn()
    with caplog.at_level(logging.DEBUG):
        reset(harness.peer)
        harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)
    assert _errors(caplog) == []


def test_peer_closing_during_a_large_response_closes_and_closes_the_iterator(make, poller, caplog):
    body = Pieces(None, count=100000)
    harness = make(lambda request: Response(200, [], body), poller=poller, buffer_bytes=16384)
    harness.send(get("/"))
    harness.turn(5)
    assert harness.driver.out.items
    with caplog.at_level(logging.DEBUG):
        harness.peer.close()
        harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)
    assert body.closed == 1
    assert body.sent < 100000
    assert _errors(caplog) == []


def test_peer_closing_while_the_handler_works_does_not_spin(make, poller, caplog):
    """The client sent its request and closed (a FIN); the handler answers later. Until
    then no poller may report the socket on every turn (that was a busy loop with the
    level-triggered backends), and the late answer must close the connection quietly."""
    pending = []
    harness = make(pending.append, poller=poller, tcp=True)
    recording = RecordingPoller(harness.reactor.poller)
    harness.reactor.poller = recording
    harness.send(get("/"))
    harness.turn()
    harness.peer.close()
    harness.turn(3)
    recording.batches.clear()
    harness.turn(10)
    reports = sum(1 for batch in recording.batches for fd, _ in batch if fd == harness.fd)
    assert reports == 0
    assert not harness.driver.closed
    with caplog.at_level(logging.DEBUG):
        pending[0].respond(Response(200, [], b"late"))
        harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)
    assert _errors(caplog) == []


def test_half_closed_peer_still_gets_a_late_answer(make, poller):
    import socket

    pending = []
    harness = make(pending.append, poller=poller, tcp=True)
    harness.send(get("/"))
    harness.peer.shutdown(socket.SHUT_WR)
    harness.turn(3)
    pending[0].respond(Response(200, [], b"late but here"))
    data = harness.collect(lambda d: harness.peer_eof)
    assert [r.body for r in parse_responses(data)] == [b"late but here"]
    harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)


@pytest.mark.parametrize(
    "pieces",
    [lambda: iter(b"abc"), lambda: iter(["text"]), lambda: iter([b"ok", 5])],
    ids=["ints-from-bytes", "str", "int-after-bytes"],
)
def test_iterable_of_non_bytes_pieces_is_cut_not_garbled(make, poller, caplog, pieces):
    """Iterating over a bytes object yields ints: bytes(97) would be 97 NUL bytes on the
    wire. Each piece must be bytes-like; anything else is our error, logged, and cut."""
    harness = make(lambda request: Response(200, [], pieces()), poller=poller)
    with caplog.at_level(logging.ERROR, logger="treadle.server"):
        harness.send(get("/"))
        data = harness.collect(lambda d: harness.peer_eof)
    assert b"\x00" not in data
    [response] = parse_responses(data, eof=True)
    assert not response.complete
    assert response.body in (b"", b"ok")
    [record] = _errors(caplog)
    assert record.exc_info[0] is TypeError


def test_iterable_of_bytes_like_pieces(make, poller):
    pieces = [bytearray(b"ab"), memoryview(b"cd"), b"", b"ef"]
    harness = make(lambda request: Response(200, [], iter(pieces)), poller=poller)
    [response] = harness.exchange(get("/"))
    assert response.body == b"abcdef"


def test_peer_reset_while_output_is_piled_up_closes_quietly(make, poller, caplog):
    """Not reading (backpressure) and a reset arrives: the write side finds it."""
    harness = make(
        lambda request: Response(200, [], b"x" * (2 * 1024 * 1024)),
        poller=poller,
        tcp=True,
        buffer_bytes=32768,
        write_high_water=65536,
        write_low_water=16384,
    )
    harness.send(get("/"))
    harness.turn(5)
    assert harness.driver.out.size > 65536
    assert not harness.read_interest
    with caplog.at_level(logging.DEBUG):
        reset(harness.peer)
        harness.run_until(lambda: harness.driver.closed)
    _assert_gone(harness)
    assert _errors(caplog) == []
