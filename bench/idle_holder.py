"""Holds idle keep-alive connections open against a server, for the I/O-model lab.

    taskset -c 1 python bench/idle_holder.py PORT

Each idle connection is opened without blocking, sends one complete keep-alive request
(``GET / HTTP/1.1``), reads the whole response and then stays silent: the server has
served it once and now holds it as an idle keep-alive connection, which is the state a
browser leaves behind. A connection counts as held only once its response arrived, so a
server that stops accepting (select beyond FD_SETSIZE) shows up as connections not held.

Commands arrive on stdin, one per line; each gets one JSON line on stdout:

    open N      open connections until N are held; ``{"held", "failed", "errors", "seconds"}``
    probe K     open K more, one request each, then close them; ``{"served", ...}``: can the
                server still take new connections (wrk's) on top of the idle ones?
    check K     count held connections the server has closed since, then send one more
                request on up to K of them; ``{"open", "closed_by_server", "answered"}``
    close       close everything (with RST, so no TIME_WAIT piles up here) and exit

Every wait is bounded: opening stops when no connection has completed for ``--stall``
seconds, or after ``--max-seconds`` in all.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import resource
import selectors
import socket
import struct
import sys
import time
from typing import Any

HOST = "127.0.0.1"
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: treadle-bench-idle\r\n\r\n"
#: how many connections may be between connect() and a complete response at once
WINDOW = 256
_LINGER_RST = struct.pack("ii", 1, 0)


class Pending:
    """One connection on its way to being held."""

    __slots__ = ("sock", "sent", "received", "connected")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent = 0
        self.received = b""
        self.connected = False


def response_complete(data: bytes) -> bool:
    """Whether ``data`` holds one whole response with a Content-Length body."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(data) >= end + 4 + length


def close_rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    sock.close()


def open_connections(
    port: int, count: int, *, stall_s: float, max_s: float
) -> tuple[list[socket.socket], dict[str, Any]]:
    """Open ``count`` connections, one request and response each; return those served."""
    sel = selectors.DefaultSelector()
    served: list[socket.socket] = []
    errors: dict[str, int] = {}
    started = last_progress = time.monotonic()
    started_count = 0
    in_flight = 0

    def fail(p: Pending, reason: str) -> None:
        nonlocal in_flight
        sel.unregister(p.sock)
        close_rst(p.sock)
        in_flight -= 1
        errors[reason] = errors.get(reason, 0) + 1

    while len(served) + sum(errors.values()) < count:
        while in_flight < WINDOW and started_count < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex((HOST, port))
            started_count += 1
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                name = errno.errorcode.get(code, str(code))
                errors[name] = errors.get(name, 0) + 1
                continue
            sel.register(sock, selectors.EVENT_WRITE, Pending(sock))
            in_flight += 1
        if in_flight == 0:
            break
        now = time.monotonic()
        if now - last_progress > stall_s or now - started > max_s:
            for key in list(sel.get_map().values()):
                fail(key.data, "no response" if key.data.connected else "connect timeout")
            break
        for key, _mask in sel.select(timeout=0.2):
            p: Pending = key.data
            sock = p.sock
            if not p.connected:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    fail(p, errno.errorcode.get(code, str(code)))
                    continue
                p.connected = True
            if p.sent < len(REQUEST):
                try:
                    p.sent += sock.send(REQUEST[p.sent :])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    fail(p, errno.errorcode.get(exc.errno or 0, "send error"))
                    continue
                if p.sent == len(REQUEST):
                    sel.modify(sock, selectors.EVENT_READ, p)
                continue
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                fail(p, errno.errorcode.get(exc.errno or 0, "recv error"))
                continue
            if not chunk:
                fail(p, "closed by server")
                continue
            p.received += chunk
            if response_complete(p.received):
                sel.unregister(sock)
                in_flight -= 1
                served.append(sock)
                last_progress = time.monotonic()
    sel.close()
    return served, {
        "held": len(served),
        "failed": sum(errors.values()),
        "errors": errors,
        "seconds": round(time.monotonic() - started, 3),
    }


def check_held(held: list[socket.socket], sample: int, timeout_s: float) -> dict[str, Any]:
    """How many held connections are still open, and do a few still get answers?"""
    sel = selectors.DefaultSelector()
    for sock in held:
        sel.register(sock, selectors.EVENT_READ)
    closed = {key.fileobj for key, _ in sel.select(timeout=0)}
    sel.close()
    alive = [s for s in held if s not in closed]
    answered = 0
    step = max(1, len(alive) // max(sample, 1))
    for sock in alive[::step][:sample]:
        sock.setblocking(True)
        sock.settimeout(timeout_s)
        try:
            sock.sendall(REQUEST)
            data = b""
            while not response_complete(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            answered += response_complete(data)
        except OSError:
            pass
        finally:
            sock.setblocking(False)
    return {
        "open": len(alive),
        "closed_by_server": len(closed),
        "answered": answered,
        "asked": min(sample, len(alive)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--stall", type=float, default=3.0, help="seconds without progress")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    held: list[socket.socket] = []
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "open":
            socks, report = open_connections(
                args.port, int(arg), stall_s=args.stall, max_s=args.max_seconds
            )
            held += socks
        elif cmd == "probe":
            socks, report = open_connections(
                args.port, int(arg), stall_s=args.stall, max_s=args.max_seconds
            )
            report["served"] = report["held"]
            for sock in socks:
                sock.close()  # orderly close: these are counted, not kept
        elif cmd == "check":
            report = check_held(held, int(arg or 20), timeout_s=args.stall)
        elif cmd == "close":
            for sock in held:
                close_rst(sock)
            report = {"closed": len(held)}
            held = []
        else:
            report = {"error": f"unknown command {cmd!r}"}
        print(json.dumps(report), flush=True)
        if cmd == "close":
            break
    for sock in held:
        close_rst(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
