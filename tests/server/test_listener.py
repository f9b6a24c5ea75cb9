"""The listener: accepting from a real socket, bounded per turn, and surviving EMFILE and a
full poller without a busy loop. The clock is fake, so the EMFILE pause is moved by hand."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from typing import Any

import pytest

from treadle.apps.native import NativeApplication
from treadle.config import Settings
from treadle.poll import PollerFullError, create_poller
from treadle.reactor import Reactor
from treadle.server import listener as listener_module
from treadle.server.context import ServerContext
from treadle.server.listener import Listener, bind_socket

from .helpers import FakeClock, get, hello, parse_responses


class FlakyListenSocket:
    """Wraps a listening socket: counts ``accept`` calls and raises what it is told to."""

    def __init__(self, inner: socket.socket) -> None:
        self.inner = inner
        self.calls = 0
        self.errors: list[OSError] = []  # raised first, one per call
        self.fail_with: int | None = None  # raised on every call while set

    def accept(self) -> tuple[socket.socket, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.fail_with is not None:
            raise OSError(self.fail_with, os.strerror(self.fail_with))
        return self.inner.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FillablePoller:
    """Wraps a real poller; while ``full``, registering a new descriptor other than the
    listener's raises PollerFullError, as select does at FD_SETSIZE."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.edge_triggered = inner.edge_triggered
        self.max_fd = inner.max_fd
        self.modify = inner.modify
        self.unregister = inner.unregister
        self.poll = inner.poll
        self.close = inner.close
        self.full = False
        self.spare_fds: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        if self.full and fd not in self.spare_fds:
            raise PollerFullError(errno.EMFILE, f"fd {fd} is over the limit of this test")
        self.inner.register(fd, events)


class Setup:
    def __init__(self, poller_name: str, wrap_poller: bool = False, **overrides: Any) -> None:
        self.clock = FakeClock()
        inner = create_poller(poller_name)
        self.poller = FillablePoller(inner) if wrap_poller else inner
        self.reactor = Reactor(self.poller, clock=self.clock)  # type: ignore[arg-type]
        self.ctx = ServerContext(
            self.reactor, NativeApplication(hello), Settings.resolve(overrides, environ={})
        )
        self.sock = bind_socket("127.0.0.1", 0, 128)
        self.flaky = FlakyListenSocket(self.sock)
        self.listener = Listener(self.ctx, self.sock)
        self.listener.sock = self.flaky  # type: ignore[assignment]
        if wrap_poller:
            self.poller.spare_fds.add(self.listener.fd)  # type: ignore[union-attr]
        self.listener.start()
        self.clients: list[socket.socket] = []

    def connect(self) -> socket.socket:
        client = socket.create_connection(self.listener.address, timeout=5)
        self.clients.append(client)
        return client

    def turn(self, times: int = 1) -> None:
        for _ in range(times):
            self.reactor.run_once(0)

    def run_until(self, predicate, max_turns: int = 50) -> None:
        for _ in range(max_turns):
            if predicate():
                return
            self.reactor.run_once(0)
        assert predicate(), f"condition not reached in {max_turns} turns"

    @property
    def accepting(self) -> bool:
        return self.listener.fd in self.reactor._handlers

    def close(self) -> None:
        for driver in list(self.ctx.connections):
            driver.close()
        self.listener.close()
        for client in self.clients:
            client.close()
        self.reactor.close()


@pytest.fixture
def setup_factory():
    made: list[Setup] = []

    def factory(*args: Any, **kwargs: Any) -> Setup:
        setup = Setup(*args, **kwargs)
        made.append(setup)
        return setup

    yield factory
    for setup in made:
        setup.close()


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_bind_socket_is_non_blocking_on_an_ephemeral_port():
    sock = bind_socket("127.0.0.1", 0, 8)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        assert not sock.getblocking()
        with pytest.raises(OSError):
            bind_socket("127.0.0.1", port, 8)  # in use: the operating system's reason
    finally:
        sock.close()


def test_bind_socket_ipv6():
    try:
        sock = bind_socket("::1", 0, 8)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        sock.close()


def test_accepts_and_serves_a_connection(setup_factory, poller):
    setup = setup_factory(poller)
    client = setup.connect()
    setup.run_until(lambda: len(setup.ctx.connections) == 1)
    [driver] = setup.ctx.connections
    assert driver.client[0] == "127.0.0.1"
    assert driver.client[1] == client.getsockname()[1]
    assert not driver.transport.sock.getblocking()
    assert driver.transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    client.sendall(get("/via-listener"))
    client.setblocking(False)
    received = bytearray()

    def answered() -> bool:
        try:
            received.extend(client.recv(65536))
        except BlockingIOError:
            pass
        return received.endswith(b"hello /via-listener")

    setup.run_until(answered)
    assert [r.status for r in parse_responses(bytes(received))] == [200]


def test_accepts_at_most_a_bounded_number_per_turn(setup_factory, poller, monkeypatch):
    monkeypatch.setattr(listener_module, "_ACCEPTS_PER_TURN", 5)
    setup = setup_factory(poller)
    for _ in range(12):
        setup.connect()
    setup.turn()
    # Five per handle_read; with an edge poller the rest of the backlog is not reported
    # again, so the listener resumes itself in the same iteration's callback step.
    assert len(setup.ctx.connections) == (10 if setup.ctx.edge_triggered else 5)
    # The last two are accepted although no new connection makes a new edge.
    setup.run_until(lambda: len(setup.ctx.connections) == 12)


def test_aborted_connection_in_the_backlog_is_skipped(setup_factory, poller, caplog):
    setup = setup_factory(poller)
    setup.flaky.errors.append(ConnectionAbortedError(errno.ECONNABORTED, "aborted"))
    setup.connect()
    with caplog.at_level(logging.DEBUG, logger="treadle.server"):
        setup.turn()
    assert len(setup.ctx.connections) == 1
    assert _warnings(caplog) == []


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE])
def test_out_of_descriptors_pauses_then_resumes(setup_factory, poller, caplog, code):
    setup = setup_factory(poller)
    setup.flaky.fail_with = code
    setup.connect()
    with caplog.at_level(logging.INFO, logger="treadle.server"):
        setup.turn()
        assert setup.flaky.calls == 1
        [warning] = _warnings(caplog)
        assert "pausing accepts" in warning.getMessage()
        assert os.strerror(code) in warning.getMessage()
        assert not setup.accepting
        # No busy loop: the socket stays readable, but nobody asks.
        setup.turn(20)
        assert setup.flaky.calls == 1
        assert len(_warnings(caplog)) == 1
        setup.clock.advance(listener_module._EMFILE_PAUSE_S - 0.01)
        setup.turn(3)
        assert not setup.accepting
        assert setup.flaky.calls == 1
        setup.flaky.fail_with = None
        setup.clock.advance(0.02)
        setup.turn()
        assert setup.accepting
        setup.run_until(lambda: len(setup.ctx.connections) == 1)
    assert len(_warnings(caplog)) == 1


def test_persistent_emfile_tries_once_per_pause(setup_factory, poller, caplog):
    setup = setup_factory(poller)
    setup.flaky.fail_with = errno.EMFILE
    setup.connect()
    with caplog.at_level(logging.WARNING, logger="treadle.server"):
        for _ in range(4):
            setup.turn(5)
            setup.clock.advance(listener_module._EMFILE_PAUSE_S)
        setup.turn(5)
    # One accept, and one warning line, per pause: never a spin.
    assert 4 <= setup.flaky.calls <= 5
    assert len(_warnings(caplog)) == setup.flaky.calls


def test_close_during_the_emfile_pause_stays_closed(setup_factory, poller):
    setup = setup_factory(poller)
    setup.flaky.fail_with = errno.EMFILE
    setup.connect()
    setup.turn()
    setup.listener.close()
    setup.clock.advance(listener_module._EMFILE_PAUSE_S + 1)
    setup.turn(3)
    assert setup.listener.fd == -1
    assert not setup.accepting


def test_other_accept_errors_are_logged_without_pausing(setup_factory, poller, caplog):
    setup = setup_factory(poller)
    setup.flaky.errors.append(OSError(errno.EPROTO, os.strerror(errno.EPROTO)))
    setup.connect()
    with caplog.at_level(logging.WARNING, logger="treadle.server"):
        setup.turn()
    [warning] = _warnings(caplog)
    assert "accept failed" in warning.getMessage()
    assert setup.accepting
    setup.run_until(lambda: len(setup.ctx.connections) == 1)


def test_full_poller_pauses_until_a_connection_closes(setup_factory, poller, caplog):
    setup = setup_factory(poller, wrap_poller=True)
    first = setup.connect()
    setup.run_until(lambda: len(setup.ctx.connections) == 1)
    setup.poller.full = True
    refused = setup.connect()
    with caplog.at_level(logging.WARNING, logger="treadle.server"):
        setup.turn()
        [warning] = _warnings(caplog)
        assert "not accepting new connections" in warning.getMessage()
        assert "serving the 1 open ones" in warning.getMessage()
        assert not setup.accepting
        assert len(setup.ctx.connections) == 1
        # The refused client's socket was closed on our side, and nothing is left of it.
        refused.settimeout(5)
        assert refused.recv(10) == b""
        calls = setup.flaky.calls
        waiting = setup.connect()  # waits in the backlog
        setup.turn(10)
        assert setup.flaky.calls == calls  # no busy loop while full
        # A connection closes: accepting resumes and the waiting client is served.
        setup.poller.full = False
        first.close()
        setup.run_until(lambda: setup.accepting)
        setup.run_until(lambda: len(setup.ctx.connections) == 1 and setup.flaky.calls > calls)
        waiting.sendall(get("/waited"))
        waiting.setblocking(False)
        received = bytearray()

        def answered() -> bool:
            try:
                received.extend(waiting.recv(65536))
            except BlockingIOError:
                pass
            return received.endswith(b"hello /waited")

        setup.run_until(answered)
        # Full again: said once per process, not once per refusal.
        setup.poller.full = True
        setup.connect()
        setup.turn(3)
        assert not setup.accepting
    assert len(_warnings(caplog)) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux behaviour")
def test_accepted_sockets_inherit_tcp_nodelay_on_linux() -> None:
    """The listener skips a setsockopt per connection on the strength of this."""
    listener = bind_socket("127.0.0.1", 0, 8)
    try:
        client = socket.create_connection(listener.getsockname()[:2])
        listener.setblocking(True)
        accepted, _ = listener.accept()
        try:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            accepted.close()
            client.close()
    finally:
        listener.close()
