"""The socket events' rate-limit windows in one process, alone."""

from __future__ import annotations

from app.services.limits import MemoryWindows


def test_a_window_refuses_past_its_count_without_counting_the_refusal_and_slides():
    now = [100.0]
    windows = MemoryWindows(clock=lambda: now[0])
    assert [windows.hit("u", 2, 10) for _ in range(3)] == [True, True, False]
    now[0] += 5.0
    assert windows.hit("u", 2, 10) is False  # both still inside the window
    assert windows.hit("v", 2, 10) is True  # another key has its own window
    now[0] += 5.01  # the first two have left; the refusals were never counted
    assert [windows.hit("u", 2, 10) for _ in range(3)] == [True, True, False]
