"""The deadline queue: order, ties, O(1) cancel, compaction, live count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from treadle.reactor import Deadline, DeadlineQueue


def noop() -> None:
    pass


def names(due: list[Deadline]) -> list[object]:
    return [timer.args[0] for timer in due]


def test_pop_due_in_deadline_order_ties_in_push_order() -> None:
    queue = DeadlineQueue()
    queue.push(3.0, noop, "c")
    queue.push(1.0, noop, "a1")
    queue.push(2.0, noop, "b")
    queue.push(1.0, noop, "a2")
    queue.push(1.0, noop, "a3")
    assert names(queue.pop_due(10.0)) == ["a1", "a2", "a3", "b", "c"]
    assert len(queue) == 0


def test_pop_due_takes_what_is_due_and_not_before() -> None:
    queue = DeadlineQueue()
    queue.push(5.0, noop, "later")
    queue.push(2.0, noop, "sooner")
    assert queue.pop_due(1.999) == []
    assert names(queue.pop_due(2.0)) == ["sooner"]  # at the deadline counts as due
    assert queue.next_deadline() == 5.0
    assert names(queue.pop_due(100.0)) == ["later"]
    assert queue.next_deadline() is None


def test_handle_carries_deadline_callback_and_args() -> None:
    queue = DeadlineQueue()
    handle = queue.push(7.5, noop, 1, "two")
    assert handle.deadline == 7.5
    assert handle.callback is noop
    assert handle.args == (1, "two")
    assert handle.cancelled is False


def test_cancelled_timers_are_not_returned_or_counted() -> None:
    queue = DeadlineQueue()
    first = queue.push(1.0, noop, "first")
    queue.push(2.0, noop, "second")
    assert len(queue) == 2
    first.cancel()
    assert first.cancelled
    assert len(queue) == 1
    first.cancel()  # twice is harmless
    assert len(queue) == 1
    assert queue.next_deadline() == 2.0  # the dead head is dropped
    assert names(queue.pop_due(5.0)) == ["second"]
    assert len(queue) == 0


def test_cancel_after_firing_changes_nothing() -> None:
    queue = DeadlineQueue()
    fired = queue.push(1.0, noop, "fired")
    queue.push(9.0, noop, "pending")
    assert queue.pop_due(1.0) == [fired]
    fired.cancel()
    assert fired.cancelled
    assert len(queue) == 1
    assert names(queue.pop_due(9.0)) == ["pending"]


def test_timers_pushed_after_pop_wait_for_the_next_pop() -> None:
    queue = DeadlineQueue()
    queue.push(1.0, noop, "a")
    due = queue.pop_due(1.0)
    queue.push(0.5, noop, "already due")
    assert names(due) == ["a"]
    assert names(queue.pop_due(1.0)) == ["already due"]


def test_compaction_drops_the_dead_and_keeps_order() -> None:
    queue = DeadlineQueue()
    # args[0] is the push number, so (deadline, push number) is the expected order
    handles = [queue.push(float(i % 50), noop, i) for i in range(400)]
    for handle in handles:
        if handle.args[0] % 4:  # cancel three in four
            handle.cancel()
    assert len(queue) == 100
    queue.push(25.0, noop, 400)  # a push while mostly dead rebuilds the heap
    assert len(queue._heap) == 101  # the dead entries are gone, not just skipped
    assert len(queue) == 101
    keys = [(timer.deadline, timer.args[0]) for timer in queue.pop_due(1000.0)]
    live = [(float(i % 50), i) for i in range(0, 400, 4)] + [(25.0, 400)]
    assert keys == sorted(live)


def test_a_small_heap_is_never_compacted() -> None:
    queue = DeadlineQueue()
    handles = [queue.push(1.0, noop, i) for i in range(10)]
    for handle in handles:
        handle.cancel()
    queue.push(2.0, noop, "x")
    assert len(queue._heap) == 11  # not worth rebuilding
    assert len(queue) == 1


operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 20)),
        st.tuples(st.just("cancel"), st.integers(0, 1000)),
        st.tuples(st.just("pop"), st.integers(0, 20)),
    ),
    max_size=300,
)


@given(operations)
def test_matches_a_sorted_list_model(ops: list[tuple[str, int]]) -> None:
    queue = DeadlineQueue()
    model: list[tuple[float, int, Deadline]] = []  # (deadline, push number, handle)
    handles: list[Deadline] = []
    for op, value in ops:
        if op == "push":
            handle = queue.push(float(value), noop, len(handles))
            model.append((float(value), len(handles), handle))
            handles.append(handle)
        elif op == "cancel" and handles:
            handle = handles[value % len(handles)]
            handle.cancel()
            model = [entry for entry in model if entry[2] is not handle]
        elif op == "pop":
            model.sort(key=lambda entry: (entry[0], entry[1]))
            expected = [entry[2] for entry in model if entry[0] <= value]
            model = [entry for entry in model if entry[0] > value]
            assert queue.pop_due(float(value)) == expected
        assert len(queue) == len(model)
        assert queue.next_deadline() == (min(entry[0] for entry in model) if model else None)
