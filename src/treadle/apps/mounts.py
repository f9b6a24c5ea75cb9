"""URL prefixes mounted beside an application: ``--static /assets=./public``.

A request whose path is a mounted prefix, or lies under it, goes to that mount's
application and never reaches the main one; every other request does. The longest
matching prefix wins, and a prefix matches whole segments only (``/assets`` takes
``/assets/app.js`` but not ``/assetsmore``). Matching is on the path as sent: a client
that spells the prefix with percent escapes reaches the main application, as it would
by any other path, never a file outside the mounted folder.
"""

from __future__ import annotations

from urllib.parse import quote

from ..server import Application, Exchange


class Mounts:
    """Sends each request to the application mounted at its path's prefix."""

    __slots__ = ("_mounts", "_fallback")

    def __init__(self, mounts: list[tuple[str, Application]], fallback: Application) -> None:
        table = [(quote(prefix.rstrip("/")).encode("ascii"), app) for prefix, app in mounts]
        table.sort(key=lambda item: len(item[0]), reverse=True)
        self._mounts = table
        self._fallback = fallback

    def __call__(self, exchange: Exchange) -> None:
        path = exchange.request.path
        for prefix, app in self._mounts:
            if path.startswith(prefix) and (
                len(path) == len(prefix) or path[len(prefix)] == 0x2F or not prefix
            ):
                app(exchange)
                return
        self._fallback(exchange)

    def close(self) -> None:
        """Close every mounted application and the main one (those that can be)."""
        for app in [*(app for _, app in self._mounts), self._fallback]:
            close = getattr(app, "close", None)
            if close is not None:
                close()
