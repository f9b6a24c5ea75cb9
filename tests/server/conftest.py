"""Fixtures for the driver and listener tests: harnesses closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server.helpers import POLLERS, Harness


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    """``make(app, poller, **overrides)`` builds a ``Harness`` that is closed afterwards."""
    made: list[Harness] = []

    def factory(*args: Any, **kwargs: Any) -> Harness:
        harness = Harness(*args, **kwargs)
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.close()


@pytest.fixture(params=POLLERS)
def poller(request: pytest.FixtureRequest) -> str:
    """Each backend this platform has: behaviour must not depend on it."""
    return str(request.param)
