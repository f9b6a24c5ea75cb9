"""Helpers for poller tests: fill and drain a non-blocking socket, guard against hangs."""

from __future__ import annotations

import socket

from ..support import hang_guard as hang_guard  # re-exported for the poller tests


def fill(sock: socket.socket) -> int:
    """Send until the kernel refuses more; return how many bytes went in."""
    chunk = b"x" * 65536
    total = 0
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            # A smaller write can still fit after a big one is refused; insist until
            # even one byte does not, so "full" really means full.
            if len(chunk) == 1:
                return total
            chunk = chunk[: len(chunk) // 16 or 1]


def drain(sock: socket.socket) -> bytes:
    """Receive until EAGAIN (or EOF); return everything read."""
    parts = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            break
        if not data:
            break
        parts.append(data)
    return b"".join(parts)
