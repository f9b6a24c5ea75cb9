"""What every connection of one server shares: the loop, the limits, the application.

Values are copied out of ``Settings`` once at start-up into plain attributes, so the
per-request path reads an attribute instead of looking a setting up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Settings
from ..http import Limits, ResponseDefaults
from ..reactor import Reactor
from .exchange import Application

if TYPE_CHECKING:
    from .driver import ConnectionDriver


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
        self.connections: set[ConnectionDriver] = set()
        #: called after a connection closed (the listener resumes accepting)
        self.on_connection_closed: list[object] = []

    def connection_closed(self, driver: ConnectionDriver) -> None:
        self.connections.discard(driver)
        for callback in self.on_connection_closed:
            callback()  # type: ignore[operator]
