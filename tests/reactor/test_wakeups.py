"""The reactor over real pollers: socket I/O, wake-ups from threads and from signals.

Nothing here sleeps to synchronise. A thread that must act while the loop waits waits
itself for ``ObservedPoller.entered``; a loop that must be woken waits with no timeout
at all, under ``hang_guard``, so a broken wake-up fails the test instead of passing late.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator, Sized
from time import monotonic

import pytest

from treadle.poll import EVENT_READ, EVENT_WRITE, available_pollers, create_poller
from treadle.reactor import Reactor

from .helpers import ObservedPoller, hang_guard

WAIT_S = 10.0

needs_signals = pytest.mark.skipif(
    not hasattr(signal, "SIGUSR1") or not hasattr(signal, "pthread_kill"),
    reason="needs POSIX signals",
)


@pytest.fixture(params=available_pollers())
def observed(request: pytest.FixtureRequest) -> ObservedPoller:
    return ObservedPoller(create_poller(request.param))


@pytest.fixture
def reactor(observed: ObservedPoller) -> Iterator[Reactor]:
    reactor = Reactor(observed)
    # An edge poller reports the waker's fresh socket writable once; take that report
    # now, so that a test's first blocking wait is ended only by what the test does.
    reactor.run_once(0)
    yield reactor
    reactor.close()


def run_until(reactor: Reactor, done: threading.Event | Sized) -> None:
    """Run iterations until ``done`` is set (or non-empty), failing after WAIT_S."""
    deadline = monotonic() + WAIT_S
    while not (done.is_set() if isinstance(done, threading.Event) else len(done)):
        remaining = deadline - monotonic()
        if remaining <= 0:
            pytest.fail("the loop never got there")
        reactor.run_once(remaining)


def start_when_waiting(observed: ObservedPoller, action: object) -> threading.Thread:
    """Run ``action`` on a thread once the loop has entered its wait."""
    assert callable(action)

    def body() -> None:
        if observed.entered.wait(WAIT_S):
            action()

    observed.entered.clear()
    thread = threading.Thread(target=body)
    thread.start()
    return thread


# -- I/O over every backend --------------------------------------------------------------------


class EchoOnce:
    """Reads until EAGAIN (as every treadle handler does), then writes the bytes back."""

    def __init__(self, reactor: Reactor, sock: socket.socket) -> None:
        self.reactor = reactor
        self.sock = sock
        self.pending = b""
        self.sent = threading.Event()

    def handle_read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            if not data:
                break
            self.pending += data
        if self.pending:
            self.reactor.modify_handler(self.sock.fileno(), EVENT_READ | EVENT_WRITE)

    def handle_write(self) -> None:
        if not self.pending:
            return  # an edge poller reports writability we did not ask for
        sent = self.sock.send(self.pending)
        self.pending = self.pending[sent:]
        if not self.pending:
            self.reactor.modify_handler(self.sock.fileno(), EVENT_READ)
            self.sent.set()


def test_socket_round_trip(reactor: Reactor) -> None:
    server, client = socket.socketpair()
    with server, client:
        server.setblocking(False)
        handler = EchoOnce(reactor, server)
        reactor.add_handler(server.fileno(), handler, EVENT_READ)
        client.sendall(b"hello")
        run_until(reactor, handler.sent)
        client.settimeout(WAIT_S)
        assert client.recv(16) == b"hello"
        reactor.remove_handler(server.fileno())


# -- threads -----------------------------------------------------------------------------------


def test_call_soon_threadsafe_wakes_a_blocked_run_once(
    reactor: Reactor, observed: ObservedPoller
) -> None:
    ran_on: list[int] = []
    thread = start_when_waiting(
        observed, lambda: reactor.call_soon_threadsafe(lambda: ran_on.append(threading.get_ident()))
    )
    with hang_guard(WAIT_S):
        reactor.run_once(None)  # no timers, no timeout: only the wake can end this
    thread.join(WAIT_S)
    assert ran_on == [threading.get_ident()], "ran once, on the loop thread, in that iteration"


def test_stop_from_another_thread(reactor: Reactor, observed: ObservedPoller) -> None:
    thread = start_when_waiting(observed, reactor.stop)
    with hang_guard(WAIT_S):
        reactor.run_forever()
    thread.join(WAIT_S)
    assert not thread.is_alive()


# -- signals -----------------------------------------------------------------------------------


@needs_signals
def test_signal_runs_its_callback_on_the_loop(reactor: Reactor) -> None:
    got: list[tuple[str, int]] = []
    reactor.add_signal_handler(
        signal.SIGUSR1, lambda tag: got.append((tag, threading.get_ident())), "usr1"
    )
    os.kill(os.getpid(), signal.SIGUSR1)
    assert got == [], "the Python handler only records; the loop runs the callback"
    with hang_guard(WAIT_S):
        run_until(reactor, got)
    assert got == [("usr1", threading.get_ident())]


@needs_signals
def test_signal_to_the_blocked_loop_thread_wakes_it(
    reactor: Reactor, observed: ObservedPoller
) -> None:
    got: list[int] = []
    reactor.add_signal_handler(signal.SIGUSR1, got.append, 1)
    main = threading.get_ident()
    thread = start_when_waiting(observed, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    with hang_guard(WAIT_S):
        while not got:
            reactor.run_once(None)  # EINTR, the handler wakes the waker, the retry returns
    thread.join(WAIT_S)
    assert got == [1]


@needs_signals
def test_signal_delivered_to_another_thread_still_wakes_the_loop(
    reactor: Reactor, observed: ObservedPoller
) -> None:
    # The kernel may hand a process signal to any thread that does not block it; then
    # the loop's wait is not interrupted, and only the wakeup fd (written by the C-level
    # handler on that thread) can end it. Blocking the signal here forces that case.
    got: list[int] = []
    reactor.add_signal_handler(signal.SIGUSR1, got.append, 1)
    thread = start_when_waiting(observed, lambda: os.kill(os.getpid(), signal.SIGUSR1))
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        with hang_guard(WAIT_S):
            while not got:
                reactor.run_once(None)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    thread.join(WAIT_S)
    assert got == [1]


@needs_signals
def test_close_restores_the_previous_signal_handler_and_wakeup_fd() -> None:
    def previous(signum: int, frame: object) -> None:
        pass

    old = signal.signal(signal.SIGUSR2, previous)
    old_wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(old_wakeup)
    try:
        reactor = Reactor()
        reactor.add_signal_handler(signal.SIGUSR2, lambda: None)
        reactor.add_signal_handler(signal.SIGUSR2, lambda: None)  # replacing keeps the first
        assert signal.getsignal(signal.SIGUSR2) is not previous
        reactor.close()
        assert signal.getsignal(signal.SIGUSR2) is previous
        assert signal.set_wakeup_fd(old_wakeup) == old_wakeup
    finally:
        signal.signal(signal.SIGUSR2, old)


@needs_signals
def test_remove_signal_handler(reactor: Reactor) -> None:
    before = signal.getsignal(signal.SIGUSR2)
    assert reactor.remove_signal_handler(signal.SIGUSR2) is False
    reactor.add_signal_handler(signal.SIGUSR2, lambda: None)
    assert reactor.remove_signal_handler(signal.SIGUSR2) is True
    assert signal.getsignal(signal.SIGUSR2) == before


def test_add_signal_handler_off_the_main_thread_fails_cleanly(reactor: Reactor) -> None:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            reactor.add_signal_handler(signal.SIGINT, lambda: None)
        except ValueError as error:
            errors.append(error)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(WAIT_S)
    assert len(errors) == 1
    assert reactor.remove_signal_handler(signal.SIGINT) is False


def test_default_poller_is_the_auto_choice() -> None:
    reactor = Reactor()
    try:
        assert reactor.poller.name == create_poller("auto").name
        assert reactor.poller.name in available_pollers()
    finally:
        reactor.close()


def test_handlers_may_register_for_write_on_any_backend(reactor: Reactor) -> None:
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        writable = threading.Event()

        class Writer:
            def handle_read(self) -> None:
                pass

            def handle_write(self) -> None:
                writable.set()

        reactor.add_handler(left.fileno(), Writer(), EVENT_WRITE)
        run_until(reactor, writable)
        reactor.remove_handler(left.fileno())


def test_no_wake_up_is_lost_when_threads_race_the_drain(reactor: Reactor) -> None:
    """Regression: the wake flag was cleared before draining the waker, so a thread
    could set it and write its byte in between; the drain ate the byte, the flag
    stayed set, and every later call_soon_threadsafe skipped its wake-up while the
    loop waited forever. Threads that post, then wait for their callback, while the
    loop blocks with no timeout, hit that window within a few thousand rounds."""
    rounds, threads = 3000, 3
    done = [0]

    def worker() -> None:
        ran = threading.Event()
        for _ in range(rounds):
            ran.clear()
            reactor.call_soon_threadsafe(ran.set)
            if not ran.wait(WAIT_S):
                return  # the loop lost our wake-up: the main thread's guard reports it
        reactor.call_soon_threadsafe(lambda: done.__setitem__(0, done[0] + 1))

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    try:
        with hang_guard(60.0):
            while done[0] < threads:
                reactor.run_once()  # no timeout: only a wake-up can end the wait
    finally:
        for thread in workers:
            thread.join(WAIT_S)
    assert done[0] == threads
