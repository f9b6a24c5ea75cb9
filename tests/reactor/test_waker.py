"""The waker: a wake makes its descriptor readable, a drain empties it, wakes never block."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator

import pytest

from treadle.reactor import Waker


@pytest.fixture
def waker() -> Iterator[Waker]:
    waker = Waker()
    yield waker
    waker.close()


def readable(waker: Waker) -> bool:
    return bool(select.select([waker.fileno()], [], [], 0)[0])


def test_wake_makes_it_readable_and_drain_empties_it(waker: Waker) -> None:
    assert not readable(waker)
    waker.wake()
    waker.wake()
    assert readable(waker)
    waker.drain()
    assert not readable(waker)
    waker.drain()  # draining an empty waker is fine


def test_wakes_never_block_even_when_the_buffer_is_full(waker: Waker) -> None:
    for _ in range(20_000):  # more one-byte sends than a socket buffer holds
        waker.wake()
    with pytest.raises(BlockingIOError):  # so the buffer really was full
        waker._writer.send(b"\0")
    assert readable(waker)
    waker.drain()
    assert not readable(waker)


def test_wake_from_other_threads(waker: Waker) -> None:
    threads = [threading.Thread(target=waker.wake) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert readable(waker)


def test_wake_after_close_is_ignored() -> None:
    waker = Waker()
    waker.close()
    waker.wake()
    waker.close()  # twice is harmless


def test_descriptors_are_distinct_and_non_blocking(waker: Waker) -> None:
    assert waker.fileno() != waker.write_fileno()
    assert not os.get_blocking(waker.fileno())
    assert not os.get_blocking(waker.write_fileno())
