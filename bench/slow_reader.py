"""Many clients downloading one large file slowly, for the memory part of ``static``.

    taskset -c 1 python bench/slow_reader.py PORT PATH [--clients 100] [--rate-bytes 65536]
                                                      [--seconds 10]

Each client opens a connection, sends one ``GET PATH`` and then reads no faster than
``--rate-bytes`` per second: the server has far more to send than the client takes,
so it must hold each response in flight, suspended on a full socket, for as long as the
client lingers. A server that buffers what it cannot send yet (or reads the file into
memory) shows it in its RSS; one that streams from the file as the socket drains does
not. The harness samples the server's RSS meanwhile.

Two JSON lines go to stdout: ``{"event": "started", ...}`` once every connection is open
and its request sent (the harness starts sampling then), and ``{"event": "done", ...}``
with what the clients saw: status codes, bytes read, connections the server closed.
Then every connection is closed with RST (no TIME_WAIT piles up here) and the process
exits. Every wait is bounded: connecting by ``--connect-seconds``, reading by
``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import socket
import struct
import sys
import time
from typing import Any

HOST = "127.0.0.1"
TICK_S = 0.05
_LINGER_RST = struct.pack("ii", 1, 0)


class Client:
    """One slow download."""

    __slots__ = ("sock", "head", "status", "body_bytes", "closed", "error")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.head = b""  # the response head, until its blank line has arrived
        self.status: str | None = None
        self.body_bytes = 0
        self.closed = False  # by the server
        self.error: str | None = None

    def take(self, data: bytes) -> None:
        """Account for ``data`` read from the socket."""
        if self.status is not None:
            self.body_bytes += len(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > 65536:
                self.status, self.head = "no head", b""
            return
        parts = self.head[:end].split(b" ", 2)
        self.status = parts[1].decode("latin-1") if len(parts) > 1 else "bad"
        self.body_bytes = len(self.head) - end - 4
        self.head = b""


def open_clients(port: int, path: str, count: int, timeout_s: float) -> list[Client]:
    """Connect ``count`` clients and send each its request; those that failed are marked."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: treadle-bench-slow\r\n\r\n"
    ).encode("latin-1")
    clients: list[Client] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client = Client(sock)
        clients.append(client)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            sock.connect((HOST, port))
            sock.sendall(request)
        except OSError as exc:
            client.error = f"connect: {errno.errorcode.get(exc.errno or 0, type(exc).__name__)}"
            client.closed = True
            continue
        sock.setblocking(False)
    return clients


def read_slowly(clients: list[Client], rate_bytes: int, seconds: float) -> float:
    """Read from every client at ``rate_bytes`` per second for ``seconds``; returns the time."""
    started = time.monotonic()
    taken = {id(c): 0 for c in clients}
    while True:
        now = time.monotonic()
        elapsed = now - started
        if elapsed >= seconds:
            return elapsed
        allowed = int(rate_bytes * elapsed)
        for client in clients:
            if client.closed:
                continue
            budget = allowed - taken[id(client)]
            while budget > 0:
                try:
                    data = client.sock.recv(min(budget, 65536))
                except BlockingIOError:
                    break
                except OSError as exc:
                    client.error = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
                    client.closed = True
                    break
                if not data:
                    client.closed = True
                    break
                taken[id(client)] += len(data)
                budget -= len(data)
                client.take(data)
        time.sleep(max(0.0, min(TICK_S, seconds - (time.monotonic() - started))))


def summary(clients: list[Client], seconds: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for c in clients:
        key = c.status or "none"
        statuses[key] = statuses.get(key, 0) + 1
        if c.error:
            errors[c.error] = errors.get(c.error, 0) + 1
    body = [c.body_bytes for c in clients]
    return {
        "event": "done",
        "clients": len(clients),
        "statuses": statuses,
        "body_bytes_total": sum(body),
        "body_bytes_min": min(body, default=0),
        "body_bytes_max": max(body, default=0),
        "closed_by_server": sum(1 for c in clients if c.closed and not c.error),
        "errors": errors,
        "seconds": round(seconds, 3),
    }


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate-bytes", type=int, default=65536, help="per client, per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connect-seconds", type=float, default=10.0)
    args = parser.parse_args()

    started = time.monotonic()
    clients = open_clients(args.port, args.path, args.clients, args.connect_seconds)
    emit(
        {
            "event": "started",
            "connected": sum(1 for c in clients if not c.closed),
            "failed": sum(1 for c in clients if c.closed),
            "seconds": round(time.monotonic() - started, 3),
        }
    )
    try:
        elapsed = read_slowly(clients, args.rate_bytes, args.seconds)
        emit(summary(clients, elapsed))
    finally:
        for client in clients:
            with contextlib.suppress(OSError):
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            client.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
