"""What differs between eventlet, gevent and plain threads, in one place.

`python wsgi.py` patches the process for eventlet or gevent before anything else is
imported; `flask run`, the CLI and the in-process tests patch nothing and get threads.
Everything else in the app is written once, against these helpers and Flask-SocketIO's
own (`socketio.sleep`, `socketio.start_background_task`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def async_mode() -> str:
    """The concurrency model wsgi.py patched this process for, or "threading"."""
    eventlet = sys.modules.get("eventlet.patcher")
    if eventlet is not None and eventlet.is_monkey_patched("socket"):
        return "eventlet"
    gevent = sys.modules.get("gevent.monkey")
    if gevent is not None and gevent.is_module_patched("socket"):
        return "gevent"
    return "threading"


def run_later(delay: float, function: Callable[[], None]) -> None:
    """Call `function` after `delay` seconds on a background task of the server."""
    from .extensions import socketio

    def later():
        socketio.sleep(delay)
        function()

    socketio.start_background_task(later)


def off_the_loop(function, *args):
    """Run a CPU-heavy function (a password hash, ~100 ms) on an OS thread and wait for
    it cooperatively: the event loop goes on serving every socket meanwhile."""
    mode = async_mode()
    if mode == "eventlet":
        from eventlet import tpool

        return tpool.execute(function, *args)
    if mode == "gevent":
        import gevent

        return gevent.get_hub().threadpool.apply(function, args)
    return function(*args)  # plain threads: this already is an OS thread
