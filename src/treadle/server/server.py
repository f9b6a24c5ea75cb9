"""One server process: listeners, connections, the date, signals, shutdown."""

from __future__ import annotations

import logging
import signal
import time

from ..config import Settings, parse_bind
from ..http import format_date
from ..poll import create_poller
from ..reactor import Reactor
from .context import ServerContext
from .exchange import Application
from .listener import Listener, bind_socket

log = logging.getLogger("treadle.server")


class Server:
    """Serves ``app`` on the addresses of ``settings`` until stopped.

    ``start`` binds (raising OSError for an address that cannot be used); ``run``
    serves until SIGINT/SIGTERM or ``stop``; then listeners close first, then the
    connections.
    """

    def __init__(self, app: Application, settings: Settings, reactor: Reactor | None = None):
        self.settings = settings
        self.reactor = reactor if reactor is not None else Reactor(create_poller(settings.poller))
        self.ctx = ServerContext(self.reactor, app, settings)
        self.listeners: list[Listener] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [listener.address for listener in self.listeners]

    def start(self) -> None:
        for bind in self.settings.bind:
            host, port = parse_bind(bind)
            sock = bind_socket(host, port, self.settings.backlog)
            self.listeners.append(Listener(self.ctx, sock))
        for listener in self.listeners:
            listener.start()
        self._refresh_date()
        for address in self.addresses:
            host, port = address
            shown = f"[{host}]" if ":" in host else host
            log.info("listening on http://%s:%d (poller %s)", shown, port, self.reactor.poller.name)

    def _refresh_date(self) -> None:
        """Format the Date field once a second, for every connection at once."""
        now = time.time()
        self.ctx.defaults.date = format_date(now)
        self.reactor.call_later(1.0 - (now % 1.0) + 0.001, self._refresh_date)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.reactor.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        self.stop()

    def run(self) -> None:
        """Serve until stopped, then release everything."""
        try:
            self.reactor.run_forever()
        finally:
            self.close()

    def stop(self) -> None:
        self.reactor.stop()

    def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        for driver in list(self.ctx.connections):
            driver.close()
        self.reactor.close()
