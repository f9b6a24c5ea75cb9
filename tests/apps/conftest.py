"""The driver harness fixtures, shared with tests/server: native handlers run end to end."""

from tests.server.conftest import make, poller

__all__ = ["make", "poller"]
