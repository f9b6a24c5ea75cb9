"""The adapter's pure and threaded parts on their own: what start_response accepts, the worker
pool's admission and shutdown, the file wrapper's segment, how the command tells WSGI from
native by a signature is in tests/test_cli.py."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treadle.apps.wsgi import ClientDisconnected, FileWrapper
from treadle.apps.wsgi.handoff import LoopInbox
from treadle.apps.wsgi.output import END, Failure, Head, ResponseOutput
from treadle.apps.wsgi.pool import WorkerPool
from treadle.apps.wsgi.validation import (
    ResponseRefused,
    content_length,
    encode_headers,
    parse_status,
)
from treadle.server import FileSegment

from .helpers import DEADLINE_S

# ------------------------------------------------------------------------ status


@pytest.mark.parametrize(
    ("status", "code"),
    [("200 OK", 200), ("404 Not Found", 404), ("299 ", 299), ("999 Odd", 999), ("201 Créé", 201)],
)
def test_status_accepted(status, code):
    assert parse_status(status) == code


@pytest.mark.parametrize(
    "status",
    ["200", "200OK", " 200 OK", "20 OK", "2000 OK", "099 x", "100 Continue", "101 Switching",
     "200 OK\r\n", "200 O\x00K", "abc OK", "200 \u2603"],
)  # fmt: skip
def test_status_refused(status):
    with pytest.raises(ResponseRefused):
        parse_status(status)


@pytest.mark.parametrize("status", [200, b"200 OK", None])
def test_status_of_the_wrong_type(status):
    with pytest.raises(TypeError):
        parse_status(status)


# ------------------------------------------------------------------------ headers


def test_headers_encoded_as_latin_1_bytes():
    fields = encode_headers([("Content-Type", "text/plain"), ("X-Name", "caf\xe9"), ("X-E", "")])
    assert fields == [(b"Content-Type", b"text/plain"), (b"X-Name", b"caf\xe9"), (b"X-E", b"")]
    assert encode_headers(()) == []


@pytest.mark.parametrize(
    "name", ["Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
             "Proxy-Authenticate", "proxy-authorization", "Proxy-Connection", "Proxy-Anything"],
)  # fmt: skip
def test_hop_by_hop_fields_are_refused(name):
    with pytest.raises(ResponseRefused, match="hop-by-hop"):
        encode_headers([(name, "x")])


@given(
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=20),
    st.sampled_from(["\r", "\n", "\x00", "\x01", "\x7f"]),
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=20),
)
def test_control_characters_in_values_are_always_refused(before, control, after):
    with pytest.raises(ResponseRefused):
        encode_headers([("X-Value", before + control + after)])


@given(st.text(max_size=30), st.text(max_size=30))
def test_whatever_is_accepted_cannot_split_a_response(name, value):
    try:
        [(name_bytes, value_bytes)] = encode_headers([(name, value)])
    except (ResponseRefused, TypeError):
        return
    assert not any(byte in name_bytes + value_bytes for byte in b"\r\n\x00")
    assert b":" not in name_bytes and b" " not in name_bytes


def test_content_length_of_fields():
    assert content_length([(b"Content-Length", b" 12 ")]) == 12
    assert content_length([(b"content-type", b"x")]) is None
    assert content_length([(b"content-length", b"many")]) is None


# ---------------------------------------------------------------------------- pool


def _blocking_jobs(pool: WorkerPool, count: int, release: threading.Event) -> list[threading.Event]:
    started = []
    for _ in range(count):
        event = threading.Event()

        def job(event: threading.Event = event) -> None:
            event.set()
            release.wait(DEADLINE_S)

        assert pool.submit(job)
        started.append(event)
    return started


def test_pool_starts_threads_as_load_asks_and_refuses_past_the_queue():
    pool = WorkerPool(threads=2, queue_size=1)
    release = threading.Event()
    try:
        assert pool.size == 0  # nothing started before the first job
        started = _blocking_jobs(pool, 2, release)
        for event in started:
            assert event.wait(DEADLINE_S)
        assert pool.size == 2 and pool.busy == 2
        ran = threading.Event()
        assert pool.submit(ran.set)  # queued
        assert pool.queued == 1
        assert not pool.submit(ran.set)  # every thread busy, the queue full
        release.set()
        assert ran.wait(DEADLINE_S)
        assert pool.size == 2  # never more than asked for
    finally:
        release.set()
        assert pool.close(DEADLINE_S)


def test_pool_with_no_queue_refuses_once_every_thread_is_busy():
    pool = WorkerPool(threads=1, queue_size=0)
    release = threading.Event()
    try:
        [started] = _blocking_jobs(pool, 1, release)
        assert started.wait(DEADLINE_S)
        assert not pool.submit(lambda: None)
    finally:
        release.set()
        assert pool.close(DEADLINE_S)


def test_a_failing_job_is_logged_and_the_thread_goes_on(caplog):
    pool = WorkerPool(threads=1, queue_size=4)
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("job failure")

    try:
        assert pool.submit(fails)
        assert pool.submit(done.set)
        assert done.wait(DEADLINE_S)
    finally:
        assert pool.close(DEADLINE_S)
    assert "job failure" in caplog.text
    assert pool.size == 1


def test_closed_pool_refuses_and_drops_what_waits(caplog):
    pool = WorkerPool(threads=1, queue_size=4)
    release = threading.Event()
    [started] = _blocking_jobs(pool, 1, release)
    assert started.wait(DEADLINE_S)
    never = threading.Event()
    assert pool.submit(never.set)
    with caplog.at_level(logging.INFO, logger="treadle.wsgi"):
        assert pool.close(0.001) is False  # the running job still runs
    release.set()
    assert pool.close(DEADLINE_S) is True  # safe twice; now every thread has ended
    assert not never.is_set()
    assert not pool.submit(never.set)
    assert "dropped 1 queued" in caplog.text


def test_close_gives_up_on_a_thread_stuck_in_application_code(caplog):
    pool = WorkerPool(threads=1, queue_size=0)
    release = threading.Event()
    try:
        [started] = _blocking_jobs(pool, 1, release)
        assert started.wait(DEADLINE_S)
        assert pool.close(0.01) is False
        assert "still running application code" in caplog.text
    finally:
        release.set()


@pytest.mark.parametrize(("threads", "queue_size"), [(0, 1), (-1, 1), (1, -1)])
def test_pool_arguments_checked(threads, queue_size):
    with pytest.raises(ValueError):
        WorkerPool(threads, queue_size)


# ---------------------------------------------------------------------- file wrapper


def test_segment_of_a_regular_file_owns_a_duplicate_descriptor(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as handle:
        handle.read(3)
        wrapper = FileWrapper(handle)
        segment = wrapper.segment(limit_bytes=5)
        assert segment is not None
        assert (segment.offset, segment.count) == (3, 5)
        assert segment.fd != handle.fileno()
        assert os.pread(segment.fd, 5, segment.offset) == b"34567"
        assert list(wrapper) == []  # the rest went out as the segment
    segment.done()
    with pytest.raises(OSError):
        os.fstat(segment.fd)  # released: its descriptor is closed


def test_no_segment_for_what_is_not_a_regular_file(tmp_path):
    import io

    assert FileWrapper(io.BytesIO(b"abc")).segment() is None
    read, write = os.pipe()
    try:
        with os.fdopen(read, "rb") as pipe:
            assert FileWrapper(pipe).segment() is None
    finally:
        os.close(write)
    wrapper = FileWrapper(io.BytesIO(b"abcdef"), 4)
    assert list(wrapper) == [b"abcd", b"ef"]


# ---------------------------------------------------------------------- hand-offs


class FakeLoop:
    """Collects call_soon_threadsafe calls; ``run()`` runs them like a loop turn."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...]]] = []
        self.closed = False

    def call_soon_threadsafe(self, callback: Any, *args: Any) -> None:
        if self.closed:
            raise RuntimeError("the reactor is closed")
        self.calls.append((callback, args))

    def run(self) -> None:
        calls, self.calls = self.calls, []
        for callback, args in calls:
            callback(*args)


def test_inbox_wakes_the_loop_once_for_many_posts_and_keeps_their_order(caplog):
    loop = FakeLoop()
    inbox = LoopInbox()
    seen: list[int] = []

    def fails() -> None:
        raise RuntimeError("a callback failure")

    for number in range(5):
        assert inbox.post(loop.call_soon_threadsafe, seen.append, number)
    assert inbox.post(loop.call_soon_threadsafe, fails)
    assert inbox.post(loop.call_soon_threadsafe, seen.append, 5)
    assert len(loop.calls) == 1  # one wake-up for all of them
    loop.run()
    assert seen == [0, 1, 2, 3, 4, 5]  # in order; a failing one logged, the rest ran
    assert "a callback failure" in caplog.text
    assert inbox.post(loop.call_soon_threadsafe, seen.append, 6)
    assert len(loop.calls) == 1  # delivered: the next post wakes the loop again
    loop.run()
    assert seen[-1] == 6


def test_inbox_reports_a_closed_loop():
    closed = FakeLoop()
    closed.closed = True
    inbox = LoopInbox()
    seen: list[str] = []
    assert inbox.post(closed.call_soon_threadsafe, seen.append, "lost") is False
    assert seen == []
    alive = FakeLoop()
    assert inbox.post(alive.call_soon_threadsafe, seen.append, "next") is True  # not stuck
    alive.run()
    assert seen == ["next"]


# ------------------------------------------------------------------ response output


class FakeExchange:
    """Records what a ResponseOutput asks of its exchange."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.finished = False
        self.writable = True
        self.drain: Any = None

    def respond(self, status: int, headers: Any, body: bytes) -> None:
        self.calls.append(("respond", status, body))
        self.finished = True

    def start(self, status: int, headers: Any) -> None:
        self.calls.append(("start", status))

    def write(self, piece: Any) -> None:
        self.calls.append(("write", piece))

    def end(self) -> None:
        self.calls.append(("end",))
        self.finished = True

    def on_drain(self, callback: Any) -> None:
        self.drain = callback


def _output(limit_bytes: int = 1 << 20) -> tuple[ResponseOutput, FakeExchange, FakeLoop, list]:
    exchange, loop, aborted = FakeExchange(), FakeLoop(), []
    inbox = LoopInbox()

    def handoff(callback: Any, *args: Any) -> bool:
        return inbox.post(loop.call_soon_threadsafe, callback, *args)

    output = ResponseOutput(exchange, handoff, aborted.append, limit_bytes)  # type: ignore[arg-type]
    return output, exchange, loop, aborted


def test_a_whole_batch_is_one_respond():
    output, exchange, loop, _ = _output()
    output.put(Head(200, []))
    output.put(b"ab", 2)
    output.put(b"c", 1)
    output.put(END)
    loop.run()
    assert exchange.calls == [("respond", 200, b"abc")]


def test_pieces_that_arrive_apart_are_streamed():
    output, exchange, loop, _ = _output()
    output.put(Head(200, []))
    output.put(b"ab", 2)
    loop.run()
    output.put(END)
    loop.run()
    assert exchange.calls == [("start", 200), ("write", b"ab"), ("end",)]


def test_a_failure_before_anything_was_sent_is_a_clean_abort():
    output, exchange, loop, aborted = _output()
    error = RuntimeError("late")
    output.put(Head(200, []))
    output.put(b"ab", 2)
    output.put(Failure(error))
    loop.run()
    assert exchange.calls == [] and aborted == [error]


def test_output_waits_for_drain_and_bounds_the_buffer():
    output, exchange, loop, _ = _output(limit_bytes=4)
    exchange.writable = False
    output.put(Head(200, []))
    output.put(b"1234", 4)
    loop.run()
    assert exchange.calls == [("start", 200), ("write", b"1234")]
    assert exchange.drain is not None  # blocked until the client reads
    output.put(b"5678", 4)  # fits: the buffer was empty
    assert loop.calls == []  # no wake-up while blocked
    blocked = threading.Thread(target=output.put, args=(b"9", 1))
    blocked.start()
    blocked.join(0.05)
    assert blocked.is_alive()  # the buffer is full: the producer waits
    exchange.writable = True
    exchange.drain()  # the loop: drained below the low-water mark
    blocked.join(DEADLINE_S)
    assert not blocked.is_alive()
    loop.run()
    assert [call[1] for call in exchange.calls if call[0] == "write"] == [b"1234", b"5678", b"9"]


def test_finish_releases_segments_and_later_puts_raise(tmp_path):
    output, exchange, loop, _ = _output()
    released: list[str] = []
    output.put(Head(200, []))
    output.put(FileSegment(0, 0, 10, lambda: released.append("queued")), 10)
    output.finish()
    assert released == ["queued"]
    with pytest.raises(ClientDisconnected):
        output.put(FileSegment(0, 0, 5, lambda: released.append("late")), 5)
    assert released == ["queued", "late"]
    loop.run()
    assert exchange.calls == []
