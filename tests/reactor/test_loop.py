"""The reactor's iteration, driven by hand: a fake clock, a scripted poller, run_once(0)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from treadle.poll import EVENT_ERROR, EVENT_READ, EVENT_WRITE
from treadle.reactor import Reactor

from .helpers import FakeClock, Recorder, ScriptedPoller

A, B, C = 100, 101, 102  # descriptor numbers the scripted poller reports


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def poller() -> ScriptedPoller:
    return ScriptedPoller()


@pytest.fixture
def reactor(poller: ScriptedPoller, clock: FakeClock) -> Iterator[Reactor]:
    reactor = Reactor(poller, clock=clock)
    yield reactor
    reactor.close()


# -- timers ----------------------------------------------------------------------------------


def test_time_is_the_injected_clock(reactor: Reactor, clock: FakeClock) -> None:
    assert reactor.time() == 1000.0
    clock.advance(2.5)
    assert reactor.time() == 1002.5


def test_timers_fire_when_due_and_not_before(reactor: Reactor, clock: FakeClock) -> None:
    fired: list[str] = []
    later = reactor.call_later(5.0, fired.append, "later")
    at = reactor.call_at(1003.0, fired.append, "at")
    assert later.deadline == 1005.0
    assert at.deadline == 1003.0
    reactor.run_once(0)
    assert fired == []
    clock.advance(2.999)
    reactor.run_once(0)
    assert fired == []
    clock.advance(0.001)
    reactor.run_once(0)
    assert fired == ["at"]
    clock.advance(2.0)
    reactor.run_once(0)
    assert fired == ["at", "later"]
    clock.advance(100.0)
    reactor.run_once(0)
    assert fired == ["at", "later"]  # once only


def test_due_timers_fire_in_deadline_order_ties_in_call_order(
    reactor: Reactor, clock: FakeClock
) -> None:
    fired: list[str] = []
    reactor.call_later(3.0, fired.append, "c")
    reactor.call_later(1.0, fired.append, "a1")
    reactor.call_later(2.0, fired.append, "b")
    reactor.call_at(1001.0, fired.append, "a2")
    clock.advance(10.0)
    reactor.run_once(0)
    assert fired == ["a1", "a2", "b", "c"]


def test_cancelled_timer_does_not_fire(reactor: Reactor, clock: FakeClock) -> None:
    fired: list[str] = []
    doomed = reactor.call_later(1.0, fired.append, "doomed")
    # an earlier timer of the same batch cancels a later one: it must not run either
    victim = reactor.call_later(2.0, fired.append, "victim")
    reactor.call_later(1.5, victim.cancel)
    doomed.cancel()
    clock.advance(5.0)
    reactor.run_once(0)
    assert fired == []


def test_timer_armed_by_a_timer_at_now_fires_next_iteration(
    reactor: Reactor, clock: FakeClock
) -> None:
    fired: list[str] = []

    def rearm() -> None:
        fired.append("first")
        reactor.call_at(reactor.time(), fired.append, "second")

    reactor.call_later(1.0, rearm)
    clock.advance(1.0)
    reactor.run_once(0)
    assert fired == ["first"]
    reactor.run_once(0)
    assert fired == ["first", "second"]


# -- the timeout given to poll ---------------------------------------------------------------


def test_timeout_comes_from_the_earliest_deadline(
    reactor: Reactor, poller: ScriptedPoller, clock: FakeClock
) -> None:
    reactor.run_once()
    assert poller.timeouts[-1] is None  # nothing to wait for: block
    reactor.run_once(2.5)
    assert poller.timeouts[-1] == 2.5
    reactor.call_later(5.0, lambda: None)
    reactor.call_later(7.0, lambda: None)
    reactor.run_once()
    assert poller.timeouts[-1] == 5.0
    reactor.run_once(1.0)
    assert poller.timeouts[-1] == 1.0  # run_once's argument caps the wait
    clock.advance(4.0)
    reactor.run_once()
    assert poller.timeouts[-1] == 1.0


def test_timeout_is_zero_when_callbacks_are_ready(reactor: Reactor, poller: ScriptedPoller) -> None:
    reactor.call_later(5.0, lambda: None)
    reactor.call_soon(lambda: None)
    reactor.run_once(30.0)
    assert poller.timeouts[-1] == 0


def test_overdue_deadline_does_not_wait(
    reactor: Reactor, poller: ScriptedPoller, clock: FakeClock
) -> None:
    reactor.call_later(1.0, lambda: None)
    clock.advance(3.0)
    reactor.run_once()
    timeout = poller.timeouts[-1]
    assert timeout is not None and timeout <= 0  # pollers treat <= 0 as "don't wait"


def test_cancelled_timer_does_not_shorten_the_wait(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    reactor.call_later(1.0, lambda: None).cancel()
    reactor.call_later(4.0, lambda: None)
    reactor.run_once()
    assert poller.timeouts[-1] == 4.0


# -- the order of one iteration ------------------------------------------------------------


def test_one_iteration_runs_io_then_timers_then_callbacks(
    reactor: Reactor, poller: ScriptedPoller, clock: FakeClock
) -> None:
    log: list[object] = []

    def on_read() -> None:
        reactor.call_soon(log.append, "queued by io")

    reactor.add_handler(A, Recorder(log, "A", on_read=on_read), EVENT_READ | EVENT_WRITE)
    reactor.call_soon(log.append, "callback")
    reactor.call_later(1.0, log.append, "timer")
    clock.advance(1.0)
    poller.batches.append([(A, EVENT_READ | EVENT_WRITE)])
    reactor.run_once(0)
    assert log == [("A", "read"), ("A", "write"), "timer", "callback", "queued by io"]


def test_callbacks_queued_by_callbacks_wait_for_the_next_iteration(reactor: Reactor) -> None:
    log: list[str] = []

    def first() -> None:
        log.append("first")
        reactor.call_soon(log.append, "second")

    reactor.call_soon(first)
    reactor.call_soon(log.append, "sibling")
    reactor.run_once(0)
    assert log == ["first", "sibling"]
    reactor.run_once(0)
    assert log == ["first", "sibling", "second"]


def test_call_soon_passes_arguments(reactor: Reactor) -> None:
    got: list[tuple[int, str]] = []
    reactor.call_soon(lambda n, s: got.append((n, s)), 7, "x")
    reactor.run_once(0)
    assert got == [(7, "x")]


# -- dispatch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (EVENT_READ, ["read"]),
        (EVENT_ERROR, ["read"]),
        (EVENT_READ | EVENT_ERROR, ["read"]),
        (EVENT_WRITE, ["write"]),
        (EVENT_ERROR | EVENT_WRITE, ["read", "write"]),
        (0, []),
    ],
)
def test_events_go_to_the_right_method(
    reactor: Reactor, poller: ScriptedPoller, events: int, expected: list[str]
) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "A"), EVENT_READ | EVENT_WRITE)
    poller.batches.append([(A, events)])
    reactor.run_once(0)
    assert log == [("A", what) for what in expected]


def test_events_for_unknown_descriptors_are_ignored(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "A"), EVENT_READ)
    poller.batches.append([(C, EVENT_READ), (A, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("A", "read")]


def test_event_for_a_descriptor_removed_earlier_in_the_batch_is_dropped(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "A", on_read=lambda: reactor.remove_handler(B)), 1)
    reactor.add_handler(B, Recorder(log, "B"), EVENT_READ)
    poller.batches.append([(A, EVENT_READ), (B, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("A", "read")]
    assert B not in poller.registered


def test_stale_event_for_a_number_removed_and_re_added_in_the_batch_is_dropped(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []

    def recycle_b() -> None:
        # B's connection closes and accept() is handed the same number for a new one
        reactor.remove_handler(B)
        reactor.add_handler(B, Recorder(log, "new B"), EVENT_READ)

    reactor.add_handler(A, Recorder(log, "A", on_read=recycle_b), EVENT_READ)
    reactor.add_handler(B, Recorder(log, "old B"), EVENT_READ)
    poller.batches.append([(A, EVENT_READ), (B, EVENT_READ | EVENT_WRITE)])
    reactor.run_once(0)
    assert log == [("A", "read")]
    # in the next batch the new registration gets its events
    poller.batches.append([(B, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("A", "read"), ("new B", "read")]


def test_write_is_skipped_when_handle_read_removed_the_descriptor(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "A", on_read=lambda: reactor.remove_handler(A)), 3)
    poller.batches.append([(A, EVENT_READ | EVENT_WRITE)])
    reactor.run_once(0)
    assert log == [("A", "read")]


def test_write_is_skipped_when_handle_read_replaced_the_registration(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    handler = Recorder(log, "A")

    def replace() -> None:
        reactor.remove_handler(A)
        reactor.add_handler(A, handler, EVENT_READ | EVENT_WRITE)

    handler.on_read = replace
    reactor.add_handler(A, handler, EVENT_READ | EVENT_WRITE)
    poller.batches.append([(A, EVENT_READ | EVENT_WRITE)])
    reactor.run_once(0)
    assert log == [("A", "read")]


def test_handler_added_before_the_poll_gets_its_events(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    reactor.call_soon(reactor.add_handler, A, Recorder(log, "A"), EVENT_READ)
    reactor.run_once(0)  # the callback registers A, in the callbacks step
    poller.batches.append([(A, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("A", "read")]


# -- registration ------------------------------------------------------------------------------


def test_add_modify_remove_reach_the_poller(reactor: Reactor, poller: ScriptedPoller) -> None:
    reactor.add_handler(A, Recorder([], "A"), EVENT_READ)
    assert poller.registered[A] == EVENT_READ
    reactor.modify_handler(A, EVENT_READ | EVENT_WRITE)
    assert poller.registered[A] == EVENT_READ | EVENT_WRITE
    reactor.modify_handler(A, EVENT_READ | EVENT_WRITE)  # unchanged: no call
    assert poller.modify_calls == 1
    reactor.remove_handler(A)
    assert A not in poller.registered
    reactor.remove_handler(A)  # unknown: ignored
    reactor.remove_handler(12345)


def test_add_twice_raises_and_keeps_the_first(reactor: Reactor, poller: ScriptedPoller) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "first"), EVENT_READ)
    with pytest.raises(FileExistsError):
        reactor.add_handler(A, Recorder(log, "second"), EVENT_WRITE)
    assert poller.registered[A] == EVENT_READ
    poller.batches.append([(A, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("first", "read")]


def test_modify_unknown_raises(reactor: Reactor) -> None:
    with pytest.raises(FileNotFoundError):
        reactor.modify_handler(A, EVENT_READ)


def test_handler_methods_are_bound_once_at_add_time(
    reactor: Reactor, poller: ScriptedPoller
) -> None:
    log: list[object] = []
    handler = Recorder(log, "A")
    reactor.add_handler(A, handler, EVENT_READ)
    handler.handle_read = lambda: log.append("patched")  # type: ignore[method-assign]
    poller.batches.append([(A, EVENT_READ)])
    reactor.run_once(0)
    assert log == [("A", "read")]


# -- errors ------------------------------------------------------------------------------------


def boom() -> None:
    raise RuntimeError("boom")


def test_exception_in_a_callback_is_logged_and_the_loop_goes_on(
    reactor: Reactor, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    reactor.call_soon(boom)
    reactor.call_soon(log.append, "after")
    with caplog.at_level(logging.ERROR, logger="treadle.reactor"):
        reactor.run_once(0)
    assert log == ["after"]
    [record] = caplog.records
    assert record.name == "treadle.reactor"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "boom" in caplog.text and "Traceback" in caplog.text


def test_exception_in_a_timer_is_logged_and_the_loop_goes_on(
    reactor: Reactor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    reactor.call_later(1.0, boom)
    reactor.call_later(1.0, log.append, "next timer")
    clock.advance(1.0)
    with caplog.at_level(logging.ERROR, logger="treadle.reactor"):
        reactor.run_once(0)
    assert log == ["next timer"]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]


def test_exception_in_a_handler_is_logged_and_dispatch_goes_on(
    reactor: Reactor, poller: ScriptedPoller, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[object] = []
    reactor.add_handler(A, Recorder(log, "A", on_read=boom, on_write=boom), 3)
    reactor.add_handler(B, Recorder(log, "B"), EVENT_READ)
    poller.batches.append([(A, EVENT_READ | EVENT_WRITE), (B, EVENT_READ)])
    with caplog.at_level(logging.ERROR, logger="treadle.reactor"):
        reactor.run_once(0)
    assert log == [("A", "read"), ("A", "write"), ("B", "read")]
    assert len([r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]) == 2


def test_base_exceptions_are_not_swallowed(reactor: Reactor) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    log: list[str] = []
    reactor.call_soon(interrupt)
    reactor.call_soon(log.append, "still queued")
    with pytest.raises(KeyboardInterrupt):
        reactor.run_once(0)
    reactor.run_once(0)
    assert log == ["still queued"]


# -- stop and close ----------------------------------------------------------------------------


def test_stop_from_a_callback_returns_after_that_iteration(reactor: Reactor) -> None:
    log: list[str] = []

    def tick(n: int) -> None:
        log.append(f"tick {n}")
        if n == 3:
            reactor.stop()
            reactor.call_soon(log.append, "next run")
            reactor.call_soon(reactor.stop)
        else:
            reactor.call_soon(tick, n + 1)

    reactor.call_soon(tick, 1)
    reactor.run_forever()
    assert log == ["tick 1", "tick 2", "tick 3"]
    reactor.run_forever()  # stop() was consumed: this runs until the queued stop()
    assert log[-1] == "next run"


def test_stop_before_run_forever_runs_one_iteration(reactor: Reactor) -> None:
    log: list[str] = []
    reactor.stop()
    reactor.call_soon(log.append, "ran")
    reactor.run_forever()
    assert log == ["ran"]


def test_close_closes_the_poller_and_refuses_more_work(
    poller: ScriptedPoller, clock: FakeClock
) -> None:
    reactor = Reactor(poller, clock=clock)
    reactor.close()
    assert poller.closed
    reactor.close()  # twice is harmless
    with pytest.raises(RuntimeError):
        reactor.call_soon_threadsafe(lambda: None)
    with pytest.raises(RuntimeError):
        reactor.run_forever()


def test_close_while_running_is_refused(reactor: Reactor) -> None:
    errors: list[BaseException] = []

    def try_close() -> None:
        try:
            reactor.close()
        except RuntimeError as error:
            errors.append(error)
        reactor.stop()

    reactor.call_soon(try_close)
    reactor.run_forever()
    assert len(errors) == 1


def test_run_forever_is_not_reentrant(reactor: Reactor) -> None:
    errors: list[BaseException] = []

    def nested() -> None:
        try:
            reactor.run_forever()
        except RuntimeError as error:
            errors.append(error)
        reactor.stop()

    reactor.call_soon(nested)
    reactor.run_forever()
    assert len(errors) == 1


def test_repr_mentions_the_poller(reactor: Reactor) -> None:
    assert "scripted" in repr(reactor)
