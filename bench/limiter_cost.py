"""What one socket-event rate-limit check costs the server, `limits` in memory.

    .venv/bin/python bench/limiter_cost.py eventlet limits    # or: gevent; none

Hits 1,000 keys (500 users, a send key and an event key each) at 1,000 hits a second
for 5 s under the patched hub, and prints the process CPU per hit, the idle loop
included ("none" is that loop alone). docs/BENCHMARKS.md, issue 19.
"""

import resource
import sys
import time

MODE, WHICH = sys.argv[1], sys.argv[2]
if MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    sleep = eventlet.sleep
else:
    import gevent
    from gevent import monkey

    monkey.patch_all()
    sleep = gevent.sleep

from limits import RateLimitItemPerSecond  # noqa: E402 - after the patching
from limits.storage import MemoryStorage  # noqa: E402
from limits.strategies import MovingWindowRateLimiter  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(rate: int = 1000, seconds: float = 5.0) -> None:
    limiter = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerSecond(20, 10)
    keys = [f"send:{i}" for i in range(500)] + [f"event:history:{i}" for i in range(500)]
    start, before, n = time.monotonic(), cpu(), 0
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate)
        while n < due:
            if WHICH == "limits":
                limiter.hit(item, "chat", keys[n % len(keys)])
            n += 1
        sleep(0.001)
    print(f"{MODE} {WHICH}: {(cpu() - before) / n * 1000:.3f} ms CPU per hit, {n} hits")


if __name__ == "__main__":
    main()
