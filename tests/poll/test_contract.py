"""The poller contract, written once and run against every backend this platform has.

``PollerContract`` holds what every backend must do; ``LevelContract`` and
``EdgeContract`` add what differs between the two kinds of triggering; the classes at
the bottom bind them to a backend name (and hold the few backend-specific checks). A
backend the platform lacks is skipped, not failed.

Everything runs on non-blocking ``socket.socketpair()`` ends, which the kernel makes
ready or not synchronously: after ``send`` returns, the peer is readable, so most checks
need only ``poll(0)``. Timing is asserted one way only ("did not return early").
"""

from __future__ import annotations

import math
import os
import resource
import select
import socket
from time import monotonic
from typing import ClassVar

import pytest

from treadle.poll import (
    EVENT_ERROR,
    EVENT_READ,
    EVENT_WRITE,
    FD_SETSIZE,
    EpollEdgePoller,
    EpollPoller,
    Poller,
    PollerFullError,
    PollPoller,
    SelectPoller,
    available_pollers,
    create_poller,
)

from .helpers import drain, fill, hang_guard

WAIT_S = 5.0  # upper bound of a wait for readiness that should come at once


class PollerContract:
    """What every backend does. Subclasses set ``poller_name`` and ``poller_class``."""

    poller_name: ClassVar[str]
    poller_class: ClassVar[type]

    def setup_method(self) -> None:
        if self.poller_name not in available_pollers():
            pytest.skip(f"{self.poller_name} is not available on this platform")
        self.poller: Poller = create_poller(self.poller_name)
        self.sockets: list[socket.socket] = []

    def teardown_method(self) -> None:
        if hasattr(self, "poller"):
            self.poller.close()
        for sock in getattr(self, "sockets", ()):
            sock.close()

    # -- helpers -------------------------------------------------------------------------

    def pair(self) -> tuple[socket.socket, socket.socket]:
        """A connected non-blocking pair, closed at teardown."""
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        self.sockets += [left, right]
        return left, right

    def register_idle(self) -> int:
        """Register a descriptor with nothing to read, its first report already consumed.

        (An edge backend reports a fresh socket writable once, whatever was asked.)
        """
        left, _ = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        self.poller.poll(0)
        return left.fileno()

    def events_for(self, fd: int, timeout_s: float | None = 0) -> int:
        """Poll once; return the events reported for ``fd`` (0 if none)."""
        return dict(self.poller.poll(timeout_s)).get(fd, 0)

    def wait_for(self, fd: int, wanted: int) -> int:
        """Poll until ``fd`` reports any bit of ``wanted``; return all it reported."""
        deadline = monotonic() + WAIT_S
        while True:
            remaining = deadline - monotonic()
            if remaining <= 0:
                pytest.fail(f"fd {fd} was never reported with events {wanted:#x}")
            events = self.events_for(fd, remaining)
            if events & wanted:
                return events

    # -- identity ------------------------------------------------------------------------

    def test_create_poller_gives_this_backend(self) -> None:
        assert type(self.poller) is self.poller_class
        assert self.poller.name == self.poller_name
        assert isinstance(self.poller.edge_triggered, bool)
        assert self.poller.max_fd is None or self.poller.max_fd > 2

    # -- registration --------------------------------------------------------------------

    def test_idle_descriptor_is_not_readable(self) -> None:
        left, _ = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        assert not self.events_for(left.fileno()) & EVENT_READ

    def test_register_twice_raises_and_keeps_the_first(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        with pytest.raises(FileExistsError):
            self.poller.register(left.fileno(), EVENT_WRITE)
        right.send(b"x")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ

    def test_invalid_registrations_are_refused(self) -> None:
        left, _ = self.pair()
        with pytest.raises(ValueError):
            self.poller.register(-1, EVENT_READ)
        with pytest.raises(ValueError):
            self.poller.register(left.fileno(), 8)
        # nothing half-registered: a proper registration still works
        self.poller.register(left.fileno(), EVENT_READ)

    def test_modify_unknown_raises(self) -> None:
        left, _ = self.pair()
        with pytest.raises(FileNotFoundError):
            self.poller.modify(left.fileno(), EVENT_READ)

    def test_unregister_stops_reports(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ | EVENT_WRITE)
        right.send(b"x")
        self.poller.unregister(left.fileno())
        assert left.fileno() not in dict(self.poller.poll(0))

    def test_unregister_unknown_or_twice_is_ignored(self) -> None:
        left, _ = self.pair()
        self.poller.unregister(left.fileno())
        self.poller.register(left.fileno(), EVENT_READ)
        self.poller.unregister(left.fileno())
        self.poller.unregister(left.fileno())

    def test_register_again_after_unregister(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_WRITE)
        self.poller.unregister(left.fileno())
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"x")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ

    # -- readiness -----------------------------------------------------------------------

    def test_read_readiness(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"ping")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ
        assert left.recv(16) == b"ping"

    def test_write_readiness_when_there_is_room(self) -> None:
        left, _ = self.pair()
        self.poller.register(left.fileno(), EVENT_WRITE)
        assert self.wait_for(left.fileno(), EVENT_WRITE) & EVENT_WRITE

    def test_no_write_readiness_when_full_until_drained(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_WRITE)
        self.wait_for(left.fileno(), EVENT_WRITE)
        assert fill(left) > 0
        assert not self.events_for(left.fileno()) & EVENT_WRITE
        drain(right)
        assert self.wait_for(left.fileno(), EVENT_WRITE) & EVENT_WRITE

    def test_read_and_write_come_in_one_pair(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ | EVENT_WRITE)
        right.send(b"x")
        events = self.poller.poll(WAIT_S)
        assert [fd for fd, _ in events] == [left.fileno()]
        assert events[0][1] & (EVENT_READ | EVENT_WRITE) == EVENT_READ | EVENT_WRITE

    def test_only_ready_descriptors_are_reported(self) -> None:
        pairs = [self.pair() for _ in range(12)]
        for left, _ in pairs:
            self.poller.register(left.fileno(), EVENT_READ)
        for _, right in pairs[::3]:
            right.send(b"x")
        expected = {left.fileno() for left, _ in pairs[::3]}
        events = self.poller.poll(WAIT_S)
        fds = [fd for fd, _ in events]
        assert len(fds) == len(set(fds)), "a descriptor reported twice in one poll"
        assert {fd for fd, mask in events if mask & EVENT_READ} == expected
        assert all(type(fd) is int and type(mask) is int for fd, mask in events)

    def test_hang_up_reported_after_peer_close(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.close()
        # READ or ERROR: select has no separate hang-up; either goes to handle_read
        assert self.wait_for(left.fileno(), EVENT_READ | EVENT_ERROR)
        assert left.recv(16) == b""

    def test_half_close_reported_readable(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.shutdown(socket.SHUT_WR)
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ
        assert left.recv(16) == b""

    # -- timeouts ------------------------------------------------------------------------

    def test_timeout_zero_does_not_wait(self) -> None:
        self.register_idle()
        with hang_guard():
            assert self.poller.poll(0) == []
            assert self.poller.poll(-1.0) == []

    def test_none_timeout_returns_when_ready(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"x")
        with hang_guard():
            assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ
            # and once more with no timeout at all: a level backend reports it again, an
            # edge backend has nothing new, so give it something new
            right.send(b"y")
            assert dict(self.poller.poll(None)).get(left.fileno(), 0) & EVENT_READ

    @pytest.mark.parametrize("timeout_s", [0.0001, 0.0011, 0.002])
    def test_tiny_timeouts_round_up_to_whole_milliseconds(self, timeout_s: float) -> None:
        self.register_idle()
        rounded_s = math.ceil(timeout_s * 1000) / 1000
        start = monotonic()
        assert self.poller.poll(timeout_s) == []
        elapsed = monotonic() - start
        # never early: the kernel waits at least the rounded time on the same clock
        # (1 us of slack for reading the clock and float arithmetic)
        assert elapsed >= rounded_s - 1e-6

    def test_close_twice_is_harmless(self) -> None:
        self.poller.close()
        self.poller.close()


class LevelContract(PollerContract):
    """Level triggering: readiness is reported for as long as it lasts."""

    def test_is_level_triggered(self) -> None:
        assert self.poller.edge_triggered is False

    def test_readable_reported_again_until_drained(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"x")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ
        assert self.events_for(left.fileno()) & EVENT_READ
        drain(left)
        assert not self.events_for(left.fileno()) & EVENT_READ

    def test_modify_changes_what_is_reported(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"x")
        assert self.events_for(left.fileno()) == EVENT_READ
        self.poller.modify(left.fileno(), EVENT_WRITE)
        assert self.events_for(left.fileno()) == EVENT_WRITE
        self.poller.modify(left.fileno(), EVENT_READ | EVENT_WRITE)
        assert self.events_for(left.fileno()) == EVENT_READ | EVENT_WRITE
        self.poller.modify(left.fileno(), 0)
        assert self.events_for(left.fileno()) == 0

    def test_write_not_reported_unless_asked(self) -> None:
        left, _ = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        assert left.fileno() not in dict(self.poller.poll(0))


class EdgeContract(PollerContract):
    """Edge triggering: readiness is reported when it changes, for everything."""

    def test_is_edge_triggered(self) -> None:
        assert self.poller.edge_triggered is True

    def test_readable_reported_once_until_drained(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        right.send(b"x")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ
        assert not self.events_for(left.fileno()) & EVENT_READ, "reported twice"
        assert drain(left) == b"x"
        right.send(b"y")
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ

    def test_registers_for_everything_whatever_is_asked(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        # writable was not asked for, but a fresh socket is writable: raw readiness
        assert self.wait_for(left.fileno(), EVENT_WRITE) & EVENT_WRITE
        self.poller.modify(left.fileno(), EVENT_WRITE)
        right.send(b"x")
        # modify changed nothing in the kernel: new data is still reported
        assert self.wait_for(left.fileno(), EVENT_READ) & EVENT_READ

    def test_write_edge_after_buffer_frees(self) -> None:
        left, right = self.pair()
        self.poller.register(left.fileno(), EVENT_READ)
        self.wait_for(left.fileno(), EVENT_WRITE)
        fill(left)
        assert not self.events_for(left.fileno()) & EVENT_WRITE
        drain(right)
        assert self.wait_for(left.fileno(), EVENT_WRITE) & EVENT_WRITE


# -- the backends ----------------------------------------------------------------------


def free_fd_at(number: int) -> bool:
    """True if descriptor ``number`` is not open in this process."""
    try:
        os.fstat(number)
    except OSError:
        return True
    return False


class TestSelectPoller(LevelContract):
    poller_name = "select"
    poller_class = SelectPoller

    def test_max_fd_is_fd_setsize(self) -> None:
        assert self.poller.max_fd == FD_SETSIZE == 1024

    def test_descriptor_at_fd_setsize_is_refused_clearly(self) -> None:
        high = 1100
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft <= high:
            if hard != resource.RLIM_INFINITY and hard <= high:
                pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for fd {high}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, hard))
        try:
            if not free_fd_at(high) or not free_fd_at(FD_SETSIZE - 1):
                pytest.skip("the descriptor numbers this test needs are taken")
            left, right = self.pair()
            os.dup2(left.fileno(), high)
            os.dup2(left.fileno(), FD_SETSIZE - 1)
            try:
                with pytest.raises(PollerFullError, match="FD_SETSIZE=1024") as info:
                    self.poller.register(high, EVENT_READ)
                assert isinstance(info.value, OSError)
                # the last descriptor below the limit is fine, and select() works with it
                self.poller.register(FD_SETSIZE - 1, EVENT_READ)
                right.send(b"x")
                assert self.wait_for(FD_SETSIZE - 1, EVENT_READ) & EVENT_READ
                assert high not in dict(self.poller.poll(0))
            finally:
                self.poller.unregister(FD_SETSIZE - 1)
                os.close(high)
                os.close(FD_SETSIZE - 1)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class TestPollPoller(LevelContract):
    poller_name = "poll"
    poller_class = PollPoller

    def test_descriptor_closed_while_registered_reports_error(self) -> None:
        left, _ = self.pair()
        fd = os.dup(left.fileno())
        self.poller.register(fd, EVENT_READ)
        os.close(fd)
        try:
            # POLLNVAL: the mistake shows up as an error rather than a silent stall
            assert self.events_for(fd) & EVENT_ERROR
        finally:
            self.poller.unregister(fd)


class EpollChecks(PollerContract):
    """What both epoll backends do besides the contract."""

    def test_unregister_after_close_is_ignored(self) -> None:
        left, _ = self.pair()
        fd = os.dup(left.fileno())
        self.poller.register(fd, EVENT_READ)
        os.close(fd)
        self.poller.unregister(fd)  # EBADF from epoll_ctl is swallowed
        self.poller.register(left.fileno(), EVENT_READ)

    def test_fileno_is_the_epoll_descriptor(self) -> None:
        assert isinstance(self.poller, EpollPoller | EpollEdgePoller)
        assert self.poller.fileno() >= 0
        self.poller.close()
        with pytest.raises(ValueError):
            self.poller.fileno()


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux only")
class TestEpollPoller(LevelContract, EpollChecks):
    poller_name = "epoll"
    poller_class = EpollPoller


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll is Linux only")
class TestEpollEdgePoller(EdgeContract, EpollChecks):
    poller_name = "epoll-et"
    poller_class = EpollEdgePoller
