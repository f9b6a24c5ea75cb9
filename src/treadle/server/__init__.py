"""The server: listeners, the one connection driver, and the application interface."""

from .driver import ConnectionDriver
from .exchange import Application, BodyStream, Exchange
from .server import Server

__all__ = ["Application", "BodyStream", "ConnectionDriver", "Exchange", "Server"]
