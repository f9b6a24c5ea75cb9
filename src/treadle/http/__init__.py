"""Sans-IO HTTP/1.1 for the server side: bytes in, events out; events in, bytes out.

Nothing in this package touches a socket, a clock or a logger; the server in
``treadle.server`` does. See ``connection.py`` for the theory of operation.
"""

from .connection import ServerConnection
from .errors import LocalProtocolError, ProtocolError
from .events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    Sentinel,
)
from .headers import Headers
from .readers import Limits
from .writer import PreparedFields, ResponseDefaults, error_response, format_date, reason_phrase

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Headers",
    "InformationalResponse",
    "Limits",
    "LocalProtocolError",
    "PreparedFields",
    "ProtocolError",
    "Request",
    "Response",
    "ResponseDefaults",
    "Sentinel",
    "ServerConnection",
    "error_response",
    "format_date",
    "reason_phrase",
]
