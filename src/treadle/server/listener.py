"""Accepting connections: one ``Listener`` per bound socket.

Accepting is bounded per turn (so a connection storm cannot starve the connections we
already have) and survives running out of descriptors: on EMFILE/ENFILE it logs one
line and stops accepting for a moment instead of spinning on a socket that stays
readable. When the poller itself is full (select's FD_SETSIZE), it says so once and
stops accepting until a connection closes; the connections it has keep being served,
and clients wait in the listen backlog.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys

from ..poll import EVENT_READ, PollerFullError
from .context import ServerContext
from .driver import ConnectionDriver

log = logging.getLogger("treadle.server")

_ACCEPTS_PER_TURN = 64
# Linux copies TCP_NODELAY from the listening socket to the accepted ones (checked in
# tests/server/test_listener.py); elsewhere it is set on each, one system call more.
_NODELAY_INHERITED = sys.platform.startswith("linux")
_EMFILE_PAUSE_S = 0.5
_FULL_RETRY_S = 1.0
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking listening socket on ``host:port`` (IPv4 or IPv6).

    Raises OSError with the operating system's reason when the address cannot be used.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Accepted sockets inherit TCP_NODELAY on Linux (see _NODELAY_INHERITED).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """Accepts connections from one listening socket and starts their drivers."""

    def __init__(self, ctx: ServerContext, sock: socket.socket) -> None:
        self.ctx = ctx
        self.sock = sock
        self.fd = sock.fileno()
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self._accepting = False
        self._full_logged = False
        self._waiting_for_close = False
        ctx.on_connection_closed.append(self._on_connection_closed)

    def start(self) -> None:
        if not self._accepting and self.fd >= 0:
            self._accepting = True
            self.ctx.reactor.add_handler(self.fd, self, EVENT_READ)

    def pause(self) -> None:
        if self._accepting:
            self._accepting = False
            self.ctx.reactor.remove_handler(self.fd)

    def close(self) -> None:
        self.pause()
        self.sock.close()
        self.fd = -1

    def handle_write(self) -> None:
        return None

    def _next_fd_fits(self, max_fd: int) -> bool:
        """For a poller bounded by descriptor number (select): would the next accepted
        socket fit? The kernel hands out the lowest free number, which a dup() shows.

        When it would not, stop accepting until a connection closes, so the client
        waits in the backlog instead of being accepted and dropped.
        """
        probe = os.dup(self.fd)
        os.close(probe)
        if probe < max_fd:
            return True
        if not self._full_logged:
            self._full_logged = True
            log.warning(
                "not accepting new connections: descriptor %d would pass the %s poller's "
                "limit of %d (FD_SETSIZE); serving the %d open ones",
                probe,
                self.ctx.reactor.poller.name,
                max_fd,
                len(self.ctx.connections),
            )
        self._waiting_for_close = True
        self.pause()
        # A closing connection resumes accepting; should none be open to close (the
        # descriptors are held by something else), look again now and then.
        self.ctx.reactor.call_later(_FULL_RETRY_S, self._retry_when_full)
        return False

    def _retry_when_full(self) -> None:
        if self._waiting_for_close and self.fd >= 0:
            self._waiting_for_close = False
            self.start()

    def handle_read(self) -> None:
        ctx = self.ctx
        accept = self.sock.accept
        max_fd = ctx.reactor.poller.max_fd
        for _ in range(_ACCEPTS_PER_TURN):
            if max_fd is not None and not self._next_fd_fits(max_fd):
                return
            try:
                sock, client = accept()
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            except ConnectionAbortedError:
                continue  # the client gave up while in the backlog
            except OSError as error:
                if error.errno in _OUT_OF_DESCRIPTORS:
                    log.warning(
                        "accept failed (%s); pausing accepts for %.1f s",
                        error.strerror,
                        _EMFILE_PAUSE_S,
                    )
                    self.pause()
                    ctx.reactor.call_later(_EMFILE_PAUSE_S, self.start)
                    return
                log.warning("accept failed: %s", error)
                break
            sock.setblocking(False)
            if not _NODELAY_INHERITED:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            try:
                driver = ConnectionDriver(ctx, sock, client)
            except PollerFullError as error:
                sock.close()
                if not self._full_logged:
                    self._full_logged = True
                    log.warning(
                        "not accepting new connections: %s; serving the %d open ones",
                        error,
                        len(ctx.connections),
                    )
                self._waiting_for_close = True
                self.pause()
                return
            ctx.connections.add(driver)
        # Stopped before EAGAIN (this turn's budget, or an error): an edge-triggered
        # poller will not report the backlog again, so come back on the next turn.
        if ctx.edge_triggered and self._accepting:
            ctx.reactor.call_soon(self._accept_more)

    def _accept_more(self) -> None:
        if self._accepting:
            self.handle_read()

    def _on_connection_closed(self) -> None:
        if self._waiting_for_close:
            self._waiting_for_close = False
            self.start()
