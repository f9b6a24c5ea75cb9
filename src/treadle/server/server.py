"""One server process: listeners, connections, the date, signals, shutdown.

Binding and serving are two steps. ``bind`` opens the listening sockets and needs
nothing else; ``start`` builds what serving needs (the poller, the reactor, the
listeners' handlers) in the process that will serve. A master process can therefore
bind (a privileged port, say) and fork workers that each ``start`` with a poller of
their own: an epoll descriptor must not be shared across a fork.
"""

from __future__ import annotations

import logging
import signal
import socket
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

    ``bind`` opens the sockets (raising OSError for an address that cannot be used);
    ``start`` binds if that was not done, creates the reactor (unless one was given)
    and starts accepting; ``run`` serves until SIGINT/SIGTERM or ``stop``; ``close``
    closes the listeners first, then the connections, then calls the application's
    ``close()`` if it has one.
    """

    def __init__(self, app: Application, settings: Settings, reactor: Reactor | None = None):
        self.app = app
        self.settings = settings
        self.sockets: list[socket.socket] = []
        self.listeners: list[Listener] = []
        self._reactor = reactor
        self._ctx: ServerContext | None = None
        self._app_closed = False

    @property
    def reactor(self) -> Reactor:
        if self._reactor is None:
            raise RuntimeError("the server has not been started")
        return self._reactor

    @property
    def ctx(self) -> ServerContext:
        if self._ctx is None:
            raise RuntimeError("the server has not been started")
        return self._ctx

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [sock.getsockname()[:2] for sock in self.sockets]

    def bind(self) -> None:
        """Open every listening socket of the settings (no poller is created here)."""
        if self.sockets:
            return
        try:
            for bind in self.settings.bind:
                host, port = parse_bind(bind)
                self.sockets.append(bind_socket(host, port, self.settings.backlog))
        except OSError:
            self._close_sockets()
            raise

    def start(self) -> None:
        """Bind if needed, then create the reactor and start accepting."""
        self.bind()
        if self._reactor is None:
            self._reactor = Reactor(create_poller(self.settings.poller))
        reactor = self._reactor
        self._ctx = ServerContext(reactor, self.app, self.settings)
        self.listeners = [Listener(self._ctx, sock) for sock in self.sockets]
        for listener in self.listeners:
            listener.start()
        self._refresh_date()
        for address in self.addresses:
            host, port = address
            shown = f"[{host}]" if ":" in host else host
            log.info("listening on http://%s:%d (poller %s)", shown, port, reactor.poller.name)

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
        self.listeners = []
        self._close_sockets()
        if self._ctx is not None:
            for connection in list(self._ctx.connections):
                connection.close()
        if self._ctx is not None and not self._app_closed:
            self._app_closed = True
            # Then the application's own resources (a WSGI adapter's worker threads,
            # a file cache), if it has a close(): nothing can call it any more.
            close = getattr(self.app, "close", None)
            if close is not None:
                close()
        if self._reactor is not None:
            self._reactor.close()

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []
