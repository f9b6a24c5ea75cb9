"""The server: listeners, sessions and drivers, and the interface applications answer through.

``exchange`` is what applications see (``Exchange``, ``BodyStream``, the ``Responder``
protocol); ``session`` is a connection's sans-IO policy; ``transport`` and ``output``
are how bytes and file segments reach the wire; ``driver`` moves them on the reactor.
"""

from .driver import ConnectionDriver
from .exchange import Application, BodyPiece, BodyStream, Exchange, Responder
from .output import FileSegment
from .server import Server
from .session import Session
from .states import Ending

__all__ = [
    "Application",
    "BodyPiece",
    "BodyStream",
    "ConnectionDriver",
    "Ending",
    "Exchange",
    "FileSegment",
    "Responder",
    "Server",
    "Session",
]
