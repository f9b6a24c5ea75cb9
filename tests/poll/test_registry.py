"""Choosing a backend by name, and the helpers every backend shares."""

from __future__ import annotations

import json
import math
import select
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treadle.poll import POLLER_NAMES, available_pollers, create_poller
from treadle.poll.base import MAX_TIMEOUT_MS, timeout_to_ms, timeout_to_seconds


def test_names_are_the_documented_ones() -> None:
    assert POLLER_NAMES == ("auto", "select", "poll", "epoll", "epoll-et")


def test_available_pollers_are_concrete_known_names() -> None:
    names = available_pollers()
    assert "select" in names
    assert "auto" not in names
    assert set(names) <= set(POLLER_NAMES)
    assert names == [name for name in POLLER_NAMES if name in names]


@pytest.mark.parametrize("name", [name for name in POLLER_NAMES if name != "auto"])
def test_create_poller_by_name(name: str) -> None:
    if name not in available_pollers():
        pytest.skip(f"{name} is not available here")
    poller = create_poller(name)
    try:
        assert poller.name == name
    finally:
        poller.close()


def test_auto_picks_the_best_available() -> None:
    best = next(name for name in ("epoll", "poll", "select") if name in available_pollers())
    poller = create_poller()
    try:
        assert poller.name == best
        assert poller.edge_triggered is False
    finally:
        poller.close()


def test_auto_falls_back_when_epoll_and_poll_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(select, "epoll", raising=False)
    assert "epoll" not in available_pollers()
    assert "epoll-et" not in available_pollers()
    poller = create_poller("auto")
    poller.close()
    assert poller.name == ("poll" if hasattr(select, "poll") else "select")
    monkeypatch.delattr(select, "poll", raising=False)
    poller = create_poller("auto")
    poller.close()
    assert poller.name == "select"


def test_unknown_name_is_a_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="unknown poller 'kqueue'") as info:
        create_poller("kqueue")
    assert "\n" not in str(info.value)
    assert "epoll-et" in str(info.value)


def test_unavailable_name_is_a_one_line_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(select, "epoll", raising=False)
    with pytest.raises(ValueError, match="'epoll-et' is not available") as info:
        create_poller("epoll-et")
    assert "\n" not in str(info.value)
    assert "select" in str(info.value)


def test_poll_package_imports_nothing_of_ours_above_it() -> None:
    code = (
        "import json, sys, treadle.poll; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('treadle.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    assert all(name.startswith("treadle.poll") for name in loaded), loaded


# -- timeouts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout_s", "expected_ms"),
    [
        (None, -1),
        (0, 0),
        (0.0, 0),
        (-5.0, 0),
        (1e-9, 1),
        (0.0001, 1),
        (0.001, 1),
        (0.0011, 2),
        (0.067, 67),
        (1.5, 1500),
        (1e12, MAX_TIMEOUT_MS),
    ],
)
def test_timeout_to_ms(timeout_s: float | None, expected_ms: int) -> None:
    assert timeout_to_ms(timeout_s) == expected_ms


@given(st.floats(min_value=1e-12, max_value=1e6))
def test_timeout_to_ms_is_the_smallest_whole_ms_not_shorter(timeout_s: float) -> None:
    ms = timeout_to_ms(timeout_s)
    assert ms >= timeout_s * 1000
    assert ms - 1 < timeout_s * 1000


@given(st.floats(min_value=1e-12, max_value=1e6))
def test_timeout_to_seconds_lands_on_the_ms_after_cpython_rounds_up(timeout_s: float) -> None:
    seconds = timeout_to_seconds(timeout_s)
    assert seconds is not None
    ms = timeout_to_ms(timeout_s)
    # CPython's epoll rounds seconds up to ms through nanoseconds; select through
    # microseconds. Both must come back to exactly our ms.
    assert math.ceil(math.ceil(seconds * 1e9) / 1e6) == ms
    assert math.ceil(seconds * 1e6) == ms * 1000


def test_timeout_to_seconds_keeps_block_and_no_wait() -> None:
    assert timeout_to_seconds(None) is None
    assert timeout_to_seconds(0) == 0.0
    assert timeout_to_seconds(-1) == 0.0
