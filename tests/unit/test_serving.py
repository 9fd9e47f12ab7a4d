"""Admission and room turns, alone."""

from __future__ import annotations

from app.serving import Admission


def test_admission_sheds_only_past_what_it_serves_in_time():
    now = [0.0]
    admission = Admission(shed_after=0.5, always_admitted=4, clock=lambda: now[0])
    for _ in range(3):
        admission.__enter__()
    assert not admission.overloaded()  # under the floor: always admitted
    admission.__enter__()
    assert admission.overloaded()  # 4 in flight, nothing served yet: rate 0
    for _ in range(100):  # 100 served in a second: 0.5 s of work is 50 sends
        now[0] += 0.0101
        admission.served()
    for _ in range(40):
        admission.__enter__()
    assert not admission.overloaded()  # 44 in flight < 50
    for _ in range(10):
        admission.__enter__()
    assert admission.overloaded()  # 54 in flight >= 50


def test_a_room_turn_has_one_holder_and_the_table_keeps_only_keys_in_use():
    from app.turns import Turns

    turns = Turns()
    assert turns.acquire(("customer", 1), timeout=0.1)
    assert not turns.acquire(("customer", 1), timeout=0.05)  # held: no second holder
    assert turns.acquire(("customer", 2), timeout=0.1)  # another room goes ahead
    assert len(turns) == 2
    turns.release(("customer", 1))
    assert turns.acquire(("customer", 1), timeout=0.1)  # free again
    turns.release(("customer", 1))
    turns.release(("customer", 2))
    assert len(turns) == 0, "a key leaves the table with its last holder or waiter"


def test_slots_go_to_their_waiters_first_come_first_served():
    """A released slot goes to the longest waiter, never to a newcomer (the standard
    semaphore let newcomers take it, and a waiter could wait out CHAT_SEND_WAIT)."""
    import threading

    from app.turns import Slots
    from tests.live import wait_for

    slots = Slots(1)
    assert slots.acquire(timeout=0)
    served: list[int] = []
    queued = threading.Semaphore(0)

    def wait(i: int) -> None:
        queued.release()
        if slots.acquire(timeout=10):
            served.append(i)
            slots.release()

    waiters = []
    for i in range(5):  # each in the queue before the next one comes
        t = threading.Thread(target=wait, args=(i,))
        t.start()
        assert queued.acquire(timeout=5)
        assert wait_for(lambda n=i + 1: slots.waiting == n, timeout=5)
        waiters.append(t)
    assert not slots.acquire(timeout=0), "a newcomer does not go past the waiters"
    slots.release()
    for t in waiters:
        t.join(timeout=10)
    assert served == [0, 1, 2, 3, 4]
    assert slots.free == 1


def test_a_slot_wait_that_runs_out_leaves_the_queue():
    from app.turns import Slots

    slots = Slots(1)
    assert slots.acquire(timeout=0)
    assert not slots.acquire(timeout=0.01)
    assert slots.waiting == 0, "the waiter that gave up is gone from the queue"
    slots.release()
    assert slots.free == 1 and slots.acquire(timeout=0)


def test_the_server_limits_glibcs_allocator_arenas_unless_the_operator_did(monkeypatch):
    """Ten photo uploads grew an eventlet server by 1.9 GB: each pool thread kept its own
    arena. `serve` asks glibc for two; an operator's MALLOC_ARENA_MAX is left to glibc."""
    import ctypes.util

    import pytest

    from app.serving import limit_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if ctypes.util.find_library("c") is None:
        pytest.skip("no C library to ask (not Linux)")
    assert limit_malloc_arenas() is True  # glibc's mallopt answers 1 when it took it
