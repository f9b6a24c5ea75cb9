"""Fairness and backpressure, end to end: a connection that floods the server with
pipelined requests does not starve another, and one that never reads its responses
costs bounded memory.
"""

from __future__ import annotations

import socket
import threading

import pytest

from tests.data.apps import pattern_bytes

from .helpers import TIMEOUT_S, RawConnection, ServerProcess, request_bytes

MIB = 1024 * 1024


class Flood:
    """Pipelined requests sent continuously on one connection from a thread, and the
    responses counted on another thread, until ``stop`` (or ``max_batches``)."""

    STATUS_LINE = b"HTTP/1.1 200 OK\r\n"

    def __init__(self, connection: RawConnection, batch_requests: int, max_batches: int):
        self.connection = connection
        # A small send buffer keeps the flood from running far ahead of the server, so
        # that the requests already sent when it stops are answered quickly.
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self.batch = request_bytes("GET", "/hello") * batch_requests
        self.batch_requests = batch_requests
        self.max_batches = max_batches
        self.sent = 0
        self.received = 0
        self.tail = b""
        self.stop = threading.Event()
        self.sender_done = threading.Event()
        self.first_response = threading.Event()
        self.errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._receive, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(4 * TIMEOUT_S)
            assert not thread.is_alive(), "the flood did not end"
        if self.errors:
            raise self.errors[0]

    def _send(self) -> None:
        sock = self.connection.sock
        try:
            for _ in range(self.max_batches):
                if self.stop.is_set():
                    break
                sock.sendall(self.batch)
                self.sent += self.batch_requests
            sock.sendall(request_bytes("GET", "/mark/flood-end", [("Connection", "close")]))
            self.sent += 1
        except BaseException as error:
            self.errors.append(error)
        finally:
            self.sender_done.set()

    def _receive(self) -> None:
        sock = self.connection.sock
        marker = self.STATUS_LINE
        carry = b""
        try:
            while True:
                data = sock.recv(MIB)
                if not data:
                    break
                window = carry + data
                # a status line cut between two recv calls is counted once, in the window
                self.received += window.count(marker)
                carry = window[-(len(marker) - 1) :]
                self.tail = (self.tail + data)[-64:]
                self.first_response.set()
        except BaseException as error:
            self.errors.append(error)
        finally:
            self.first_response.set()


def test_flood_does_not_starve_another_connection(server: ServerProcess) -> None:
    flood = Flood(server.connect(), batch_requests=2000, max_batches=200)
    try:
        flood.start()
        assert flood.first_response.wait(TIMEOUT_S), "the flood got no response"
        assert not flood.errors, flood.errors
        received_before = flood.received

        with server.connect() as other:
            response = other.get("/mark/other")
            # Answered while the flood is still being sent and its answers read.
            flood_sent_all = flood.sender_done.is_set()
            received_at_answer = flood.received
        assert response.body == b"other"
        flood.stop.set()
        flood.join()
    finally:
        flood.stop.set()
        flood.connection.close()

    assert not flood_sent_all, "the other request waited for the whole flood"
    assert received_before > 0 and flood.received > received_at_answer
    # and the flood itself was answered completely, in order, to its last request
    assert flood.received == flood.sent
    assert flood.tail.endswith(b"flood-end")


@pytest.mark.parametrize(
    "target",
    ["/big?size=2000000", "/stream?pieces=32&size=62500"],
    ids=["bytes-body", "iterable-body"],
)
def test_client_that_never_reads_costs_bounded_memory(server: ServerProcess, target: str) -> None:
    expected = pattern_bytes(2_000_000)
    requests_sent = 100  # 200 MB of responses if the server produced them all
    with server.connect() as warm_up:
        assert warm_up.get(target).body == expected
    baseline = server.rss_bytes()
    peak = baseline

    hog = server.connect()
    try:
        hog.send(request_bytes("GET", target) * requests_sent)
        # Meanwhile another client is served, including the same large response; the
        # server's memory is sampled all along.
        with server.connect() as other:
            for index in range(40):
                assert other.get(f"/mark/{index}").body == str(index).encode()
                peak = max(peak, server.rss_bytes())
            assert other.get(target).body == expected
            peak = max(peak, server.rss_bytes())
        # The hog's answers were held back, not lost: the first ones arrive intact.
        for _ in range(3):
            assert hog.read_response().body == expected
        peak = max(peak, server.rss_bytes())
    finally:
        hog.reset()
    assert peak - baseline < 64 * MIB, f"RSS grew by {(peak - baseline) / MIB:.1f} MiB"
