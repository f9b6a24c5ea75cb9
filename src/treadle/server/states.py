"""The names a connection's life is told in: its deadline phases and how exchanges end.

Shared by the session (which decides them), its answering half and the driver (which
arms timers by phase and closes by ending), so that none imports another for a name.
"""

from __future__ import annotations

import enum

#: deadline phases, in the order of ``ServerContext.phase_timeouts``
IDLE, HEAD, BODY, APP, WRITE, LINGER = range(6)
PHASE_NAMES = ("idle", "head", "body", "app", "write", "linger")


class Ending(enum.Enum):
    """How an exchange (or a connection) ended; ``session.py`` says what each means."""

    COMPLETE = "complete"
    PROTOCOL_ERROR = "protocol error"
    DEADLINE = "deadline"
    CLIENT_GONE = "client gone"
    APP_FAILED = "application failed"
    SHUTDOWN = "shutdown"


#: a module constant for the hot path: enum attribute lookups are slow on 3.11
_COMPLETE = Ending.COMPLETE


def format_client(client: tuple[str, int] | None) -> str:
    """``host:port`` (``[v6]:port``) of a peer, for log lines."""
    if not client:
        return "client"
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
