"""The entry point: set up the concurrency model first, then build the app.

`python wsgi.py` serves HTTP and Socket.IO on HOST:PORT in ASYNC_MODE (eventlet by
default, or gevent). Patching must happen before anything else is imported, so that
sockets, threads and psycopg2's waits all become cooperative. `flask --app wsgi ...`
imports this module without patching (plain threads) for commands and `flask run`.
"""

import os

from dotenv import load_dotenv

load_dotenv()

if __name__ == "__main__":
    ASYNC_MODE = os.environ.get("ASYNC_MODE", "eventlet")
    if ASYNC_MODE == "eventlet":
        import warnings

        # eventlet 0.40 warns at every import that it is in bugfix-only mode. The stack
        # is the customer's choice and gevent is the other mode (docs/DECISIONS.md):
        # one line in the docs, not a paragraph at every start.
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        # The full patch includes psycopg2: its waits go through eventlet's hub.
        eventlet.monkey_patch()
    elif ASYNC_MODE == "gevent":
        # Each greenlet would keep a record of the one that spawned it, for debugging
        # dumps nobody reads here: 4.8 KB per idle socket (docs/BENCHMARKS.md). gevent
        # reads its documented setting from the environment when it is first imported.
        os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "false")
        from gevent import monkey

        monkey.patch_all()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()  # gevent does not patch psycopg2 by itself; psycogreen does
    else:
        raise SystemExit(f"ASYNC_MODE must be eventlet or gevent, got {ASYNC_MODE!r}")

from app import create_app  # noqa: E402
from app.extensions import socketio  # noqa: E402

app = create_app()

if __name__ == "__main__":
    from app.serving import serve

    serve(app, socketio)
