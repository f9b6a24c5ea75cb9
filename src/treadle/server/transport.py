"""The transport seam: how a connection's bytes reach the wire.

The driver and the output queue talk to a ``Transport``, never to a socket, so that a
transport with other rules can drop in without touching the session. The rules every
transport keeps are the socket's own, because the plain one is the hot path and must
cost nothing over calling the socket:

- ``recv(size)`` returns bytes, ``b""`` at the end of input, raises ``BlockingIOError``
  when nothing can be read now, and ``OSError`` when the peer is gone;
- ``send(data)`` returns how many bytes it took, raises ``BlockingIOError`` when it
  takes none now;
- ``sendfile(fd, offset, count)`` likewise, for a file range, when ``can_sendfile``;
- ``shutdown_write()`` sends our end of the stream (FIN); ``close()`` releases it.

``SocketTransport`` binds ``recv`` and ``send`` straight to the socket's methods: no
Python frame in between.

What a TLS transport will add (planned, not built): ``can_sendfile`` False (the output
queue then reads file segments and sends them as bytes); ``BlockingIOError`` subclasses
saying which readiness it waits for (a read can need the socket writable during a
renegotiation, a write can need it readable), which the driver maps to poller interest;
and ``pending``, the decrypted bytes it holds that the poller cannot see, which the
driver reads before waiting again. The plain transport's ``pending`` is always 0.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Protocol

_MSG_MORE: int = getattr(socket, "MSG_MORE", 0)  # Linux; elsewhere a plain send


class Transport(Protocol):
    """What the driver and the output queue need of a connection's byte stream."""

    fd: int
    can_sendfile: bool
    recv: Callable[[int], bytes]
    send: Callable[[bytes | memoryview], int]

    @property
    def pending(self) -> int:
        """Bytes already received and held inside the transport (TLS records)."""
        ...

    def send_more(self, data: bytes | memoryview) -> int:
        """``send``, saying that more bytes follow at once (a head before a file)."""
        ...

    def sendfile(self, fd: int, offset: int, count: int) -> int: ...

    def shutdown_write(self) -> None: ...

    def close(self) -> None: ...


class SocketTransport:
    """A plain, non-blocking TCP (or Unix) socket."""

    __slots__ = ("sock", "fd", "recv", "send")

    can_sendfile = True
    pending = 0

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.recv: Callable[[int], bytes] = sock.recv
        self.send: Callable[[bytes | memoryview], int] = sock.send

    def send_more(self, data: bytes | memoryview) -> int:
        # MSG_MORE: the kernel holds these bytes back (like TCP_CORK, for this call
        # only) until the sendfile that follows fills the segment.
        return self.sock.send(data, _MSG_MORE)

    def sendfile(self, fd: int, offset: int, count: int) -> int:
        return os.sendfile(self.fd, fd, offset, count)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
