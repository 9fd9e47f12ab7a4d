"""The typing gate, alone."""

from __future__ import annotations


def test_typing_gate_rules():
    from app.services.limits import TypingGate

    now = [0.0]
    scheduled = []
    gate = TypingGate(
        schedule=lambda delay, fn: scheduled.append((delay, fn)), clock=lambda: now[0]
    )
    sent = []
    key = (1, 7)

    assert gate.offer(key, True, sent.append) is True
    now[0] = 0.5
    assert gate.offer(key, True, sent.append) is False, "a repeat within 2 s is dropped"
    assert gate.offer(key, False, sent.append) is False, "a change within 1 s is held"
    assert gate.offer(key, True, sent.append) is False
    assert gate.offer(key, False, sent.append) is False
    assert [round(d, 3) for d, _ in scheduled] == [0.5], "one release, at the end of the second"
    now[0] = 1.0
    scheduled[0][1]()
    assert sent == [True, False], "only the latest held state, once"
    now[0] = 3.5
    assert gate.offer(key, False, sent.append) is True, "a repeat after 2 s keeps it alive"
    assert gate.offer((2, 7), True, sent.append) is True, "other users are independent"
