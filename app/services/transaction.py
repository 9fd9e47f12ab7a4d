"""`transaction()`: the one place where the chat commits.

Service helpers only `flush()`; a command wraps its writes in `with transaction():`, which
commits when the block ends and rolls back on any error (the error then propagates).
Events are emitted by the caller *after* the block, so nothing is heard before it is
stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from ..extensions import db


@contextmanager
def transaction() -> Iterator[Session]:
    session = db.session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
