"""The Server: binding its listeners, the shared Date field, stopping and releasing."""

from __future__ import annotations

import logging
import re
import signal
import socket
from typing import Any

import pytest

from treadle.apps.native import NativeApplication
from treadle.config import Settings
from treadle.poll import create_poller
from treadle.reactor import Reactor
from treadle.server import Server

from .helpers import FakeClock, get, hello, parse_responses

DATE_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")


def _server(poller: str = "epoll", **overrides: Any) -> Server:
    overrides.setdefault("bind", ["127.0.0.1:0"])
    overrides.setdefault("poller", poller)
    settings = Settings.resolve(overrides, environ={})
    reactor = Reactor(create_poller(poller), clock=FakeClock())
    return Server(NativeApplication(hello), settings, reactor=reactor)


def _fetch(server: Server, address: tuple[str, int], request: bytes) -> bytes:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(address)
        client.sendall(request)
        client.setblocking(False)
        received = bytearray()
        for _ in range(100):
            server.reactor.run_once(0)
            try:
                data = client.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                break
            received.extend(data)
            if parse_responses(bytes(received), partial_ok=True):
                break
        return bytes(received)


def test_start_binds_logs_and_serves(poller, caplog):
    server = _server(poller)
    try:
        with caplog.at_level(logging.INFO, logger="treadle.server"):
            server.start()
        [address] = server.addresses
        assert address[0] == "127.0.0.1" and address[1] > 0
        [line] = [r.getMessage() for r in caplog.records if "listening" in r.getMessage()]
        assert line == f"listening on http://127.0.0.1:{address[1]} (poller {poller})"
        [response] = parse_responses(_fetch(server, address, get("/served")))
        assert response.body == b"hello /served"
        assert DATE_RE.fullmatch(response.header("date") or "")
    finally:
        server.close()


def test_several_binds_each_get_a_listener():
    server = _server(bind=["127.0.0.1:0", "127.0.0.1:0"])
    try:
        server.start()
        first, second = server.addresses
        assert first[1] != second[1]
        for address in server.addresses:
            assert parse_responses(_fetch(server, address, get("/")))[0].status == 200
    finally:
        server.close()


def test_ipv6_address_is_shown_in_brackets(caplog):
    server = _server(bind=["[::1]:0"])
    try:
        with caplog.at_level(logging.INFO, logger="treadle.server"):
            try:
                server.start()
            except OSError:
                pytest.skip("no IPv6 loopback here")
        port = server.addresses[0][1]
        assert f"listening on http://[::1]:{port} " in caplog.text
        assert parse_responses(_fetch(server, ("::1", port), get("/")))[0].status == 200
    finally:
        server.close()


def test_address_in_use_raises_oserror():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = _server(bind=[f"127.0.0.1:{port}"])
        try:
            with pytest.raises(OSError):
                server.start()
        finally:
            server.close()


def test_stop_then_run_returns_and_releases_everything():
    server = _server()
    server.start()
    [listener] = server.listeners
    client = socket.create_connection(server.addresses[0], timeout=5)
    try:
        for _ in range(5):
            server.reactor.run_once(0)
        [driver] = server.ctx.connections
        server.stop()
        server.run()  # one iteration, then close
        assert listener.fd == -1
        assert driver.closed
        assert server.ctx.connections == set()
        client.settimeout(5)
        assert client.recv(10) == b""
        with pytest.raises(RuntimeError):
            server.reactor.call_soon_threadsafe(lambda: None)  # the reactor is closed
    finally:
        client.close()


def test_signal_stops_the_server_and_handlers_are_restored(caplog):
    before = signal.getsignal(signal.SIGTERM)
    server = _server()
    try:
        server.start()
        server.install_signal_handlers()
        assert signal.getsignal(signal.SIGTERM) != before
        with caplog.at_level(logging.INFO, logger="treadle.server"):
            server._on_signal(signal.SIGTERM)
        assert "received SIGTERM, shutting down" in caplog.text
        server.run()  # stop() was called: returns after one iteration
    finally:
        server.close()
    assert signal.getsignal(signal.SIGTERM) == before


def test_close_closes_the_application_once_after_its_connections():
    events: list[str] = []

    class ClosingApp:
        def __call__(self, exchange) -> None:
            exchange.respond(200, [], b"ok")

        def close(self) -> None:
            events.append("app closed")

    settings = Settings.resolve({"bind": ["127.0.0.1:0"]}, environ={})
    server = Server(
        ClosingApp(), settings, reactor=Reactor(create_poller("epoll"), clock=FakeClock())
    )
    server.start()
    server.close()
    server.close()
    assert events == ["app closed"]
