"""Fixtures: ``serve(app, threads=..., **harness overrides)`` and adapters closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from treadle.apps.wsgi import WSGIApplication

from .helpers import GATES, Served

_ADAPTER_OPTIONS = (
    "threads",
    "queue_size",
    "root_path",
    "server_address",
    "input_buffer_bytes",
    "output_buffer_bytes",
    "spool_bytes",
)


@pytest.fixture
def adapters() -> Iterator[list[WSGIApplication]]:
    made: list[WSGIApplication] = []
    yield made
    for gate in GATES:  # no application left waiting for a test that has ended
        gate.open()
    GATES.clear()
    for adapter in made:
        assert adapter.pool is None or adapter.pool.close(5.0), "worker threads did not end"


@pytest.fixture
def serve(adapters, make) -> Callable[..., Served]:
    """``serve(app, **options)``: one connection to a new adapter around ``app``;
    adapter options (``threads``, ``queue_size``, ...) go to the adapter, the rest to the
    harness (``poller``, ``tcp``, settings overrides). ``adapter=`` reuses one.

    Harnesses close before the adapters (``make`` is set up after ``adapters``), so a
    worker blocked on a connection is woken by its ending before its pool is joined."""

    def factory(app: Any = None, *, adapter: WSGIApplication | None = None, **options: Any):
        if adapter is None:
            own = {key: options.pop(key) for key in _ADAPTER_OPTIONS if key in options}
            own.setdefault("threads", 2)
            adapter = WSGIApplication(app, **own)
            adapters.append(adapter)
        return Served(make, adapter, **options)

    return factory
