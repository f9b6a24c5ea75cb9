"""Fixtures for the functional tests: real servers in subprocesses, one per poller.

``server`` is one process per test module and poller (``poller`` is parametrised over
every backend this platform has), started with the module's ``server_args``; a module
that needs other options overrides ``server_args``. ``servers`` is one process per
poller, all running at once, for scenarios that mostly wait on a server's deadlines:
``run_on_each`` runs such a scenario against all of them in parallel. Tests that need a
server of their own (they stop it, or count its descriptors from a clean start) use
``spawn``. Every process started here is stopped at teardown (SIGTERM, then SIGKILL
after a deadline), and a shared server must exit with status 0.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator

import pytest

from .helpers import POLLERS, ServerProcess, start_servers

#: descriptors the test process and the servers may need (1,100 connections each side)
WANTED_NOFILE = 20000


@pytest.fixture(scope="session", autouse=True)
def _raise_nofile_limit() -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows (servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(hard, WANTED_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module", params=POLLERS)
def poller(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server_args() -> list[str]:
    """Extra command-line options for the module's shared ``server``."""
    return []


@pytest.fixture(scope="module")
def server(poller: str, server_args: list[str]) -> Iterator[ServerProcess]:
    """The module's shared server for ``poller``; it must still be alive at the end."""
    process = ServerProcess(server_args, poller=poller).wait_listening()
    try:
        yield process
        assert process.alive(), f"the server died:\n{process.tail()}"
    finally:
        status = process.stop()
    assert status == 0, f"server exited with {status}"


@pytest.fixture(scope="module")
def servers(server_args: list[str]) -> Iterator[dict[str, ServerProcess]]:
    """One server per poller, all at once, for tests that run a scenario on each in
    parallel (``run_on_each``); all must still be alive at the end."""
    processes = start_servers(POLLERS, server_args)
    try:
        yield processes
        dead = [name for name, process in processes.items() if not process.alive()]
        assert not dead, f"servers died: {dead}"
    finally:
        statuses = {name: process.stop() for name, process in processes.items()}
    assert set(statuses.values()) == {0}, f"exit statuses: {statuses}"


@pytest.fixture
def spawn() -> Iterator[Callable[..., ServerProcess]]:
    """A factory for servers of the test's own; each one is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, wait: bool = True, **kwargs: object) -> ServerProcess:
        process = ServerProcess(args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process.wait_listening() if wait else process

    yield start
    for process in started:
        process.stop()
