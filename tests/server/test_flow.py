"""Flow control and fairness: backpressure between high and low water, per-turn budgets.

The socketpair's buffers are made small so that "the client does not read" fills them
quickly; the peer then drains by hand, a few kilobytes at a time.
"""

from __future__ import annotations

from typing import Any

from treadle.apps.native import Request, Response

from .helpers import get, parse_responses

HIGH = 64 * 1024
LOW = 16 * 1024
CHUNK = 16 * 1024
WATER = {"write_high_water": HIGH, "write_low_water": LOW}


class RecordingPoller:
    """Wraps a real poller and keeps each batch that ``poll`` returned."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.edge_triggered = inner.edge_triggered
        self.max_fd = inner.max_fd
        self.register = inner.register
        self.modify = inner.modify
        self.unregister = inner.unregister
        self.close = inner.close
        self.batches: list[list[tuple[int, int]]] = []

    def poll(self, timeout_s: float | None) -> list[tuple[int, int]]:
        events = self.inner.poll(timeout_s)
        self.batches.append(events)
        return events


def _drain(harness, limit: int) -> int:
    """The peer reads at most ``limit`` bytes; returns how many it read."""
    try:
        return len(harness.peer.recv(limit))
    except BlockingIOError:
        return 0


# ------------------------------------------------------------------------ backpressure


def test_large_response_stops_reading_until_drained_below_low_water(make, poller):
    big = b"y" * (1024 * 1024)
    calls: list[str] = []

    def handler(request: Request) -> Response:
        calls.append(request.path)
        return Response(200, [], big if request.path == "/big" else b"small")

    harness = make(handler, poller=poller, buffer_bytes=32768, **WATER)
    harness.send(get("/big"))
    harness.turn(5)
    driver = harness.driver
    assert driver.out.size > HIGH
    assert not harness.read_interest
    assert not driver._reading
    # A pipelined request is not even read while the output is piled up.
    harness.send(get("/next"))
    harness.turn(5)
    assert calls == ["/big"]

    # Drain a little at a time and watch the hysteresis: reading resumes only at or
    # below the low-water mark, and never stops again for this response.
    received = 0
    resumed_at = None
    for _ in range(2000):
        received += _drain(harness, 8192)
        harness.turn()
        if resumed_at is None and driver._reading:
            resumed_at = driver.out.size
            assert harness.read_interest
        if resumed_at is None:
            assert not harness.read_interest
        if calls == ["/big", "/next"]:
            break
    assert resumed_at is not None
    assert resumed_at <= LOW
    assert calls == ["/big", "/next"]
    rest = harness.collect(lambda d: d.endswith(b"small"), max_turns=500)
    total = received + len(rest)
    assert total > len(big)
    assert rest.endswith(b"small")


def test_iterable_body_keeps_memory_bounded(make, poller):
    pulled = []

    def pieces():
        for n in range(300):
            pulled.append(n)
            yield bytes([65 + n % 26]) * CHUNK

    def handler(request: Request) -> Response:
        return Response(200, [], pieces() if request.path == "/stream" else b"small")

    harness = make(handler, poller=poller, buffer_bytes=32768, **WATER)
    harness.send(get("/stream"))
    harness.turn(10)
    driver = harness.driver
    # Stalled: only about high water + one piece is held, not 300 pieces.
    assert HIGH < driver.out.size <= HIGH + CHUNK + 16
    assert len(pulled) * CHUNK <= HIGH + CHUNK + 4 * 32768 + 8 * CHUNK
    assert not harness.read_interest

    received = bytearray()
    peak = 0
    for _ in range(20000):
        data = harness.peer.recv(65536) if not harness.peer_eof else b""
        received.extend(data)
        harness.turn()
        peak = max(peak, driver.out.size)
        if received.endswith(b"0\r\n\r\n"):
            break
    assert peak <= HIGH + CHUNK + 16
    [response] = parse_responses(bytes(received))
    assert response.chunked
    assert len(response.body) == 300 * CHUNK
    assert response.body[:CHUNK] == b"A" * CHUNK
    assert response.body[-CHUNK:] == bytes([65 + 299 % 26]) * CHUNK
    # The exchange is done and the connection is ready for the next request.
    assert harness.read_interest
    [again] = harness.exchange(get("/small"))
    assert again.body == b"small"


def test_backpressure_stops_taking_pipelined_requests(make, poller):
    calls = []

    def handler(request: Request) -> Response:
        calls.append(request.path)
        return Response(200, [], b"z" * (40 * 1024))

    harness = make(handler, poller=poller, buffer_bytes=16384, **WATER)
    harness.send(b"".join(get(f"/{n}") for n in range(20)))
    harness.turn(10)
    # Each response is 40 KiB: past the 64 KiB mark after a few, the rest wait.
    assert 2 <= len(calls) < 20
    stalled = len(calls)
    harness.turn(10)
    assert len(calls) == stalled
    data = harness.collect(lambda d: len(parse_responses(d, partial_ok=True)) == 20, 5000)
    assert [r.status for r in parse_responses(data)] == [200] * 20
    assert calls == [f"/{n}" for n in range(20)]


def test_slow_reader_gets_every_byte_in_order(make, poller):
    def handler(request: Request) -> Response:
        return Response(200, [], (b"%06d\n" % n for n in range(20000)))

    harness = make(handler, poller=poller, buffer_bytes=8192, **WATER)
    harness.send(get("/numbers"))
    received = bytearray()
    for _ in range(50000):
        harness.turn()
        received.extend(harness.peer.recv(3000) if _ % 3 == 0 else b"")
        if received.endswith(b"0\r\n\r\n"):
            break
    [response] = parse_responses(bytes(received))
    assert response.body == b"".join(b"%06d\n" % n for n in range(20000))


# ---------------------------------------------------------------------------- fairness


def test_requests_per_turn_bounds_each_slice(make, poller):
    log: list[tuple[str, object]] = []

    def handler(request: Request) -> Response:
        log.append(("call", request.path))
        return Response(200, [], request.path.encode())

    harness = make(handler, poller=poller, requests_per_turn=4)
    counting = harness.count_io()
    original_send = counting.send

    def send(data: Any) -> int:
        log.append(("send", None))
        return original_send(data)

    counting.send = send  # type: ignore[method-assign]
    harness.driver.transport.send = send
    harness.send(b"".join(get(f"/{n}") for n in range(20)))
    harness.turn()
    first_turn = sum(1 for kind, _ in log if kind == "call")
    # The budget's worth per slice, not all twenty. One iteration may hold two slices:
    # the I/O step's, then the resume it queued, which the same iteration's callback
    # step runs (the other connections had their I/O step before it).
    assert first_turn in (4, 8)
    harness.run_until(lambda: sum(1 for kind, _ in log if kind == "call") == 20)
    harness.turn()
    # Between two sends, at most four requests were handled.
    calls_since_send = 0
    for kind, _ in log:
        if kind == "call":
            calls_since_send += 1
            assert calls_since_send <= 4
        else:
            calls_since_send = 0
    responses = parse_responses(harness.read())
    assert [r.body for r in responses] == [b"/%d" % n for n in range(20)]


def test_driver_continues_without_a_new_poll_event(make, poller):
    """Work left over by the request budget is resumed with call_soon: the socket is
    empty (everything is in the parser's buffer), so no poller would report it again."""
    calls = []

    def handler(request: Request) -> Response:
        calls.append(request.path)
        return Response(200, [], b"ok")

    harness = make(handler, poller=poller, requests_per_turn=2)
    recording = RecordingPoller(harness.reactor.poller)
    harness.reactor.poller = recording
    harness.send(b"".join(get(f"/{n}") for n in range(12)))
    progress_without_event = 0
    for _ in range(20):
        before = len(calls)
        harness.turn()
        ours = [fd for fd, _ in recording.batches[-1] if fd == harness.fd]
        if not ours and len(calls) > before:
            progress_without_event += 1
        if len(calls) == 12:
            break
    assert len(calls) == 12
    assert progress_without_event >= 1
    assert len(parse_responses(harness.read())) == 12


def test_read_budget_bounds_one_turn_and_the_rest_follows(make, poller):
    calls = []

    def handler(request: Request) -> Response:
        calls.append(request.path)
        return Response(200, [], b"ok")

    harness = make(handler, poller=poller, read_bytes_per_turn=1024)
    counting = harness.count_io()
    recording = RecordingPoller(harness.reactor.poller)
    harness.reactor.poller = recording
    burst = b"".join(get(f"/{n:04d}") for n in range(200))  # about 7 KiB
    harness.send(burst)
    harness.reactor.run_once(0)
    # The I/O step and the callback step of one iteration each read one budget's worth.
    assert 0 < sum(counting.recvs) <= 2 * 1024
    turns = harness.run_until(lambda: len(calls) == 200, max_turns=100)
    assert turns >= 2
    assert sum(counting.recvs) == len(burst)
    assert calls == [f"/{n:04d}" for n in range(200)]
    assert len(parse_responses(harness.collect(lambda d: d.count(b"ok") == 200))) == 200
    # No recv beyond the budget, ever.
    assert max(counting.recvs) <= 1024
