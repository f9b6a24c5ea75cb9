"""The two errors of the HTTP core.

``ProtocolError`` is the peer's fault: the bytes we received break RFC 9112 or one of
our limits. It carries the status the server should answer with, so the driver never
needs an ``isinstance`` ladder to pick one. ``LocalProtocolError`` is our side's fault:
application code asked us to send something that cannot be put on the wire.
"""

from __future__ import annotations


def shorten(data: bytes, limit: int = 40) -> str:
    """``repr`` of ``data`` cut to about ``limit`` bytes, for one-line messages."""
    if len(data) <= limit:
        return repr(data)
    return repr(data[:limit]) + f"... ({len(data)} bytes)"


class ProtocolError(Exception):
    """The received bytes are not a request we accept.

    ``status`` is the HTTP status to answer with (400, 413, 414, 417, 431, 501, 505);
    ``str(err)`` is a one-line reason, safe to show to the client.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LocalProtocolError(ValueError):
    """Application code asked for something that cannot be serialised.

    Raised before any byte of the offending event is produced, so nothing half-written
    reaches the wire.
    """
