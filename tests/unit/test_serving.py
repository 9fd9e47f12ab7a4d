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
