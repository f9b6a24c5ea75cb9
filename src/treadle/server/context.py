"""What every connection of one server shares: the loop, the limits, the application.

Values are copied out of ``Settings`` once at start-up into plain attributes, so the
per-request path reads an attribute instead of looking a setting up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..config import Settings
from ..http import Limits, ResponseDefaults
from ..reactor import Reactor
from .exchange import Application

#: how long a closing connection keeps reading (and dropping) so that the client reads
#: our last response before the kernel answers its unread bytes with a reset
LINGER_S = 2.0


class Connection(Protocol):
    """What the server needs of an open connection: a way to close it."""

    def close(self) -> None: ...


class ServerContext:
    """Shared state of one server process."""

    def __init__(self, reactor: Reactor, app: Application, settings: Settings) -> None:
        self.reactor = reactor
        self.app = app
        self.edge_triggered = reactor.poller.edge_triggered
        self.limits = Limits(
            max_request_line_bytes=settings.max_request_line,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            max_body_bytes=settings.max_body_bytes,
        )
        self.defaults = ResponseDefaults(server=b"treadle")
        self.header_timeout_s: float = settings.header_timeout
        self.body_timeout_s: float = settings.body_timeout
        self.idle_timeout_s: float = settings.idle_timeout
        self.write_timeout_s: float = settings.write_timeout
        self.body_buffer_bytes: int = settings.body_buffer_bytes
        self.requests_per_turn: int = settings.requests_per_turn
        self.read_bytes_per_turn: int = settings.read_bytes_per_turn
        self.write_high_water: int = settings.write_high_water
        self.write_low_water: int = settings.write_low_water
        #: the timeout of each deadline phase, by phase number (session.IDLE...LINGER;
        #: APP has none, the application is answering: its slot is never armed)
        self.phase_timeouts = (
            self.idle_timeout_s,
            self.header_timeout_s,
            self.body_timeout_s,
            self.idle_timeout_s,
            self.write_timeout_s,
            LINGER_S,
        )
        self.connections: set[Connection] = set()
        #: called after a connection closed (the listener resumes accepting)
        self.on_connection_closed: list[Callable[[], object]] = []

    def connection_closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for callback in self.on_connection_closed:
            callback()
